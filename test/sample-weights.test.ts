/**
 * Per-row sample weights: from a schema column through encoding and streams into the loss (against
 * the Python reference written from the definition) and the metrics (against an independent
 * pairwise AUC, and against the same data with rows repeated as often as their integer weight).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  createModel,
  encode,
  evaluate,
  fit,
  fitSchema,
  modelSections,
  openStream,
  parseCsv,
  setNumThreads,
  TensorDataset,
  ValidationError,
  type ModelConfig,
  type SchemaSpec,
  type StateDict,
} from '../lib';
import { loadAddon } from '../lib/addon';
import { normalizeModelConfig } from '../lib/config';
import type { EncodedData } from '../lib/data/types';
import { decodeSafetensors } from '../lib/safetensors';
import { errorOf } from './data/helpers';
import { seededUniform } from './helpers/random';
import { makeTempDir, runPython } from './helpers/reference';

const CONFIG: ModelConfig = {
  kind: 'mmoe',
  input: { dense: 3 },
  tasks: [
    { name: 'click', type: 'binary' },
    { name: 'kind', type: 'multiclass', classes: 3 },
    { name: 'spend', type: 'regression' },
  ],
  expertDims: [[8]],
  towerDims: [4],
  experts: 2,
  seed: 7,
};

/** Rows with learnable labels, some missing, and integer weights 0..3 (so repetition is the weight's meaning). */
function rows(size: number, seed: number): EncodedData & { sampleWeights: Float32Array[] } {
  const next = seededUniform(seed);
  const dense = Float32Array.from({ length: size * 3 }, () => next() * 2 - 1);
  const click = Float32Array.from({ length: size }, (_, r) => (r % 17 === 4 ? NaN : dense[3 * r]! + 0.6 * next() > 0.1 ? 1 : 0));
  const kind = Float32Array.from({ length: size }, (_, r) => (dense[3 * r + 1]! > 0.3 ? 2 : dense[3 * r + 1]! > -0.3 ? 1 : 0));
  const spend = Float32Array.from({ length: size }, (_, r) => dense[3 * r + 2]! * 3 + next());
  const weight = (): Float32Array => Float32Array.from({ length: size }, () => Math.floor(next() * 4));
  return { size, dense, labels: [click, kind, spend], sampleWeights: [weight(), weight(), weight()] };
}

/** `data` with each row repeated as often as its weight of task `t` (weights dropped). */
function repeated(data: EncodedData & { sampleWeights: Float32Array[] }, t: number): EncodedData {
  const order: number[] = [];
  data.sampleWeights[t]!.forEach((w, r) => {
    for (let k = 0; k < w; k++) order.push(r);
  });
  return {
    size: order.length,
    dense: Float32Array.from(order.flatMap((r) => [...data.dense!.subarray(3 * r, 3 * r + 3)])),
    labels: data.labels.map((labels) => Float32Array.from(order, (r) => labels[r]!)),
  };
}

function worstDifference(a: StateDict, b: StateDict): { name: string; difference: number } {
  let worst = { name: '', difference: 0 };
  for (const [name, tensor] of Object.entries(a)) {
    tensor.data.forEach((value, i) => {
      const difference = Math.abs(value - b[name]!.data[i]!);
      if (difference > worst.difference) worst = { name, difference };
    });
  }
  return worst;
}

describe('sample weights in the metrics', () => {
  it('weigh every metric as repeating each row as often as its integer weight', async () => {
    setNumThreads(1);
    using model = createModel(CONFIG);
    const data = rows(400, 3);
    using weighted = TensorDataset.fromEncoded(data);
    const metrics = await evaluate(model, weighted);
    for (const [t, task] of ['click', 'kind', 'spend'].entries()) {
      using copies = TensorDataset.fromEncoded(repeated(data, t));
      const expected = (await evaluate(model, copies))[task]!;
      const got = metrics[task]!;
      expect(got.weight).toBe(expected.count);
      for (const [name, value] of Object.entries(expected)) {
        if (name !== 'count') expect(got[name], `${task}.${name}`).toBeCloseTo(value, 9);
      }
      expect(got.count).toBe([...data.labels[t]!].filter((v) => !Number.isNaN(v)).length);
    }
  });

  it('compute a weighted AUC, log loss and accuracy equal to an independent pairwise reference, ties included', async () => {
    const next = seededUniform(11);
    const size = 600;
    // Logits on a grid of quarters: many exact ties, and distinct logits stay distinct as float32 probabilities.
    const logits = Float32Array.from({ length: size }, () => (Math.floor(next() * 17) - 8) / 4);
    const click = Float32Array.from({ length: size }, (_, r) => (r % 23 === 0 ? NaN : next() < 0.3 + 0.05 * logits[r]! ? 1 : 0));
    const weights = Float32Array.from({ length: size }, () => next() * 2.5);
    const [metrics] = await loadAddon().taskMetrics([logits], [click], ['binary'], undefined, [weights]);
    const dir = makeTempDir('sample-weights-metrics');
    const files = { p: path.join(dir, 'p.f32'), y: path.join(dir, 'y.f32'), w: path.join(dir, 'w.f32') };
    fs.writeFileSync(
      files.p,
      Float32Array.from(logits, (x) => 1 / (1 + Math.exp(-x))),
    );
    fs.writeFileSync(files.y, click);
    fs.writeFileSync(files.w, weights);
    const reference = JSON.parse(runPython('metrics.py', [files.p, files.y, files.w])) as Record<string, number>;
    expect(metrics!.auc).toBeCloseTo(reference.auc!, 9);
    expect(metrics!.logLoss).toBeCloseTo(reference.logLoss!, 6);
    expect(metrics!.ne).toBeCloseTo(reference.ne!, 6);
    expect(metrics!.accuracy).toBeCloseTo(reference.accuracy!, 9);
    expect(metrics!.ece).toBeCloseTo(reference.ece!, 6);
    expect(metrics!.count).toBe(reference.count);
    // Unweighted, the reference's rank formula gives the same AUC as ours.
    const [plain] = await loadAddon().taskMetrics([logits], [click], ['binary']);
    const unweighted = JSON.parse(runPython('metrics.py', [files.p, files.y])) as Record<string, number>;
    expect(plain!.auc).toBeCloseTo(unweighted.auc!, 9);
    expect(plain!.ece).toBeCloseTo(unweighted.ece!, 6);
    expect(plain!.ece).toBeGreaterThan(0.01);
    expect(plain!.auc).not.toBeCloseTo(metrics!.auc!, 3);
  });
});

