/**
 * The paper's public dataset end to end: UCI Census-Income (KDD) from ../shared, every model kind
 * trained natively, metrics checked against an independent Python implementation.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createModel,
  evaluate,
  fit,
  loadCensusIncome,
  modelSections,
  predict,
  setNumThreads,
  TensorDataset,
  type ModelConfig,
  type ModelKind,
} from '../lib';
import { makeTempDir, REPO_ROOT, runPython } from './helpers/reference';

const DATA_DIR = path.join(REPO_ROOT, '..', 'shared', 'data');
const KIND_OPTIONS: Record<ModelKind, Record<string, unknown>> = {
  'adatt-sp': { expertsPerTask: 2 },
  adatt: { expertsPerTask: 1, sharedExperts: 1 },
  mmoe: { experts: 4 },
  ple: { expertsPerTask: 1, sharedExperts: 1 },
  'cross-stitch': {},
  'shared-bottom': {},
  'single-task': {},
};

let splits: { train: TensorDataset; test: TensorDataset };
let sections: ReturnType<typeof modelSections>;

beforeAll(async () => {
  setNumThreads(2);
  const census = await loadCensusIncome({ dataDir: DATA_DIR });
  splits = TensorDataset.fromSplits(census.schema, { train: census.train, test: census.test });
  sections = modelSections(census.schema);
});

afterAll(() => {
  splits.train.dispose();
  splits.test.dispose();
});

describe('census-income (UCI KDD)', () => {
  it('holds the full training split natively in one compact copy', () => {
    expect(splits.train.size).toBe(199_523);
    expect(splits.test.size).toBe(49_881);
    expect(splits.train.bytes).toBeLessThan(60e6);
  });

  it.each(Object.keys(KIND_OPTIONS) as ModelKind[])(
    'trains %s end to end',
    async (kind) => {
      const config = { kind, ...sections, expertDims: [[32], [16]], towerDims: [8], ...KIND_OPTIONS[kind] } as ModelConfig;
      using model = createModel(config);
      const result = await fit(model, splits.train, { epochs: 1, batchSize: 1024, optimizer: { lr: 0.004 } });
      expect(result.steps).toBe(Math.ceil(199_523 / 1024));
      const metrics = await evaluate(model, splits.test);
      expect(metrics.income!.auc).toBeGreaterThan(0.88);
      expect(metrics.marital!.auc).toBeGreaterThan(0.95);
      expect(metrics.education!.auc).toBeGreaterThan(0.8);
      for (const task of Object.values(metrics)) expect(task.ne).toBeLessThan(1);
    },
    120_000,
  );

  it('computes AUC and NE exactly as an independent implementation on the same predictions', async () => {
    using model = createModel({ kind: 'adatt-sp', ...sections, expertDims: [[16]], towerDims: [8], expertsPerTask: 1 });
    const result = await fit(model, splits.train.subset(Int32Array.from({ length: 40_000 }, (_, i) => i * 4)), {
      epochs: 1,
      batchSize: 512,
    });
    expect(result.steps).toBeGreaterThan(0);
    const [metrics, predictions] = await Promise.all([evaluate(model, splits.test), predict(model, splits.test)]);
    const dir = makeTempDir('census-metrics');
    const census = await loadCensusIncome({ dataDir: DATA_DIR });
    for (const [t, task] of sections.tasks.entries()) {
      const probabilities = path.join(dir, `${task.name}.p.f32`);
      const labels = path.join(dir, `${task.name}.y.f32`);
      fs.writeFileSync(probabilities, predictions[task.name]!);
      fs.writeFileSync(labels, census.test.labels[t]!);
      const reference = JSON.parse(runPython('metrics.py', [probabilities, labels])) as Record<string, number>;
      expect(metrics[task.name]!.count).toBe(reference.count);
      expect(metrics[task.name]!.auc).toBeCloseTo(reference.auc!, 6);
      // Ours computes the loss from logits, the reference from float32 probabilities.
      expect(metrics[task.name]!.logLoss).toBeCloseTo(reference.logLoss!, 4);
      expect(metrics[task.name]!.ne).toBeCloseTo(reference.ne!, 4);
    }
  }, 120_000);
});
