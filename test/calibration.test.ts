/**
 * Calibration: temperature, Platt and isotonic calibrators fitted natively against an independent
 * Python reference (L-BFGS; the max-min formula of isotonic regression), applied by predict,
 * evaluate and serving, stored in checkpoints, fitted by `fit` on validation, and checked inputs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  calibrate,
  CALIBRATION_METHODS,
  createModel,
  encode,
  evaluate,
  fit,
  fitSchema,
  loadCheckpoint,
  modelSections,
  openStream,
  parseCsv,
  predict,
  reliabilityCurves,
  saveCheckpoint,
  TensorDataset,
  ValidationError,
  type Calibration,
  type Model,
  type ModelConfig,
  type SchemaSpec,
} from '../lib';
import { loadAddon } from '../lib/addon';
import { errorOf, rejectionOf } from './data/helpers';
import { seededUniform } from './helpers/random';
import { makeTempDir, runPython } from './helpers/reference';

const work = makeTempDir('calibration');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const CONFIG: ModelConfig = {
  kind: 'mmoe',
  input: { dense: 4 },
  tasks: [
    { name: 'click', type: 'binary' },
    { name: 'time', type: 'regression' },
  ],
  expertDims: [[16]],
  towerDims: [8],
  experts: 2,
  seed: 7,
};

/**
 * A model and rows whose click labels follow sigmoid(3 z - 0.5) of the model's own logit z: a
 * miscalibrated model for Platt to fix. Every row appears three times (tied logits), some labels are
 * missing, and optional sample weights.
 */
async function miscalibrated(
  seed: number,
  weighted: boolean,
): Promise<{ model: Model; data: TensorDataset; logits: Float32Array; labels: Float32Array; weights?: Float32Array }> {
  const next = seededUniform(seed);
  const distinct = 400;
  const model = createModel(CONFIG);
  const features = Float32Array.from({ length: distinct * 4 }, () => next() * 4 - 2);
  const dense = new Float32Array(distinct * 3 * 4);
  for (let copy = 0; copy < 3; copy++) dense.set(features, copy * features.length);
  const size = distinct * 3;
  const logits = (await model.forward({ dense: Array.from({ length: size }, (_, r) => Array.from(dense.subarray(r * 4, r * 4 + 4))) }))
    .click!;
  // Spread the logits so that the labels depend on them strongly.
  const spread = Math.max(...Array.from(logits, Math.abs));
  const labels = Float32Array.from(logits, (z, r) => (r % 37 === 0 ? NaN : next() < 1 / (1 + Math.exp(-((3 * z) / spread - 0.5))) ? 1 : 0));
  const weights = weighted ? Float32Array.from({ length: size }, () => 0.25 + 2 * next()) : undefined;
  const data = TensorDataset.fromEncoded(
    {
      size,
      dense,
      labels: [labels, Float32Array.from({ length: size }, () => next())],
      ...(weights ? { sampleWeights: [weights, new Float32Array(size).fill(1)] } : {}),
    },
    { taskNames: ['click', 'time'] },
  );
  return { model, data, logits, labels, weights };
}

function reference(
  logits: Float32Array,
  labels: Float32Array,
  weights?: Float32Array,
): {
  temperature: number;
  platt: { scale: number; bias: number };
  isotonic: (number | null)[];
} {
  const file = (name: string, values: Float32Array): string => {
    const target = path.join(work, name);
    fs.writeFileSync(target, values);
    return target;
  };
  return JSON.parse(runPython('calibration.py', [file('z.f32', logits), file('y.f32', labels), weights ? file('w.f32', weights) : '-']));
}

