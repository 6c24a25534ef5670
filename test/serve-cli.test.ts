/**
 * `adatt serve` as a process: a run directory served on loopback, SIGTERM answering the requests
 * in flight before exit 0, and its usage errors. Runs the compiled CLI (npm run build:ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Predictor, saveCheckpoint } from '../lib';
import { adatt, BIN, events, REPO_ROOT, requireCompiledCli, SMALL_RUN, tempDir } from './cli/helpers';
import { parseExposition } from './helpers/prometheus';
import { createServingModel, ROWS, SCHEMA } from './helpers/serving';

const work = tempDir('serve');
const run = path.join(work, 'run');
const children: ChildProcess[] = [];

beforeAll(async () => {
  requireCompiledCli();
  const trained = await adatt(['train', ...SMALL_RUN, '--out', run]);
  expect(trained.code).toBe(0);
}, 60_000);

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  fs.rmSync(work, { recursive: true, force: true });
});

interface Served {
  child: ChildProcess;
  base: string;
  columns: string[];
  exited: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** Starts `adatt serve … --port 0 --json` and resolves once it listens. */
function serve(args: string[]): Promise<Served> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args, '--port', '0', '--json', '--threads', '1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
  });
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return new Promise((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
      const listening = events(stdout).find((event) => event.event === 'listening');
      if (listening) resolve({ child, base: listening.url as string, columns: listening.columns as string[], exited });
    });
    void exited.then(({ code }) => reject(new Error(`adatt serve exited with ${code} before listening: ${stderr}`)));
  });
}

function rowOf(columns: readonly string[], value: number): Record<string, number> {
  return Object.fromEntries(columns.map((column) => [column, value]));
}

const post = (base: string, body: unknown): Promise<Response> => fetch(`${base}/predict`, { method: 'POST', body: JSON.stringify(body) });

describe('adatt serve', () => {
  it('serves a run directory: predictions for its tasks, /health and /metrics', async () => {
    const served = await serve([run]);
    expect(served.columns).toEqual(Array.from({ length: 8 }, (_, k) => `x${k}`));
    const answer = await post(served.base, { rows: [rowOf(served.columns, 0.1), rowOf(served.columns, -1)] });
    expect(answer.status).toBe(200);
    const { predictions } = (await answer.json()) as { predictions: Record<string, number>[] };
    expect(predictions).toHaveLength(2);
    for (const prediction of predictions) expect(Object.keys(prediction)).toEqual(['y1', 'y2']);
    expect(await (await fetch(`${served.base}/health`)).json()).toMatchObject({ status: 'ok', model: 'adatt-sp' });
    const samples = parseExposition(await (await fetch(`${served.base}/metrics`)).text());
    expect(samples.get('adatt_requests_total{route="/predict",code="200"}')).toBe(1);
    served.child.kill('SIGINT');
    const { code, stdout } = await served.exited;
    expect(code).toBe(0);
    expect(events(stdout).at(-1)).toMatchObject({ event: 'stopped', signal: 'SIGINT' });
  }, 30_000);

  it('on SIGTERM stops accepting, answers the requests in flight, then exits 0', async () => {
    // Requests wait up to 2 s for company: SIGTERM arrives while they are queued.
    const served = await serve([path.join(run, 'model.adatt'), '--max-wait', '2000', '--max-batch', '100000']);
    const inFlight = [0.1, 0.2, 0.3].map((value) => post(served.base, { rows: [rowOf(served.columns, value)] }));
    for (let tries = 0; ; tries++) {
      const samples = parseExposition(await (await fetch(`${served.base}/metrics`)).text());
      if (samples.get('adatt_queue_requests') === 3) break;
      expect(tries).toBeLessThan(200);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const signalled = performance.now();
    served.child.kill('SIGTERM');
    const answers = await Promise.all(inFlight);
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200]);
    expect(performance.now() - signalled).toBeLessThan(1_500); // the queued batch went at once, without its 2 s wait
    const { code, stdout, stderr } = await served.exited;
    expect(code).toBe(0);
    expect(stderr).toContain('SIGTERM: draining requests in flight');
    expect(events(stdout).map((event) => event.event)).toEqual(['listening', 'stopped']);
    await expect(fetch(`${served.base}/health`)).rejects.toThrow();
  }, 30_000);

  it('bench/serve.js measures every mode on loopback and gets only 200s', async () => {
    const report = path.join(work, 'serve-bench.json');
    const bench = spawn(
      process.execPath,
      [path.join(REPO_ROOT, 'bench', 'serve.js'), '--seconds', '0.3', '--concurrency', '1,8', '--json', report],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(bench);
    let stdout = '';
    bench.stdout!.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
    });
    const code = await new Promise((resolve) => bench.on('close', resolve));
    expect(code).toBe(0);
    expect(stdout).toContain('| mode | clients | requests/s | p50 ms | p99 ms | requests per model call |');
    expect(stdout).toMatch(/In process, one request's rows \(median µs\): encode \d+, predictEncoded \d+ \(model\.forward alone \d+\)/);
    const { results } = JSON.parse(fs.readFileSync(report, 'utf8')) as {
      results: {
        mode: string;
        concurrency: number;
        requestsPerSecond: number;
        requestsPerCall: number;
        statuses: Record<string, number>;
      }[];
    };
    expect(results.map((result) => `${result.mode} ${result.concurrency}`)).toEqual([
      'batching while busy (default) 1',
      'batching while busy (default) 8',
      'batching, 2 ms wait 1',
      'batching, 2 ms wait 8',
      'no batching 1',
      'no batching 8',
    ]);
    for (const result of results) {
      expect(Object.keys(result.statuses)).toEqual(['200']);
      expect(result.requestsPerSecond).toBeGreaterThan(0);
    }
    expect(results.filter((result) => result.mode === 'no batching').map((result) => result.requestsPerCall)).toEqual([1, 1]);
  }, 60_000);

  it('serves the calibration stored with the model, or raw probabilities with --uncalibrated', async () => {
    using model = createServingModel();
    model.calibration = { click: { method: 'platt', scale: 0.5, bias: -1 } };
    const file = path.join(work, 'calibrated.adatt');
    await saveCheckpoint(file, model, { schema: SCHEMA });
    using predictor = new Predictor(model, SCHEMA);
    const row = ROWS[0]!;
    const calibrated = (await predictor.predictRows([row]))[0]!;
    model.calibration = undefined;
    const raw = (await predictor.predictRows([row]))[0]!;
    expect(calibrated.click).not.toBeCloseTo(raw.click as number, 3);
    for (const [flags, expected] of [
      [[], calibrated],
      [['--uncalibrated'], raw],
    ] as const) {
      const served = await serve([file, ...flags]);
      const { predictions } = (await (await post(served.base, { rows: [row] })).json()) as { predictions: Record<string, unknown>[] };
      expect(predictions[0]!.click).toBeCloseTo(expected.click as number, 6);
      served.child.kill('SIGTERM');
      expect((await served.exited).code).toBe(0);
    }
  }, 30_000);

  it('exits 2 for a bad flag or a checkpoint without a data schema', async () => {
    const flag = await adatt(['serve', run, '--max-batch', '0']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('--max-batch: maxBatchRows must be an integer >= 1, got 0');
    const bare = path.join(work, 'bare.adatt');
    using model = createServingModel();
    await saveCheckpoint(bare, model);
    const noSchema = await adatt(['serve', bare]);
    expect(noSchema.code).toBe(2);
    expect(noSchema.stderr).toContain('holds no data schema');
    const help = await adatt(['--help']);
    expect(help.stdout).toContain('  serve ');
  }, 30_000);
});
