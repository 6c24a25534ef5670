/**
 * Multi-task objectives: ESMM's conditional tasks, task sample spaces, and the task weighting
 * strategies (uncertainty, GradNorm, DWA), each against a Python reference written from the papers
 * (scripts/reference/train_objectives.py), plus resume and validation.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  createModel,
  evaluate,
  fit,
  loadCheckpoint,
  predict,
  setNumThreads,
  TensorDataset,
  ValidationError,
  type FitOptions,
  type ModelConfig,
  type StateDict,
} from '../lib';
import { normalizeModelConfig } from '../lib/config';
import type { EncodedData } from '../lib/data/types';
import { decodeSafetensors } from '../lib/safetensors';
import { dwaWeights } from '../lib/training';
import { seededUniform } from './helpers/random';
import { makeTempDir, runPython } from './helpers/reference';

const CONFIG: ModelConfig = {
  kind: 'mmoe',
  input: { dense: 4 },
  tasks: [
    { name: 'click', type: 'binary' },
    { name: 'buy', type: 'binary', conditionalOn: 'click' },
    { name: 'spend', type: 'regression' },
  ],
  expertDims: [[8]],
  towerDims: [4],
  experts: 2,
  seed: 4,
};

/** Seeded rows: buy only ever 1 on clicked rows, spend meaningful on clicked rows, some labels missing. */
function rows(size: number, seed: number): EncodedData {
  const next = seededUniform(seed);
  const dense = Float32Array.from({ length: size * 4 }, () => next() * 2 - 1);
  const click = Float32Array.from({ length: size }, (_, r) => (r % 11 === 3 ? NaN : dense[4 * r]! + 0.5 * next() > 0.2 ? 1 : 0));
  const buy = Float32Array.from({ length: size }, (_, r) => (r % 13 === 5 ? NaN : click[r] === 1 && dense[4 * r + 1]! > 0 ? 1 : 0));
  const spend = Float32Array.from({ length: size }, (_, r) => dense[4 * r + 2]! * 2 + (click[r] === 1 ? 1 : 0));
  return { size, dense, labels: [click, buy, spend] };
}

const TRAINING: FitOptions = {
  epochs: 4,
  batchSize: 16,
  seed: 2,
  optimizer: { type: 'adam', lr: 0.01 },
  losses: { click: { weight: 1 }, buy: { weight: 2 }, spend: { weight: 0.5, where: { task: 'click', equals: 1 } } },
};

function worstDifference(a: StateDict, b: StateDict): { name: string; difference: number } {
  let worst = { name: '', difference: 0 };
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  for (const [name, tensor] of Object.entries(a)) {
    tensor.data.forEach((value, i) => {
      const difference = Math.abs(value - b[name]!.data[i]!);
      if (difference > worst.difference) worst = { name, difference };
    });
  }
  return worst;
}

type Weighting = 'fixed' | 'uncertainty' | 'gradnorm' | 'dwa';

/** GradNorm's shared layer of CONFIG's variants, by reference name: written out here from the definition in docs/training.md. */
const SHARED_LAYERS: Record<'mmoe' | 'ple', string[]> = {
  mmoe: ['mtl_arch.experts.0.0.mlp_net.0.weight', 'mtl_arch.experts.0.1.mlp_net.0.weight'],
  // PLE's last level: click's 1 expert, buy's 1, spend's 1, then the 2 shared ones.
  ple: ['mtl_arch.experts.1.3.mlp_net.0.weight', 'mtl_arch.experts.1.4.mlp_net.0.weight'],
};
const { experts: _experts, ...COMMON } = CONFIG as ModelConfig & { experts: number };
const PLE_CONFIG = { ...COMMON, kind: 'ple', expertDims: [[8], [6]], expertsPerTask: 1, sharedExperts: 2 } as ModelConfig;

