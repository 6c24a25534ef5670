/**
 * Training and evaluation. The epoch loop, early stopping and best-weight restore live here; each
 * epoch's batches (forward, loss, backward, optimizer step) run natively off the event loop.
 */
import * as fs from 'node:fs/promises';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import type {
  EmbeddingOptimizerType, LossKind, OptimizerType, RawDatasetOptions, RawGradientConflict, RawProgress, RawTrainer, RawTrainerOptions, ScheduleType,
  TaskKind,
} from './addon';
import { EMBEDDING_OPTIMIZER_TYPES, loadAddon, OPTIMIZER_TYPES, SCHEDULE_TYPES } from './addon';
import {
  CALIBRATION_METHODS, readCalibration, reliabilityCurveOf, taskCalibrator,
  type Calibration, type CalibrationMethod, type ReliabilityCurve,
} from './calibration';
import { saveCheckpoint, type TrainingState } from './checkpoint';
import { DataStream } from './data/stream';
import { TensorDataset } from './dataset';
import { readExpertHealthOptions, type ExpertHealth, type ExpertHealthOptions } from './expert-health';
import { callNative, callNativeAsync, ValidationError } from './errors';
import { ensureDirectory } from './files';
import { normalizeModelConfig, type TaskConfig } from './config';
import { Model, type Device, type StateDict } from './model';
import { ProcessGroup } from './distributed';
import { ScriptModel } from './torchscript';
import { chunkPredictions, streamAllPredictions, streamLabelledOutputs, streamMetrics, trainStreamEpoch, type LabelledOutputs } from './streaming';
import { setThreadCount } from './threads';
import { describeValue, findUnknownKey, isRecord, quoteList } from './validation';

export type { EmbeddingOptimizerType, LossKind, OptimizerType, ScheduleType } from './addon';

export interface OptimizerOptions {
  /** Default 'adam'. */
  type?: OptimizerType;
  /** Default 1e-3. */
  lr?: number;
  weightDecay?: number;
  /** SGD momentum. */
  momentum?: number;
  /** Adam(W) betas, default [0.9, 0.999]. */
  betas?: [number, number];
  eps?: number;
}

/**
 * The optimizer of the embedding tables, which train row-sparse: each step reads and writes only
 * the rows its batch touched (docs/training.md, "Embedding tables").
 */
export interface EmbeddingOptimizerOptions {
  /**
   * 'adam': "lazy" Adam, as PyTorch's SparseAdam (moments of touched rows only); 'adagrad': PyTorch's
   * Adagrad on sparse gradients (one accumulator per element); 'rowwise-adagrad': one accumulator
   * per row, as FBGEMM/TorchRec (4 bytes of state per row); 'sgd'.
   */
  type: EmbeddingOptimizerType;
  /** Default: the dense optimizer's lr. The schedule scales both in proportion. */
  lr?: number;
  /** L2 on the touched rows' gradient (rows a batch does not touch do not decay). Default 0. */
  weightDecay?: number;
  /** Adam betas, default the dense optimizer's (or [0.9, 0.999]). */
  betas?: [number, number];
  /** Default the dense optimizer's eps (1e-8). */
  eps?: number;
}

export interface ScheduleOptions {
  /** 'constant' (default), 'step' (lr x gamma every stepSize steps) or 'cosine' (to minLr at the last step). */
  type?: ScheduleType;
  /** Linear warm-up from lr/warmupSteps to lr over this many steps. */
  warmupSteps?: number;
  stepSize?: number;
  gamma?: number;
  minLr?: number;
}

export interface TaskLossOptions {
  /** Default: 'bce' (binary), 'cross-entropy' (multiclass), 'mse' (regression). */
  loss?: LossKind;
  /** Weight of this task in the summed loss (default 1). */
  weight?: number;
  /** Huber loss threshold (default 1). */
  huberDelta?: number;
  /**
   * The task's sample space: its loss counts only rows where binary task `task`'s label equals
   * `equals` (default 1), e.g. conversion on clicked rows; with `metrics: true` its validation
   * metrics too (default false: over every labelled row).
   */
  where?: { task: string; equals?: 0 | 1; metrics?: boolean };
}

/**
 * How task losses are weighted (docs/training.md, "Task weighting"): 'fixed' (each task's
 * `losses[task].weight`), 'uncertainty' (learned log-variances, Kendall et al. 2018), 'gradnorm'
 * (GradNorm, Chen et al. 2018: weights learned so that the tasks' gradient norms on the last
 * shared layer follow their relative training rates; alpha default 1.5) or 'dwa' (Dynamic Weight
 * Averaging, Liu et al. 2019: per epoch from the ratio of the last two epochs' losses, temperature
 * default 2). All multiply the fixed weights.
 */
export type TaskWeightingOptions =
  | TaskWeightingType
  | { type: 'fixed' | 'uncertainty' }
  | { type: 'gradnorm'; alpha?: number }
  | { type: 'dwa'; temperature?: number };
export type TaskWeightingType = 'fixed' | 'uncertainty' | 'gradnorm' | 'dwa';

export interface EarlyStoppingOptions {
  /** A validation metric: 'auc', 'logLoss', 'ne', 'accuracy', 'rmse', 'mae', … */
  metric: string;
  /** A task name, or 'mean' (default) for the mean over tasks reporting the metric. */
  task?: string;
  /** Epochs without improvement before stopping (default 3). */
  patience?: number;
  /** Default: 'max' for auc and accuracy, 'min' otherwise. */
  mode?: 'max' | 'min';
}

/** A progress report from a running epoch (step counts all epochs; examplesPerSecond this epoch's). */
export interface ProgressEvent extends Omit<RawProgress, 'loss'> {
  /** Running mean loss per task over this epoch. */
  loss: Record<string, number>;
}

/** Metrics of one task: auc, logLoss, ne, accuracy, calibration, ece, positiveRate (binary); logLoss, ne,
 * accuracy (multiclass); rmse, mae (regression); count (labelled examples) for all, and weight (their
 * sum of sample weights) when the data has sample weights. */
export type TaskMetrics = Record<string, number>;
export type Metrics = Record<string, TaskMetrics>;

export interface EpochSummary {
  epoch: number;
  steps: number;
  examples: number;
  /** Batches skipped for a non-finite loss (nonFinite: 'skip'). */
  skipped: number;
  seconds: number;
  examplesPerSecond: number;
  /** Mean training loss per task. */
  loss: Record<string, number>;
  /** Each task's weight on its loss at the end of the epoch (fixed x dwa, or the learned uncertainty weight). */
  taskWeights: Record<string, number>;
  /**
   * With `gradientConflict`: means over the epoch's measured steps of each task's gradient norm on
   * the shared parameters, and of the cosine between two tasks' gradients there (keys 'a/b', a
   * before b in task order; negative means the tasks pull the shared parameters apart).
   */
  gradientConflict?: { steps: number; norm: Record<string, number>; cosine: Record<string, number> };
  validation?: Metrics;
  /** With `expertHealth`: the model's expert health on validation rows at the end of the epoch. */
  expertHealth?: ExpertHealth;
  /** The early-stopping value of this epoch. */
  monitored?: number;
  /** This epoch is the best so far by the early-stopping metric. */
  best: boolean;
}

