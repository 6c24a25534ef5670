/** Reliability: lifecycle, leaks, fuzzed inputs, crash safety. Sizes are small here; scripts/fuzz.js runs large. */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  createModel,
  FileError,
  fit,
  loadCheckpoint,
  parseCsv,
  saveCheckpoint,
  TensorDataset,
  validateModelConfig,
  ValidationError,
  type ModelConfig,
} from '../lib';
import { makeTempDir, PYTHON, REPO_ROOT } from './helpers/reference';

const DIST = path.join(REPO_ROOT, 'dist');
const CONFIG: ModelConfig = {
  kind: 'adatt-sp',
  input: { dense: 8 },
  tasks: [
    { name: 'a', type: 'binary' },
    { name: 'b', type: 'binary' },
  ],
  expertDims: [[32], [16]],
  towerDims: [8],
  expertsPerTask: 2,
};

/** Runs a script in a fresh Node process (with --expose-gc and any extra Node flags) that prints one JSON line. */
function runNode(script: string, args: string[] = [], nodeFlags: string[] = []): unknown {
  const output = execFileSync(process.execPath, ['--expose-gc', ...nodeFlags, '-e', script, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ADATT_DIST: DIST },
    timeout: 300_000,
  });
  return JSON.parse(output.trim().split('\n').at(-1)!);
}

const PRELUDE = `
const adatt = require(process.env.ADATT_DIST);
adatt.setNumThreads(2);
const config = ${JSON.stringify(CONFIG)};
const batch = { dense: Array.from({ length: 64 }, (_, i) => Array.from({ length: 8 }, (_, j) => Math.sin(i * 8 + j))) };
const rss = () => process.memoryUsage().rss;
const settle = async () => { for (let i = 0; i < 3; i += 1) { global.gc(); await new Promise((r) => setTimeout(r, 20)); } };
`;

describe('lifecycle', () => {
  it('frees models dropped without dispose once garbage collected', () => {
    const result = runNode(`${PRELUDE}
(async () => {
  const round = async () => { for (let i = 0; i < 200; i += 1) { const m = adatt.createModel({ ...config, expertDims: [[512], [256]] }); await m.forward(batch); } };
  // Two rounds to warm up: LibTorch 2.6's allocator settles one round later than 1.13's.
  for (let r = 0; r < 2; r += 1) { await round(); await settle(); }
  const warm = rss();
  for (let r = 0; r < 3; r += 1) { await round(); await settle(); }
  console.log(JSON.stringify({ growthMB: (rss() - warm) / 2 ** 20 }));
})();`) as { growthMB: number };
    // 600 more models of 2.1 MB of weights each would add about 1.2 GB if the finalizer did not
    // free them; the allocators' own drift stays far below that (40 MB seen with LibTorch 2.6 under load).
    expect(result.growthMB).toBeLessThan(175);
  }, 300_000);

  it('keeps memory flat over 10,000 forward calls and 200 tiny epochs', () => {
    const result = runNode(`${PRELUDE}
(async () => {
  const model = adatt.createModel(config);
  const size = 64;
  const data = adatt.TensorDataset.fromEncoded({ size, dense: Float32Array.from({ length: size * 8 }, Math.random),
    labels: [new Float32Array(size).fill(1), new Float32Array(size)] });
  for (let i = 0; i < 1000; i += 1) await model.forward(batch);
  await adatt.fit(model, data, { epochs: 20, batchSize: 16 });
  await settle(); const warm = rss();
  for (let i = 0; i < 10000; i += 1) await model.forward(batch);
  await adatt.fit(model, data, { epochs: 200, batchSize: 16 });
  await settle();
  console.log(JSON.stringify({ growth: (rss() - warm) / warm }));
})();`) as { growth: number };
    expect(result.growth).toBeLessThan(0.05);
  }, 300_000);

  it('loads the addon in worker threads that exit cleanly, and exits the process cleanly after heavy use', () => {
    const result = runNode(`${PRELUDE}
const { Worker } = require('node:worker_threads');
const work = \`
  const adatt = require(process.env.ADATT_DIST);
  const { parentPort } = require('node:worker_threads');
  const model = adatt.createModel(${JSON.stringify(CONFIG)});
  model.forward({ dense: [[1, 2, 3, 4, 5, 6, 7, 8]] }).then((out) => parentPort.postMessage(out.a.length));
\`;
(async () => {
  const codes = await Promise.all([0, 1, 2].map(() => new Promise((resolve, reject) => {
    const worker = new Worker(work, { eval: true });
    let rows = 0;
    worker.on('message', (n) => { rows = n; });
    worker.on('error', reject);
    worker.on('exit', (code) => resolve({ code, rows }));
  })));
  const model = adatt.createModel(config);
  for (let i = 0; i < 200; i += 1) await model.forward(batch);
  console.log(JSON.stringify({ codes }));
})();`) as { codes: { code: number; rows: number }[] };
    expect(result.codes).toEqual([
      { code: 0, rows: 1 },
      { code: 0, rows: 1 },
      { code: 0, rows: 1 },
    ]);
  }, 120_000);
});