async function trainBoth(taskWeighting: Weighting, variant: 'mmoe' | 'ple' = 'mmoe') {
  setNumThreads(1);
  const config = variant === 'mmoe' ? CONFIG : PLE_CONFIG;
  const dir = makeTempDir(`objectives-${taskWeighting}-${variant}`);
  const data = rows(96, 9);
  using model = createModel(config);
  await model.saveWeights(path.join(dir, 'initial.safetensors'));
  using train = TensorDataset.fromEncoded(data);
  const alpha = 0.75;
  const result = await fit(model, train, {
    ...TRAINING,
    taskWeighting: taskWeighting === 'gradnorm' ? { type: 'gradnorm', alpha } : taskWeighting,
  });
  const spec = {
    config: normalizeModelConfig(config),
    data: {
      size: data.size,
      dense: [...data.dense!],
      labels: data.labels.map((task) => [...task].map((v) => (Number.isNaN(v) ? null : v))),
    },
    taskTypes: ['binary', 'binary', 'regression'],
    epochs: TRAINING.epochs,
    batchSize: TRAINING.batchSize,
    seed: TRAINING.seed,
    lr: 0.01,
    weighting: taskWeighting,
    temperature: 2,
    alpha,
    sharedLayer: SHARED_LAYERS[variant],
    weights: [1, 2, 0.5],
    where: [null, null, { task: 0, equals: 1 }],
  };
  fs.writeFileSync(path.join(dir, 'spec.json'), JSON.stringify(spec));
  runPython('train_objectives.py', [path.join(dir, 'spec.json'), path.join(dir, 'initial.safetensors'), path.join(dir, 'final')]);
  const theirs = decodeSafetensors(fs.readFileSync(path.join(dir, 'final.safetensors')), 'final.safetensors');
  const reference = JSON.parse(fs.readFileSync(path.join(dir, 'final.json'), 'utf8')) as {
    taskWeights: number[][];
    epochLosses: number[][];
  };
  return { result, ours: await model.stateDict(), theirs, reference };
}

describe('multi-task objectives against a Python reference from the papers', () => {
  it.each([
    ['fixed', 'mmoe'],
    ['uncertainty', 'mmoe'],
    ['gradnorm', 'mmoe'],
    ['gradnorm', 'ple'],
    ['dwa', 'mmoe'],
  ] as const)(
    '%s weighting (%s) with an ESMM task and a sample space: weights and task weights within 1e-5',
    async (weighting, variant) => {
      const { result, ours, theirs, reference } = await trainBoth(weighting, variant);
      const worst = worstDifference(ours, theirs);
      expect(worst.difference, worst.name).toBeLessThan(1e-5);
      result.epochs.forEach((epoch, e) => {
        ['click', 'buy', 'spend'].forEach((task, t) => {
          expect(epoch.taskWeights[task], `epoch ${e} ${task}`).toBeCloseTo(reference.taskWeights[e]![t]!, 5);
          expect(epoch.loss[task], `epoch ${e} ${task} loss`).toBeCloseTo(reference.epochLosses[e]![t]!, 5);
        });
      });
      if (weighting === 'dwa') {
        expect(result.epochs[1]!.taskWeights.buy).toBe(2); // fixed weight x 1 for the first two epochs
        expect(result.epochs[3]!.taskWeights.click).not.toBeCloseTo(1, 3);
      }
      if (weighting === 'uncertainty') expect(result.epochs[3]!.taskWeights.spend).not.toBeCloseTo(0.25, 4);
      if (weighting === 'gradnorm') {
        // The learned weights moved, and they sum to the task count (taskWeights multiply the fixed 1, 2, 0.5).
        const last = result.epochs[3]!.taskWeights;
        expect(last.click! + last.buy! / 2 + last.spend! / 0.5).toBeCloseTo(3, 5);
        expect(last.click).not.toBeCloseTo(1, 2);
      }
    },
    60_000,
  );

  it.each([
    { kind: 'adatt-sp', expertsPerTask: 2 },
    { kind: 'adatt', expertsPerTask: 1, sharedExperts: 1 },
    { kind: 'cross-stitch' },
    { kind: 'shared-bottom' },
  ])('GradNorm trains $kind on its last shared layer, the weights summing to the task count', async (kind) => {
    setNumThreads(1);
    using model = createModel({ ...COMMON, ...kind } as ModelConfig);
    using train = TensorDataset.fromEncoded(rows(64, 5));
    const result = await fit(model, train, { epochs: 2, batchSize: 16, optimizer: { lr: 0.05 }, taskWeighting: 'gradnorm' });
    const weights = Object.values(result.epochs[1]!.taskWeights);
    expect(weights.reduce((a, b) => a + b, 0)).toBeCloseTo(3, 5);
    expect(weights.some((w) => Math.abs(w - 1) > 1e-3)).toBe(true);
  });

  it('DWA weights sum to the task count and follow the loss ratios', () => {
    const weights = dwaWeights([{ loss: { a: 1, b: 1 } }, { loss: { a: 0.5, b: 1 } }], ['a', 'b'], 2);
    expect(weights[0]! + weights[1]!).toBeCloseTo(2, 12);
    expect(weights[0]).toBeCloseTo((2 * Math.exp(0.25)) / (Math.exp(0.25) + Math.exp(0.5)), 12);
    expect(dwaWeights([{ loss: { a: 1, b: 1 } }], ['a', 'b'], 2)).toEqual([1, 1]);
  });
});

