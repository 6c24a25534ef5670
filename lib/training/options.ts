/**
 * fit's options, read and checked in full before fit does anything (threads, device, folders,
 * collectives): defaults live here, and the native trainer gets one plain options object.
 */
import type { EmbeddingOptimizerType, LossKind, OptimizerType, RawTrainerOptions, TaskKind } from '../addon';
import { EMBEDDING_OPTIMIZER_TYPES, OPTIMIZER_TYPES, SCHEDULE_TYPES } from '../addon';
import { CALIBRATION_METHODS } from '../calibration';
import { TensorDataset } from '../dataset';
import type { ProcessGroup } from '../distributed';
import { readExpertHealthOptions, type ExpertHealthOptions } from '../expert-health';
import { Model, type Device } from '../model';
import {
  describeValue,
  isRecord,
  optionError,
  quoteList,
  readBoolean,
  readChoice,
  readDevice,
  readNumber,
  readOptions,
} from '../validation';
import { readGroup } from './agreement';
import { readCheckpointOptions } from './checkpoints';
import { readEarlyStopping, type StoppingRule } from './early-stopping';
import { readTaskWeighting, type TaskWeighting } from './task-weighting';
import { binaryTasks, checkDatasetTasks, hasEmbeddingTables, readSampleSpace, rowsOf, taskKinds, tasksOf } from './tasks';
import type { CheckpointOptions, Data, EvaluateOptions, FitOptions, TaskLossOptions, TrainableModel, TrainingState } from './types';

const FIT_KEYS = [
  'epochs',
  'batchSize',
  'optimizer',
  'embeddingOptimizer',
  'schedule',
  'clipNorm',
  'losses',
  'taskWeighting',
  'seed',
  'device',
  'threads',
  'validation',
  'earlyStopping',
  'restoreBest',
  'onProgress',
  'onEpoch',
  'signal',
  'progressInterval',
  'nonFinite',
  'evalBatchSize',
  'checkpoint',
  'resume',
  'distributed',
  'gradientConflict',
  'calibration',
  'expertHealth',
] as const;
/** The row-sparse counterpart of each dense optimizer: what tables get by default. */
const EMBEDDING_COUNTERPART: Record<OptimizerType, EmbeddingOptimizerType> = {
  adam: 'adam',
  adamw: 'adam',
  adagrad: 'adagrad',
  sgd: 'sgd',
};
const LOSSES: Record<TaskKind, readonly LossKind[]> = {
  binary: ['bce'],
  multiclass: ['cross-entropy'],
  regression: ['mse', 'huber'],
};

/** Everything a run of fit does, decided. */
export interface FitPlan {
  epochs: number;
  /** The first epoch to train (0, or where the resumed run stopped). */
  initialEpoch: number;
  resume?: TrainingState;
  batchSize: number;
  evalBatchSize: number;
  progressInterval: number;
  onProgress?: FitOptions['onProgress'];
  onEpoch?: FitOptions['onEpoch'];
  signal?: AbortSignal;
  validation?: Data;
  /** Metrics of a task in its sample space, where its loss asks for that. */
  validationWhere: EvaluateOptions['where'];
  stopping?: StoppingRule;
  restoreBest: boolean;
  calibration?: FitOptions['calibration'];
  expertHealth?: ExpertHealthOptions;
  threads?: number;
  device?: Device;
  checkpoints?: Required<CheckpointOptions>;
  weighting: TaskWeighting;
  group?: ProcessGroup;
  /** The native trainer's options (its `distributed` is set once the ranks agree). */
  trainer: RawTrainerOptions;
}

