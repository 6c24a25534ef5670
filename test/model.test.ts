/** The native model through the TypeScript API: lifecycle, state dicts, errors that never crash. */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BusyError,
  createModel,
  DisposedError,
  FileError,
  info,
  MODEL_KINDS,
  predict,
  setNumThreads,
  TensorDataset,
  TorchError,
  ValidationError,
  type ModelConfig,
} from '../lib';
import { loadAddon } from '../lib/addon';
import { normalizeModelConfig } from '../lib/config';
import { makeTempDir, PYTHON } from './helpers/reference';

const CONFIG: ModelConfig = {
  kind: 'adatt',
  input: {
    dense: 3,
    categorical: [{ name: 'country', vocab: 5, dim: 4 }],
    multiValued: [{ name: 'tags', vocab: 7, dim: 2, pooling: 'sum' }],
  },
  tasks: [
    { name: 'click', type: 'binary' },
    { name: 'genre', type: 'multiclass', classes: 3 },
  ],
  expertDims: [[8], [6]],
  towerDims: [4],
  expertsPerTask: [2, 1],
  sharedExperts: 1,
  seed: 7,
};

const BATCH = {
  dense: [
    [0.1, 0.2, 0.3],
    [1, -1, 0.5],
  ],
  categorical: [[0], [4]],
  multiValued: [[[1, 2], []]],
};

