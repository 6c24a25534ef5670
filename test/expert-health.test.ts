/**
 * Expert health: dead-ReLU shares, dead units, output scale and gate shares on a model whose
 * weights are set by hand (so every number is known, or recomputed here from the input rows), the
 * collapse / degradation / underfitting flags they imply, every model kind, and fit's per-epoch use.
 */
import { describe, expect, it } from 'vitest';
import { createModel, fit, MODEL_KINDS, TensorDataset, ValidationError, type ModelConfig, type StateDict } from '../lib';
import { rejectionOf } from './data/helpers';

const ROWS = 300;
const dense = Float32Array.from({ length: ROWS * 3 }, (_, i) => Math.sin(i * 0.7) * 2);
const rowsOf = (r: number): number[] => Array.from(dense.subarray(r * 3, r * 3 + 3));
const labels = [Float32Array.from({ length: ROWS }, (_, r) => r % 2), Float32Array.from({ length: ROWS }, (_, r) => (r % 3 === 0 ? 1 : 0))];

const ADATT: ModelConfig = {
  kind: 'adatt',
  input: { dense: 3 },
  tasks: [
    { name: 'a', type: 'binary' },
    { name: 'b', type: 'binary' },
  ],
  expertDims: [[4]],
  towerDims: [],
  expertsPerTask: 1,
  sharedExperts: 1,
};
/** Row-major weights of the shared expert (experts.0.2). */
const SHARED_WEIGHT = [0.9, -0.4, 0.3, -0.7, 0.2, 0.5, 0.1, 0.8, -0.6, -0.2, -0.9, 0.4];
const SHARED_BIAS = [0.1, -0.3, 0, 0.2];

/** Expert a/0 dead (bias -1, no weights), b/0 constant [1, 2, 2, 4], the shared one as above; gate a favours the shared expert, gate b avoids it. */
function handSetWeights(): StateDict {
  const t = (shape: number[], data: number[]): { shape: number[]; data: Float32Array } => ({ shape, data: Float32Array.from(data) });
  const zeros = (n: number): number[] => new Array<number>(n).fill(0);
  return {
    'mtl_arch.experts.0.0.mlp_net.0.weight': t([4, 3], zeros(12)),
    'mtl_arch.experts.0.0.mlp_net.0.bias': t([4], [-1, -1, -1, -1]),
    'mtl_arch.experts.0.1.mlp_net.0.weight': t([4, 3], zeros(12)),
    'mtl_arch.experts.0.1.mlp_net.0.bias': t([4], [1, 2, 2, 4]),
    'mtl_arch.experts.0.2.mlp_net.0.weight': t([4, 3], SHARED_WEIGHT),
    'mtl_arch.experts.0.2.mlp_net.0.bias': t([4], SHARED_BIAS),
    'mtl_arch.gate_weights.0.0.0.weight': t([3, 3], zeros(9)),
    'mtl_arch.gate_weights.0.0.0.bias': t([3], [0, 0, 5]),
    'mtl_arch.gate_weights.0.1.0.weight': t([3, 3], zeros(9)),
    'mtl_arch.gate_weights.0.1.0.bias': t([3], [0, 0, -5]),
  };
}

