/**
 * Row-sparse embedding tables: the trainer steps only the rows a batch touches, with the semantics
 * of PyTorch's own sparse embeddings and optimizers (scripts/reference/train_sparse.py), and resumes
 * their state exactly.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  createModel,
  fit,
  loadCheckpoint,
  setNumThreads,
  TensorDataset,
  ValidationError,
  type EmbeddingOptimizerOptions,
  type FitOptions,
  type ModelConfig,
  type StateDict,
} from '../lib';
import { normalizeModelConfig } from '../lib/config';
import type { EncodedData } from '../lib/data/types';
import { decodeSafetensors } from '../lib/safetensors';
import { seededUniform } from './helpers/random';
import { makeTempDir, runPython } from './helpers/reference';

const CONFIG: ModelConfig = {
  kind: 'adatt-sp',
  input: {
    dense: 3,
    // Small vocabularies, so that ids repeat inside every batch.
    categorical: [
      { name: 'user', vocab: 6, dim: 3 },
      { name: 'item', vocab: 40, dim: 2 },
    ],
    multiValued: [
      { name: 'genres', vocab: 9, dim: 3, pooling: 'mean' },
      { name: 'tags', vocab: 5, dim: 2, pooling: 'sum' },
    ],
  },
  tasks: [
    { name: 'click', type: 'binary' },
    { name: 'watch', type: 'regression' },
  ],
  expertDims: [[8], [6]],
  towerDims: [4],
  expertsPerTask: 2,
  seed: 3,
};

/** Seeded rows: bags of 0-3 ids (some empty), a missing label now and then. */
function rows(size: number, seed: number): EncodedData {
  const next = seededUniform(seed);
  const integer = (n: number): number => Math.floor(next() * n);
  const dense = Float32Array.from({ length: size * 3 }, () => next() * 2 - 1);
  const categorical = Int32Array.from({ length: size * 2 }, (_, i) => integer(i % 2 === 0 ? 6 : 40));
  const bag = (vocab: number): { indices: Int32Array; offsets: Int32Array } => {
    const indices: number[] = [];
    const offsets = new Int32Array(size);
    for (let r = 0; r < size; r += 1) {
      offsets[r] = indices.length;
      for (let k = integer(4); k > 0; k -= 1) indices.push(integer(vocab));
    }
    return { indices: Int32Array.from(indices), offsets };
  };
  const click = Float32Array.from({ length: size }, (_, r) =>
    r % 9 === 4 ? NaN : dense[3 * r]! + 0.3 * categorical[2 * r]! > 0.8 ? 1 : 0,
  );
  const watch = Float32Array.from({ length: size }, (_, r) => dense[3 * r + 1]! - (0.1 * categorical[2 * r + 1]!) / 10);
  return { size, dense, categorical, multiValued: [bag(9), bag(5)], labels: [click, watch] };
}

const TRAINING: FitOptions = { epochs: 2, batchSize: 8, seed: 5, optimizer: { type: 'adam', lr: 0.01, betas: [0.9, 0.99], eps: 1e-8 } };

function maxDifference(a: StateDict, b: StateDict): { name: string; difference: number } {
  let worst = { name: '', difference: 0 };
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  for (const [name, tensor] of Object.entries(a)) {
    expect(tensor.shape).toEqual(b[name]!.shape);
    tensor.data.forEach((value, i) => {
      const difference = Math.abs(value - b[name]!.data[i]!);
      if (difference > worst.difference) worst = { name, difference };
    });
  }
  return worst;
}