describe('sample weights in the loss', () => {
  it('train as the Python reference with weighted task losses (ESMM task, sample space, zero weights) within 1e-5', async () => {
    setNumThreads(1);
    const config: ModelConfig = {
      kind: 'mmoe',
      input: { dense: 3 },
      seed: 4,
      expertDims: [[8]],
      towerDims: [4],
      experts: 2,
      tasks: [
        { name: 'click', type: 'binary' },
        { name: 'buy', type: 'binary', conditionalOn: 'click' },
        { name: 'spend', type: 'regression' },
      ],
    };
    const data = rows(96, 5);
    data.labels[1] = Float32Array.from(data.labels[0]!, (click, r) => (click === 1 && r % 3 === 0 ? 1 : Number.isNaN(click) ? NaN : 0));
    const dir = makeTempDir('sample-weights-loss');
    using model = createModel(config);
    await model.saveWeights(path.join(dir, 'initial.safetensors'));
    using train = TensorDataset.fromEncoded(data);
    const result = await fit(model, train, {
      epochs: 3,
      batchSize: 16,
      seed: 2,
      optimizer: { type: 'adam', lr: 0.01 },
      losses: { spend: { where: { task: 'click', equals: 1 } } },
    });
    const plain = (array: Float32Array): (number | null)[] => [...array].map((v) => (Number.isNaN(v) ? null : v));
    const spec = {
      config: normalizeModelConfig(config),
      data: { size: data.size, dense: [...data.dense!], labels: data.labels.map(plain), sampleWeights: data.sampleWeights.map(plain) },
      taskTypes: ['binary', 'binary', 'regression'],
      epochs: 3,
      batchSize: 16,
      seed: 2,
      lr: 0.01,
      weighting: 'fixed',
      temperature: 2,
      weights: [1, 1, 1],
      where: [null, null, { task: 0, equals: 1 }],
    };
    fs.writeFileSync(path.join(dir, 'spec.json'), JSON.stringify(spec));
    runPython('train_objectives.py', [path.join(dir, 'spec.json'), path.join(dir, 'initial.safetensors'), path.join(dir, 'final')]);
    const theirs = decodeSafetensors(fs.readFileSync(path.join(dir, 'final.safetensors')), 'final.safetensors');
    const reference = JSON.parse(fs.readFileSync(path.join(dir, 'final.json'), 'utf8')) as { epochLosses: number[][] };
    const worst = worstDifference(await model.stateDict(), theirs);
    expect(worst.difference, worst.name).toBeLessThan(1e-5);
    result.epochs.forEach((epoch, e) => {
      ['click', 'buy', 'spend'].forEach((task, t) => {
        expect(epoch.loss[task], `epoch ${e} ${task}`).toBeCloseTo(reference.epochLosses[e]![t]!, 5);
      });
    });

    // The weights matter: the same run without them ends elsewhere.
    using unweighted = createModel(config);
    await unweighted.loadWeights(path.join(dir, 'initial.safetensors'));
    using plainTrain = TensorDataset.fromEncoded({ ...data, sampleWeights: undefined });
    await fit(unweighted, plainTrain, {
      epochs: 3,
      batchSize: 16,
      seed: 2,
      optimizer: { type: 'adam', lr: 0.01 },
      losses: { spend: { where: { task: 'click', equals: 1 } } },
    });
    expect(worstDifference(await unweighted.stateDict(), theirs).difference).toBeGreaterThan(1e-3);
  }, 60_000);

  it('reject weights that are negative, not finite or of the wrong length, naming the array and row', () => {
    const data = rows(8, 1);
    const bad = (sampleWeights: unknown): ValidationError =>
      errorOf(() => TensorDataset.fromEncoded({ ...data, sampleWeights } as EncodedData).dispose(), ValidationError);
    const negative = data.sampleWeights.map((w) => w.slice());
    negative[1]![5] = -1;
    expect(bad(negative).field).toBe('sampleWeights[1]');
    expect(bad(negative).message).toMatch(/sampleWeights\[1\]\[5\] is -1/);
    const infinite = data.sampleWeights.map((w) => w.slice());
    infinite[0]![2] = Infinity;
    expect(bad(infinite).field).toBe('sampleWeights[0]');
    expect(bad([data.sampleWeights[0]]).field).toBe('sampleWeights');
    expect(bad(data.sampleWeights.map((w) => w.subarray(1))).field).toBe('sampleWeights[0]');
  });
});