describe('calibrators against an independent reference', () => {
  it.each([false, true])(
    'fit temperature, Platt and isotonic maps by maximum likelihood and PAV (sample weights: %s)',
    async (weighted) => {
      const { model, data, logits, labels, weights } = await miscalibrated(weighted ? 11 : 5, weighted);
      const expected = reference(logits, labels, weights);
      const raw = await predict(model, data);
      for (const method of CALIBRATION_METHODS) {
        const { calibration } = await calibrate(model, data, { method });
        expect(Object.keys(calibration)).toEqual(['click']);
        const fitted = calibration.click!;
        expect(fitted.method).toBe(method);
        model.calibration = calibration;
        const calibrated = (await predict(model, data)).click!;
        expect((await predict(model, data, { calibrated: false })).click).toEqual(raw.click);
        expect((await predict(model, data)).time).toEqual(raw.time);
        for (let r = 0; r < logits.length; r++) {
          const z = logits[r]!;
          const want =
            method === 'temperature'
              ? 1 / (1 + Math.exp(-z / expected.temperature))
              : method === 'platt'
                ? 1 / (1 + Math.exp(-(expected.platt.scale * z + expected.platt.bias)))
                : expected.isotonic[r];
          if (want === null) continue; // isotonic: rows without a label have no fitted value of their own
          expect(calibrated[r]).toBeCloseTo(want!, 6);
        }
        if (fitted.method === 'temperature') expect(fitted.temperature).toBeCloseTo(expected.temperature, 6);
        if (fitted.method === 'platt') {
          expect(fitted.scale).toBeCloseTo(expected.platt.scale, 6);
          expect(fitted.bias).toBeCloseTo(expected.platt.bias, 6);
          expect(fitted.scale).toBeGreaterThan(1.5); // the labels follow a logit three times steeper (and rescaled)
        }
      }
      model.dispose();
      data.dispose();
    },
  );

  it('lowers log loss and ECE on the rows it was fitted on, and reports curves that match evaluate', async () => {
    const { model, data } = await miscalibrated(3, false);
    const before = (await evaluate(model, data)).click!;
    const result = await calibrate(model, data);
    const curves = result.curves.click!;
    expect(curves.before.ece).toBeCloseTo(before.ece!, 9);
    model.calibration = result.calibration;
    const after = (await evaluate(model, data)).click!;
    expect((await evaluate(model, data, { calibrated: false })).click).toEqual(before);
    expect(after.logLoss).toBeLessThan(before.logLoss!);
    expect(after.ece).toBeLessThan(before.ece! / 2);
    expect(curves.after.ece).toBeCloseTo(after.ece!, 9);
    // A monotone map keeps the ranking.
    expect(after.auc).toBeCloseTo(before.auc!, 12);
    const curve = (await reliabilityCurves(model, data)).click!;
    expect(curve).toEqual(curves.after);
    expect(await reliabilityCurves(model, data, { calibrated: false })).toEqual({ click: curves.before });
    expect(curve.bins).toHaveLength(15);
    expect(curve.bins[0]).toMatchObject({ lower: 0, upper: 1 / 15 });
    const labelled = curve.bins.reduce((sum, bin) => sum + bin.rows, 0);
    expect(labelled).toBe(before.count);
    for (const bin of curve.bins) {
      if (bin.rows === 0) expect(bin.meanPrediction).toBeNull();
      else expect(bin.meanPrediction!).toBeGreaterThanOrEqual(bin.lower);
    }
    model.dispose();
    data.dispose();
  });
});

describe('calibrators of degenerate outputs', () => {
  it('fits the bias alone when every logit is the same (Platt), giving the positive rate', async () => {
    const labels = Float32Array.from({ length: 40 }, (_, i) => (i % 4 === 0 ? 1 : 0));
    const [platt] = await loadAddon().fitCalibrators([new Float32Array(40).fill(0.5)], [labels], undefined, ['platt']);
    const p = 1 / (1 + Math.exp(-(platt!.scale * 0.5 + platt!.bias)));
    expect(p).toBeCloseTo(0.25, 6);
  });
});

describe('calibration over a stream', () => {
  it('fits the same calibrators and curves as over the same rows in memory, and evaluates them alike', async () => {
    const next = seededUniform(21);
    const csv = [
      'x,y,click',
      ...Array.from({ length: 900 }, () => {
        const [x, y] = [next() * 2 - 1, next() * 2 - 1];
        return `${x.toFixed(4)},${y.toFixed(4)},${next() < 1 / (1 + Math.exp(-(2 * x - y))) ? 1 : 0}`;
      }),
    ].join('\n');
    const spec: SchemaSpec = { dense: ['x', 'y'], tasks: [{ name: 'click', type: 'binary', column: 'click', positive: 1 }] };
    const table = parseCsv(csv);
    const schema = fitSchema(spec, table);
    using model = createModel({ kind: 'mmoe', ...modelSections(schema), expertDims: [[8]], towerDims: [4], experts: 2, seed: 3 });
    using data = TensorDataset.fromEncoded(encode(schema, table));
    const file = path.join(work, 'events.csv');
    fs.writeFileSync(file, csv);
    const stream = await openStream(file, { schema, chunkRows: 128 });
    for (const method of CALIBRATION_METHODS) {
      const inMemory = await calibrate(model, data, { method });
      const streamed = await calibrate(model, stream, { method });
      expect(streamed).toEqual(inMemory);
      model.calibration = streamed.calibration;
      const [a, b] = [(await evaluate(model, data)).click!, (await evaluate(model, stream)).click!];
      for (const name of ['logLoss', 'ece', 'auc']) expect(b[name], name).toBeCloseTo(a[name]!, 9);
      expect(Array.from((await predict(model, stream)).click!)).toEqual(Array.from((await predict(model, data)).click!));
    }
  });
});

