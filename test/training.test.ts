/** The native training loop and evaluation through fit / evaluate / predict. */
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  createModel,
  evaluate,
  fit,
  info,
  NonFiniteError,
  predict,
  setNumThreads,
  TensorDataset,
  ValidationError,
  type FitOptions,
  type ModelConfig,
  type ProgressEvent,
} from '../lib';
import { EMBEDDING_OPTIMIZER_TYPES, OPTIMIZER_TYPES, SCHEDULE_TYPES } from '../lib/addon';
import { rejectionOf } from './data/helpers';
import { seededUniform } from './helpers/random';
import { makeTempDir } from './helpers/reference';
import type { EncodedData } from '../lib/data/types';

/** Two binary tasks and a regression task driven by shared and task-specific directions, seeded. */
function syntheticData(size: number, seed: number): EncodedData {
  const uniform = seededUniform(seed);
  const normal = (): number => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  const dense = new Float32Array(size * 4);
  const categorical = new Int32Array(size);
  const labels = [new Float32Array(size), new Float32Array(size), new Float32Array(size)];
  for (let i = 0; i < size; i += 1) {
    const x = [normal(), normal(), normal(), normal()];
    dense.set(x, i * 4);
    const group = Math.floor(uniform() * 5);
    categorical[i] = group;
    const shared = x[0]! + 0.5 * (group - 2);
    labels[0]![i] = shared + x[1]! + 0.3 * normal() > 0 ? 1 : 0;
    labels[1]![i] = i % 10 === 3 ? NaN : shared - x[2]! + 0.3 * normal() > 0 ? 1 : 0;
    labels[2]![i] = 2 * x[3]! - shared + 0.1 * normal();
  }
  return { size, dense, categorical, labels };
}

const CONFIG: ModelConfig = {
  kind: 'adatt-sp',
  input: { dense: 4, categorical: [{ name: 'group', vocab: 5, dim: 3 }] },
  tasks: [
    { name: 'a', type: 'binary' },
    { name: 'b', type: 'binary' },
    { name: 'y', type: 'regression' },
  ],
  expertDims: [[16], [8]],
  towerDims: [8],
  expertsPerTask: 2,
};
const TASKS = ['a', 'b', 'y'];

/** Exact AUC with average ranks for ties, independent of the native implementation. */
function referenceAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const rows = Array.from({ length: scores.length }, (_, i) => i).filter((i) => !Number.isNaN(labels[i]!));
  rows.sort((i, j) => scores[i]! - scores[j]!);
  let rankSum = 0;
  let positives = 0;
  for (let start = 0; start < rows.length; ) {
    let end = start;
    while (end < rows.length && scores[rows[end]!] === scores[rows[start]!]) end += 1;
    const rank = (start + 1 + end) / 2;
    for (let k = start; k < end; k += 1)
      if (labels[rows[k]!] === 1) {
        rankSum += rank;
        positives += 1;
      }
    start = end;
  }
  const negatives = rows.length - positives;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