describe('expert health on hand-set weights', () => {
  it('measures dead outputs, dead units, output scale and gate weights, and flags collapse, degradation and underfitting', async () => {
    using model = createModel(ADATT);
    await model.loadStateDict(handSetWeights(), { strict: false });
    using data = TensorDataset.fromEncoded({ size: ROWS, dense, labels });
    const health = await model.expertStats(data);
    expect(health.rows).toBe(ROWS);
    expect(health.experts.map((e) => e.expert)).toEqual(['a/0', 'b/0', 'shared/0']);
    const [dead, constant, shared] = health.experts;
    expect(dead).toMatchObject({ level: 0, zeroFraction: 1, deadUnits: 1, outputNorm: 0 });
    expect(constant).toMatchObject({ zeroFraction: 0, deadUnits: 0 });
    expect(constant!.outputNorm).toBeCloseTo(5, 5);
    // The shared expert recomputed here: relu(W x + b) per row.
    let zeros = 0;
    let norms = 0;
    const active = [0, 0, 0, 0];
    for (let r = 0; r < ROWS; r++) {
      const x = rowsOf(r);
      const out = SHARED_BIAS.map((b, u) => Math.max(0, b + x.reduce((sum, v, k) => sum + SHARED_WEIGHT[u * 3 + k]! * v, 0)));
      zeros += out.filter((v) => v === 0).length;
      out.forEach((v, u) => {
        if (v > 0) active[u]! += 1;
      });
      norms += Math.hypot(...out);
    }
    expect(shared!.zeroFraction).toBeCloseTo(zeros / (ROWS * 4), 9);
    expect(zeros).toBeGreaterThan(0);
    expect(shared!.deadUnits).toBe(active.filter((n) => n === 0).length / 4);
    expect(shared!.outputNorm).toBeCloseTo(norms / ROWS, 5);
    // Gates: softmax of the biases, on every row.
    const softmax = (biases: number[]): number[] => biases.map((b) => Math.exp(b) / biases.reduce((s, c) => s + Math.exp(c), 0));
    const [gateA, gateB] = [softmax([0, 0, 5]), softmax([0, 0, -5])];
    expect(shared!.gateWeights!.a).toBeCloseTo(gateA[2]!, 6);
    expect(shared!.gateWeights!.b).toBeCloseTo(gateB[2]!, 6);
    const batchGates = await model.gateWeights({ dense: Array.from({ length: ROWS }, (_, r) => rowsOf(r)) });
    expect(health.experts.map((e) => e.gateWeights!.b)).toEqual(Array.from(batchGates[0]!.weights[1]!, (w) => expect.closeTo(w, 6)));
    expect(health.gates).toEqual([
      {
        level: 0,
        task: 'a',
        own: expect.closeTo(gateA[0]!, 6),
        otherTasks: expect.closeTo(gateA[1]!, 6),
        shared: expect.closeTo(gateA[2]!, 6),
        uniformOwn: 1 / 3,
      },
      {
        level: 0,
        task: 'b',
        own: expect.closeTo(gateB[1]!, 6),
        otherTasks: expect.closeTo(gateB[0]!, 6),
        shared: expect.closeTo(gateB[2]!, 6),
        uniformOwn: 1 / 3,
      },
    ]);
    expect(health.flags.map((flag) => [flag.kind, flag.level, 'expert' in flag ? flag.expert : flag.task])).toEqual([
      ['collapse', 0, 'a/0'],
      ['degradation', 0, 'shared/0'],
      ['underfitting', 0, 'a'],
    ]);
    expect(health.flags[1]).toMatchObject({ task: 'a', share: expect.closeTo(gateA[2]! / (gateA[2]! + gateB[2]!), 6) });
    expect(health.flags[2]!.message).toMatch(/level 0 gate of a ignores its own experts: 0\.7 % of its weight \(uniform: 33\.3 %\)/);
    // Thresholds move the flags; a sample of rows measures those rows.
    const lenient = await model.expertStats(data, { collapseThreshold: 1, degradationThreshold: 1, underfittingThreshold: 0, rows: 50 });
    expect(lenient.flags).toEqual([]);
    expect(lenient.rows).toBe(50);
  });

  it("names each kind's experts, and measures all of them", async () => {
    using data = TensorDataset.fromEncoded({ size: ROWS, dense, labels });
    const base = { input: { dense: 3 }, tasks: ADATT.tasks, expertDims: [[6], [4]], towerDims: [2] };
    const expected: Record<string, string[]> = {
      'adatt-sp': ['a/0', 'a/1', 'b/0', 'b/1', 'a/0', 'a/1', 'b/0', 'b/1'],
      adatt: ['a/0', 'b/0', 'shared/0', 'a/0', 'b/0', 'shared/0'],
      ple: ['a/0', 'b/0', 'shared/0', 'a/0', 'b/0', 'shared/0'],
      mmoe: ['expert 0', 'expert 1', 'expert 2', 'expert 0', 'expert 1', 'expert 2'],
      'cross-stitch': ['a', 'b', 'a', 'b'],
      'shared-bottom': ['bottom'],
      'single-task': ['a', 'b'],
    };
    const extra: Record<string, object> = {
      'adatt-sp': { expertsPerTask: 2 },
      adatt: { expertsPerTask: 1, sharedExperts: 1 },
      ple: { expertsPerTask: 1, sharedExperts: 1 },
      mmoe: { experts: 3 },
    };
    for (const kind of MODEL_KINDS) {
      using model = createModel({ ...base, kind, ...extra[kind] } as ModelConfig);
      const health = await model.expertStats(data, { batchSize: 64 });
      expect(
        health.experts.map((e) => e.expert),
        kind,
      ).toEqual(expected[kind]);
      for (const e of health.experts) {
        expect(e.zeroFraction).toBeGreaterThanOrEqual(0);
        expect(e.zeroFraction).toBeLessThanOrEqual(1);
        expect(e.outputNorm).toBeGreaterThan(0);
      }
      // Task gates with own experts: two levels of adatt-sp, adatt and ple.
      expect(health.gates.length, kind).toBe(['adatt-sp', 'adatt', 'ple'].includes(kind) ? 4 : 0);
      expect(
        health.experts.some((e) => e.gateWeights !== undefined),
        kind,
      ).toBe(expected[kind]![0]!.includes('/') || kind === 'mmoe');
    }
  });
});

describe('expert health in fit and its checks', () => {
  it('is measured on validation after every epoch', async () => {
    using model = createModel(ADATT);
    using data = TensorDataset.fromEncoded({ size: ROWS, dense, labels });
    const result = await fit(model, data, { epochs: 2, validation: data, expertHealth: { rows: 100 }, threads: 1 });
    expect(result.epochs.map((epoch) => epoch.expertHealth?.rows)).toEqual([100, 100]);
    expect(result.epochs[1]!.expertHealth).toEqual(await model.expertStats(data, { rows: 100 }));
    const plain = await fit(model, data, { epochs: 1, validation: data, threads: 1 });
    expect(plain.epochs[0]!.expertHealth).toBeUndefined();
  });

  it('rejects bad options, data that is not a TensorDataset and fits that cannot measure, naming the field', async () => {
    using model = createModel(ADATT);
    using data = TensorDataset.fromEncoded({ size: ROWS, dense, labels });
    expect((await rejectionOf(model.expertStats(data, { collapseThreshold: 2 }), ValidationError)).field).toBe('options.collapseThreshold');
    expect((await rejectionOf(model.expertStats(data, { rows: 0 }), ValidationError)).field).toBe('options.rows');
    expect((await rejectionOf(model.expertStats(data, { bins: 3 } as never), ValidationError)).field).toBe('options.bins');
    expect((await rejectionOf(model.expertStats({} as never), ValidationError)).field).toBe('data');
    expect((await rejectionOf(fit(model, data, { expertHealth: true }), ValidationError)).message).toMatch(
      /needs a validation TensorDataset/,
    );
    expect((await rejectionOf(fit(model, data, { validation: data, expertHealth: { rows: -1 } }), ValidationError)).field).toBe(
      'expertHealth.rows',
    );
  });
});