export interface FitOptions {
  /** Default 1. */
  epochs?: number;
  /** Default 256. */
  batchSize?: number;
  /** The dense parameters' optimizer (and the tables', with embeddingOptimizer: 'dense'). */
  optimizer?: OptimizerOptions;
  /**
   * How embedding tables train. Default: row-sparse, with the dense optimizer's counterpart ('adam'
   * for adam and adamw, 'adagrad', 'sgd') at its lr, betas and eps, without weight decay or
   * momentum. 'dense': as any other parameter, full-table gradients stepped by `optimizer` (cost
   * grows with the vocabulary). Only native models with categorical or multi-valued features have tables.
   */
  embeddingOptimizer?: EmbeddingOptimizerOptions | 'dense';
  schedule?: ScheduleOptions;
  /** Clip the global gradient norm to this value (default: no clipping). */
  clipNorm?: number;
  /** Per task name. */
  losses?: Record<string, TaskLossOptions>;
  /** How task losses are weighted (default 'fixed'; see TaskWeightingOptions). */
  taskWeighting?: TaskWeightingOptions;
  /** Shuffle seed (default 0): same seed and one thread give identical loss histories. */
  seed?: number;
  /** Moves the model there before training (default: where it is). */
  device?: Device;
  /** LibTorch intra-op threads for this process. */
  threads?: number;
  /** Evaluated after every epoch. */
  validation?: Data;
  earlyStopping?: EarlyStoppingOptions;
  /** Load the best epoch's weights at the end (default true with earlyStopping). */
  restoreBest?: boolean;
  onProgress?: (event: ProgressEvent) => void;
  onEpoch?: (summary: EpochSummary) => void;
  /** Stops training before the next batch; the model stays usable and fit resolves with aborted: true. */
  signal?: AbortSignal;
  /** Seconds between progress events (default 0.25). */
  progressInterval?: number;
  /** On a NaN/infinite loss: 'stop' (default, rejects with NonFiniteError) or 'skip' the batch. */
  nonFinite?: 'stop' | 'skip';
  /**
   * Measure task-gradient conflict every `every` steps (docs/training.md, "Task-gradient conflict"):
   * each task's gradient norm on the shared parameters and the pairwise cosines, per epoch in
   * `gradientConflict`. Off by default (it costs one backward pass per task on measured steps).
   */
  gradientConflict?: { every: number };
  /**
   * Measure expert health (`model.expertStats`) on the validation rows after every epoch, into
   * `EpochSummary.expertHealth` (native models with a TensorDataset validation; `true`: defaults).
   */
  expertHealth?: ExpertHealthOptions | true;
  /** Batch size for validation (default 4096). */
  evalBatchSize?: number;
  /**
   * After training (and restoring the best epoch), fit calibrators on `validation` (`calibrate`) and
   * set `model.calibration`; the result is in `FitResult.calibration`. fit clears any calibration
   * the model had before, since it belonged to the old weights.
   */
  calibration?: Omit<CalibrateOptions, 'batchSize' | 'distributed'>;
  /**
   * Data-parallel training across the group's processes: parameters start from rank 0's, each rank
   * takes a disjoint slice of every global batch (`batchSize` per rank), gradients are averaged, and
   * validation metrics are computed over the whole split; rank 0 alone writes checkpoints.
   */
  distributed?: ProcessGroup;
  /** Save a checkpoint after every `every` epochs into `dir` (see CheckpointOptions). */
  checkpoint?: CheckpointOptions;
  /**
   * Continue an interrupted run from a checkpoint's training state (`(await loadCheckpoint(p)).training`),
   * training its model; `epochs` counts the whole run. Same seed and one thread reproduce the
   * uninterrupted run's weights and loss history exactly.
   */
  resume?: TrainingState;
}

export interface CheckpointOptions {
  /** Directory for `epoch-NNNN.adatt` files (created if missing). */
  dir: string;
  /** Save every this many epochs (default 1); the final epoch is always saved. */
  every?: number;
  /** Keep the newest this many checkpoints (default 1). */
  keepLast?: number;
  /** Also keep the best this many by the early-stopping metric (default 1 with earlyStopping, else 0). */
  keepBest?: number;
}

export interface FitResult {
  /** Every epoch of the run, including those before a resume. */
  epochs: EpochSummary[];
  /** Checkpoint files still on disk, oldest first. */
  checkpoints: string[];
  bestEpoch?: number;
  bestValue?: number;
  stoppedEarly: boolean;
  aborted: boolean;
  /** Optimizer steps taken. */
  steps: number;
  /** With the `calibration` option: the fitted calibrators and their reliability curves on validation. */
  calibration?: CalibrationResult;
}

export interface EvaluateOptions {
  /** Default 4096. */
  batchSize?: number;
  /** Per task name, metrics only over rows where binary task `task`'s label equals `equals` (default 1). */
  where?: Record<string, { task: string; equals?: 0 | 1 }>;
  /** Each rank computes a shard; every rank gets the metrics (or predictions) of the whole dataset. */
  distributed?: ProcessGroup;
  /** Apply the model's `calibration` to binary tasks' probabilities (default true; false: the raw ones). */
  calibrated?: boolean;
}

export interface CalibrateOptions {
  /** 'platt' (default): sigmoid(a z + b); 'temperature': sigmoid(z / T); 'isotonic': monotone piecewise-linear. */
  method?: CalibrationMethod;
  /** Binary task names to calibrate (default: every binary task). */
  tasks?: string[];
  /** Default 4096. */
  batchSize?: number;
  /** Each rank predicts a shard; every rank fits the same calibrators on the whole dataset. */
  distributed?: ProcessGroup;
}

export interface CalibrationResult {
  /** Per calibrated task, its calibrator: assign it to `model.calibration` (fit does). */
  calibration: Calibration;
  /** Per calibrated task, the reliability curve on the calibration data before (raw) and after. */
  curves: Record<string, { before: ReliabilityCurve; after: ReliabilityCurve }>;
}

const FIT_KEYS = ['epochs', 'batchSize', 'optimizer', 'embeddingOptimizer', 'schedule', 'clipNorm', 'losses', 'taskWeighting', 'seed', 'device', 'threads',
  'validation', 'earlyStopping', 'restoreBest', 'onProgress', 'onEpoch', 'signal', 'progressInterval', 'nonFinite',
  'evalBatchSize', 'checkpoint', 'resume', 'distributed', 'gradientConflict', 'calibration', 'expertHealth'] as const;