describe('fit', () => {
  it('learns the tasks and reports progress, per-epoch losses and validation metrics', async () => {
    using train = TensorDataset.fromEncoded(syntheticData(4000, 1), { taskNames: TASKS });
    using valid = TensorDataset.fromEncoded(syntheticData(1000, 2), { taskNames: TASKS });
    using model = createModel(CONFIG);
    const events: ProgressEvent[] = [];
    const result = await fit(model, train, {
      epochs: 4,
      batchSize: 128,
      optimizer: { lr: 0.01 },
      validation: valid,
      threads: 2,
      progressInterval: 0,
      onProgress: (event) => events.push(event),
    });
    expect(result.epochs).toHaveLength(4);
    expect(result.steps).toBe(4 * Math.ceil(4000 / 128));
    expect(result.epochs[3]!.loss.a!).toBeLessThan(result.epochs[0]!.loss.a!);
    const last = result.epochs[3]!.validation!;
    expect(last.a!.auc).toBeGreaterThan(0.85);
    expect(last.b!.auc).toBeGreaterThan(0.85);
    expect(last.y!.rmse).toBeLessThan(1.5);
    expect(last.b!.count).toBe(1000 - 100); // rows with a missing label are masked out
    expect(events.length).toBeGreaterThan(10);
    expect(events.at(-1)!.loss).toHaveProperty('y');
    expect(events.every((e) => e.examplesPerSecond > 0)).toBe(true);
  });

  it('gives identical loss histories for the same seed on one thread', async () => {
    setNumThreads(1);
    const history = async (seed: number): Promise<number[]> => {
      using train = TensorDataset.fromEncoded(syntheticData(1000, 3));
      using model = createModel(CONFIG);
      const result = await fit(model, train, { epochs: 2, batchSize: 64, seed });
      return result.epochs.flatMap((e) => Object.values(e.loss));
    };
    const [first, second, other] = [await history(5), await history(5), await history(6)];
    expect(first).toEqual(second);
    expect(first).not.toEqual(other);
  });

  it('stops within a batch when aborted and leaves the model usable', async () => {
    using train = TensorDataset.fromEncoded(syntheticData(20000, 4));
    using model = createModel(CONFIG);
    const controller = new AbortController();
    let batchesSeen = 0;
    const result = await fit(model, train, {
      epochs: 50,
      batchSize: 32,
      signal: controller.signal,
      progressInterval: 0,
      onProgress: (event) => {
        batchesSeen = event.batch;
        if (event.batch >= 20) controller.abort();
      },
    });
    expect(result.aborted).toBe(true);
    expect(result.epochs).toHaveLength(1);
    expect(result.steps).toBeLessThan(20 + 50); // progress arrives asynchronously: a few batches may follow
    expect(batchesSeen).toBeGreaterThanOrEqual(20);
    const metrics = await evaluate(model, train);
    expect(metrics.a!.count).toBe(20000);
  });

  it('stops early and restores the best epoch', async () => {
    using train = TensorDataset.fromEncoded(syntheticData(600, 7));
    using valid = TensorDataset.fromEncoded(syntheticData(300, 8));
    using model = createModel(CONFIG);
    const result = await fit(model, train, {
      epochs: 40,
      batchSize: 32,
      optimizer: { lr: 0.05 },
      validation: valid,
      earlyStopping: { metric: 'logLoss', task: 'a', patience: 2 },
    });
    expect(result.stoppedEarly).toBe(true);
    expect(result.epochs.length).toBeLessThan(40);
    const best = result.epochs.find((e) => e.epoch === result.bestEpoch)!;
    expect(best.best).toBe(true);
    const restored = await evaluate(model, valid);
    expect(restored.a!.logLoss).toBeCloseTo(best.validation!.a!.logLoss!, 6);
  });

  it('applies schedules, optimizers and clipping', async () => {
    using train = TensorDataset.fromEncoded(syntheticData(512, 9));
    for (const optimizer of ['adam', 'adamw', 'adagrad', 'sgd'] as const) {
      using model = createModel(CONFIG);
      const result = await fit(model, train, {
        epochs: 2,
        batchSize: 64,
        clipNorm: 1,
        optimizer: { type: optimizer, lr: 0.01, momentum: optimizer === 'sgd' ? 0.9 : 0 },
        schedule: { type: 'cosine', warmupSteps: 3 },
        losses: { y: { loss: 'huber', huberDelta: 0.5 } },
      });
      expect(
        result.epochs.every((e) => Object.values(e.loss).every(Number.isFinite)),
        optimizer,
      ).toBe(true);
    }
  });

  it('reports a non-finite loss with its batch and task, or skips it', async () => {
    const data = syntheticData(256, 10);
    data.labels[2]![5] = 3e38;
    using train = TensorDataset.fromEncoded(data);
    using model = createModel(CONFIG);
    await expect(fit(model, train, { batchSize: 256, losses: { y: { weight: 1 } } })).rejects.toThrow(NonFiniteError);
    await expect(fit(model, train, { batchSize: 256 })).rejects.toThrow(/batch 0 .*task 'y'/);
    const skipped = await fit(model, train, { batchSize: 256, nonFinite: 'skip' });
    expect(skipped.epochs[0]!.skipped).toBe(1);
  });

  it('rejects bad options and data that does not fit the model, naming the problem', async () => {
    using model = createModel(CONFIG);
    using train = TensorDataset.fromEncoded(syntheticData(100, 11));
    await expect(fit(model, train, { epochs: 0 })).rejects.toThrow(/epochs/);
    await expect(fit(model, train, { optimizer: { type: 'rmsprop' as never } })).rejects.toThrow(/optimizer.type/);
    await expect(fit(model, train, { losses: { a: { loss: 'mse' } } })).rejects.toThrow(/losses.a.loss/);
    await expect(fit(model, train, { losses: { nope: {} } as never })).rejects.toThrow(/losses.nope/);
    await expect(fit(model, train, { earlyStopping: { metric: 'auc' } })).rejects.toThrow(/validation/);
    await expect(fit(model, train, { bogus: 1 } as never)).rejects.toThrow(ValidationError);

    const badLabel = syntheticData(50, 12);
    badLabel.labels[0]![17] = 2;
    using bad = TensorDataset.fromEncoded(badLabel);
    await expect(fit(model, bad)).rejects.toThrow(/task 'a', row 18: label 2/);
    const badId = syntheticData(50, 13);
    badId.categorical![9] = 5;
    using outOfVocab = TensorDataset.fromEncoded(badId);
    await expect(evaluate(model, outOfVocab)).rejects.toThrow(/categorical feature 0, row 10/);
    const badDense = syntheticData(50, 14);
    badDense.dense![4 * 3 + 1] = NaN;
    using nanDense = TensorDataset.fromEncoded(badDense);
    await expect(fit(model, nanDense)).rejects.toThrow(/dense feature 1, row 4/);
    using named = TensorDataset.fromEncoded(syntheticData(50, 15), { taskNames: ['x', 'b', 'y'] });
    await expect(fit(model, named)).rejects.toThrow(/tasks \[x, b, y\]/);
    expect(() => TensorDataset.fromEncoded({ ...syntheticData(10, 1), size: 0 })).toThrow(ValidationError);
  });
});

