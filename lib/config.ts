/**
 * The user-facing model config: its types, `validateModelConfig` (checks everything, so that the
 * addon only ever sees well-formed values) and `normalizeModelConfig` (to the addon's
 * `NativeModelConfig`).
 */
import { TASK_KINDS, type ModelKind, type NativeModelConfig, type Pooling, type TaskKind } from './addon';
import { configChecker, describeValue, type FieldChecker, findUnknownKey, isRecord, joinField, quoteList } from './validation';

export type { ModelKind, Pooling } from './addon';

export interface CategoricalFeature {
  /** Used in error messages only. */
  name?: string;
  /** Number of distinct ids; ids are 0 … vocab-1. */
  vocab: number;
  /** Embedding width. */
  dim: number;
}

export interface MultiValuedFeature extends CategoricalFeature {
  /** How a bag of ids is reduced to one vector (default 'mean'; an empty bag gives zeros). */
  pooling?: Pooling;
}

export interface InputConfig {
  /** Number of dense (float) features per example (default 0). */
  dense?: number;
  /** Features with exactly one id per example. */
  categorical?: CategoricalFeature[];
  /** Features with a bag of ids per example. */
  multiValued?: MultiValuedFeature[];
}

export type TaskType = TaskKind;

export type TaskConfig =
  | {
      name: string;
      type: 'binary';
      classes?: never;
      /**
       * ESMM (Ma et al., SIGIR 2018): the name of the binary task this one is conditional on. Its tower
       * models P(this | parent); the model's output is the joint P(parent) x P(this | parent), trained on
       * every row with this task's label (e.g. buy on all impressions, conditional on click).
       */
      conditionalOn?: string;
    }
  | { name: string; type: 'regression'; classes?: never; conditionalOn?: never }
  | { name: string; type: 'multiclass'; classes: number; conditionalOn?: never };

interface CommonModelConfig {
  input: InputConfig;
  tasks: TaskConfig[];
  /**
   * Per fusion level, the expert MLP's layer widths. For shared-bottom and single-task the levels
   * are concatenated into the layers of the bottom MLP.
   */
  expertDims: number[][];
  /** Hidden layer widths of each task tower, before its output layer (default []). */
  towerDims?: number[];
  /** Parameter initialisation seed (default 0). */
  seed?: number;
}

export interface AdaTTSpConfig extends CommonModelConfig {
  kind: 'adatt-sp';
  expertsPerTask: number;
  /** The native-expert residual of the paper; switch off only for ablations (default true). */
  nativeResidual?: boolean;
}

export interface AdaTTConfig extends CommonModelConfig {
  kind: 'adatt';
  /** One count for all tasks, or one per task. */
  expertsPerTask: number | number[];
  sharedExperts: number;
  /** The native-expert residual of the paper; switch off only for ablations (default true). */
  nativeResidual?: boolean;
}

export interface MMoEConfig extends CommonModelConfig {
  kind: 'mmoe';
  /** Experts per level. */
  experts: number;
  /** Per level, the gate MLP's hidden widths (default: linear gates). */
  gateDims?: number[][];
}

export interface PLEConfig extends CommonModelConfig {
  kind: 'ple';
  /** One count for all tasks, or one per task. */
  expertsPerTask: number | number[];
  sharedExperts: number;
}

export interface CrossStitchConfig extends CommonModelConfig {
  kind: 'cross-stitch';
}

export interface SharedBottomConfig extends CommonModelConfig {
  kind: 'shared-bottom';
}

export interface SingleTaskConfig extends CommonModelConfig {
  kind: 'single-task';
}

export type ModelConfig = AdaTTSpConfig | AdaTTConfig | MMoEConfig | PLEConfig | CrossStitchConfig | SharedBottomConfig | SingleTaskConfig;

