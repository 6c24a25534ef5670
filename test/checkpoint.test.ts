/** Checkpoints: complete, verified, atomic, and exact to resume from. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CHECKPOINT_FORMAT_VERSION,
  createModel,
  FileError,
  fit,
  loadCheckpoint,
  saveCheckpoint,
  setNumThreads,
  TensorDataset,
  type FitOptions,
  type ModelConfig,
} from '../lib';
import type { EncodedData } from '../lib/data/types';
import { seededUniform } from './helpers/random';
import { makeTempDir } from './helpers/reference';

const CONFIG: ModelConfig = {
  kind: 'ple',
  input: { dense: 3, categorical: [{ name: 'g', vocab: 4, dim: 2 }] },
  tasks: [
    { name: 'a', type: 'binary' },
    { name: 'k', type: 'multiclass', classes: 3 },
  ],
  expertDims: [[12], [6]],
  towerDims: [4],
  expertsPerTask: [1, 2],
  sharedExperts: 1,
  seed: 4,
};

function data(size: number, seed: number): EncodedData {
  const next = seededUniform(seed);
  const dense = Float32Array.from({ length: size * 3 }, () => next() * 2 - 1);
  const categorical = Int32Array.from({ length: size }, () => Math.floor(next() * 4));
  const a = Float32Array.from({ length: size }, (_, i) => (dense[3 * i]! + 0.2 * categorical[i]! > 0.3 ? 1 : 0));
  const k = Float32Array.from({ length: size }, (_, i) => (dense[3 * i + 1]! > 0.3 ? 2 : dense[3 * i + 2]! > 0 ? 1 : 0));
  return { size, dense, categorical, labels: [a, k] };
}

const BATCH = { dense: [[0.5, -0.5, 0.1]], categorical: [[3]] };
const SCHEMA = { note: 'any JSON the data layer produces' } as never;

describe('checkpoints', () => {
  it('round-trips model, schema and training state', async () => {
    using model = createModel(CONFIG);
    const file = path.join(makeTempDir('ckpt'), 'model.adatt');
    const optimizerState = Uint8Array.from([1, 2, 3, 250]);
    await saveCheckpoint(file, model, {
      schema: SCHEMA,
      training: { nextEpoch: 3, step: 30, seed: 9, optimizerType: 'adam', optimizerState, history: [], epochsSinceBest: 1 },
    });
    const checkpoint = await loadCheckpoint(file, { device: 'cpu' });
    using loaded = checkpoint.model;
    expect(loaded.config).toEqual(model.config);
    expect(await loaded.forward(BATCH)).toEqual(await model.forward(BATCH));
    expect(checkpoint.schema).toEqual(SCHEMA);
    expect(checkpoint.formatVersion).toBe(CHECKPOINT_FORMAT_VERSION);
    expect(checkpoint.training).toMatchObject({ nextEpoch: 3, step: 30, seed: 9, epochsSinceBest: 1 });
    expect(Array.from(checkpoint.training!.optimizerState)).toEqual([1, 2, 3, 250]);
  });

  it('resumes an interrupted run to the same weights and loss history', async () => {
    setNumThreads(1);
    using train = TensorDataset.fromEncoded(data(700, 1));
    using valid = TensorDataset.fromEncoded(data(200, 2));
    const options: FitOptions = {
      epochs: 5,
      batchSize: 50,
      seed: 11,
      validation: valid,
      optimizer: { type: 'adamw', lr: 0.02, weightDecay: 0.01 },
      schedule: { type: 'cosine', warmupSteps: 5 },
      earlyStopping: { metric: 'auc', task: 'a', patience: 10 },
    };
    using straight = createModel(CONFIG);
    const uninterrupted = await fit(straight, train, options);

    const dir = makeTempDir('resume');
    const controller = new AbortController();
    using first = createModel(CONFIG);
    const partial = await fit(first, train, {
      ...options,
      checkpoint: { dir, keepLast: 2 },
      signal: controller.signal,
      onEpoch: (summary) => {
        if (summary.epoch === 1) controller.abort();
      },
    });
    expect(partial.aborted).toBe(true);
    expect(partial.checkpoints.map((f) => path.basename(f))).toEqual(['epoch-0000.adatt', 'epoch-0001.adatt']);

    const checkpoint = await loadCheckpoint(partial.checkpoints.at(-1)!);
    using resumedModel = checkpoint.model;
    const resumed = await fit(resumedModel, train, { ...options, resume: checkpoint.training });
    const losses = (r: typeof resumed): number[] => r.epochs.flatMap((e) => [...Object.values(e.loss), e.monitored ?? NaN]);
    expect(losses(resumed)).toEqual(losses(uninterrupted));
    expect(resumed.bestEpoch).toBe(uninterrupted.bestEpoch);
    expect(await resumedModel.stateDict()).toEqual(await straight.stateDict());
  });

  it('keeps the newest and the best checkpoints only', async () => {
    using train = TensorDataset.fromEncoded(data(200, 3));
    using valid = TensorDataset.fromEncoded(data(100, 4));
    using model = createModel(CONFIG);
    const dir = makeTempDir('keep');
    const result = await fit(model, train, {
      epochs: 6,
      batchSize: 50,
      validation: valid,
      earlyStopping: { metric: 'logLoss', task: 'k', patience: 10 },
      checkpoint: { dir, keepLast: 1, keepBest: 2 },
    });
    const files = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.adatt'))
      .sort();
    expect(files).toEqual(result.checkpoints.map((f) => path.basename(f)).sort());
    expect(files).toContain('epoch-0005.adatt');
    const best = [...result.epochs]
      .sort((x, y) => x.monitored! - y.monitored!)
      .slice(0, 2)
      .map((e) => e.epoch);
    for (const epoch of best) expect(files).toContain(`epoch-${String(epoch).padStart(4, '0')}.adatt`);
    expect(files.length).toBeLessThanOrEqual(3);
    expect(fs.readdirSync(dir).some((f) => f.includes('.tmp-'))).toBe(false);
  });

  it('rejects truncated, corrupted, foreign and newer-format files with clear errors', async () => {
    using model = createModel(CONFIG);
    const dir = makeTempDir('bad-ckpt');
    const good = path.join(dir, 'good.adatt');
    await saveCheckpoint(good, model);
    const bytes = fs.readFileSync(good);
    const write = (name: string, content: Uint8Array): string => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, content);
      return file;
    };
    const flipped = Buffer.from(bytes);
    flipped[Math.floor(bytes.length / 2)]! ^= 0x10;
    const newer = Buffer.from(bytes);
    newer.writeUInt32LE(CHECKPOINT_FORMAT_VERSION + 1, 17);
    const cases: [string, Uint8Array, RegExp][] = [
      ['truncated.adatt', bytes.subarray(0, bytes.length - 100), /checksum|truncated/],
      ['tiny.adatt', bytes.subarray(0, 20), /truncated/],
      ['flipped.adatt', flipped, /checksum does not match/],
      ['foreign.adatt', Buffer.from('hello world, not a checkpoint'), /signature/],
      ['zip.adatt', Buffer.from('PK\u0003\u0004rest'), /zip archive/],
      ['newer.adatt', newer, /newer adatt/],
    ];
    for (const [name, content, message] of cases) {
      const error = await loadCheckpoint(write(name, content)).catch((e: unknown) => e);
      expect(error, name).toBeInstanceOf(FileError);
      expect(String((error as Error).message), name).toMatch(message);
    }
    await expect(loadCheckpoint(path.join(dir, 'missing.adatt'))).rejects.toThrow(FileError);
    await expect(saveCheckpoint(path.join(dir, 'no-such-dir', 'x.adatt'), model)).rejects.toThrow(FileError);
    expect(fs.readdirSync(dir).some((f) => f.includes('.tmp-'))).toBe(false);
  });
});
