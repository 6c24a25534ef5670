/** Data-parallel training over c10d (Gloo on loopback) with real worker processes. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { info, initProcessGroup, launch, launchWorkers, ValidationError, type CudaBackend } from '../lib';
import { makeTempDir, REPO_ROOT } from './helpers/reference';

const WORKER = path.join(REPO_ROOT, 'test', 'helpers', 'distributed-worker.js');

interface RankResult {
  weights: Record<string, number[]>;
  loss: Record<string, number>[];
  examples: number[];
  validation: Record<string, Record<string, number>>[];
}

async function run(nproc: number, batch: number, extraEnv: Record<string, string> = {}): Promise<{ codes: number[]; dir: string }> {
  const dir = makeTempDir(`ddp-${nproc}`);
  const codes = await launch({
    nproc,
    command: process.execPath,
    args: [WORKER],
    env: { ...process.env, ADATT_DIST: path.join(REPO_ROOT, 'dist'), OUT_DIR: dir, TEST_BATCH: String(batch), ...extraEnv },
  });
  return { codes, dir };
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function soloGroupEnv(): Promise<NodeJS.ProcessEnv> {
  return { MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(await freePort()), WORLD_SIZE: '1', RANK: '0' };
}

const read = (dir: string, rank: number): RankResult =>
  JSON.parse(fs.readFileSync(path.join(dir, `rank-${rank}.json`), 'utf8')) as RankResult;

/** Both ranks hold the same weights, and those of one process within 1e-5. */
function expectWeightsOfOneProcess(one: RankResult, rank0: RankResult, rank1: RankResult): void {
  expect(Object.keys(rank0.weights)).toEqual(Object.keys(one.weights));
  for (const [name, values] of Object.entries(one.weights)) {
    const worst = values.reduce((most, v, i) => Math.max(most, Math.abs(v - rank0.weights[name]![i]!)), 0);
    expect(worst, name).toBeLessThan(1e-5);
    expect(rank1.weights[name]).toEqual(rank0.weights[name]);
  }
}

/** Every epoch's per-task loss of rank 0 is that of one process, to 5 digits. */
function expectLossesOfOneProcess(one: RankResult, rank0: RankResult): void {
  expect(rank0.loss).toHaveLength(one.loss.length);
  rank0.loss.forEach((epoch, e) => {
    for (const task of ['a', 'b']) expect(epoch[task]).toBeCloseTo(one.loss[e]![task]!, 5);
  });
}

