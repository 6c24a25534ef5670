import { describe, expect, it } from 'vitest';
import type { RawGateLevel } from '../lib/addon';
import { normalizeModelConfig, validateModelConfig, type ModelConfig } from '../lib/config';
import { ConfigError } from '../lib/errors';
import { gateLabels, labelGateLevels } from '../lib/gates';

const input = {
  dense: 13,
  categorical: [
    { name: 'user', vocab: 1000, dim: 16 },
    { vocab: 50, dim: 8 },
  ],
  multiValued: [{ name: 'history', vocab: 1000, dim: 16, pooling: 'sum' as const }],
};
const tasks = [
  { name: 'click', type: 'binary' as const },
  { name: 'watch_time', type: 'regression' as const },
  { name: 'rating', type: 'multiclass' as const, classes: 5 },
];

function base(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { kind: 'adatt-sp', input, tasks, expertDims: [[64, 32], [16]], expertsPerTask: 2, ...overrides };
}

function configError(config: unknown): ConfigError {
  try {
    validateModelConfig(config);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('validateModelConfig rejects', () => {
  const cases: [string, unknown, string, RegExp][] = [
    ['a non-object', 42, '', /must be an object, got 42/],
    [
      'an unknown kind',
      base({ kind: 'moe' }),
      'kind',
      /'adatt-sp', 'adatt', 'mmoe', 'ple', 'cross-stitch', 'shared-bottom', 'single-task'.*"moe"/,
    ],
    ['a missing kind', { input, tasks, expertDims: [[8]] }, 'kind', /got undefined/],
    [
      'an unknown top-level key',
      base({ expertDim: [[8]] }),
      'expertDim',
      /unknown key expertDim \(allowed at the top level: .*'expertDims'/,
    ],
    ['a key of another kind', base({ sharedExperts: 1 }), 'sharedExperts', /unknown key sharedExperts/],
    ['a missing input', base({ input: undefined }), 'input', /input must be an object/],
    [
      'an unknown input key',
      base({ input: { ...input, sparse: [] } }),
      'input.sparse',
      /unknown key input.sparse \(allowed in input: 'dense', 'categorical', 'multiValued'\)/,
    ],
    ['an input without features', base({ input: { dense: 0, categorical: [] } }), 'input', /at least one feature/],
    ['a negative dense count', base({ input: { dense: -1 } }), 'input.dense', /integer in \[0, 65536\], got -1/],
    ['a fractional dense count', base({ input: { dense: 1.5 } }), 'input.dense', /got 1.5/],
    [
      'categorical that is not an array',
      base({ input: { categorical: { vocab: 3, dim: 2 } } }),
      'input.categorical',
      /must be an array of features/,
    ],
    [
      'a zero vocab',
      base({
        input: {
          categorical: [
            { vocab: 3, dim: 2 },
            { vocab: 0, dim: 2 },
          ],
        },
      }),
      'input.categorical[1].vocab',
      /got 0/,
    ],
    ['a huge vocab', base({ input: { categorical: [{ vocab: 1e12, dim: 2 }] } }), 'input.categorical[0].vocab', /2147483647/],
    ['a string dim', base({ input: { categorical: [{ vocab: 3, dim: '2' }] } }), 'input.categorical[0].dim', /got "2"/],
    [
      'pooling on a categorical feature',
      base({ input: { categorical: [{ vocab: 3, dim: 2, pooling: 'sum' }] } }),
      'input.categorical[0].pooling',
      /unknown key input.categorical\[0\].pooling/,
    ],
    [
      'an unknown pooling',
      base({ input: { multiValued: [{ vocab: 3, dim: 2, pooling: 'max' }] } }),
      'input.multiValued[0].pooling',
      /'mean', 'sum'.*"max"/,
    ],
    [
      'an empty feature name',
      base({ input: { categorical: [{ name: '', vocab: 3, dim: 2 }] } }),
      'input.categorical[0].name',
      /non-empty string/,
    ],
    [
      'a duplicate feature name',
      base({ input: { categorical: [{ name: 'a', vocab: 3, dim: 2 }], multiValued: [{ name: 'a', vocab: 3, dim: 2 }] } }),
      'input.multiValued[0].name',
      /'a' is already used by input.categorical\[0\]/,
    ],
    ['no tasks', base({ tasks: [] }), 'tasks', /1 to 256 tasks, got 0/],
    ['tasks that is not an array', base({ tasks: 'click' }), 'tasks', /must be an array of tasks/],
    ['a task without a name', base({ tasks: [{ type: 'binary' }] }), 'tasks[0].name', /non-empty string/],
    [
      'a duplicate task name',
      base({ tasks: [tasks[0], { name: 'click', type: 'regression' }] }),
      'tasks[1].name',
      /'click' is already used by tasks\[0\]/,
    ],
    ['an unknown task type', base({ tasks: [{ name: 'a', type: 'ranking' }] }), 'tasks[0].type', /'binary', 'multiclass', 'regression'/],
    [
      'an unknown task key',
      base({ tasks: [{ name: 'a', type: 'binary', weight: 2 }] }),
      'tasks[0].weight',
      /unknown key tasks\[0\].weight \(allowed in tasks\[0\]/,
    ],
    [
      'multiclass without classes',
      base({ tasks: [tasks[0], { name: 'r', type: 'multiclass' }] }),
      'tasks[1].classes',
      /required for a multiclass task/,
    ],
    [
      'multiclass with one class',
      base({ tasks: [{ name: 'r', type: 'multiclass', classes: 1 }] }),
      'tasks[0].classes',
      /integer in \[2, 16777216\], got 1/,
    ],
    [
      'classes on a binary task',
      base({ tasks: [{ name: 'c', type: 'binary', classes: 2 }] }),
      'tasks[0].classes',
      /only allowed for multiclass tasks/,
    ],
    ['no levels', base({ expertDims: [] }), 'expertDims', /1 to 64 levels, got 0/],
    ['an empty level', base({ expertDims: [[8], []] }), 'expertDims[1]', /1 to 64 layer widths, got 0/],
    ['a zero width', base({ expertDims: [[8, 0]] }), 'expertDims[0][1]', /integer in \[1, 65536\], got 0/],
    ['a flat expertDims', base({ expertDims: [8, 4] }), 'expertDims[0]', /must be an array of layer widths, got 8/],
    ['a bad tower width', base({ towerDims: [32, -4] }), 'towerDims[1]', /got -4/],
    ['a negative seed', base({ seed: -1 }), 'seed', /got -1/],
    ['an unsafe seed', base({ seed: 2 ** 60 }), 'seed', /9007199254740991/],
    ['adatt-sp without expertsPerTask', base({ expertsPerTask: undefined }), 'expertsPerTask', /got undefined/],
    ['adatt-sp with a per-task list', base({ expertsPerTask: [1, 2, 3] }), 'expertsPerTask', /must be an integer/],
    ['adatt-sp with zero experts', base({ expertsPerTask: 0 }), 'expertsPerTask', /integer in \[1, 1024\], got 0/],
    ['a non-boolean nativeResidual', base({ nativeResidual: 'yes' }), 'nativeResidual', /must be a boolean, got "yes"/],
    ['adatt without sharedExperts', base({ kind: 'adatt' }), 'sharedExperts', /integer in \[1, 1024\], got undefined/],
    ['adatt with zero sharedExperts', base({ kind: 'adatt', sharedExperts: 0 }), 'sharedExperts', /got 0/],
    [
      'a per-task list of the wrong length',
      base({ kind: 'adatt', sharedExperts: 1, expertsPerTask: [1, 2] }),
      'expertsPerTask',
      /one entry per task \(3\), got 2/,
    ],
    ['a bad per-task entry', base({ kind: 'ple', sharedExperts: 1, expertsPerTask: [1, 0, 2] }), 'expertsPerTask[1]', /got 0/],
    [
      'a string expertsPerTask',
      base({ kind: 'ple', sharedExperts: 1, expertsPerTask: '2' }),
      'expertsPerTask',
      /integer or an array of one integer per task/,
    ],
    [
      'a task called shared in ple',
      base({ kind: 'ple', sharedExperts: 1, tasks: [tasks[0], { name: 'shared', type: 'binary' }] }),
      'tasks[1].name',
      /reserved/,
    ],
    [
      'nativeResidual on ple',
      base({ kind: 'ple', sharedExperts: 1, nativeResidual: true }),
      'nativeResidual',
      /unknown key nativeResidual/,
    ],
    ['mmoe without experts', { kind: 'mmoe', input, tasks, expertDims: [[8]] }, 'experts', /got undefined/],
    [
      'mmoe with expertsPerTask',
      { kind: 'mmoe', input, tasks, expertDims: [[8]], experts: 2, expertsPerTask: 1 },
      'expertsPerTask',
      /unknown key expertsPerTask.*'experts', 'gateDims'/,
    ],
    [
      'gateDims of the wrong length',
      { kind: 'mmoe', input, tasks, expertDims: [[8], [4]], experts: 2, gateDims: [[]] },
      'gateDims',
      /gateDims must hold exactly 2 levels \(one per expertDims level\), got 1/,
    ],
    ['a bad gate width', { kind: 'mmoe', input, tasks, expertDims: [[8]], experts: 2, gateDims: [[16, 0]] }, 'gateDims[0][1]', /got 0/],
    [
      'extra keys on cross-stitch',
      { kind: 'cross-stitch', input, tasks, expertDims: [[8]], expertsPerTask: 1 },
      'expertsPerTask',
      /unknown key/,
    ],
  ];

  it.each(cases)('%s', (_, config, field, message) => {
    const error = configError(config);
    expect(error.field).toBe(field);
    expect(error.code).toBe('ADATT_CONFIG');
    expect(error.message).toMatch(message);
    if (field) expect(error.message).toContain(field);
  });
});

describe('validateModelConfig accepts', () => {
  it('returns a deep-frozen copy without touching the input', () => {
    const config = base({ seed: 7 });
    const validated = validateModelConfig(config);
    expect(validated).toEqual(config);
    expect(validated).not.toBe(config);
    expect(Object.isFrozen(validated)).toBe(true);
    expect(Object.isFrozen(validated.expertDims[0])).toBe(true);
    expect(Object.isFrozen(validated.input.categorical?.[0])).toBe(true);
    expect(Object.isFrozen(config)).toBe(false);
  });

  it('treats undefined optional fields as absent', () => {
    const validated = validateModelConfig(base({ towerDims: undefined, seed: undefined }));
    expect('towerDims' in validated).toBe(false);
    expect('seed' in validated).toBe(false);
  });

  it('allows a task called shared where no module is', () => {
    expect(() => validateModelConfig(base({ tasks: [{ name: 'shared', type: 'binary' }] }))).not.toThrow();
  });
});

describe('normalizeModelConfig', () => {
  const normalized = (config: Record<string, unknown>) => normalizeModelConfig(validateModelConfig(config));
  const commonNative = {
    denseDim: 13,
    categorical: [
      { vocab: 1000, dim: 16 },
      { vocab: 50, dim: 8 },
    ],
    multiValued: [{ vocab: 1000, dim: 16, pooling: 'sum' }],
    tasks: [
      { name: 'click', outputs: 1, conditionalOn: -1 },
      { name: 'watch_time', outputs: 1, conditionalOn: -1 },
      { name: 'rating', outputs: 5, conditionalOn: -1 },
    ],
    expertDims: [[64, 32], [16]],
    towerDims: [],
    seed: 0,
  };

  it('adatt-sp: expertsPerTask expanded, residual on by default', () => {
    expect(normalized(base())).toEqual({
      kind: 'adatt-sp',
      ...commonNative,
      expertsPerTask: [2, 2, 2],
      sharedExperts: 0,
      gateDims: [],
      nativeResidual: true,
    });
  });

  it('adatt: per-task list kept, residual switch honoured', () => {
    expect(
      normalized(base({ kind: 'adatt', expertsPerTask: [1, 2, 3], sharedExperts: 2, nativeResidual: false, seed: 42, towerDims: [32] })),
    ).toEqual({
      kind: 'adatt',
      ...commonNative,
      towerDims: [32],
      seed: 42,
      expertsPerTask: [1, 2, 3],
      sharedExperts: 2,
      gateDims: [],
      nativeResidual: false,
    });
  });

  it('mmoe: experts become sharedExperts, gateDims default to linear gates', () => {
    const { expertsPerTask: _, ...rest } = base({ kind: 'mmoe', experts: 4 });
    expect(normalized(rest)).toEqual({
      kind: 'mmoe',
      ...commonNative,
      expertsPerTask: [],
      sharedExperts: 4,
      gateDims: [[], []],
      nativeResidual: false,
    });
    expect(normalized({ ...rest, gateDims: [[8], []] }).gateDims).toEqual([[8], []]);
  });

  it('ple: a single count expanded per task', () => {
    expect(normalized(base({ kind: 'ple', expertsPerTask: 1, sharedExperts: 3 }))).toEqual({
      kind: 'ple',
      ...commonNative,
      expertsPerTask: [1, 1, 1],
      sharedExperts: 3,
      gateDims: [],
      nativeResidual: false,
    });
  });

  it.each(['cross-stitch', 'shared-bottom', 'single-task'])('%s: neutral kind-specific fields, levels kept', (kind) => {
    expect(
      normalized({
        kind,
        input: {
          categorical: [
            { vocab: 10, dim: 4 },
            { vocab: 20, dim: 4 },
          ],
          multiValued: [{ vocab: 5, dim: 3 }],
        },
        tasks: [{ name: 't', type: 'binary' }],
        expertDims: [[8, 4], [2]],
      }),
    ).toEqual({
      kind,
      denseDim: 0,
      categorical: [
        { vocab: 10, dim: 4 },
        { vocab: 20, dim: 4 },
      ],
      multiValued: [{ vocab: 5, dim: 3, pooling: 'mean' }],
      tasks: [{ name: 't', outputs: 1, conditionalOn: -1 }],
      expertDims: [[8, 4], [2]],
      towerDims: [],
      expertsPerTask: [],
      sharedExperts: 0,
      gateDims: [],
      nativeResidual: false,
      seed: 0,
    });
  });

  it('returns arrays the caller may not alias into the frozen config', () => {
    const native = normalized(base({ towerDims: [8] }));
    expect(Object.isFrozen(native.expertDims[0])).toBe(false);
    expect(Object.isFrozen(native.towerDims)).toBe(false);
  });
});

describe('gate labels', () => {
  const labels = (config: Record<string, unknown>) =>
    gateLabels(normalizeModelConfig(validateModelConfig(config as unknown as ModelConfig)));
  const twoTasks = [
    { name: 'a', type: 'binary' },
    { name: 'b', type: 'binary' },
  ];

  it('adatt-sp: task gates over all task experts on every level', () => {
    expect(labels(base({ tasks: twoTasks, expertsPerTask: 2 }))).toEqual([
      { gates: ['a', 'b'], experts: ['a/0', 'a/1', 'b/0', 'b/1'] },
      { gates: ['a', 'b'], experts: ['a/0', 'a/1', 'b/0', 'b/1'] },
    ]);
  });

  it('adatt and ple: a shared gate below the last level, shared experts last', () => {
    for (const kind of ['adatt', 'ple']) {
      expect(labels(base({ kind, tasks: twoTasks, expertsPerTask: [1, 2], sharedExperts: 1 }))).toEqual([
        { gates: ['a', 'b', 'shared'], experts: ['a/0', 'b/0', 'b/1', 'shared/0'] },
        { gates: ['a', 'b'], experts: ['a/0', 'b/0', 'b/1', 'shared/0'] },
      ]);
    }
  });

  it("mmoe: inner levels gate the next level's experts", () => {
    expect(labels({ kind: 'mmoe', input, tasks: twoTasks, expertDims: [[8], [4]], experts: 3 })).toEqual([
      { gates: ['expert 0', 'expert 1', 'expert 2'], experts: ['expert 0', 'expert 1', 'expert 2'] },
      { gates: ['a', 'b'], experts: ['expert 0', 'expert 1', 'expert 2'] },
    ]);
  });

  it('kinds without softmax gates have none', () => {
    expect(labels({ kind: 'cross-stitch', input, tasks: twoTasks, expertDims: [[8]] })).toEqual([]);
  });

  it('labelGateLevels splits each level into per-gate views and checks shapes', () => {
    const levelLabels = [{ gates: ['a', 'b'], experts: ['x', 'y', 'z'] }];
    const data = Float32Array.from([0.1, 0.2, 0.7, 0.5, 0.25, 0.25]);
    const [level] = labelGateLevels(levelLabels, [{ gates: 2, experts: 3, data }]);
    expect(level?.level).toBe(0);
    expect(level?.weights.map((w) => Array.from(w))).toEqual([Array.from(data.subarray(0, 3)), Array.from(data.subarray(3))]);
    const wrongShape: RawGateLevel = { gates: 3, experts: 2, data };
    expect(() => labelGateLevels(levelLabels, [wrongShape])).toThrow(/3 gates x 2 experts.*expected 2 x 3/);
    expect(() => labelGateLevels(levelLabels, [])).toThrow(/0 levels, expected 1/);
  });
});