describe('fuzzing', () => {
  it('ends every malformed checkpoint, weight file, TorchScript file, config and CSV row in a typed error or a result', () => {
    const output = execFileSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'fuzz.js'), '--cases', '150', '--seed', '7'], {
      encoding: 'utf8',
      timeout: 600_000,
    });
    const results = JSON.parse(output.trim().split('\n').at(-1)!) as Record<string, { accepted: number; rejected: number }>;
    for (const kind of ['checkpoint', 'weights', 'torchscript', 'config', 'csv']) {
      expect(results[kind]!.accepted + results[kind]!.rejected, kind).toBe(150);
      expect(results[kind]!.rejected, kind).toBeGreaterThan(0);
    }
  }, 600_000);
});

describe('crash safety', () => {
  it('keeps the previous checkpoint intact when the saving process is killed with SIGKILL, and the next save sweeps its temporaries', async () => {
    const dir = makeTempDir('kill');
    const file = path.join(dir, 'model.adatt');
    // Children that save bigger and bigger models over one file as fast as they can, killed mid-save.
    for (let round = 0; round < 4; round += 1) {
      const child = spawn(
        process.execPath,
        [
          '-e',
          `
        const adatt = require(process.env.ADATT_DIST);
        (async () => {
          for (let i = 0; ; i += 1) {
            const model = adatt.createModel({ ...${JSON.stringify(CONFIG)}, expertDims: [[64 + (i % 8) * 64], [16]], seed: i });
            await adatt.saveCheckpoint(process.argv[1], model);
            model.dispose();
            if (i === 2) console.log('saving');
          }
        })();`,
          file,
        ],
        { env: { ...process.env, ADATT_DIST: DIST }, stdio: ['ignore', 'pipe', 'inherit'] },
      );
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      await new Promise((r) => setTimeout(r, 37 * (round + 1)));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    const { model } = await loadCheckpoint(file);
    expect((await model.forward({ dense: [[1, 2, 3, 4, 5, 6, 7, 8]] })).a).toHaveLength(1);
    await saveCheckpoint(path.join(dir, 'next.adatt'), model);
    model.dispose();
    expect(fs.readdirSync(dir).sort()).toEqual(['model.adatt', 'next.adatt']);
  }, 60_000);

  it('removes only temporaries whose writer no longer runs, of our writers only', async () => {
    const dir = makeTempDir('stale');
    const deadPid = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    const names = {
      staleOurs: `epoch-0001.adatt.tmp-${deadPid}-0123456789ab`,
      staleNative: `weights.pt.tmp-${deadPid}-3141592653`,
      running: `epoch-0002.adatt.tmp-${process.pid}-0123456789ab`,
      userFile: `notes.tmp-${deadPid}-05`,
    };
    for (const name of Object.values(names)) fs.writeFileSync(path.join(dir, name), 'partial');
    using model = createModel(CONFIG);
    await saveCheckpoint(path.join(dir, 'model.adatt'), model);
    expect(fs.readdirSync(dir).sort()).toEqual(['model.adatt', names.running, names.userFile].sort());
  });

  it('rejects labels outside a task before training starts', async () => {
    using model = createModel(CONFIG);
    using data = TensorDataset.fromEncoded({
      size: 4,
      dense: new Float32Array(32),
      labels: [Float32Array.from([0, 1, 1, 0.5]), new Float32Array(4)],
    });
    await expect(fit(model, data)).rejects.toThrow(/task 'a', row 4: label 0\.5/);
  });
});

describe('odd inputs end in typed errors', () => {
  const MIXED: ModelConfig = {
    kind: 'adatt-sp',
    input: { dense: 2, categorical: [{ name: 'c', vocab: 5, dim: 2 }], multiValued: [{ name: 'm', vocab: 5, dim: 2 }] },
    tasks: [{ name: 'a', type: 'binary' }],
    expertDims: [[4]],
    expertsPerTask: 1,
  };
  const good = {
    dense: [
      [1, 2],
      [3, 4],
    ],
    categorical: [[1], [2]],
    multiValued: [[[1], [2, 3]]],
  };

  it.each([
    ['a dense row', { ...good, dense: [, [3, 4]] }, /batch\.dense\[0\] must be an array of 2 numbers, got an empty slot/],
    ['a categorical row', { ...good, categorical: [, [2]] }, /batch\.categorical\[0\] must be an array of 1 ids .*got an empty slot/],
    ['a bag', { ...good, multiValued: [[, [2, 3]]] }, /batch\.multiValued\[0\]\[0\] must be an array of ids, got an empty slot/],
    [
      'an id in a bag',
      { ...good, multiValued: [[[1, , 2], [2]]] },
      /batch\.multiValued\[0\]\[0\]\[1\] must be an id in \[0, 5\).*got undefined/,
    ],
  ])('rejects a hole where %s should be, naming the row', async (_, batch, message) => {
    using model = createModel(MIXED);
    await expect(model.forward(batch as never)).rejects.toThrow(ValidationError);
    await expect(model.forward(batch as never)).rejects.toThrow(message);
  });

  it('reads exotic arrays in configs, and rejects holes in them', () => {
    const exotic = <T>(array: T[]): T[] => Object.assign(array, { constructor: { [Symbol.species]: 1 } });
    const config = validateModelConfig({ ...MIXED, tasks: exotic([{ name: 'a', type: 'binary' }]), expertDims: exotic([exotic([4])]) });
    expect(config.expertDims).toEqual([[4]]);
    expect(() => validateModelConfig({ ...MIXED, kind: 'ple', expertsPerTask: exotic([1]), sharedExperts: 1 })).not.toThrow();
    expect(() =>
      validateModelConfig({
        ...MIXED,
        kind: 'ple',
        tasks: [...MIXED.tasks, { name: 'b', type: 'binary' }],
        expertsPerTask: [, 1],
        sharedExperts: 1,
      }),
    ).toThrow(/expertsPerTask\[0\] must be an integer/);
  });

  it('checks encoded data and subset rows', () => {
    expect(() => TensorDataset.fromEncoded(undefined as never)).toThrow(/encoded data must be an object/);
    expect(() => TensorDataset.fromEncoded({ size: 2, dense: new Float32Array(4) } as never, { taskNames: ['a'] })).toThrow(
      /labels must be an array of Float32Array/,
    );
    using data = TensorDataset.fromEncoded({ size: 2, dense: new Float32Array(4), labels: [new Float32Array(2)] });
    expect(() => data.subset([, 1] as never)).toThrow(/rows\[0\] must be a row number, got an empty slot/);
    expect(() => parseCsv(undefined as never)).toThrow(ValidationError);
  });

  it('names the path and what was expected when a path is a directory, a file or a device', async () => {
    const dir = makeTempDir('paths');
    const file = path.join(dir, 'file');
    fs.writeFileSync(file, 'x');
    using model = createModel(MIXED);
    const failure = (promise: Promise<unknown>): Promise<FileError> =>
      promise.then(
        () => {
          throw new Error('expected a FileError');
        },
        (err: unknown) => {
          expect(err).toBeInstanceOf(FileError);
          return err as FileError;
        },
      );
    expect((await failure(saveCheckpoint(dir, model))).message).toBe(`cannot write ${dir}: it is a directory, expected a file`);
    expect((await failure(saveCheckpoint(path.join(file, 'x.adatt'), model))).message).toMatch(
      /cannot write .*x\.adatt: one of its parent folders is a file, expected a directory/,
    );
    expect((await failure(saveCheckpoint('/dev/null', model))).message).toBe('cannot write /dev/null: it is a device, expected a file');
    expect((await failure(model.saveWeights(dir, { format: 'safetensors' }))).message).toContain('it is a directory, expected a file');
    expect((await failure(loadCheckpoint(dir))).message).toBe(`cannot read ${dir}: it is a directory, expected a file`);
    expect(fs.readdirSync(dir)).toEqual(['file']);
  });
});

describe('crafted files', () => {
  const data = (): TensorDataset => {
    const size = 64;
    const dense = Float32Array.from({ length: size * 8 }, (_, i) => Math.sin(i));
    const labels = [0, 1].map((t) => Float32Array.from({ length: size }, (_, i) => (dense[8 * i + t]! > 0 ? 1 : 0)));
    return TensorDataset.fromEncoded({ size, dense, labels });
  };

  /** Resumes `fit` from a checkpoint whose optimizer state is `state` (saved with a valid digest). */
  async function resumeWith(state: Uint8Array, dir: string): Promise<unknown> {
    using model = createModel(CONFIG);
    using train = data();
    const file = path.join(dir, 'crafted.adatt');
    await saveCheckpoint(file, model, {
      training: { nextEpoch: 1, step: 2, seed: 0, optimizerType: 'adam', optimizerState: state, history: [], epochsSinceBest: 0 },
    });
    const checkpoint = await loadCheckpoint(file);
    using resumed = checkpoint.model;
    return await fit(resumed, train, { epochs: 2, batchSize: 32, resume: checkpoint.training }).then(
      () => 'resumed',
      (e: unknown) => e,
    );
  }

  it("never hands optimizer state to LibTorch's TorchScript importer: crafted and bit-flipped states end in typed errors", async () => {
    const dir = makeTempDir('crafted');
    // A real state, from a run that saved a checkpoint.
    using model = createModel(CONFIG);
    using train = data();
    const run = await fit(model, train, { epochs: 1, batchSize: 32, checkpoint: { dir } });
    const real = (await loadCheckpoint(run.checkpoints[0]!)).training!.optimizerState;
    expect(await resumeWith(real, dir)).toBe('resumed');
    // A TorchScript archive (the format LibTorch's optimizers save), garbage, and a state of another model.
    const scriptedFile = path.join(dir, 'scripted.pt');
    execFileSync(PYTHON, ['-c', 'import sys, torch; torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), sys.argv[1])', scriptedFile]);
    const scripted = Uint8Array.from(fs.readFileSync(scriptedFile));
    for (const state of [scripted, new Uint8Array(1000).fill(80), new Uint8Array(0)]) {
      const outcome = await resumeWith(state, dir);
      expect(outcome).toBeInstanceOf(Error);
      expect((outcome as Error).name).toMatch(/^(FileError|ValidationError)$/);
    }
    let rejected = 0;
    for (let flip = 0; flip < 60; flip += 1) {
      const state = Uint8Array.from(real);
      const at = Math.floor((flip * 7919) % state.length);
      state[at] = state[at]! ^ (1 << (flip % 8));
      const outcome = await resumeWith(state, dir);
      if (outcome === 'resumed') continue; // a flip in a byte no reader looks at (a timestamp, padding)
      rejected += 1;
      expect((outcome as Error).name, String(outcome)).toMatch(/^(FileError|ValidationError|TorchError)$/);
    }
    expect(rejected).toBeGreaterThan(30);
  }, 120_000);

  it('rejects a weight file whose zip record is marked as a directory instead of reading unwritten memory', async () => {
    const dir = makeTempDir('zip-directory');
    using model = createModel(CONFIG);
    const file = path.join(dir, 'weights.pt');
    await model.saveWeights(file, { format: 'torch' });
    const bytes = fs.readFileSync(file);
    // The first central-directory record: set the MS-DOS directory bit of its external attributes.
    const central = bytes.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    bytes[central + 38] = bytes[central + 38]! | 0x10;
    fs.writeFileSync(file, bytes);
    await expect(model.loadWeights(file)).rejects.toThrow(/marked as a directory/);
    await expect(model.loadWeights(file)).rejects.toThrow(FileError);
  });
});

describe('threads', () => {
  it('survives 100 worker_threads terminated in the middle of fit, forward, predict and saves', () => {
    const script = `
const { Worker } = require('node:worker_threads');
const body = ${JSON.stringify(`
const adatt = require(process.env.ADATT_DIST);
const { workerData, parentPort } = require('node:worker_threads');
const size = 4096, dense = new Float32Array(size * 8).map((_, i) => Math.sin(i));
const labels = [new Float32Array(size).map((_, i) => i % 2)];
const model = adatt.createModel({ kind: 'adatt-sp', input: { dense: 8 }, tasks: [{ name: 'a', type: 'binary' }], expertDims: [[64]], towerDims: [], expertsPerTask: 2 });
const data = adatt.TensorDataset.fromEncoded({ size, dense, labels });
const ops = [
  () => adatt.fit(model, data, { epochs: 3, batchSize: 64, onProgress: () => {}, progressInterval: 0 }),
  () => Promise.all(Array.from({ length: 8 }, () => model.forward({ dense: Array.from({ length: 512 }, () => Array(8).fill(0.5)) }))),
  () => model.saveWeights(require('node:path').join(workerData.dir, 'w' + workerData.i + '.pt')),
  () => adatt.predict(model, data),
];
parentPort.postMessage('ready');
ops[workerData.i % ops.length]().then(() => {}, () => {});
`)};
(async () => {
  for (let i = 0; i < 100; i += 1) {
    const worker = new Worker(body, { eval: true, workerData: { i, dir: process.argv[1] } });
    await new Promise((resolve) => worker.once('message', resolve));
    await new Promise((resolve) => setTimeout(resolve, (i * 37) % 60));
    await worker.terminate();
  }
  console.log(JSON.stringify({ terminated: 100 }));
})();`;
    // Node 20 itself can abort when a worker is terminated while V8 optimises that worker's code on a
    // background thread (NodePlatform::ForIsolate asserts on the gone isolate; no addon frame in the
    // stack; seen with Debian trixie's Node 20). Optimising on the worker's own thread leaves only the
    // addon's part of the teardown under test.
    expect(runNode(script, [makeTempDir('terminate')], ['--no-concurrent-recompilation'])).toEqual({ terminated: 100 });
  }, 300_000);

  it("leaves libuv's thread pool free while native jobs queue and run", () => {
    // One pool thread: a job that parked it would make the file read wait for every forward.
    const small = path.join(makeTempDir('pool'), 'small.bin');
    fs.writeFileSync(small, Buffer.alloc(64 * 1024, 7));
    const output = execFileSync(
      process.execPath,
      [
        '-e',
        `
const adatt = require(process.env.ADATT_DIST);
const fs = require('node:fs/promises');
adatt.setNumThreads(1);
const model = adatt.createModel({ kind: 'adatt-sp', input: { dense: 64 }, tasks: [{ name: 'a', type: 'binary' }], expertDims: [[1024], [512]], towerDims: [64], expertsPerTask: 4 });
const batch = { dense: Array.from({ length: 4096 }, (_, i) => Array.from({ length: 64 }, (_, j) => Math.sin(i + j))) };
(async () => {
  const order = [];
  const forwards = Array.from({ length: 6 }, (_, i) => model.forward(batch).then(() => order.push('forward ' + i)));
  const read = fs.readFile(process.argv[1]).then(() => order.push('read'));
  await Promise.all([...forwards, read]);
  console.log(JSON.stringify(order));
})();`,
        small,
      ],
      { encoding: 'utf8', env: { ...process.env, ADATT_DIST: DIST, UV_THREADPOOL_SIZE: '1' }, timeout: 120_000 },
    );
    const order = JSON.parse(output.trim().split('\n').at(-1)!) as string[];
    expect(order.indexOf('read')).toBeLessThan(order.indexOf('forward 5'));
  });

  it('stops fit and rejects with the error an onProgress callback throws', async () => {
    using model = createModel(CONFIG);
    const size = 2048;
    const dense = Float32Array.from({ length: size * 8 }, (_, i) => Math.cos(i));
    using train = TensorDataset.fromEncoded({ size, dense, labels: [0, 1].map(() => new Float32Array(size).fill(1)) });
    const thrown = new Error('callback failed');
    let calls = 0;
    const error = await fit(model, train, {
      epochs: 3,
      batchSize: 16,
      progressInterval: 0,
      onProgress: () => {
        calls += 1;
        throw thrown;
      },
    }).catch((e: unknown) => e);
    expect(error).toBe(thrown);
    expect(calls).toBe(1);
  });
});