describe('evaluate and predict', () => {
  it('computes exact AUC, log loss and NE that match an independent computation', async () => {
    using data = TensorDataset.fromEncoded(syntheticData(3000, 20));
    using model = createModel(CONFIG);
    await fit(model, data, { epochs: 1, batchSize: 256 });
    const metrics = await evaluate(model, data, { batchSize: 500 });
    const predictions = await predict(model, data, { batchSize: 777 });
    const labels = syntheticData(3000, 20).labels;
    for (const [t, name] of ['a', 'b'].entries()) {
      const p = predictions[name]!;
      const y = labels[t]!;
      expect(metrics[name]!.auc).toBeCloseTo(referenceAuc(p, y), 4);
      let logLoss = 0;
      let positives = 0;
      let count = 0;
      for (let i = 0; i < p.length; i += 1) {
        if (Number.isNaN(y[i]!)) continue;
        const q = Math.min(Math.max(p[i]!, 1e-7), 1 - 1e-7);
        logLoss -= y[i]! * Math.log(q) + (1 - y[i]!) * Math.log(1 - q);
        positives += y[i]!;
        count += 1;
      }
      logLoss /= count;
      const rate = positives / count;
      const entropy = -(rate * Math.log(rate) + (1 - rate) * Math.log(1 - rate));
      expect(metrics[name]!.logLoss).toBeCloseTo(logLoss, 4);
      expect(metrics[name]!.ne).toBeCloseTo(logLoss / entropy, 4);
      expect(metrics[name]!.positiveRate).toBeCloseTo(rate, 6);
    }
    expect(predictions.y).toHaveLength(3000);
  });

  it('handles tied scores in AUC', async () => {
    // A model whose outputs ignore the input: every score ties, so the AUC is exactly 0.5.
    using data = TensorDataset.fromEncoded(syntheticData(500, 21));
    using model = createModel(CONFIG);
    const state = await model.stateDict();
    for (const [name, tensor] of Object.entries(state)) if (name.startsWith('task_modules.0.1.weight')) tensor.data.fill(0);
    for (const [name, tensor] of Object.entries(state)) if (name.startsWith('task_modules.0.0.')) tensor.data.fill(0);
    await model.loadStateDict(state);
    const metrics = await evaluate(model, data);
    expect(metrics.a!.auc).toBe(0.5);
  });
});