export function readFitOptions(model: TrainableModel, train: Data, fitOptions: unknown): FitPlan {
  const options = readOptions(fitOptions, 'options', FIT_KEYS);
  checkDatasetTasks(model, train, 'train');
  const validation = options.validation as Data | undefined;
  if (validation !== undefined) checkDatasetTasks(model, validation, 'validation');
  const epochs = readNumber(options.epochs, 'epochs', 1, { min: 1, max: 1e9, integer: true });
  const resume = readResume(options.resume);
  const initialEpoch = resume?.nextEpoch ?? 0;
  if (initialEpoch >= epochs) optionError('epochs', `epochs (${epochs}) must exceed the resumed run's ${initialEpoch} finished epochs`);
  const batchSize = readNumber(options.batchSize, 'batchSize', 256, { min: 1, integer: true });
  for (const callback of ['onProgress', 'onEpoch'] as const) {
    if (options[callback] !== undefined && typeof options[callback] !== 'function') optionError(callback, `${callback} must be a function`);
  }
  const signal = options.signal as AbortSignal | undefined;
  if (signal !== undefined && !(signal instanceof AbortSignal)) optionError('signal', 'signal must be an AbortSignal');

  const taskNames = tasksOf(model).map((task) => task.name);
  const stopping = readEarlyStopping(options.earlyStopping, taskNames, validation !== undefined);
  const restoreBest = readBoolean(options.restoreBest, 'restoreBest', stopping !== undefined && model instanceof Model);
  if (!(model instanceof Model) && (restoreBest || options.checkpoint !== undefined || resume !== undefined)) {
    optionError('model', 'restoreBest, checkpoint and resume need a native Model; save a TorchScript model with save()');
  }
  let calibration: FitOptions['calibration'];
  if (options.calibration !== undefined) {
    const spec = readOptions(options.calibration, 'calibration', ['method', 'tasks']);
    if (validation === undefined) optionError('calibration', 'calibration needs a validation dataset to fit the calibrators on');
    readChoice(spec.method, 'calibration.method', CALIBRATION_METHODS, 'platt');
    binaryTasks(model, spec.tasks, 'calibration.tasks', 'to calibrate');
    calibration = spec as FitOptions['calibration'];
  }
  let expertHealth: ExpertHealthOptions | undefined;
  if (options.expertHealth !== undefined) {
    if (!(model instanceof Model))
      optionError('expertHealth', 'expertHealth needs a native Model (TorchScript models have no known experts)');
    if (!(validation instanceof TensorDataset)) optionError('expertHealth', 'expertHealth needs a validation TensorDataset to measure on');
    expertHealth = readExpertHealthOptions(options.expertHealth === true ? {} : options.expertHealth, 'expertHealth');
  }
  const batchesPerEpoch = Math.ceil(rowsOf(train) / batchSize);
  if (!Number.isSafeInteger(epochs * batchesPerEpoch)) {
    optionError('epochs', `epochs x batches per epoch (${epochs} x ${batchesPerEpoch}) is more steps than can be counted`);
  }
  const weighting = readTaskWeighting(model, options.taskWeighting);
  const trainer = trainerOptions(model, options, batchSize, epochs * batchesPerEpoch, resume, weighting);
  if (resume !== undefined) {
    checkResumable(resume, options.seed, trainer, weighting);
    trainer.seed = resume.seed;
  }
  const lossOptions = (options.losses ?? {}) as Record<string, TaskLossOptions | undefined>;
  const validationWhere = Object.fromEntries(
    taskNames.flatMap((name) => {
      const where = lossOptions[name]?.where;
      return where?.metrics ? [[name, { task: where.task, equals: where.equals ?? 1 }]] : [];
    }),
  ) as EvaluateOptions['where'];
  return {
    epochs,
    initialEpoch,
    resume,
    batchSize,
    evalBatchSize: readNumber(options.evalBatchSize, 'evalBatchSize', 4096, { min: 1, integer: true }),
    progressInterval: readNumber(options.progressInterval, 'progressInterval', 0.25, { min: 0 }),
    onProgress: options.onProgress as FitOptions['onProgress'],
    onEpoch: options.onEpoch as FitOptions['onEpoch'],
    signal,
    validation,
    validationWhere,
    stopping,
    restoreBest,
    calibration,
    expertHealth,
    threads: options.threads === undefined ? undefined : readNumber(options.threads, 'threads', 1, { min: 1, max: 1024, integer: true }),
    device: options.device === undefined ? undefined : (readDevice(options.device) as Device),
    checkpoints: readCheckpointOptions(options.checkpoint, stopping !== undefined),
    weighting,
    group: readGroup(options.distributed),
    trainer,
  };
}

function readResume(value: unknown): TrainingState | undefined {
  if (value !== undefined && (!isRecord(value) || !(value.optimizerState instanceof Uint8Array))) {
    optionError('resume', 'resume must be the training state of a checkpoint (loadCheckpoint(file).training)');
  }
  return value as TrainingState | undefined;
}