/** The row-sparse counterpart of each dense optimizer: what tables get by default. */
const EMBEDDING_COUNTERPART: Record<OptimizerType, EmbeddingOptimizerType> = {
  adam: 'adam', adamw: 'adam', adagrad: 'adagrad', sgd: 'sgd',
};
const LOSSES: Record<TaskKind, readonly LossKind[]> = {
  binary: ['bce'],
  multiclass: ['cross-entropy'],
  regression: ['mse', 'huber'],
};
/** Metrics where larger is better: early stopping maximises them, reports mark them so. */
export const MAXIMIZED_METRICS: ReadonlySet<string> = new Set(['auc', 'gauc', 'gaucMean', 'accuracy']);

function fail(field: string, message: string): never {
  throw new ValidationError(field, message);
}

function readOptions(value: unknown, field: string, keys: readonly string[]): Record<string, unknown> {
  if (value === undefined) return {};
  if (!isRecord(value)) fail(field, `${field} must be an object, got ${describeValue(value)}`);
  const unknown = findUnknownKey(value, keys);
  if (unknown !== undefined) fail(`${field}.${unknown}`, `unknown option ${field}.${unknown} (allowed: ${quoteList(keys)})`);
  return value;
}

function readNumber(value: unknown, field: string, fallback: number,
  { min = -Infinity, max = Infinity, integer = false, exclusiveMin = false, exclusiveMax = false } = {}): number {
  if (value === undefined) return fallback;
  const ok = typeof value === 'number' && Number.isFinite(value) && (!integer || Number.isInteger(value)) &&
    (exclusiveMin ? value > min : value >= min) && (exclusiveMax ? value < max : value <= max);
  if (!ok) {
    const kind = integer ? 'an integer' : 'a number';
    const range = exclusiveMin ? `> ${min}` : Number.isFinite(min) ? `>= ${min}` : 'finite';
    const upper = Number.isFinite(max) ? ` and ${exclusiveMax ? '<' : '<='} ${max}` : '';
    fail(field, `${field} must be ${kind} ${range}${upper}, got ${describeValue(value)}`);
  }
  return value as number;
}

function readChoice<T extends string>(value: unknown, field: string, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!choices.includes(value as T)) fail(field, `${field} must be one of ${quoteList(choices)}, got ${describeValue(value)}`);
  return value as T;
}

/** A native model, or a TorchScript model whose tasks are configured. */
export type TrainableModel = Model | ScriptModel;

function tasksOf(model: TrainableModel): readonly TaskConfig[] {
  if (model instanceof ScriptModel) return model.tasks;
  if (!(model instanceof Model)) fail('model', `model must be a Model or a ScriptModel, got ${describeValue(model)}`);
  return model.config.tasks;
}

function taskKinds(model: TrainableModel): TaskKind[] {
  return tasksOf(model).map((task) => task.type);
}

/** Rows held in memory, or streamed from files (`openStream`). */
export type Data = TensorDataset | DataStream;

function checkDatasetTasks(model: TrainableModel, data: Data, field: string): void {
  if (data === null || typeof data !== 'object' || (!(data instanceof DataStream) && typeof (data as TensorDataset)._raw !== 'function')) {
    fail(field, `${field} must be a TensorDataset or a DataStream, got ${describeValue(data)}`);
  }
  const names = tasksOf(model).map((task) => task.name);
  if (data.taskNames !== undefined && data.taskNames.join('\0') !== names.join('\0')) {
    fail(field, `${field} has tasks [${data.taskNames.join(', ')}] but the model has [${names.join(', ')}]`);
  }
}

function byTask<T>(model: TrainableModel, values: readonly T[]): Record<string, T> {
  return Object.fromEntries(tasksOf(model).map((task, t) => [task.name, values[t] as T]));
}

/** Whether `model` has embedding tables that can train row-sparse. */
function hasEmbeddingTables(model: TrainableModel): boolean {
  if (!(model instanceof Model)) return false;
  const { categorical = [], multiValued = [] } = model.config.input;
  return categorical.length + multiValued.length > 0;
}

function readBetas(value: unknown, field: string, fallback: readonly [number, number]): [number, number] {
  if (value === undefined) return [fallback[0], fallback[1]];
  if (!Array.isArray(value) || value.length !== 2) fail(field, `${field} must be [beta1, beta2], got ${describeValue(value)}`);
  return [
    readNumber(value[0], `${field}[0]`, fallback[0], { min: 0, max: 1, exclusiveMax: true }),
    readNumber(value[1], `${field}[1]`, fallback[1], { min: 0, max: 1, exclusiveMax: true }),
  ];
}

/** How a resumed run's tables trained: checkpoints made before row-sparse tables existed say nothing ('dense'). */
function resumedEmbeddingOptimizer(resume: TrainingState | undefined): string | undefined {
  return resume === undefined ? undefined : resume.embeddingOptimizerType ?? 'dense';
}

function embeddingOptimizerOptions(model: TrainableModel, value: unknown, dense: RawTrainerOptions['optimizer'],
  resumedType: string | undefined): RawTrainerOptions['embeddingOptimizer'] {
  const field = 'embeddingOptimizer';
  if (value === 'dense') return { type: 'dense' };
  if (!hasEmbeddingTables(model)) {
    if (value === undefined) return { type: 'dense' };
    fail(field, `${field} needs a model with embedding tables (categorical or multi-valued features); this one has none`);
  }
  if (value === undefined && resumedType === 'dense') return { type: 'dense' };
  const spec = value === undefined ? { type: EMBEDDING_COUNTERPART[dense.type] }
    : readOptions(value, field, ['type', 'lr', 'weightDecay', 'betas', 'eps']);
  if (spec.type === undefined) {
    fail(`${field}.type`, `${field}.type is required (${quoteList(EMBEDDING_OPTIMIZER_TYPES)}), or use '${field}: "dense"'`);
  }
  const [beta1, beta2] = readBetas(spec.betas, `${field}.betas`, [dense.beta1, dense.beta2]);
  return {
    type: readChoice(spec.type, `${field}.type`, EMBEDDING_OPTIMIZER_TYPES, 'adam'),
    lr: readNumber(spec.lr, `${field}.lr`, dense.lr, { min: 0, exclusiveMin: true }),
    weightDecay: readNumber(spec.weightDecay, `${field}.weightDecay`, 0, { min: 0 }),
    beta1,
    beta2,
    eps: readNumber(spec.eps, `${field}.eps`, dense.eps, { min: 0, exclusiveMin: true }),
  };
}