describe('task-gradient conflict', () => {
  it("measures each task's gradient norm and the pairwise cosines on the shared parameters as the Python reference", async () => {
    setNumThreads(1);
    const config = {
      ...COMMON,
      tasks: [
        { name: 'click', type: 'binary' },
        { name: 'like', type: 'binary' },
        { name: 'spend', type: 'regression' },
      ],
    } as ModelConfig;
    const data = rows(96, 4);
    const dir = makeTempDir('gradient-conflict');
    using model = createModel({ ...config, kind: 'mmoe', experts: 2 } as ModelConfig);
    await model.saveWeights(path.join(dir, 'initial.safetensors'));
    using train = TensorDataset.fromEncoded(data);
    // One batch of every row, measured at step 0 (before the update).
    const result = await fit(model, train, { epochs: 2, batchSize: 96, gradientConflict: { every: 1000 } });
    const measured = result.epochs[0]!.gradientConflict!;
    expect(measured.steps).toBe(1);
    expect(result.epochs[1]!.gradientConflict).toBeUndefined(); // step 1 is not a multiple of 1000
    const spec = {
      config: normalizeModelConfig({ ...config, kind: 'mmoe', experts: 2 } as ModelConfig),
      data: {
        size: data.size,
        dense: [...data.dense!],
        labels: data.labels.map((task) => [...task].map((v) => (Number.isNaN(v) ? null : v))),
      },
      taskTypes: ['binary', 'binary', 'regression'],
    };
    fs.writeFileSync(path.join(dir, 'spec.json'), JSON.stringify(spec));
    runPython('gradient_conflict.py', [path.join(dir, 'spec.json'), path.join(dir, 'initial.safetensors'), path.join(dir, 'out.json')]);
    const reference = JSON.parse(fs.readFileSync(path.join(dir, 'out.json'), 'utf8')) as { norm: number[]; cosine: number[][] };
    ['click', 'like', 'spend'].forEach((task, t) => {
      expect(measured.norm[task], task).toBeCloseTo(reference.norm[t]!, 5);
    });
    expect(measured.cosine['click/like']).toBeCloseTo(reference.cosine[0]![1]!, 5);
    expect(measured.cosine['click/spend']).toBeCloseTo(reference.cosine[0]![2]!, 5);
    expect(measured.cosine['like/spend']).toBeCloseTo(reference.cosine[1]![2]!, 5);
    expect(Object.keys(measured.cosine)).toHaveLength(3);
    const off = await fit(model, train, { epochs: 1, batchSize: 32 });
    expect(off.epochs[0]!.gradientConflict).toBeUndefined();
    const error = await fit(model, train, { gradientConflict: { every: 0 } }).catch((e: unknown) => e);
    expect((error as ValidationError).field).toBe('gradientConflict.every');
  });
});