/** How a resumed run's tables trained: checkpoints made before row-sparse tables existed say nothing ('dense'). */
function resumedEmbeddingOptimizer(resume: TrainingState | undefined): string | undefined {
  return resume === undefined ? undefined : (resume.embeddingOptimizerType ?? 'dense');
}

/** A resumed run continues with the seed, optimizers and task weighting it started with. */
function checkResumable(resume: TrainingState, seed: unknown, trainer: RawTrainerOptions, weighting: TaskWeighting): void {
  if (seed !== undefined && seed !== resume.seed) {
    optionError('seed', `seed ${String(seed)} differs from the resumed run's seed ${resume.seed}`);
  }
  if (resume.optimizerType !== trainer.optimizer.type) {
    optionError('optimizer.type', `optimizer '${trainer.optimizer.type}' differs from the resumed run's '${resume.optimizerType}'`);
  }
  const resumedTables = resumedEmbeddingOptimizer(resume);
  if (resumedTables !== trainer.embeddingOptimizer.type) {
    optionError(
      'embeddingOptimizer',
      `embeddingOptimizer '${trainer.embeddingOptimizer.type}' differs from the resumed run's '${resumedTables}'`,
    );
  }
  if ((resume.taskWeighting ?? 'fixed') !== weighting.type) {
    optionError('taskWeighting', `taskWeighting '${weighting.type}' differs from the resumed run's '${resume.taskWeighting ?? 'fixed'}'`);
  }
}

function readBetas(value: unknown, field: string, fallback: readonly [number, number]): [number, number] {
  if (value === undefined) return [fallback[0], fallback[1]];
  if (!Array.isArray(value) || value.length !== 2) optionError(field, `${field} must be [beta1, beta2], got ${describeValue(value)}`);
  return [
    readNumber(value[0], `${field}[0]`, fallback[0], { min: 0, max: 1, exclusiveMax: true }),
    readNumber(value[1], `${field}[1]`, fallback[1], { min: 0, max: 1, exclusiveMax: true }),
  ];
}

function embeddingOptimizerOptions(
  model: TrainableModel,
  value: unknown,
  dense: RawTrainerOptions['optimizer'],
  resumedType: string | undefined,
): RawTrainerOptions['embeddingOptimizer'] {
  const field = 'embeddingOptimizer';
  if (value === 'dense') return { type: 'dense' };
  if (!hasEmbeddingTables(model)) {
    if (value === undefined) return { type: 'dense' };
    optionError(field, `${field} needs a model with embedding tables (categorical or multi-valued features); this one has none`);
  }
  if (value === undefined && resumedType === 'dense') return { type: 'dense' };
  const spec =
    value === undefined
      ? { type: EMBEDDING_COUNTERPART[dense.type] }
      : readOptions(value, field, ['type', 'lr', 'weightDecay', 'betas', 'eps']);
  if (spec.type === undefined) {
    optionError(`${field}.type`, `${field}.type is required (${quoteList(EMBEDDING_OPTIMIZER_TYPES)}), or use '${field}: "dense"'`);
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

function trainerOptions(
  model: TrainableModel,
  options: Record<string, unknown>,
  batchSize: number,
  totalSteps: number,
  resume: TrainingState | undefined,
  weighting: TaskWeighting,
): RawTrainerOptions {
  const optimizer = readOptions(options.optimizer, 'optimizer', ['type', 'lr', 'weightDecay', 'momentum', 'betas', 'eps']);
  const [beta1, beta2] = readBetas(optimizer.betas, 'optimizer.betas', [0.9, 0.999]);
  const schedule = readOptions(options.schedule, 'schedule', ['type', 'warmupSteps', 'stepSize', 'gamma', 'minLr']);
  const losses = readOptions(
    options.losses,
    'losses',
    tasksOf(model).map((task) => task.name),
  );
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
    conflictEvery:
      options.gradientConflict === undefined
        ? 0
        : readNumber(readOptions(options.gradientConflict, 'gradientConflict', ['every']).every, 'gradientConflict.every', 1, {
            min: 1,
            integer: true,
            max: Number.MAX_SAFE_INTEGER,
          }),
  };
}