/** A task's sample space: the index of the binary task whose label decides, and the value it must have. */
function readSampleSpace(model: TrainableModel, taskName: string, value: unknown, field: string): { task: number; equals: 0 | 1; metrics: boolean } | undefined {
  if (value === undefined) return undefined;
  const spec = readOptions(value, field, ['task', 'equals', 'metrics']);
  const tasks = tasksOf(model);
  const others = tasks.filter((task) => task.name !== taskName && task.type === 'binary').map((task) => task.name);
  if (others.length === 0) fail(`${field}.task`, `${field}.task must name another binary task, and the model has none`);
  if (spec.task === undefined) fail(`${field}.task`, `${field}.task must name another binary task (${quoteList(others)})`);
  const condition = readChoice(spec.task, `${field}.task`, others, others[0]!);
  const equals = readChoice(spec.equals === undefined ? undefined : String(spec.equals), `${field}.equals`, ['0', '1'] as const, '1');
  if (spec.metrics !== undefined && typeof spec.metrics !== 'boolean') fail(`${field}.metrics`, `${field}.metrics must be a boolean`);
  return { task: tasks.findIndex((task) => task.name === condition), equals: equals === '1' ? 1 : 0, metrics: spec.metrics === true };
}

const TASK_WEIGHTINGS: readonly TaskWeightingType[] = ['fixed', 'uncertainty', 'gradnorm', 'dwa'];

interface TaskWeighting {
  type: TaskWeightingType;
  /** DWA's temperature. */
  temperature: number;
  /** GradNorm's alpha. */
  alpha: number;
}

function readTaskWeighting(model: TrainableModel, value: unknown): TaskWeighting {
  const spec: Record<string, unknown> = typeof value === 'string' || value === undefined
    ? { type: value }
    : readOptions(value, 'taskWeighting', ['type', 'temperature', 'alpha']);
  const type = readChoice(spec.type, typeof value === 'string' ? 'taskWeighting' : 'taskWeighting.type', TASK_WEIGHTINGS, 'fixed');
  const onlyFor: Record<string, TaskWeightingType> = { temperature: 'dwa', alpha: 'gradnorm' };
  for (const [key, owner] of Object.entries(onlyFor)) {
    if (type !== owner && spec[key] !== undefined) fail(`taskWeighting.${key}`, `taskWeighting.${key} is only for '${owner}' (this is '${type}')`);
  }
  if (type === 'gradnorm' && (!(model instanceof Model) || model.config.kind === 'single-task')) {
    fail('taskWeighting', "taskWeighting 'gradnorm' needs a native Model whose tasks share a layer (any kind but 'single-task')");
  }
  return {
    type,
    temperature: readNumber(spec.temperature, 'taskWeighting.temperature', 2, { min: 0, exclusiveMin: true }),
    alpha: readNumber(spec.alpha, 'taskWeighting.alpha', 1.5, { min: 0, max: 100 }),
  };
}

/**
 * Dynamic Weight Averaging (Liu, Johns and Davison, CVPR 2019): for epoch k >= 2, w_t = T exp(r_t / temperature) /
 * sum_i exp(r_i / temperature) with r_t = L_t(k-1) / L_t(k-2), the mean training losses of the two epochs before; 1 before.
 * A task whose loss of epoch k-2 is 0 (no labelled rows) keeps ratio 1.
 */
export function dwaWeights(history: readonly Pick<EpochSummary, 'loss'>[], taskNames: readonly string[], temperature: number): number[] {
  if (history.length < 2) return taskNames.map(() => 1);
  const [before, last] = [history.at(-2)!.loss, history.at(-1)!.loss];
  const ratios = taskNames.map((name) => ((before[name] ?? 0) > 0 ? (last[name] ?? 0) / before[name]! : 1));
  const exps = ratios.map((ratio) => Math.exp(ratio / temperature));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => (taskNames.length * e) / sum);
}

function trainerOptions(model: TrainableModel, options: Record<string, unknown>, batchSize: number, totalSteps: number,
  resume: TrainingState | undefined, weighting: TaskWeighting): RawTrainerOptions {
  const optimizer = readOptions(options.optimizer, 'optimizer', ['type', 'lr', 'weightDecay', 'momentum', 'betas', 'eps']);
  const [beta1, beta2] = readBetas(optimizer.betas, 'optimizer.betas', [0.9, 0.999]);
  const schedule = readOptions(options.schedule, 'schedule', ['type', 'warmupSteps', 'stepSize', 'gamma', 'minLr']);
  const losses = readOptions(options.losses, 'losses', tasksOf(model).map((task) => task.name));
  const kinds = taskKinds(model);
  const dense: RawTrainerOptions['optimizer'] = {
    type: readChoice(optimizer.type, 'optimizer.type', OPTIMIZER_TYPES, 'adam'),
    lr: readNumber(optimizer.lr, 'optimizer.lr', 1e-3, { min: 0, exclusiveMin: true }),
    weightDecay: readNumber(optimizer.weightDecay, 'optimizer.weightDecay', 0, { min: 0 }),
    momentum: readNumber(optimizer.momentum, 'optimizer.momentum', 0, { min: 0, max: 1 }),
    beta1,
    beta2,
    eps: readNumber(optimizer.eps, 'optimizer.eps', 1e-8, { min: 0, exclusiveMin: true }),
  };
  return {
    optimizer: dense,
    embeddingOptimizer: embeddingOptimizerOptions(model, options.embeddingOptimizer, dense, resumedEmbeddingOptimizer(resume)),
    schedule: {
      type: readChoice(schedule.type, 'schedule.type', SCHEDULE_TYPES, 'constant'),
      warmupSteps: readNumber(schedule.warmupSteps, 'schedule.warmupSteps', 0, { min: 0, integer: true }),
      stepSize: readNumber(schedule.stepSize, 'schedule.stepSize', 1, { min: 1, integer: true }),
      gamma: readNumber(schedule.gamma, 'schedule.gamma', 0.1, { min: 0, exclusiveMin: true }),
      totalSteps,
      minLr: readNumber(schedule.minLr, 'schedule.minLr', 0, { min: 0 }),
    },
    taskTypes: kinds,
    losses: tasksOf(model).map((task, t) => {
      const field = `losses.${task.name}`;
      const spec = readOptions(losses[task.name], field, ['loss', 'weight', 'huberDelta', 'where']);
      const allowed = LOSSES[kinds[t]!];
      const where = readSampleSpace(model, task.name, spec.where, `${field}.where`);
      return {
        loss: readChoice(spec.loss, `${field}.loss`, allowed, allowed[0]!),
        weight: readNumber(spec.weight, `${field}.weight`, 1, { min: 0 }),
        huberDelta: readNumber(spec.huberDelta, `${field}.huberDelta`, 1, { min: 0, exclusiveMin: true }),
        whereTask: where?.task ?? -1,
        whereEquals: where?.equals ?? 1,
      };
    }),
    taskWeighting: weighting.type === 'dwa' ? 'fixed' : weighting.type,
    ...(weighting.type === 'gradnorm' ? { gradNormAlpha: weighting.alpha } : {}),
    batchSize,
    seed: readNumber(options.seed, 'seed', 0, { min: 0, integer: true, max: Number.MAX_SAFE_INTEGER }),
    // Beyond 1e30 the norm's arithmetic overflows float32; no real norm is that large.
    clipNorm: readNumber(options.clipNorm, 'clipNorm', 0, { min: 0, max: 1e30 }),
    nonFinite: readChoice(options.nonFinite, 'nonFinite', ['stop', 'skip'] as const, 'stop'),
    conflictEvery: options.gradientConflict === undefined
      ? 0
      : readNumber(readOptions(options.gradientConflict, 'gradientConflict', ['every']).every, 'gradientConflict.every', 1,
        { min: 1, integer: true, max: Number.MAX_SAFE_INTEGER }),
  };
}