/** Limits that catch typos (a vocab of 1e12) long before LibTorch would fail to allocate. */
export const LIMITS = Object.freeze({
  /** Ids travel as Int32Array. */
  maxVocab: 2 ** 31 - 1,
  maxWidth: 65_536,
  maxFeatures: 4_096,
  maxTasks: 256,
  maxClasses: 2 ** 24,
  maxLevels: 64,
  maxLayers: 64,
  maxExperts: 1_024,
  maxNameLength: 256,
});

export const MODEL_KINDS: readonly ModelKind[] = Object.freeze([
  'adatt-sp',
  'adatt',
  'mmoe',
  'ple',
  'cross-stitch',
  'shared-bottom',
  'single-task',
]);

const POOLINGS: readonly Pooling[] = ['mean', 'sum'];

const COMMON_KEYS = ['kind', 'input', 'tasks', 'expertDims', 'towerDims', 'seed'] as const;
const KIND_KEYS: Readonly<Record<ModelKind, readonly string[]>> = {
  'adatt-sp': ['expertsPerTask', 'nativeResidual'],
  adatt: ['expertsPerTask', 'sharedExperts', 'nativeResidual'],
  mmoe: ['experts', 'gateDims'],
  ple: ['expertsPerTask', 'sharedExperts'],
  'cross-stitch': [],
  'shared-bottom': [],
  'single-task': [],
};

/** Gate and expert labels use 'shared' for the shared module, so no task may be called that. */
const SHARED_MODULE_NAME = 'shared';
const KINDS_WITH_SHARED_MODULE: readonly ModelKind[] = ['adatt', 'ple'];

/** Errors start 'Invalid model config: ' and name the field. */
const check: FieldChecker = configChecker('model config');

function requireRecord(value: unknown, field: string, allowedKeys: readonly string[]): Record<string, unknown> {
  if (!isRecord(value)) check.fail(field, `${field || 'the config'} must be an object, got ${describeValue(value)}`);
  const unknownKey = findUnknownKey(value, allowedKeys);
  if (unknownKey !== undefined) {
    const keyField = joinField(field, unknownKey);
    check.fail(keyField, `unknown key ${keyField} (allowed ${field ? `in ${field}` : 'at the top level'}: ${quoteList(allowedKeys)})`);
  }
  return value;
}

function requireInteger(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    check.fail(field, `${field} must be an integer in [${min}, ${max}], got ${describeValue(value)}`);
  }
  return value;
}

/**
 * A plain copy of the array: map on the original would skip holes (`[, 4]`) and use its
 * `constructor[Symbol.species]`, which an exotic array may lack; in the copy a hole is undefined.
 */
function requireArray(value: unknown, field: string, minLength: number, maxLength: number, of: string): unknown[] {
  if (!Array.isArray(value)) check.fail(field, `${field} must be an array of ${of}, got ${describeValue(value)}`);
  if (value.length < minLength || value.length > maxLength) {
    const expected = minLength === maxLength ? `exactly ${minLength}` : `${minLength} to ${maxLength}`;
    check.fail(field, `${field} must hold ${expected} ${of}, got ${value.length}`);
  }
  return Array.from(value as unknown[]);
}

function requireOneOf<T extends string>(value: unknown, field: string, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    check.fail(field, `${field} must be one of ${quoteList(allowed)}, got ${describeValue(value)}`);
  }
  return value as T;
}

function requireName(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > LIMITS.maxNameLength) {
    check.fail(field, `${field} must be a non-empty string of at most ${LIMITS.maxNameLength} characters, got ${describeValue(value)}`);
  }
  return value;
}

/** A name that no earlier entry (tracked in `usedNames`: name -> owner path) has taken. */
function requireUniqueName(value: unknown, field: string, owner: string, usedNames: Map<string, string>): string {
  const name = requireName(value, field);
  const previous = usedNames.get(name);
  if (previous !== undefined) check.fail(field, `${field} '${name}' is already used by ${previous}`);
  usedNames.set(name, owner);
  return name;
}