describe('distributed data-parallel training', () => {
  it('2 processes reach the weights of 1 process with the same global batch, with metrics (grouped AUC too) over the whole split', async () => {
    const single = await run(1, 64);
    const pair = await run(2, 32);
    expect(single.codes).toEqual([0]);
    expect(pair.codes).toEqual([0, 0]);
    const one = read(single.dir, 0);
    const [rank0, rank1] = [read(pair.dir, 0), read(pair.dir, 1)];
    expectWeightsOfOneProcess(one, rank0, rank1);
    expectLossesOfOneProcess(one, rank0);
    const last = rank0.validation.at(-1)!;
    expect(last.a!.count).toBe(333);
    expect(last.a!.auc).toBeCloseTo(one.validation.at(-1)!.a!.auc!, 5);
    expect(last.a!.gaucGroups).toBe(one.validation.at(-1)!.a!.gaucGroups);
    expect(last.a!.gaucGroups).toBeGreaterThan(5);
    expect(last.a!.gauc).toBeCloseTo(one.validation.at(-1)!.a!.gauc!, 5);
    expect(rank1.validation).toEqual(rank0.validation);
  }, 120_000);

  it.each(['adam', 'rowwise-adagrad'])(
    'exchanges only touched table rows (%s): 2 processes reach the weights of 1',
    async (type) => {
      const single = await run(1, 64, { TEST_TABLES: type, TEST_EPOCHS: '2' });
      const pair = await run(2, 32, { TEST_TABLES: type, TEST_EPOCHS: '2' });
      expect(single.codes).toEqual([0]);
      expect(pair.codes).toEqual([0, 0]);
      const one = read(single.dir, 0);
      const [rank0, rank1] = [read(pair.dir, 0), read(pair.dir, 1)];
      expect(Object.keys(one.weights)).toContain('bag_embeddings.0.weight');
      expectWeightsOfOneProcess(one, rank0, rank1);
    },
    120_000,
  );

  // Each task's term is weighted by the rank's share of the task's labelled rows in the global
  // batch, and a tower that no rank's batch trains keeps no gradient (Adam leaves it be, as in one
  // process) rather than a zero one.
  it.each([
    ['a task labelled on 1 row in 40', { TEST_SPARSE_LABELS: '1' }],
    ['a task labelled on 1 row in 40 and row-sparse tables', { TEST_SPARSE_LABELS: '1', TEST_TABLES: 'adam', TEST_EPOCHS: '2' }],
    ['a task labelled on 1 row in 40 and uncertainty weighting', { TEST_SPARSE_LABELS: '1', TEST_WEIGHTING: 'uncertainty' }],
  ])(
    '2 processes reach the weights and losses of 1 with %s',
    async (_, env) => {
      const single = await run(1, 64, env);
      const pair = await run(2, 32, env);
      expect(single.codes).toEqual([0]);
      expect(pair.codes).toEqual([0, 0]);
      const [one, rank0] = [read(single.dir, 0), read(pair.dir, 0)];
      expectWeightsOfOneProcess(one, rank0, read(pair.dir, 1));
      expectLossesOfOneProcess(one, rank0);
    },
    120_000,
  );

  it('keeps the ranks equal with GradNorm, whose weights get their gradient after backward', async () => {
    const pair = await run(2, 32, { TEST_WEIGHTING: 'gradnorm', TEST_EPOCHS: '2' });
    expect(pair.codes).toEqual([0, 0]);
    const [rank0, rank1] = [read(pair.dir, 0), read(pair.dir, 1)];
    expect(rank1.weights).toEqual(rank0.weights);
    expect(rank0.loss.at(-1)!.a).toBeLessThan(rank0.loss[0]!.a!);
  }, 120_000);

  it('trains on a stream with each rank reading its own shards, ranks ending at different chunks', async () => {
    const dir = makeTempDir('ddp-stream');
    const { DuckDBInstance } = await import('@duckdb/node-api');
    const connection = await (await DuckDBInstance.create(':memory:')).connect();
    // Three shards of unequal size: one rank reads two of them, the other one and then waits with empty batches.
    for (const [k, rows] of [400, 300, 300].entries()) {
      await connection.run(`COPY (SELECT ${[0, 1, 2, 3, 4, 5].map((j) => `sin(i * ${j + 1}.7 + ${k}) AS x${j}`).join(', ')},
        (sin(i * 1.7 + ${k}) + sin(i * 3.7 + ${k}) > 0)::INTEGER AS a, (sin(i * 2.7 + ${k}) + sin(i * 3.7 + ${k}) > 0)::INTEGER AS b
        FROM range(${rows}) t(i)) TO '${path.join(dir, `shard-${k}.parquet`)}' (FORMAT parquet)`);
    }
    connection.closeSync();
    const pair = await run(2, 32, { TEST_STREAM: path.join(dir, 'shard-*.parquet'), TEST_EPOCHS: '3' });
    expect(pair.codes).toEqual([0, 0]);
    const [rank0, rank1] = [read(pair.dir, 0), read(pair.dir, 1)];
    expect(rank0.examples).toEqual([1000, 1000, 1000]);
    expect(rank1.weights).toEqual(rank0.weights);
    expect(rank1.validation).toEqual(rank0.validation);
    expect(rank0.validation.at(-1)!.a!.count).toBe(1000);
    expect(rank0.validation.at(-1)!.a!.auc).toBeGreaterThan(0.8);
    expect(rank0.loss.at(-1)!.a).toBeLessThan(rank0.loss[0]!.a!);
  }, 120_000);

  it.each([
    ['width', 'model.expertDims', /rank 0 has \[\[16\],\[8\]\], rank 1 has \[\[65\],\[8\]\]/],
    ['experts', 'model.expertsPerTask', /rank 0 has \[2,2\], rank 1 has \[3,3\]/],
    ['tasks', 'model.tasks', /"name":"b".*rank 1 has .*"name":"c"/],
    ['optimizer', 'optimizer', /"type":"adam".*rank 1 has .*"type":"sgd"/],
    ['batch', 'batchSize', /rank 0 has 32, rank 1 has 64/],
    ['vocab', 'model.categorical', /rank 0 has \[\{"vocab":50,"dim":4\}\], rank 1 has \[\{"vocab":51,"dim":4\}\]/],
  ])(
    'fails every rank with a ValidationError when rank 1 differs in %s',
    async (what, field, values) => {
      const started = Date.now();
      const { codes, dir } = await run(2, 32, { TEST_MISMATCH: what, ...(what === 'vocab' ? { TEST_TABLES: 'adam' } : {}) });
      expect(codes).toEqual([1, 1]); // an error, not a signal
      for (const rank of [0, 1]) {
        const error = JSON.parse(fs.readFileSync(path.join(dir, `error-${rank}.json`), 'utf8')) as {
          name: string;
          field: string;
          message: string;
        };
        expect(error.name).toBe('ValidationError');
        expect(error.field).toBe(field);
        expect(error.message).toMatch(new RegExp(`^fit: the ranks disagree on ${field.replace('.', '\\.')}: `));
        expect(error.message).toMatch(values);
      }
      expect(Date.now() - started).toBeLessThan(30_000);
    },
    60_000,
  );

  it('names the signal that killed a worker, with its last stderr lines', async () => {
    const dir = makeTempDir('ddp-signal');
    const workers = await launchWorkers({
      nproc: 2,
      command: process.execPath,
      args: [WORKER],
      env: {
        ...process.env,
        ADATT_DIST: path.join(REPO_ROOT, 'dist'),
        OUT_DIR: dir,
        TEST_BATCH: '16',
        TEST_MODE: 'die-after-epoch',
        TEST_TIMEOUT_MS: '4000',
      },
    });
    expect(workers[1]).toMatchObject({ rank: 1, code: 137, signal: 'SIGKILL' });
    expect(workers[0]!.code).toBe(1);
    expect(workers[0]!.stderrTail.join('\n')).toMatch(/rank 0: distributed .* failed/);
    const cli = spawnSync(
      process.execPath,
      [path.join(REPO_ROOT, 'bin', 'adatt.js'), 'launch', '--nproc', '2', '--', process.execPath, WORKER],
      {
        encoding: 'utf8',
        env: {
          ...process.env,
          ADATT_DIST: path.join(REPO_ROOT, 'dist'),
          OUT_DIR: dir,
          TEST_BATCH: '16',
          TEST_MODE: 'die-after-epoch',
          TEST_TIMEOUT_MS: '4000',
        },
      },
    );
    expect(cli.status).toBe(1);
    expect(cli.stderr).toMatch(/worker 1 was killed by SIGKILL \(exit code 137\)/);
    expect(cli.stderr).toMatch(/worker 0 exited with code 1; its last lines on stderr:\n {2}[\s\S]*rank 0: distributed/);
  }, 60_000);

  it('lets process.exit() end a process that waits in the rendezvous', () => {
    const started = Date.now();
    const result = spawnSync(
      process.execPath,
      [
        '-e',
        `
const adatt = require(process.env.ADATT_DIST);
adatt.initProcessGroup({ timeoutMs: 30000 }).catch(() => {});
setTimeout(() => process.exit(7), 300);`,
      ],
      {
        encoding: 'utf8',
        timeout: 20_000,
        env: {
          ...process.env,
          ADATT_DIST: path.join(REPO_ROOT, 'dist'),
          MASTER_ADDR: '127.0.0.1',
          MASTER_PORT: '29777',
          WORLD_SIZE: '2',
          RANK: '0',
        },
      },
    );
    expect(result.status).toBe(7);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('gives up on a peer that never joins within the one timeout, naming it', async () => {
    const env = { ...(await soloGroupEnv()), WORLD_SIZE: '3' };
    const started = Date.now();
    await expect(initProcessGroup({ env, timeoutMs: 2000 })).rejects.toThrow(/ranks 1, 2 of 3 did not join within 2000 ms/);
    expect(Date.now() - started).toBeLessThan(2000 * 1.5);
  });

  it.each(['die', 'hang'])(
    'makes the survivor fail in bounded time when a worker %ss',
    async (fault) => {
      const started = Date.now();
      const { codes, dir } = await run(2, 16, { TEST_MODE: `${fault}-after-epoch`, TEST_EPOCHS: '50', TEST_TIMEOUT_MS: '4000' });
      expect(codes[0]).not.toBe(0);
      expect(codes[1]).not.toBe(0);
      expect(Date.now() - started).toBeLessThan(45_000);
      expect(fs.existsSync(path.join(dir, 'rank-0.json'))).toBe(false);
    },
    120_000,
  );

  it('runs a job with `adatt launch --nproc 2 -- <command>`', () => {
    const dir = makeTempDir('ddp-cli');
    const result = spawnSync(
      process.execPath,
      [path.join(REPO_ROOT, 'bin', 'adatt.js'), 'launch', '--nproc', '2', '--', process.execPath, WORKER],
      {
        encoding: 'utf8',
        env: { ...process.env, ADATT_DIST: path.join(REPO_ROOT, 'dist'), OUT_DIR: dir, TEST_BATCH: '32', TEST_EPOCHS: '1' },
      },
    );
    expect(result.status, `adatt launch failed:\n${result.stdout}\n${result.stderr}`).toBe(0);
    expect(read(dir, 0).weights).toEqual(read(dir, 1).weights);
    const usage = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin', 'adatt.js'), 'launch', '--', 'true'], { encoding: 'utf8' });
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/--nproc/);
  }, 120_000);

  it('carries CUDA tensors over NCCL where the build has it and a GPU is visible, else over Gloo', async () => {
    await expect(initProcessGroup({ env: await soloGroupEnv(), cudaBackend: 'mpi' as CudaBackend })).rejects.toThrow(
      /cudaBackend must be one of 'auto', 'nccl', 'gloo', got "mpi"/,
    );
    const { ncclBuilt, cudaAvailable } = info();
    const ncclUsable = ncclBuilt && cudaAvailable;
    if (ncclUsable) {
      const nccl = await initProcessGroup({ env: await soloGroupEnv(), cudaBackend: 'nccl' });
      expect(nccl.backends).toEqual(['gloo', 'nccl']);
      nccl.dispose();
    } else {
      const error = await initProcessGroup({ env: await soloGroupEnv(), cudaBackend: 'nccl' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as Error).message).toMatch(
        ncclBuilt
          ? /backend 'nccl' needs a CUDA device, and none is visible/
          : /backend 'nccl' needs a LibTorch built with CUDA and NCCL; this addon was built against LibTorch \d+\.\d+/,
      );
    }
    for (const [cudaBackend, expected] of [
      ['auto', ncclUsable ? ['gloo', 'nccl'] : ['gloo']],
      ['gloo', ['gloo']],
    ] as const) {
      const group = await initProcessGroup({ env: await soloGroupEnv(), cudaBackend });
      expect(group.backends).toEqual(expected);
      await group.barrier();
      group.dispose();
    }
  });

  it('explains a missing or bad environment', async () => {
    await expect(initProcessGroup({ env: {} })).rejects.toThrow(/MASTER_ADDR is not set/);
    await expect(initProcessGroup({ env: { MASTER_ADDR: '127.0.0.1', MASTER_PORT: '1', WORLD_SIZE: '2', RANK: '2' } })).rejects.toThrow(
      /RANK must be an integer in \[0, 1\]/,
    );
    await expect(initProcessGroup({ env: { MASTER_ADDR: 'x', MASTER_PORT: 'http', WORLD_SIZE: '1', RANK: '0' } })).rejects.toThrow(
      ValidationError,
    );
    await expect(launch({ nproc: 0, command: 'x' })).rejects.toThrow(/nproc/);
  });
});