/** Means of a pass's conflict sums by task name and 'a/b' pair (NaN where never measured). */
function conflictSummary(taskNames: readonly string[], conflict: RawGradientConflict): NonNullable<EpochSummary['gradientConflict']> {
  const mean = (sum: number, count: number): number => (count > 0 ? sum / count : NaN);
  const cosine: Record<string, number> = {};
  taskNames.forEach((a, i) => taskNames.forEach((b, j) => {
    const at = i * taskNames.length + j;
    if (i < j) cosine[`${a}/${b}`] = mean(conflict.cosineSums[at] as number, conflict.cosineCounts[at] as number);
  }));
  return {
    steps: conflict.steps,
    norm: Object.fromEntries(taskNames.map((name, t) => [name, mean(conflict.normSums[t] as number, conflict.normCounts[t] as number)])),
    cosine,
  };
}

/** The early-stopping value of one epoch's validation metrics (undefined when no task reports it). */
function monitoredValue(metrics: Metrics, stopping: Required<Pick<EarlyStoppingOptions, 'metric' | 'task'>>): number | undefined {
  if (stopping.task !== 'mean') return metrics[stopping.task]?.[stopping.metric];
  const values = Object.values(metrics).map((m) => m[stopping.metric]).filter((v): v is number => Number.isFinite(v));
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : undefined;
}

/**
 * Trains `model` on `train`. Resolves with per-epoch summaries; rejects with `ValidationError` for bad
 * options or data that does not fit the model, `NonFiniteError` on a NaN loss (nonFinite: 'stop').
 */