describe('sample weights from a schema column', () => {
  const csv = [
    'x,city,click,spend,w,w_spend',
    ...Array.from({ length: 300 }, (_, i) => {
      const x = Math.sin(i * 1.7).toFixed(4);
      return `${x},c${i % 5},${Number(x) > 0 || i % 5 === 2 ? 1 : 0},${(i % 7) / 2},${i % 4},${(i % 3) + 0.5}`;
    }),
  ].join('\n');
  const SPEC: SchemaSpec = {
    dense: ['x'],
    categorical: ['city'],
    tasks: [
      { name: 'click', type: 'binary', column: 'click', positive: 1 },
      { name: 'spend', type: 'regression', column: 'spend', sampleWeight: 'w_spend' },
    ],
    sampleWeight: 'w',
  };

  it('encodes the schema-wide column for tasks without their own, and the task column where given; not as an input', () => {
    const table = parseCsv(csv);
    const schema = fitSchema(SPEC, table);
    expect(schema.tasks.map((task) => task.sampleWeight)).toEqual(['w', 'w_spend']);
    expect(schema.columns).toEqual(expect.arrayContaining(['w', 'w_spend']));
    const encoded = encode(schema, table);
    expect(encoded.dense!.length).toBe(300);
    expect([...encoded.sampleWeights![0]!.subarray(0, 5)]).toEqual([0, 1, 2, 3, 0]);
    expect([...encoded.sampleWeights![1]!.subarray(0, 3)]).toEqual([0.5, 1.5, 2.5]);
    // Through JSON and back, as a run directory stores it.
    expect(encode(JSON.parse(JSON.stringify(schema)), table).sampleWeights).toEqual(encoded.sampleWeights);
  });

  it('names the column and row of a missing or negative weight, and the field of a weight column that is not there', () => {
    const broken = csv.replace(/\n(-?[0-9.]+),c3,(\d),([0-9.]+),3,/, '\n$1,c3,$2,$3,-2,');
    const schema = fitSchema(SPEC, parseCsv(csv));
    const negative = errorOf(() => encode(schema, parseCsv(broken)), ValidationError);
    expect(negative.message).toMatch(/line 5 of CSV text, column 'w'.*sample weight of task 'click' must be a finite number >= 0.*got -2/);
    const missing = csv.replace(/\n(-?[0-9.]+),c1,(\d),([0-9.]+),1,/, '\n$1,c1,$2,$3,,');
    expect(() => encode(schema, parseCsv(missing))).toThrow(/column 'w'.*got a missing value/);
    for (const [spec, field] of [
      [{ ...SPEC, sampleWeight: 'nope' }, 'sampleWeight'],
      [{ ...SPEC, tasks: [SPEC.tasks[0]!, { ...SPEC.tasks[1]!, sampleWeight: 'nope' }] }, 'tasks[1].sampleWeight'],
    ] as const) {
      expect(errorOf(() => fitSchema(spec, parseCsv(csv)), ConfigError).field).toBe(field);
    }
  });

  it('streams the weights with the chunks: streamed evaluation equals the in-memory one', async () => {
    const dir = makeTempDir('sample-weights-stream');
    const file = path.join(dir, 'events.csv');
    fs.writeFileSync(file, csv);
    const table = parseCsv(csv);
    const schema = fitSchema(SPEC, table);
    using model = createModel({ kind: 'mmoe', ...modelSections(schema), expertDims: [[8]], towerDims: [4], experts: 2 });
    using memory = TensorDataset.fromEncoded(encode(schema, table));
    const stream = await openStream(file, { schema, chunkRows: 64 });
    await fit(model, stream, { epochs: 1, batchSize: 32 });
    const [streamed, inMemory] = [await evaluate(model, stream), await evaluate(model, memory)];
    expect(streamed.click!.weight).toBe(inMemory.click!.weight);
    expect(streamed.spend!.weight).toBeCloseTo(300 * 1.5, 9);
    for (const task of ['click', 'spend']) {
      for (const [name, value] of Object.entries(inMemory[task]!)) expect(streamed[task]![name], `${task}.${name}`).toBeCloseTo(value, 6);
    }
  });
});