/** Trains the same model here and in PyTorch (sparse=True tables) and returns both final weights. */
async function trainBoth(
  embeddingOptimizer: Required<Pick<EmbeddingOptimizerOptions, 'type' | 'lr' | 'eps'>> & EmbeddingOptimizerOptions,
  clipNorm?: number,
): Promise<{ ours: StateDict; theirs: StateDict; initial: StateDict }> {
  const dir = makeTempDir('sparse');
  const data = rows(40, 7);
  using model = createModel(CONFIG);
  await model.saveWeights(path.join(dir, 'initial.safetensors'));
  const initial = await model.stateDict();
  using train = TensorDataset.fromEncoded(data);
  await fit(model, train, { ...TRAINING, embeddingOptimizer, ...(clipNorm ? { clipNorm } : {}) });
  const spec = {
    config: normalizeModelConfig(CONFIG),
    data: {
      size: data.size,
      dense: [...data.dense!],
      categorical: [...data.categorical!],
      multiValued: data.multiValued!.map((b) => ({ indices: [...b.indices], offsets: [...b.offsets] })),
      labels: data.labels.map((task) => [...task].map((v) => (Number.isNaN(v) ? null : v))),
    },
    taskTypes: ['binary', 'regression'],
    epochs: TRAINING.epochs,
    batchSize: TRAINING.batchSize,
    seed: TRAINING.seed,
    clipNorm: clipNorm ?? 0,
    optimizer: { lr: 0.01, betas: [0.9, 0.99], eps: 1e-8 },
    embeddingOptimizer: { betas: [0.9, 0.99], weightDecay: 0, ...embeddingOptimizer },
  };
  fs.writeFileSync(path.join(dir, 'spec.json'), JSON.stringify(spec));
  runPython('train_sparse.py', [path.join(dir, 'spec.json'), path.join(dir, 'initial.safetensors'), path.join(dir, 'final.safetensors')]);
  const theirs = decodeSafetensors(fs.readFileSync(path.join(dir, 'final.safetensors')), 'final.safetensors');
  return { ours: await model.stateDict(), theirs, initial };
}

describe('row-sparse embedding tables against PyTorch', () => {
  setNumThreads(1);
  const cases: [string, Parameters<typeof trainBoth>[0], number?][] = [
    ['SparseAdam', { type: 'adam', lr: 0.05, eps: 1e-8 }],
    ['Adagrad (sparse gradients)', { type: 'adagrad', lr: 0.1, eps: 1e-10 }],
    ['SGD, with the global norm clipped over dense and row gradients', { type: 'sgd', lr: 0.5, eps: 1e-8 }, 0.5],
    ['row-wise Adagrad with L2 on the touched rows', { type: 'rowwise-adagrad', lr: 0.1, eps: 1e-8, weightDecay: 0.01 }],
  ];
  for (const [name, optimizer, clipNorm] of cases) {
    it(`${name}: the same weights after 10 steps (1e-5)`, async () => {
      const { ours, theirs, initial } = await trainBoth(optimizer, clipNorm);
      expect(maxDifference(ours, theirs).difference).toBeLessThan(1e-5);
      // The tables did train (a test that compares untouched weights proves nothing).
      for (const table of ['embeddings.0.weight', 'embeddings.1.weight', 'bag_embeddings.0.weight', 'bag_embeddings.1.weight']) {
        expect(maxDifference({ [table]: ours[table]! }, { [table]: initial[table]! }).difference).toBeGreaterThan(1e-3);
      }
    });
  }
});