export async function fit(model: TrainableModel, train: Data, fitOptions: FitOptions = {}): Promise<FitResult> {
  const options = readOptions(fitOptions, 'options', FIT_KEYS);
  checkDatasetTasks(model, train, 'train');
  const validation = options.validation as Data | undefined;
  if (validation !== undefined) checkDatasetTasks(model, validation, 'validation');
  const epochs = readNumber(options.epochs, 'epochs', 1, { min: 1, max: 1e9, integer: true });
  const resume = options.resume as TrainingState | undefined;
  if (resume !== undefined && (!isRecord(resume) || !(resume.optimizerState instanceof Uint8Array))) {
    fail('resume', 'resume must be the training state of a checkpoint (loadCheckpoint(file).training)');
  }
  const initialEpoch = resume?.nextEpoch ?? 0;
  if (initialEpoch >= epochs) fail('epochs', `epochs (${epochs}) must exceed the resumed run's ${initialEpoch} finished epochs`);
  const batchSize = readNumber(options.batchSize, 'batchSize', 256, { min: 1, integer: true });
  const evalBatchSize = readNumber(options.evalBatchSize, 'evalBatchSize', 4096, { min: 1, integer: true });
  const interval = readNumber(options.progressInterval, 'progressInterval', 0.25, { min: 0 });
  for (const callback of ['onProgress', 'onEpoch'] as const) {
    if (options[callback] !== undefined && typeof options[callback] !== 'function') fail(callback, `${callback} must be a function`);
  }
  const signal = options.signal as AbortSignal | undefined;
  if (signal !== undefined && !(signal instanceof AbortSignal)) fail('signal', 'signal must be an AbortSignal');

  let stopping: { metric: string; task: string; patience: number; mode: 'max' | 'min' } | undefined;
  if (options.earlyStopping !== undefined) {
    const spec = readOptions(options.earlyStopping, 'earlyStopping', ['metric', 'task', 'patience', 'mode']);
    if (typeof spec.metric !== 'string' || spec.metric === '') fail('earlyStopping.metric', 'earlyStopping.metric must name a metric');
    if (validation === undefined) fail('earlyStopping', 'earlyStopping needs a validation dataset');
    const tasks = ['mean', ...tasksOf(model).map((task) => task.name)];
    stopping = {
      metric: spec.metric,
      task: readChoice(spec.task, 'earlyStopping.task', tasks, 'mean'),
      patience: readNumber(spec.patience, 'earlyStopping.patience', 3, { min: 1, integer: true }),
      mode: readChoice(spec.mode, 'earlyStopping.mode', ['max', 'min'] as const,
        MAXIMIZED_METRICS.has(spec.metric) ? 'max' : 'min'),
    };
  }
  const restoreBest = options.restoreBest ?? (stopping !== undefined && model instanceof Model);
  if (typeof restoreBest !== 'boolean') fail('restoreBest', 'restoreBest must be a boolean');
  if (!(model instanceof Model) && (restoreBest || options.checkpoint !== undefined || resume !== undefined)) {
    fail('model', 'restoreBest, checkpoint and resume need a native Model; save a TorchScript model with save()');
  }
  const nativeModel = model as Model;
  let calibration: FitOptions['calibration'];
  if (options.calibration !== undefined) {
    const spec = readOptions(options.calibration, 'calibration', ['method', 'tasks']);
    if (validation === undefined) fail('calibration', 'calibration needs a validation dataset to fit the calibrators on');
    readChoice(spec.method, 'calibration.method', CALIBRATION_METHODS, 'platt');
    binaryTasks(model, spec.tasks, 'calibration.tasks', 'to calibrate');
    calibration = spec as FitOptions['calibration'];
  }
  let expertHealth: ExpertHealthOptions | undefined;
  if (options.expertHealth !== undefined) {
    if (!(model instanceof Model)) fail('expertHealth', 'expertHealth needs a native Model (TorchScript models have no known experts)');
    if (!(validation instanceof TensorDataset)) fail('expertHealth', 'expertHealth needs a validation TensorDataset to measure on');
    expertHealth = readExpertHealthOptions(options.expertHealth === true ? {} : options.expertHealth, 'expertHealth');
  }
  // Everything is validated before the first side effect (threads, device, folders, collectives).
  const threads = options.threads === undefined ? undefined : readNumber(options.threads, 'threads', 1, { min: 1, max: 1024, integer: true });
  const checkpoints = readCheckpointOptions(options.checkpoint, stopping !== undefined);
  const batchesPerEpoch = Math.ceil(rowsOf(train) / batchSize);
  if (!Number.isSafeInteger(epochs * batchesPerEpoch)) {
    fail('epochs', `epochs x batches per epoch (${epochs} x ${batchesPerEpoch}) is more steps than can be counted`);
  }
  const weighting = readTaskWeighting(model, options.taskWeighting);
  const raw = trainerOptions(model, options, batchSize, epochs * batchesPerEpoch, resume, weighting);
  const taskNames = tasksOf(model).map((task) => task.name);
  // Validation metrics in a task's sample space where its loss asks for it.
  const lossOptions = (options.losses ?? {}) as Record<string, TaskLossOptions | undefined>;
  const validationWhere = Object.fromEntries(taskNames.flatMap((name) => {
    const where = lossOptions[name]?.where;
    return where?.metrics ? [[name, { task: where.task, equals: where.equals ?? 1 }]] : [];
  })) as EvaluateOptions['where'];
  if (resume !== undefined) {
    if (options.seed !== undefined && options.seed !== resume.seed) {
      fail('seed', `seed ${String(options.seed)} differs from the resumed run's seed ${resume.seed}`);
    }
    if (resume.optimizerType !== raw.optimizer.type) {
      fail('optimizer.type', `optimizer '${raw.optimizer.type}' differs from the resumed run's '${resume.optimizerType}'`);
    }
    const resumedTables = resumedEmbeddingOptimizer(resume);
    if (resumedTables !== raw.embeddingOptimizer.type) {
      fail('embeddingOptimizer', `embeddingOptimizer '${raw.embeddingOptimizer.type}' differs from the resumed run's '${resumedTables}'`);
    }
    if ((resume.taskWeighting ?? 'fixed') !== weighting.type) {
      fail('taskWeighting', `taskWeighting '${weighting.type}' differs from the resumed run's '${resume.taskWeighting ?? 'fixed'}'`);
    }
    raw.seed = resume.seed;
  }
  const group = readGroup(options.distributed);
  if (group) {
    // The causes first: a batch size changes the schedule's step count too.
    const { distributed: _, batchSize: __, schedule, ...plan } = raw;
    await group.agree('fit', [
      ...modelPlan(model), ['batchSize', batchSize], ['epochs', epochs], ...Object.entries(plan), ['schedule', schedule],
      ['resumed at step', resume?.step ?? 0],
      ...datasetPlan('train', train), ...(validation ? datasetPlan('validation', validation) : []), ['evalBatchSize', evalBatchSize],
    ]);
    raw.distributed = group._raw();
  }
  if (threads !== undefined) setThreadCount(threads);
  model.calibration = undefined;
  if (options.device !== undefined) await model.to(options.device as Device);
  if (checkpoints) await ensureDirectory(checkpoints.dir);
  const writesCheckpoints = checkpoints !== undefined && (group === undefined || group.rank === 0);
  const addon = loadAddon();
  const trainer: RawTrainer = callNative(() => new addon.Trainer(model._raw(), raw));
  const onAbort = (): void => trainer.abort();
  signal?.addEventListener('abort', onAbort);

  const onProgress = options.onProgress as FitOptions['onProgress'];
  const onEpoch = options.onEpoch as FitOptions['onEpoch'];
  const result: FitResult = {
    epochs: [...(resume?.history ?? [])], checkpoints: [], stoppedEarly: false, aborted: false, steps: 0,
    bestEpoch: resume?.bestEpoch, bestValue: resume?.bestValue,
  };
  let best: StateDict | undefined = resume?.bestWeights;
  let epochsSinceBest = resume?.epochsSinceBest ?? 0;
  const saved: { file: string; epoch: number; value?: number }[] = [];
  try {
    if (resume !== undefined) await callNativeAsync(() => trainer.loadState(resume.optimizerState, resume.step));
    for (let epoch = initialEpoch; epoch < epochs; epoch += 1) {
      if (signal?.aborted) {
        result.aborted = true;
        break;
      }
      if (weighting.type === 'dwa') {
        const weights = dwaWeights(result.epochs, taskNames, weighting.temperature);
        callNative(() => trainer.setTaskWeights(weights));
      }
      // A callback that throws stops the run before its next batch, and fit rejects with its error.
      let callbackError: { error: unknown } | undefined;
      const progress = onProgress && ((p: RawProgress): void => {
        if (callbackError) return;
        try {
          onProgress({ ...p, loss: byTask(model, p.loss) });
        } catch (error) {
          callbackError = { error };
          trainer.abort();
        }
      });
      const done = train instanceof DataStream
        ? await trainStreamEpoch(trainer, train, epoch, batchSize, progress, interval, group)
        : await callNativeAsync(() => trainer.trainEpoch(train._raw(), epoch, progress, interval, { shuffleKey: epoch, ownBatches: -1, hasRows: true }));
      if (callbackError) throw callbackError.error;
      result.steps += done.steps;
      const summary: EpochSummary = {
        epoch,
        steps: done.steps,
        examples: done.examples,
        skipped: done.skipped,
        seconds: done.seconds,
        examplesPerSecond: done.examples / Math.max(done.seconds, 1e-9),
        loss: byTask(model, done.loss),
        taskWeights: byTask(model, callNative(() => trainer.taskWeights())),
        ...(done.conflict ? { gradientConflict: conflictSummary(taskNames, done.conflict) } : {}),
        best: false,
      };
      if (done.aborted) {
        result.aborted = true;
        result.epochs.push(summary);
        break;
      }
      if (validation !== undefined) {
        summary.validation = await evaluate(model, validation, { batchSize: evalBatchSize, distributed: group, where: validationWhere });
      }
      if (expertHealth) summary.expertHealth = await nativeModel.expertStats(validation as TensorDataset, expertHealth);
      if (stopping && summary.validation) {
        const value = monitoredValue(summary.validation, stopping);
        summary.monitored = value;
        const improved = value !== undefined && (result.bestValue === undefined ||
          (stopping.mode === 'max' ? value > result.bestValue : value < result.bestValue));
        if (improved) {
          result.bestValue = value;
          result.bestEpoch = epoch;
          summary.best = true;
          epochsSinceBest = 0;
          if (restoreBest) best = await nativeModel.stateDict({ layout: 'native' });
        } else {
          epochsSinceBest += 1;
        }
      }
      result.epochs.push(summary);
      onEpoch?.(summary);
      const stopNow = stopping !== undefined && epochsSinceBest >= stopping.patience;
      if (writesCheckpoints && ((epoch + 1) % checkpoints!.every === 0 || epoch + 1 === epochs || stopNow)) {
        const file = path.join(checkpoints!.dir, `epoch-${String(epoch).padStart(4, '0')}.adatt`);
        await saveCheckpoint(file, nativeModel, {
          schema: train.schema,
          training: {
            nextEpoch: epoch + 1, step: trainer.step(), seed: raw.seed, optimizerType: raw.optimizer.type,
            embeddingOptimizerType: raw.embeddingOptimizer.type, taskWeighting: weighting.type,
            optimizerState: await callNativeAsync(() => trainer.saveState()), history: result.epochs,
            bestEpoch: result.bestEpoch, bestValue: result.bestValue, epochsSinceBest,
            ...(restoreBest && best ? { bestWeights: best } : {}),
          },
        });
        saved.push({ file, epoch, value: summary.monitored });
        await pruneCheckpoints(saved, checkpoints!, stopping?.mode ?? 'max');
      }
      if (stopNow) {
        result.stoppedEarly = true;
        break;
      }
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    trainer.dispose();
  }
  if (best !== undefined) await nativeModel.loadStateDict(best);
  result.checkpoints = saved.map((entry) => entry.file);
  if (calibration !== undefined && !result.aborted) {
    result.calibration = await calibrate(model, validation!, { ...calibration, batchSize: evalBatchSize, distributed: group });
    model.calibration = result.calibration.calibration;
  }
  return result;
}

/** What must match across ranks about a model: its architecture and shapes (not its seed: rank 0's weights win). */
function modelPlan(model: TrainableModel): [string, unknown][] {
  if (model instanceof ScriptModel) {
    return [['model', 'TorchScript'], ['model.parameters', model.parameterCount()], ['model.tasks', model.tasks]];
  }
  const { seed: _, ...config } = normalizeModelConfig(model.config);
  return Object.entries(config).map(([key, value]) => [`model.${key}`, value]);
}

/**
 * What must match across ranks about a dataset: every rank holds the same rows and takes its slice,
 * or streams the same source (each reading its part).
 */
function datasetPlan(name: string, data: Data): [string, unknown][] {
  const schema: [string, unknown] = [`${name}.schema`, data.schema === undefined ? null : createHash('sha256').update(JSON.stringify(data.schema)).digest('hex')];
  if (data instanceof DataStream) return [[`${name}.stream`, data.source], [`${name}.rows`, data.rows], [`${name}.chunkRows`, data.chunkRows], schema];
  return [
    [`${name}.size`, data.size], [`${name}.bytes`, data.bytes], [`${name}.taskNames`, data.taskNames ?? null], schema,
  ];
}

function readGroup(value: unknown): ProcessGroup | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof ProcessGroup)) fail('distributed', `distributed must be a ProcessGroup (initProcessGroup()), got ${describeValue(value)}`);
  return value;
}