describe('info and threads', () => {
  it('reports the LibTorch build and thread counts', () => {
    const details = info();
    expect(details.libtorchVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(typeof details.cudaAvailable).toBe('boolean');
    expect(details.cudaDeviceCount).toBeGreaterThanOrEqual(0);
    expect(['openblas-pthreads', 'openblas-openmp', 'openblas-sequential', 'unknown']).toContain(details.blasThreading);
    setNumThreads(1);
    expect(info().numThreads).toBe(1);
  });

  it("gives the GEMMs the threads, and LibTorch's own pool one when OpenBLAS runs separate pthreads", () => {
    setNumThreads(2);
    const planned = info();
    if (planned.blasThreading === 'openblas-pthreads') {
      expect([planned.numThreads, planned.blasThreads]).toEqual([1, 2]);
    } else {
      expect(planned.numThreads).toBe(2);
      if (planned.blasThreading === 'openblas-openmp') expect(planned.blasThreads).toBe(2);
    }
    setNumThreads(2, { intraOpThreads: 2 });
    expect(info().numThreads).toBe(2);
    setNumThreads(1);
    expect([info().numThreads, info().blasThreads]).toEqual([1, planned.blasThreads === 0 ? 0 : 1]);
  });

  it('rejects a bad thread count', () => {
    expect(() => setNumThreads(0)).toThrow(ValidationError);
    expect(() => setNumThreads(1.5)).toThrow(ValidationError);
    expect(() => setNumThreads(2, { intraOpThreads: 0 })).toThrow(/intraOpThreads must be an integer/);
    expect(() => setNumThreads(2, { threads: 2 } as never)).toThrow(/unknown option 'threads'/);
  });
});

describe('Model', () => {
  it('is deterministic for a seed and differs across seeds', async () => {
    using a = createModel(CONFIG);
    using b = createModel(CONFIG);
    using c = createModel({ ...CONFIG, seed: 8 });
    const [outA, outB, outC] = await Promise.all([a.forward(BATCH), b.forward(BATCH), c.forward(BATCH)]);
    expect(outA.click).toEqual(outB.click);
    expect(outA.genre).toHaveLength(2 * 3);
    expect(outA.click).not.toEqual(outC.click);
  });

  it('counts parameters like its reference state dict', async () => {
    using model = createModel(CONFIG);
    const state = await model.stateDict();
    const total = Object.values(state).reduce((sum, t) => sum + t.data.length, 0);
    expect(model.parameterCount()).toBe(total);
    const native = await model.stateDict({ layout: 'native' });
    expect(Object.values(native).reduce((sum, t) => sum + t.data.length, 0)).toBe(total);
    expect(Object.keys(state)).toContain('mtl_arch.self_exp_weights.2');
    expect(state['mtl_arch.experts.1.3.mlp_net.0.weight']!.shape).toEqual([6, 8]);
  });

  it('round-trips weights through state dicts (both layouts) and files', async () => {
    using source = createModel(CONFIG);
    const expected = await source.forward(BATCH);
    for (const layout of ['reference', 'native'] as const) {
      using target = createModel({ ...CONFIG, seed: 99 });
      await target.loadStateDict(await source.stateDict({ layout }));
      expect(await target.forward(BATCH)).toEqual(expected);
    }
    const file = path.join(makeTempDir('weights'), 'w.pt');
    await source.saveWeights(file, { layout: 'native' });
    using fromFile = createModel({ ...CONFIG, seed: 3 });
    await fromFile.loadWeights(file);
    expect(await fromFile.forward(BATCH)).toEqual(expected);
  });

  it('gives per-task gate distributions that sum to one', async () => {
    using model = createModel(CONFIG);
    const levels = await model.gateWeights(BATCH);
    expect(levels.map((l) => l.gates.length)).toEqual([3, 2]); // task gates + shared gate, then tasks only
    for (const level of levels) {
      expect(level.experts).toHaveLength(4);
      for (const row of level.weights) expect(row.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 5);
    }
  });

  it('rejects bad batches with errors naming the problem', async () => {
    using model = createModel(CONFIG);
    await expect(model.forward({ ...BATCH, categorical: [[0], [5]] })).rejects.toThrow(/country.*5|5.*country/);
    await expect(
      model.forward({
        ...BATCH,
        dense: [
          [1, 2],
          [3, 4],
        ],
      }),
    ).rejects.toThrow(ValidationError);
    await expect(model.forward({ ...BATCH, multiValued: [[[9], []]] })).rejects.toThrow(ValidationError);
  });

  it('loads a state dict whose tensors live in SharedArrayBuffers', async () => {
    using model = createModel(CONFIG);
    using other = createModel({ ...CONFIG, seed: 8 });
    const weights = await other.stateDict();
    const shared = Object.fromEntries(
      Object.entries(weights).map(([name, tensor]) => {
        const data = new Float32Array(new SharedArrayBuffer(tensor.data.byteLength));
        data.set(tensor.data);
        return [name, { shape: tensor.shape, data }];
      }),
    );
    await model.loadStateDict(shared);
    expect(await model.stateDict()).toEqual(weights);
  });

  it('rejects mismatched state dicts and unreadable files without touching the weights', async () => {
    using model = createModel(CONFIG);
    const before = await model.forward(BATCH);
    const state = await model.stateDict();
    const wrongShape = { ...state, 'task_modules.0.1.weight': { shape: [2, 4], data: new Float32Array(8) } };
    await expect(model.loadStateDict(wrongShape)).rejects.toThrow(/task_modules\.0\.1\.weight.*shape/);
    const { 'task_modules.1.1.bias': _dropped, ...missing } = state;
    await expect(model.loadStateDict(missing)).rejects.toThrow(/missing: task_modules\.1\.1\.bias/);
    await expect(model.loadStateDict({ ...state, extra: { shape: [1], data: new Float32Array(1) } })).rejects.toThrow(/unexpected: extra/);
    await model.loadStateDict(missing, { strict: false });

    const dir = makeTempDir('bad-files');
    await expect(model.loadWeights(path.join(dir, 'absent.pt'))).rejects.toThrow(FileError);
    fs.writeFileSync(path.join(dir, 'garbage.pt'), 'not a zip archive');
    await expect(model.loadWeights(path.join(dir, 'garbage.pt'))).rejects.toThrow(FileError);
    const good = path.join(dir, 'good.pt');
    await model.saveWeights(good);
    const bytes = fs.readFileSync(good);
    fs.writeFileSync(path.join(dir, 'truncated.pt'), bytes.subarray(0, bytes.length >> 1));
    await expect(model.loadWeights(path.join(dir, 'truncated.pt'))).rejects.toThrow(FileError);
    // Files PyTorch writes that are not a state_dict in the zip format: say what they are.
    const torchFile = (name: string, code: string): string => {
      const file = path.join(dir, name);
      execFileSync(PYTHON, ['-c', `import torch, sys\n${code}`, file]);
      return file;
    };
    const legacy = torchFile('legacy.pt', "torch.save({'w': torch.zeros(2)}, sys.argv[1], _use_new_zipfile_serialization=False)");
    await expect(model.loadWeights(legacy)).rejects.toThrow(/legacy \(non-zip\) format.*torch\.save\(torch\.load\(path\), path\)/);
    const checkpoint = torchFile(
      'checkpoint.pt',
      "torch.save({'epoch': 3, 'optimizer': {'lr': torch.ones(1)}, 'state_dict': {'w': torch.zeros(2)}}, sys.argv[1])",
    );
    await expect(model.loadWeights(checkpoint)).rejects.toThrow(
      /looks like a training checkpoint.*entry 'state_dict' is a dict.*torch\.save\(checkpoint\['state_dict'\], path\)/,
    );
    const listed = torchFile('listed.pt', "torch.save({'w': torch.zeros(2), 'names': ['a', 'b']}, sys.argv[1])");
    await expect(model.loadWeights(listed)).rejects.toThrow(/entry 'names' is a GenericList, not a tensor/);
    expect(await model.forward(BATCH)).toEqual(before);
  });

  it('maps LibTorch errors to TorchError without the C++ backtrace', async () => {
    const addon = loadAddon();
    const raw = new addon.Model(normalizeModelConfig(CONFIG));
    const error = await raw.to('cuda:x').catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe('ADATT_TORCH');
    expect(String((error as Error).message)).not.toMatch(/Exception raised from|frame #/);
    raw.dispose();
    using model = createModel(CONFIG);
    if (!info().cudaAvailable) await expect(model.to('cuda')).rejects.toThrow(/CUDA is not available/);
    await expect(model.to('tpu' as never)).rejects.toThrow(ValidationError);
    expect(TorchError.name).toBe('TorchError');
  });

  it('checks inputs again natively when called without the TypeScript layer', async () => {
    const addon = loadAddon();
    const raw = new addon.Model(normalizeModelConfig(CONFIG));
    const bags = [{ indices: new Int32Array([1]), offsets: new Int32Array([0, 1]) }];
    const good = { size: 2, dense: new Float32Array(6), categorical: new Int32Array([0, 1]), multiValued: bags };
    await expect(raw.forward({ ...good, dense: new Float32Array(5) })).rejects.toMatchObject({ code: 'ADATT_INVALID_ARGUMENT' });
    await expect(raw.forward({ ...good, categorical: new Int32Array([0, 9]) })).rejects.toMatchObject({
      code: 'ADATT_INVALID_ARGUMENT',
      message: expect.stringMatching(/outside the vocabulary/),
    });
    await expect(
      raw.forward({ ...good, multiValued: [{ indices: new Int32Array([1]), offsets: new Int32Array([1, 0]) }] }),
    ).rejects.toMatchObject({ code: 'ADATT_INVALID_ARGUMENT' });
    await expect(raw.forward({ ...good, dense: new Float64Array(6) as never })).rejects.toMatchObject({ code: 'ADATT_INVALID_ARGUMENT' });
    expect(() => new addon.Model({ ...normalizeModelConfig(CONFIG), expertDims: [] })).toThrow(/expertDims/);
    expect(() => new addon.Model({ ...normalizeModelConfig(CONFIG), kind: 'nope' as never })).toThrow(/unknown model kind/);
    // Native objects are known by the type tag their constructor set, not by a prototype JS can fake.
    const fakeModel = Object.create(addon.Model.prototype) as typeof raw;
    expect(() => new addon.Trainer(fakeModel, {} as never)).toThrow(/^model must be a Model or a ScriptModule$/);
    const fakeDataset = Object.create(addon.Dataset.prototype) as never;
    await expect(raw.predict(fakeDataset, { batchSize: 2, taskTypes: ['binary', 'multiclass'] })).rejects.toThrow(
      /^dataset must be a Dataset$/,
    );
    // lib/ passes every field of the contract; the addon names a missing one instead of assuming a default.
    expect(() => new addon.Trainer(raw, {} as never)).toThrow(/^options\.optimizer is missing$/);
    expect(() => new addon.Trainer(raw, { optimizer: { type: 'adam' } } as never)).toThrow(/^options\.optimizer\.lr is missing$/);
    expect(() => new addon.Trainer(raw, { optimizer: { type: 'adam', lr: '1' } } as never)).toThrow(
      /^options\.optimizer\.lr must be a number$/,
    );
    expect((await raw.forward(good)).length).toBe(2);
    raw.dispose();
  });

  it('reports busy instead of racing, and refuses use after dispose', async () => {
    const model = createModel(CONFIG);
    const seeds = { click: new Float32Array(2) };
    // gateWeights is queued (a small forward runs inline, done before it returns).
    const reading = model.gateWeights(BATCH);
    await expect(model.gradients(BATCH, seeds)).rejects.toThrow(BusyError);
    await reading;
    const writing = model.gradients(BATCH, seeds);
    await expect(model.forward(BATCH)).rejects.toThrow(BusyError);
    await expect(model.gateWeights(BATCH)).rejects.toThrow(BusyError);
    await writing;
    await Promise.all([model.gateWeights(BATCH), model.forward(BATCH), model.gateWeights(BATCH)]); // reads may overlap
    model.dispose();
    expect(model.disposed).toBe(true);
    await expect(model.forward(BATCH)).rejects.toThrow(DisposedError);
    expect(() => model.parameterCount()).toThrow(DisposedError);
    model.dispose();
  });

  it('frees a model disposed while an operation runs once the operation ends', async () => {
    const model = createModel(CONFIG);
    const pending = model.gateWeights(BATCH);
    model.dispose();
    expect((await pending).length).toBeGreaterThan(0);
  });

  it.each(MODEL_KINDS)(
    '%s: one row (matrix-vector products) gives the outputs and gradients of that row in a larger batch',
    async (kind) => {
      const extra: Record<string, object> = {
        'adatt-sp': { expertsPerTask: 2 },
        adatt: { expertsPerTask: 2, sharedExperts: 1 },
        ple: { expertsPerTask: 2, sharedExperts: 1 },
        mmoe: { experts: 3, gateDims: [[4], []] },
      };
      using model = createModel({
        kind,
        input: { dense: 3 },
        tasks: [
          { name: 'a', type: 'binary' },
          { name: 'b', type: 'binary' },
        ],
        expertDims: [[8], [6]],
        towerDims: [4],
        seed: 3,
        ...extra[kind],
      } as ModelConfig);
      const rows = [
        [0.3, -1, 2],
        [1, 0.5, -0.2],
        [-0.7, 0.1, 0.9],
      ];
      const all = await model.forward({ dense: rows });
      const one = await model.forward({ dense: [rows[1]!] });
      for (const task of ['a', 'b']) expect(one[task]![0]).toBeCloseTo(all[task]![1]!, 5);
      const alone = await model.gradients({ dense: [rows[1]!] }, { a: [1], b: [0.5] });
      const within = await model.gradients({ dense: rows }, { a: [0, 1, 0], b: [0, 0.5, 0] });
      for (const [name, tensor] of Object.entries(within)) {
        Array.from(tensor.data).forEach((g, i) => {
          expect(alone[name]!.data[i], `${name}[${i}]`).toBeCloseTo(g, 5);
        });
      }
    },
  );

  it('runs model reads on several inference threads at once, and in order of arrival on one', async () => {
    using slow = createModel({ ...CONFIG, expertDims: [[256], [128]] });
    using quick = createModel(CONFIG);
    const rows = 100_000;
    using data = TensorDataset.fromEncoded(
      {
        size: rows,
        dense: Float32Array.from({ length: rows * 3 }, (_, i) => Math.sin(i)),
        categorical: new Int32Array(rows),
        multiValued: [{ indices: new Int32Array(0), offsets: new Int32Array(rows) }],
        labels: [new Float32Array(rows), new Float32Array(rows)],
      },
      { taskNames: ['click', 'genre'] },
    );
    const finished: string[] = [];
    const race = async (): Promise<string[]> => {
      finished.length = 0;
      const slowDone = predict(slow, data).then(() => finished.push('slow predict'));
      await new Promise((resolve) => setImmediate(resolve)); // predict validates asynchronously: let it queue first
      await Promise.all([slowDone, quick.gateWeights(BATCH).then(() => finished.push('quick read'))]);
      return [...finished];
    };
    const before = info();
    try {
      setNumThreads(1, { inferenceThreads: 2 });
      expect(info().inferenceThreads).toBe(2);
      expect(await race()).toEqual(['quick read', 'slow predict']);
      setNumThreads(1, { inferenceThreads: 1 });
      expect(info().inferenceThreads).toBe(1);
      expect(await race()).toEqual(['slow predict', 'quick read']);
      expect(() => setNumThreads(1, { inferenceThreads: 0 })).toThrow(ValidationError);
    } finally {
      setNumThreads(before.blasThreads || before.numThreads, {
        intraOpThreads: before.numThreads,
        inferenceThreads: before.inferenceThreads,
      });
    }
  });

  it('computes small forwards inline and queues large ones, with the same results', async () => {
    const model = createModel(CONFIG);
    const rows = 50_000; // far more rows x parameters than run inline
    const big = {
      dense: Float32Array.from({ length: rows * 3 }, (_, i) => Math.sin(i)),
      categorical: new Int32Array(rows),
      multiValued: [{ indices: new Int32Array(0), offsets: new Int32Array(rows) }],
      size: rows,
    };
    // The large one is queued: a write started meanwhile finds the model busy.
    const queued = model.forward(big);
    await expect(model.gradients(BATCH, { click: new Float32Array(2) })).rejects.toThrow(BusyError);
    const [large, small] = [
      await queued,
      await model.forward({
        ...big,
        size: 1,
        dense: big.dense.subarray(0, 3),
        categorical: big.categorical.subarray(0, 1),
        multiValued: [{ indices: new Int32Array(0), offsets: new Int32Array(1) }],
      }),
    ];
    expect(small.click![0]).toBeCloseTo(large.click![0]!, 6);
    const predictions = await model.predictions(BATCH);
    const outputs = await model.forward(BATCH);
    expect(Array.from(predictions.click!)).toEqual(Array.from(outputs.click!, (z) => expect.closeTo(1 / (1 + Math.exp(-z)), 6)));
    model.dispose();
  });
});

describe('safetensors', () => {
  it('round-trips both layouts and rejects malformed files', async () => {
    using model = createModel(CONFIG);
    const expected = await model.forward(BATCH);
    const dir = makeTempDir('safetensors');
    for (const layout of ['reference', 'native'] as const) {
      const file = path.join(dir, `${layout}.safetensors`);
      await model.saveWeights(file, { layout });
      const bytes = fs.readFileSync(file);
      expect(Number(bytes.readBigUInt64LE(0)) % 8).toBe(0); // data 8-byte aligned
      using copy = createModel({ ...CONFIG, seed: 1 });
      await copy.loadWeights(file);
      expect(await copy.forward(BATCH)).toEqual(expected);
    }
    const good = fs.readFileSync(path.join(dir, 'reference.safetensors'));
    const bad: [string, Uint8Array][] = [
      ['short', good.subarray(0, 4)],
      ['cut', good.subarray(0, good.length - 8)],
      ['json', Buffer.concat([good.subarray(0, 8), Buffer.from('{"x": ')])],
    ];
    for (const [name, content] of bad) {
      const file = path.join(dir, `${name}.safetensors`);
      fs.writeFileSync(file, content);
      await expect(model.loadWeights(file), name).rejects.toThrow(FileError);
    }
    await expect(model.saveWeights(path.join(dir, 'x.bin'), { format: 'onnx' as never })).rejects.toThrow(ValidationError);
  });
});

describe('paths that are not what a call expects', () => {
  it('name the path in a FileError, and holes in seeds name the slot', async () => {
    using model = createModel(CONFIG);
    const dir = makeTempDir('not-a-file');
    await expect(model.saveWeights(dir, { format: 'torch' })).rejects.toThrow(FileError);
    await expect(model.saveWeights(dir, { format: 'torch' })).rejects.toThrow(/is a directory, expected a file/);
    await expect(model.loadWeights(dir)).rejects.toThrow(/cannot read .*: it is a directory, expected a file/);
    await expect(model.loadWeights(path.join(dir, 'missing.pt'))).rejects.toThrow(FileError);
    const batch = { dense: [[0.1, 0.2, 0.3]], categorical: [[1]], multiValued: [[[2]]] };
    const error = await model.gradients(batch, { [CONFIG.tasks[0]!.name]: new Array<number>(1) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).field).toBe(`seeds.${CONFIG.tasks[0]!.name}[0]`);
  });
});

describe('thread limits', () => {
  it('caps setNumThreads at the threads the BLAS was built for, and reports that limit', () => {
    const { blasMaxThreads, blasThreading } = info();
    if (blasThreading.startsWith('openblas')) expect(blasMaxThreads).toBeGreaterThan(0);
    const limit = blasMaxThreads > 0 ? blasMaxThreads : 1024;
    expect(() => setNumThreads(limit + 1)).toThrow(ValidationError);
    expect(() => setNumThreads(limit + 1)).toThrow(new RegExp(`\\[1, ${limit}\\]`));
    setNumThreads(1);
  });
});