function requireBoolean(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') check.fail(field, `${field} must be a boolean, got ${describeValue(value)}`);
  return value;
}

function requireWidths(value: unknown, field: string, minLength: number): number[] {
  return requireArray(value, field, minLength, LIMITS.maxLayers, 'layer widths').map((width, i) =>
    requireInteger(width, `${field}[${i}]`, 1, LIMITS.maxWidth),
  );
}

/**
 * Validates a list of categorical (or, with `withPooling`, multi-valued) features. Feature names
 * only serve error messages, so they must be unique across both lists.
 */
function validateFeatures(value: unknown, field: string, withPooling: boolean, usedNames: Map<string, string>): MultiValuedFeature[] {
  const allowedKeys = withPooling ? ['name', 'vocab', 'dim', 'pooling'] : ['name', 'vocab', 'dim'];
  return requireArray(value, field, 0, LIMITS.maxFeatures, 'features').map((item, i) => {
    const featureField = `${field}[${i}]`;
    const feature = requireRecord(item, featureField, allowedKeys);
    const validated: MultiValuedFeature = {
      ...(feature.name === undefined ? {} : { name: requireUniqueName(feature.name, `${featureField}.name`, featureField, usedNames) }),
      vocab: requireInteger(feature.vocab, `${featureField}.vocab`, 1, LIMITS.maxVocab),
      dim: requireInteger(feature.dim, `${featureField}.dim`, 1, LIMITS.maxWidth),
    };
    if (feature.pooling !== undefined) validated.pooling = requireOneOf(feature.pooling, `${featureField}.pooling`, POOLINGS);
    return validated;
  });
}

function validateInput(value: unknown): InputConfig {
  const input = requireRecord(value, 'input', ['dense', 'categorical', 'multiValued']);
  const usedNames = new Map<string, string>();
  const validated: InputConfig = {};
  if (input.dense !== undefined) validated.dense = requireInteger(input.dense, 'input.dense', 0, LIMITS.maxWidth);
  if (input.categorical !== undefined) {
    validated.categorical = validateFeatures(input.categorical, 'input.categorical', false, usedNames);
  }
  if (input.multiValued !== undefined) {
    validated.multiValued = validateFeatures(input.multiValued, 'input.multiValued', true, usedNames);
  }
  const featureCount = (validated.dense ?? 0) + (validated.categorical?.length ?? 0) + (validated.multiValued?.length ?? 0);
  if (featureCount === 0) {
    check.fail('input', 'input must have at least one feature (dense > 0, categorical or multiValued)');
  }
  return validated;
}

function validateTasks(value: unknown): TaskConfig[] {
  const usedNames = new Map<string, string>();
  const tasks = requireArray(value, 'tasks', 1, LIMITS.maxTasks, 'tasks').map((item, i): TaskConfig => {
    const field = `tasks[${i}]`;
    const task = requireRecord(item, field, ['name', 'type', 'classes', 'conditionalOn']);
    const name = requireUniqueName(task.name, `${field}.name`, field, usedNames);
    const type = requireOneOf(task.type, `${field}.type`, TASK_KINDS);
    if (task.conditionalOn !== undefined && type !== 'binary') {
      check.fail(`${field}.conditionalOn`, `${field}.conditionalOn is only allowed for binary tasks (this task is '${type}')`);
    }
    if (type === 'multiclass') {
      if (task.classes === undefined) check.fail(`${field}.classes`, `${field}.classes is required for a multiclass task`);
      return { name, type, classes: requireInteger(task.classes, `${field}.classes`, 2, LIMITS.maxClasses) };
    }
    if (task.classes !== undefined) {
      check.fail(`${field}.classes`, `${field}.classes is only allowed for multiclass tasks (this task is '${type}')`);
    }
    if (type === 'regression') return { name, type };
    if (task.conditionalOn === undefined) return { name, type };
    if (typeof task.conditionalOn !== 'string')
      check.fail(`${field}.conditionalOn`, `${field}.conditionalOn must be a task name, got ${describeValue(task.conditionalOn)}`);
    return { name, type, conditionalOn: task.conditionalOn };
  });
  tasks.forEach((task, i) => {
    if (task.conditionalOn === undefined) return;
    const field = `tasks[${i}].conditionalOn`;
    const parent = tasks.find((other) => other.name === task.conditionalOn);
    if (parent === undefined)
      check.fail(field, `${field} names '${task.conditionalOn}', which is not a task (tasks: ${quoteList(tasks.map((t) => t.name))})`);
    if (parent.type !== 'binary')
      check.fail(field, `${field} names '${parent.name}', a ${parent.type} task; a conditional task's parent must be binary`);
    // Walk up the chain: it must end without coming back here.
    const chain = [task.name];
    let at: TaskConfig | undefined = parent;
    while (at !== undefined) {
      if (chain.includes(at.name)) check.fail(field, `${field} makes a cycle: ${[...chain, at.name].join(' -> ')}`);
      chain.push(at.name);
      const next: string | undefined = at.conditionalOn;
      at = next === undefined ? undefined : tasks.find((other) => other.name === next);
    }
  });
  return tasks;
}