function readCheckpointOptions(value: unknown, hasStopping: boolean): Required<CheckpointOptions> | undefined {
  if (value === undefined) return undefined;
  const spec = readOptions(value, 'checkpoint', ['dir', 'every', 'keepLast', 'keepBest']);
  if (typeof spec.dir !== 'string' || spec.dir === '') fail('checkpoint.dir', 'checkpoint.dir must be a directory path');
  return {
    dir: path.resolve(spec.dir),
    every: readNumber(spec.every, 'checkpoint.every', 1, { min: 1, integer: true }),
    keepLast: readNumber(spec.keepLast, 'checkpoint.keepLast', 1, { min: 1, integer: true }),
    keepBest: readNumber(spec.keepBest, 'checkpoint.keepBest', hasStopping ? 1 : 0, { min: 0, integer: true }),
  };
}

/** Deletes checkpoints that are neither among the newest `keepLast` nor the best `keepBest`. */
async function pruneCheckpoints(saved: { file: string; epoch: number; value?: number }[],
  options: Required<CheckpointOptions>, mode: 'max' | 'min'): Promise<void> {
  const keep = new Set(saved.slice(-options.keepLast).map((entry) => entry.file));
  const ranked = saved.filter((entry) => entry.value !== undefined)
    .sort((a, b) => (mode === 'max' ? b.value! - a.value! : a.value! - b.value!));
  for (const entry of ranked.slice(0, options.keepBest)) keep.add(entry.file);
  for (let i = saved.length - 1; i >= 0; i -= 1) {
    if (keep.has(saved[i]!.file)) continue;
    await fs.rm(saved[i]!.file, { force: true });
    saved.splice(i, 1);
  }
}

/**
 * The native options of evaluate and predict, validated; ranks that evaluate together first agree
 * on the model, the rows and the batch size (their outputs are gathered row by row).
 */
async function datasetOptions(what: string, model: TrainableModel, data: Data, options: EvaluateOptions): Promise<RawDatasetOptions> {
  const { batchSize: givenBatchSize, distributed, where: givenWhere, calibrated } =
    readOptions(options, 'options', ['batchSize', 'distributed', 'where', 'calibrated']);
  checkDatasetTasks(model, data, 'data');
  const batchSize = readNumber(givenBatchSize, 'batchSize', 4096, { min: 1, integer: true });
  const group = readGroup(distributed);
  if (givenWhere !== undefined && what !== 'evaluate') fail('where', 'where is an option of evaluate');
  const names = tasksOf(model).map((task) => task.name);
  const whereOf = givenWhere === undefined ? undefined : readOptions(givenWhere, 'where', names);
  const where = whereOf === undefined ? {} : {
    where: names.map((name) => {
      const space = readSampleSpace(model, name, whereOf[name], `where.${name}`);
      return { task: space?.task ?? -1, equals: space?.equals ?? 1 };
    }),
  };
  const calibrators = model._calibratorsFor(calibrated);
  const common = { batchSize, taskTypes: taskKinds(model), ...where, ...(calibrators ? { calibrators } : {}) };
  // A stream is read whole by every rank (each computes the same exact metrics), so nothing is sharded.
  if (data instanceof DataStream) return common;
  await group?.agree(what, [...modelPlan(model), ...datasetPlan('data', data), ['batchSize', batchSize]]);
  return { ...common, distributed: group?._raw() };
}

function rowsOf(data: Data): number {
  return data instanceof DataStream ? data.rows : data.size;
}

/**
 * Per task name, metrics over the whole dataset, computed natively (exact AUC, NE, …). Over a
 * stream, exact too: the raw outputs and labels of every row are kept (4 bytes per row and output).
 */
export async function evaluate(model: TrainableModel, data: Data, options: EvaluateOptions = {}): Promise<Metrics> {
  const native = await datasetOptions('evaluate', model, data, options);
  const raw = model._raw();
  if (data instanceof DataStream) return byTask(model, await streamMetrics(raw, data, native));
  return byTask(model, await callNativeAsync(() => raw.evaluate(data._raw(), native)));
}

/** Every row's raw outputs, labels and sample weights (as the data has them), whole on every rank. */
async function labelledOutputs(model: TrainableModel, data: Data, native: RawDatasetOptions): Promise<LabelledOutputs> {
  const raw = model._raw();
  if (data instanceof DataStream) return streamLabelledOutputs(raw, data, native);
  const outputs = await callNativeAsync(() => raw.predict(data._raw(), { ...native, rawOutputs: true }));
  const dataset = data._raw();
  const sampleWeights = callNative(() => dataset.sampleWeights());
  return { outputs, labels: callNative(() => dataset.labels()), ...(sampleWeights ? { sampleWeights } : {}) };
}