describe('calibration with the model', () => {
  it('is stored in checkpoints and applied after loading', async () => {
    const { model, data } = await miscalibrated(8, false);
    model.calibration = (await calibrate(model, data, { method: 'isotonic' })).calibration;
    const file = path.join(work, 'calibrated.adatt');
    await saveCheckpoint(file, model);
    const loaded = await loadCheckpoint(file);
    expect(loaded.model.calibration).toEqual(model.calibration);
    expect(await predict(loaded.model, data)).toEqual(await predict(model, data));
    const plain = path.join(work, 'plain.adatt');
    model.calibration = undefined;
    await saveCheckpoint(plain, model);
    const uncalibrated = await loadCheckpoint(plain);
    expect(uncalibrated.model.calibration).toBeUndefined();
    for (const m of [model, loaded.model, uncalibrated.model]) m.dispose();
    data.dispose();
  });

  it('is fitted on validation by fit, cleared by the next fit, and needs validation', async () => {
    const { model, data } = await miscalibrated(4, false);
    const result = await fit(model, data, { epochs: 1, validation: data, calibration: { method: 'temperature' }, threads: 1 });
    expect(result.calibration?.calibration).toEqual(model.calibration);
    expect(model.calibration?.click?.method).toBe('temperature');
    // Temperature scaling maximises the likelihood on the validation rows, starting from T = 1.
    const [calibrated, raw] = [await evaluate(model, data), await evaluate(model, data, { calibrated: false })];
    expect(calibrated.click!.logLoss).toBeLessThanOrEqual(raw.click!.logLoss!);
    expect(result.calibration!.curves.click!.before.ece).toBeCloseTo(raw.click!.ece!, 9);
    await fit(model, data, { epochs: 1, threads: 1 });
    expect(model.calibration).toBeUndefined();
    expect((await rejectionOf(fit(model, data, { calibration: {} }), ValidationError)).field).toBe('calibration');
    model.dispose();
    data.dispose();
  });

  it('rejects calibrators that are malformed or not for a binary task, naming the field', async () => {
    const model = createModel(CONFIG);
    const cases: [unknown, string, RegExp][] = [
      [{ time: { method: 'platt', scale: 1, bias: 0 } }, 'calibration.time', /binary tasks 'click'/],
      [{ click: { method: 'beta' } }, 'calibration.click.method', /'temperature', 'platt', 'isotonic'/],
      [{ click: { method: 'platt', scale: Number.NaN, bias: 0 } }, 'calibration.click.scale', /finite number/],
      [{ click: { method: 'temperature', temperature: 0 } }, 'calibration.click.temperature', /positive number/],
      [{ click: { method: 'temperature', temperature: 2, bias: 1 } }, 'calibration.click.bias', /unknown key/],
      [{ click: { method: 'isotonic', logits: [0, 0], probabilities: [0.1, 0.2] } }, 'calibration.click.logits', /strictly increasing/],
      [{ click: { method: 'isotonic', logits: [0, 1], probabilities: [0.3, 0.2] } }, 'calibration.click.probabilities', /non-decreasing/],
      [{ click: { method: 'isotonic', logits: [0], probabilities: [1.5] } }, 'calibration.click.probabilities', /\[0, 1\]/],
    ];
    for (const [value, field, message] of cases) {
      const error = errorOf(() => {
        model.calibration = value as Calibration;
      }, ValidationError);
      expect(error.field).toBe(field);
      expect(error.message).toMatch(message);
    }
    expect(model.calibration).toBeUndefined();
    const data = TensorDataset.fromEncoded({
      size: 4,
      dense: new Float32Array(16),
      labels: [Float32Array.of(1, 1, 1, 1), new Float32Array(4)],
    });
    expect((await rejectionOf(calibrate(model, data, { tasks: ['time'] }), ValidationError)).field).toBe('tasks[0]');
    expect((await rejectionOf(calibrate(model, data, { method: 'beta' as never }), ValidationError)).field).toBe('method');
    // One class only: nothing to calibrate against.
    await expect(calibrate(model, data)).rejects.toThrow(/both classes/);
    await expect(loadAddon().fitCalibrators([Float32Array.of(0, 1)], [Float32Array.of(0, 1, 1)], undefined, ['platt'])).rejects.toThrow(
      /one output and one weight per label/,
    );
    await expect(
      loadAddon().fitCalibrators([Float32Array.of(0, NaN, 1)], [Float32Array.of(0, 1, 1)], undefined, ['platt']),
    ).rejects.toThrow(/finite outputs/);
    // The addon checks calibrators itself too: knots out of order are refused, not interpolated.
    const badKnots = { method: 'isotonic' as const, scale: 1, bias: 0, knotLogits: [1, 0], knotProbabilities: [0.2, 0.3] };
    await expect(loadAddon().reliabilityCurves([Float32Array.of(0)], [Float32Array.of(1)], undefined, [badKnots])).rejects.toThrow(
      /increasing knot logits/,
    );
    model.dispose();
    data.dispose();
  });
});