/** `expertsPerTask` of adatt and ple: one count for every task, or a list of one per task. */
function validateExpertsPerTask(value: unknown, taskCount: number): number | number[] {
  const field = 'expertsPerTask';
  if (Array.isArray(value)) {
    if (value.length !== taskCount) {
      check.fail(field, `${field} must have one entry per task (${taskCount}), got ${value.length}`);
    }
    // Array.from, not map: see requireArray.
    return Array.from(value as unknown[], (count, i) => requireInteger(count, `${field}[${i}]`, 1, LIMITS.maxExperts));
  }
  if (typeof value !== 'number') {
    check.fail(field, `${field} must be an integer or an array of one integer per task, got ${describeValue(value)}`);
  }
  return requireInteger(value, field, 1, LIMITS.maxExperts);
}

function validateGateDims(value: unknown, levelCount: number): number[][] {
  const levels = requireArray(value, 'gateDims', levelCount, levelCount, 'levels (one per expertDims level)');
  return levels.map((widths, level) => requireWidths(widths, `gateDims[${level}]`, 0));
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * Checks every field of a user-supplied config and returns a deep-frozen copy holding only the
 * known keys. Throws a `ConfigError` naming the offending field.
 */
export function validateModelConfig(value: unknown): ModelConfig {
  if (!isRecord(value)) check.fail('', `the config must be an object, got ${describeValue(value)}`);
  const kind = requireOneOf(value.kind, 'kind', MODEL_KINDS);
  const config = requireRecord(value, '', [...COMMON_KEYS, ...KIND_KEYS[kind]]);

  const input = validateInput(config.input);
  const tasks = validateTasks(config.tasks);
  const levels = requireArray(config.expertDims, 'expertDims', 1, LIMITS.maxLevels, 'levels');
  const expertDims = levels.map((widths, level) => requireWidths(widths, `expertDims[${level}]`, 1));
  const common: CommonModelConfig = { input, tasks, expertDims };
  if (config.towerDims !== undefined) common.towerDims = requireWidths(config.towerDims, 'towerDims', 0);
  if (config.seed !== undefined) common.seed = requireInteger(config.seed, 'seed', 0, Number.MAX_SAFE_INTEGER);

  if (KINDS_WITH_SHARED_MODULE.includes(kind)) {
    const clash = tasks.findIndex((task) => task.name === SHARED_MODULE_NAME);
    if (clash >= 0) {
      check.fail(
        `tasks[${clash}].name`,
        `tasks[${clash}].name '${SHARED_MODULE_NAME}' is reserved for the shared experts of '${kind}' models`,
      );
    }
  }

  const optionalNativeResidual = (): { nativeResidual?: boolean } =>
    config.nativeResidual === undefined ? {} : { nativeResidual: requireBoolean(config.nativeResidual, 'nativeResidual') };
  const requireSharedExperts = (): number => requireInteger(config.sharedExperts, 'sharedExperts', 1, LIMITS.maxExperts);

  let validated: ModelConfig;
  switch (kind) {
    case 'adatt-sp':
      validated = {
        kind,
        ...common,
        expertsPerTask: requireInteger(config.expertsPerTask, 'expertsPerTask', 1, LIMITS.maxExperts),
        ...optionalNativeResidual(),
      };
      break;
    case 'adatt':
      validated = {
        kind,
        ...common,
        expertsPerTask: validateExpertsPerTask(config.expertsPerTask, tasks.length),
        sharedExperts: requireSharedExperts(),
        ...optionalNativeResidual(),
      };
      break;
    case 'mmoe':
      validated = {
        kind,
        ...common,
        experts: requireInteger(config.experts, 'experts', 1, LIMITS.maxExperts),
        ...(config.gateDims === undefined ? {} : { gateDims: validateGateDims(config.gateDims, expertDims.length) }),
      };
      break;
    case 'ple':
      validated = {
        kind,
        ...common,
        expertsPerTask: validateExpertsPerTask(config.expertsPerTask, tasks.length),
        sharedExperts: requireSharedExperts(),
      };
      break;
    case 'cross-stitch':
    case 'shared-bottom':
    case 'single-task':
      validated = { kind, ...common };
      break;
  }
  return deepFreeze(validated);
}

/** Outputs of a task's tower: K logits for a K-class task, else one. */
export function taskOutputs(task: TaskConfig): number {
  return task.type === 'multiclass' ? task.classes : 1;
}

/**
 * Converts a config returned by `validateModelConfig` into what the addon receives: defaults filled
 * in, per-task counts expanded, kind-specific fields given their neutral values elsewhere.
 */
export function normalizeModelConfig(config: ModelConfig): NativeModelConfig {
  const taskCount = config.tasks.length;
  const expandPerTask = (count: number | number[]): number[] =>
    typeof count === 'number' ? new Array<number>(taskCount).fill(count) : [...count];
  const native: NativeModelConfig = {
    kind: config.kind,
    denseDim: config.input.dense ?? 0,
    categorical: (config.input.categorical ?? []).map(({ vocab, dim }) => ({ vocab, dim })),
    multiValued: (config.input.multiValued ?? []).map(({ vocab, dim, pooling }) => ({ vocab, dim, pooling: pooling ?? 'mean' })),
    tasks: config.tasks.map((task) => ({
      name: task.name,
      outputs: taskOutputs(task),
      conditionalOn: task.conditionalOn === undefined ? -1 : config.tasks.findIndex((other) => other.name === task.conditionalOn),
    })),
    expertDims: config.expertDims.map((widths) => [...widths]),
    towerDims: [...(config.towerDims ?? [])],
    expertsPerTask: [],
    sharedExperts: 0,
    gateDims: [],
    nativeResidual: false,
    seed: config.seed ?? 0,
  };
  switch (config.kind) {
    case 'adatt-sp':
      native.expertsPerTask = expandPerTask(config.expertsPerTask);
      native.nativeResidual = config.nativeResidual ?? true;
      break;
    case 'adatt':
      native.expertsPerTask = expandPerTask(config.expertsPerTask);
      native.sharedExperts = config.sharedExperts;
      native.nativeResidual = config.nativeResidual ?? true;
      break;
    case 'mmoe':
      native.sharedExperts = config.experts;
      native.gateDims = config.gateDims?.map((widths) => [...widths]) ?? config.expertDims.map(() => []);
      break;
    case 'ple':
      native.expertsPerTask = expandPerTask(config.expertsPerTask);
      native.sharedExperts = config.sharedExperts;
      break;
    case 'cross-stitch':
    case 'shared-bottom':
    case 'single-task':
      break;
  }
  return native;
}