/** `labelledOutputs` of the tasks given (in their order): what the addon calibrates and bins. */
async function binaryLabelledOutputs(model: TrainableModel, data: Data, native: RawDatasetOptions, tasks: readonly { index: number }[]):
  Promise<{ outputs: Float32Array[]; labels: Float32Array[]; weights?: Float32Array[] }> {
  const all = await labelledOutputs(model, data, native);
  const pick = (values: readonly Float32Array[]): Float32Array[] => tasks.map((task) => values[task.index]!);
  return { outputs: pick(all.outputs), labels: pick(all.labels), ...(all.sampleWeights ? { weights: pick(all.sampleWeights) } : {}) };
}

/** The binary tasks `names` selects (default all), with their indices in model order. */
function binaryTasks(model: TrainableModel, names: unknown, field: string, purpose: string): { name: string; index: number }[] {
  const tasks = tasksOf(model).map((task, index) => ({ name: task.name, type: task.type, index }));
  const binary = tasks.filter((task) => task.type === 'binary');
  if (names === undefined) {
    if (binary.length === 0) fail(field, `the model has no binary task ${purpose}`);
    return binary;
  }
  if (!Array.isArray(names) || names.length === 0) fail(field, `${field} must be a non-empty array of binary task names`);
  return Array.from(names, (name: unknown, i) => {
    const task = binary.find((candidate) => candidate.name === name);
    if (task === undefined) fail(`${field}[${i}]`, `${field}[${i}] must be one of the binary tasks ${quoteList(binary.map((b) => b.name))}, got ${describeValue(name)}`);
    return task;
  });
}

/**
 * Fits a calibrator per binary task on `data` (held-out rows, e.g. the validation split) by
 * maximum likelihood (temperature, Platt) or pool-adjacent-violators (isotonic), natively, with
 * sample weights when the data has them. Returns them with the reliability curves before and after;
 * assign `result.calibration` to `model.calibration` to apply them (docs/training.md, "Calibration").
 */
export async function calibrate(model: TrainableModel, data: Data, options: CalibrateOptions = {}): Promise<CalibrationResult> {
  const { method: givenMethod, tasks: names, ...rest } = readOptions(options, 'options', ['method', 'tasks', 'batchSize', 'distributed']);
  const method = readChoice(givenMethod, 'method', CALIBRATION_METHODS, 'platt');
  const tasks = binaryTasks(model, names, 'tasks', 'to calibrate');
  const native = await datasetOptions('calibrate', model, data, rest);
  const { outputs, labels, weights } = await binaryLabelledOutputs(model, data, native, tasks);
  const addon = loadAddon();
  const fitted = await callNativeAsync(() => addon.fitCalibrators(outputs, labels, weights, tasks.map(() => method)));
  const before = await callNativeAsync(() => addon.reliabilityCurves(outputs, labels, weights));
  const after = await callNativeAsync(() => addon.reliabilityCurves(outputs, labels, weights, fitted));
  return {
    calibration: readCalibration(Object.fromEntries(tasks.map((task, i) => [task.name, taskCalibrator(fitted[i]!)])), tasksOf(model)),
    curves: Object.fromEntries(tasks.map((task, i) => [task.name, { before: reliabilityCurveOf(before[i]!), after: reliabilityCurveOf(after[i]!) }])),
  };
}

/**
 * Per binary task name, the reliability curve of its predictions on `data` (with the model's
 * calibration unless `calibrated: false`): predicted probability against positive rate in 15 bins,
 * and the ECE, as `evaluate` reports it.
 */
export async function reliabilityCurves(model: TrainableModel, data: Data,
  options: Omit<EvaluateOptions, 'where'> = {}): Promise<Record<string, ReliabilityCurve>> {
  const tasks = binaryTasks(model, undefined, 'model', 'to draw a reliability curve for');
  const native = await datasetOptions('reliabilityCurves', model, data, readOptions(options, 'options', ['batchSize', 'distributed', 'calibrated']));
  const { outputs, labels, weights } = await binaryLabelledOutputs(model, data, native, tasks);
  const calibrators = native.calibrators && tasks.map((task) => native.calibrators![task.index]!);
  const addon = loadAddon();
  const curves = await callNativeAsync(() => addon.reliabilityCurves(outputs, labels, weights, calibrators));
  return Object.fromEntries(tasks.map((task, i) => [task.name, reliabilityCurveOf(curves[i]!)]));
}

/**
 * Per task name, predictions for every row: probabilities for binary tasks ([N]), class
 * probabilities for multiclass ([N * classes], row-major), values for regression ([N]).
 */
export async function predict(model: TrainableModel, data: Data, options: EvaluateOptions = {}): Promise<Record<string, Float32Array>> {
  const native = await datasetOptions('predict', model, data, options);
  const raw = model._raw();
  if (data instanceof DataStream) return predictionsByTask(model, await streamAllPredictions(raw, data, native));
  return predictionsByTask(model, await callNativeAsync(() => raw.predict(data._raw(), native)));
}

/**
 * Per task name, its predictions; a conditional task (ESMM) has its joint probability under its
 * name and P(task | parent) under `<name>.conditional` (the joint divided by the parent's
 * probability, 0 where that is 0).
 */
function predictionsByTask(model: TrainableModel, predictions: Float32Array[]): Record<string, Float32Array> {
  const byName = byTask(model, predictions);
  for (const task of tasksOf(model)) {
    if (task.conditionalOn === undefined) continue;
    const [joint, parent] = [byName[task.name]!, byName[task.conditionalOn]!];
    byName[`${task.name}.conditional`] = joint.map((p, i) => (parent[i]! > 0 ? Math.min(1, p / parent[i]!) : 0));
  }
  return byName;
}

/** One chunk of `predictChunks`: its predictions per task (as `predict`) and its labels, in source order. */
export interface PredictedChunk {
  /** Rows before this chunk in the pass. */
  offset: number;
  size: number;
  predictions: Record<string, Float32Array>;
  labels: Record<string, Float32Array>;
}

/**
 * Predictions over a stream chunk by chunk, in source order, in memory bounded by the stream's
 * chunks (e.g. to write scores of data bigger than memory). Leaving the loop stops the reading.
 */
export async function* predictChunks(model: TrainableModel, data: DataStream, options: EvaluateOptions = {}): AsyncGenerator<PredictedChunk> {
  if (!(data instanceof DataStream)) fail('data', `predictChunks needs a DataStream (openStream), got ${describeValue(data)}`);
  const native = await datasetOptions('predict', model, data, options);
  let offset = 0;
  for await (const { outputs, encoded } of chunkPredictions(model._raw(), data, native)) {
    yield { offset, size: encoded.size, predictions: predictionsByTask(model, outputs), labels: byTask(model, encoded.labels) };
    offset += encoded.size;
  }
}