describe('row-sparse embedding tables', () => {
  setNumThreads(1);

  it('row-sparse SGD steps the tables exactly as dense SGD does', async () => {
    using train = TensorDataset.fromEncoded(rows(40, 8));
    const trained = async (embeddingOptimizer: FitOptions['embeddingOptimizer']): Promise<StateDict> => {
      using model = createModel(CONFIG);
      await fit(model, train, { ...TRAINING, optimizer: { type: 'sgd', lr: 0.2 }, embeddingOptimizer });
      return model.stateDict();
    };
    const sparse = await trained(undefined); // sgd's row-sparse counterpart by default
    const dense = await trained('dense');
    expect(maxDifference(sparse, dense).difference).toBeLessThan(1e-6);
  });

  it('lazy Adam leaves rows no batch touched as they were, dense Adam does not', async () => {
    // Id 39 of `item` never occurs.
    const data = rows(40, 9);
    for (let r = 0; r < data.size; r += 1) if (data.categorical![2 * r + 1] === 39) data.categorical![2 * r + 1] = 0;
    using train = TensorDataset.fromEncoded(data);
    const row39 = async (model: ReturnType<typeof createModel>): Promise<number[]> => [
      ...(await model.stateDict())['embeddings.1.weight']!.data.slice(78, 80),
    ];
    using sparse = createModel(CONFIG);
    const initial = await row39(sparse);
    await fit(sparse, train, TRAINING);
    expect(await row39(sparse)).toEqual(initial);
    using dense = createModel(CONFIG);
    await fit(dense, train, { ...TRAINING, embeddingOptimizer: 'dense', optimizer: { type: 'adam', lr: 0.01, weightDecay: 0.1 } });
    expect(await row39(dense)).not.toEqual(initial);
  });

  for (const embeddingOptimizer of [{ type: 'adam' }, { type: 'rowwise-adagrad', lr: 0.1 }, { type: 'adagrad', lr: 0.1 }] as const) {
    it(`resumes ${embeddingOptimizer.type} table state exactly from a checkpoint`, async () => {
      using train = TensorDataset.fromEncoded(rows(60, 10));
      const options: FitOptions = { ...TRAINING, epochs: 3, embeddingOptimizer };
      using straight = createModel(CONFIG);
      await fit(straight, train, options);
      const dir = makeTempDir('sparse-resume');
      const controller = new AbortController();
      using first = createModel(CONFIG);
      const partial = await fit(first, train, {
        ...options,
        checkpoint: { dir },
        signal: controller.signal,
        onEpoch: (e) => {
          if (e.epoch === 0) controller.abort();
        },
      });
      const checkpoint = await loadCheckpoint(partial.checkpoints.at(-1)!);
      expect(checkpoint.training?.embeddingOptimizerType).toBe(embeddingOptimizer.type);
      using resumed = checkpoint.model;
      await fit(resumed, train, { ...options, resume: checkpoint.training });
      expect(await resumed.stateDict()).toEqual(await straight.stateDict());
    });
  }

  it('rejects a resume with another embedding optimizer', async () => {
    using train = TensorDataset.fromEncoded(rows(16, 11));
    const dir = makeTempDir('sparse-mismatch');
    using model = createModel(CONFIG);
    const run = await fit(model, train, { ...TRAINING, epochs: 1, checkpoint: { dir } });
    const checkpoint = await loadCheckpoint(run.checkpoints[0]!);
    using resumed = checkpoint.model;
    await expect(
      fit(resumed, train, { ...TRAINING, embeddingOptimizer: { type: 'sgd' }, resume: checkpoint.training }),
    ).rejects.toMatchObject({ name: 'ValidationError', field: 'embeddingOptimizer' });
  });

  it('rejects bad embedding optimizer options with the field named', async () => {
    using train = TensorDataset.fromEncoded(rows(16, 12));
    using model = createModel(CONFIG);
    const bad: [unknown, string][] = [
      [{ type: 'lamb' }, 'embeddingOptimizer.type'],
      [{ lr: 0.1 }, 'embeddingOptimizer.type'],
      [{ type: 'adam', lr: 0 }, 'embeddingOptimizer.lr'],
      [{ type: 'adam', betas: [0.9] }, 'embeddingOptimizer.betas'],
      [{ type: 'adam', momentum: 0.9 }, 'embeddingOptimizer.momentum'],
      ['sparse', 'embeddingOptimizer'],
    ];
    for (const [embeddingOptimizer, field] of bad) {
      await expect(fit(model, train, { embeddingOptimizer: embeddingOptimizer as never })).rejects.toMatchObject({
        name: 'ValidationError',
        field,
      });
    }
    using denseOnly = createModel({ ...CONFIG, input: { dense: 3 } });
    using denseRows = TensorDataset.fromEncoded({
      size: 4,
      dense: new Float32Array(12),
      labels: [new Float32Array(4), new Float32Array(4)],
    });
    const error = await fit(denseOnly, denseRows, { embeddingOptimizer: { type: 'adam' } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect(String((error as Error).message)).toMatch(/no embedding tables|has none/);
    // Without tables the default trains as before.
    await expect(fit(denseOnly, denseRows)).resolves.toMatchObject({ steps: 1 });
  });
});