describe('the names lib/ declares are the ones the addon knows', () => {
  it('trains with every optimizer, schedule, embedding optimizer, task weighting, loss and non-finite policy', async () => {
    using data = TensorDataset.fromEncoded(syntheticData(64, 3), { taskNames: TASKS });
    const cases: [string, FitOptions][] = [
      ...OPTIMIZER_TYPES.map((type): [string, FitOptions] => [`optimizer ${type}`, { optimizer: { type } }]),
      ...SCHEDULE_TYPES.map((type): [string, FitOptions] => [`schedule ${type}`, { schedule: { type } }]),
      ...EMBEDDING_OPTIMIZER_TYPES.map((type): [string, FitOptions] => [`embeddingOptimizer ${type}`, { embeddingOptimizer: { type } }]),
      ['embeddingOptimizer dense', { embeddingOptimizer: 'dense' }],
      ...(['fixed', 'uncertainty', 'gradnorm', 'dwa'] as const).map((type): [string, FitOptions] => [
        `taskWeighting ${type}`,
        { taskWeighting: type },
      ]),
      ['loss huber', { losses: { y: { loss: 'huber' } } }],
      ['nonFinite skip', { nonFinite: 'skip' }],
    ];
    for (const [label, options] of cases) {
      using model = createModel(CONFIG);
      const result = await fit(model, data, { epochs: 1, batchSize: 32, threads: 1, ...options });
      expect(result.steps, label).toBe(2);
      expect(Number.isFinite(result.epochs[0]!.loss.a!), label).toBe(true);
    }
  });
});

describe('fit checks every option before it changes anything', () => {
  it.each([
    [{ device: 'tpu' }, 'device'],
    [{ optimizer: { lr: -1 } }, 'optimizer.lr'],
    [{ schedule: { type: 'cosine', minLr: -1 } }, 'schedule.minLr'],
    [{ expertHealth: { rows: 0 } }, 'expertHealth.rows'],
  ])('%j: no thread count, calibration or checkpoint folder is touched', async (bad, field) => {
    using model = createModel(CONFIG);
    using data = TensorDataset.fromEncoded(syntheticData(32, 1), { taskNames: TASKS });
    setNumThreads(1);
    model.calibration = { a: { method: 'temperature', temperature: 2 } };
    const dir = path.join(makeTempDir('no-side-effects'), 'checkpoints');
    const options = { threads: 2, checkpoint: { dir }, validation: data, ...bad };
    expect((await rejectionOf(fit(model, data, options as never), ValidationError)).field).toBe(field);
    expect(info().numThreads).toBe(1);
    expect(model.calibration).toEqual({ a: { method: 'temperature', temperature: 2 } });
    expect(fs.existsSync(dir)).toBe(false);
  });
});

describe('fit options that would fail natively are refused in TypeScript, naming the field', () => {
  it.each([
    [{ epochs: 1e20 }, 'epochs'],
    [{ clipNorm: 1e308 }, 'clipNorm'],
    [{ optimizer: { betas: [0.9, 1] } }, 'optimizer.betas[1]'],
    [{ embeddingOptimizer: { type: 'adam', betas: [1, 0.999] } }, 'embeddingOptimizer.betas[0]'],
  ])('%j', async (options, field) => {
    using model = createModel(CONFIG);
    using data = TensorDataset.fromEncoded(syntheticData(32, 1));
    await expect(fit(model, data, options as never)).rejects.toMatchObject({ name: 'ValidationError', field });
  });
});