describe('ESMM predictions and sample-space metrics', () => {
  it('predicts the joint probability and P(buy | click), and evaluates buy in the click space on request', async () => {
    using model = createModel(CONFIG);
    using data = TensorDataset.fromEncoded(rows(64, 3));
    const predictions = await predict(model, data);
    const outputs = await model.forward({ size: 64, dense: rows(64, 3).dense! });
    const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
    for (let i = 0; i < 64; i++) {
      expect(predictions.buy![i]).toBeCloseTo(sigmoid(outputs.buy![i]!), 6);
      expect(predictions['buy.conditional']![i]! * predictions.click![i]!).toBeCloseTo(predictions.buy![i]!, 6);
      expect(predictions['buy.conditional']![i]).toBeGreaterThan(0);
    }
    const all = await evaluate(model, data);
    const clicked = await evaluate(model, data, { where: { buy: { task: 'click' } } });
    const labels = rows(64, 3).labels;
    const inSpace = [...labels[1]!].filter((v, i) => !Number.isNaN(v) && labels[0]![i] === 1).length;
    expect(clicked.buy!.count).toBe(inSpace);
    expect(all.buy!.count).toBeGreaterThan(inSpace);
    expect(clicked.click).toEqual(all.click);
  });
});

describe('objectives: resume and validation', () => {
  it.each(['uncertainty', 'gradnorm'] as const)('resumes %s weighting exactly from a checkpoint', async (taskWeighting) => {
    setNumThreads(1);
    const dir = makeTempDir(`objectives-resume-${taskWeighting}`);
    const options: FitOptions = { ...TRAINING, epochs: 3, taskWeighting };
    using straight = createModel(CONFIG);
    using train = TensorDataset.fromEncoded(rows(96, 9));
    const whole = await fit(straight, train, options);
    using first = createModel(CONFIG);
    await fit(first, train, { ...options, epochs: 2, checkpoint: { dir } });
    const checkpoint = await loadCheckpoint(path.join(dir, 'epoch-0001.adatt'));
    expect(checkpoint.training!.taskWeighting).toBe(taskWeighting);
    using resumed = checkpoint.model;
    const rest = await fit(resumed, train, { ...options, resume: checkpoint.training });
    expect(await resumed.stateDict()).toEqual(await straight.stateDict());
    expect(rest.epochs.at(-1)!.taskWeights).toEqual(whole.epochs.at(-1)!.taskWeights);
    const error = await fit(resumed, train, { ...options, epochs: 4, taskWeighting: 'fixed', resume: checkpoint.training }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).field).toBe('taskWeighting');
  });

  it('names the field of a bad strategy, sample space or chain', async () => {
    using model = createModel(CONFIG);
    using train = TensorDataset.fromEncoded(rows(32, 1));
    const fieldOf = async (options: FitOptions): Promise<string> => {
      const error = await fit(model, train, options).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      return (error as ValidationError).field;
    };
    expect(await fieldOf({ taskWeighting: 'gradient' as never })).toBe('taskWeighting');
    expect(await fieldOf({ taskWeighting: { type: 'uncertainty', temperature: 2 } as never })).toBe('taskWeighting.temperature');
    expect(await fieldOf({ taskWeighting: { type: 'dwa', temperature: 0 } })).toBe('taskWeighting.temperature');
    expect(await fieldOf({ taskWeighting: { type: 'dwa', alpha: 1 } as never })).toBe('taskWeighting.alpha');
    expect(await fieldOf({ taskWeighting: { type: 'gradnorm', alpha: -1 } })).toBe('taskWeighting.alpha');
    {
      using alone = createModel({ ...COMMON, kind: 'single-task' } as ModelConfig);
      const error = await fit(alone, train, { taskWeighting: 'gradnorm' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).field).toBe('taskWeighting');
      expect((error as ValidationError).message).toMatch(/share a layer/);
    }
    expect(await fieldOf({ losses: { buy: { where: { task: 'spend' } } } })).toBe('losses.buy.where.task');
    expect(await fieldOf({ losses: { buy: { where: { task: 'buy' } } } })).toBe('losses.buy.where.task');
    expect(await fieldOf({ losses: { buy: { where: { task: 'click', equals: 2 as never } } } })).toBe('losses.buy.where.equals');
    const cycle = (() => {
      try {
        createModel({
          ...CONFIG,
          tasks: [
            { name: 'a', type: 'binary', conditionalOn: 'b' },
            { name: 'b', type: 'binary', conditionalOn: 'a' },
          ],
        });
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(cycle).toBeInstanceOf(ConfigError);
    expect((cycle as ConfigError).message).toMatch(/cycle: a -> b -> a/);
  });
});
