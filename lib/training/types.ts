/** The public types of training and evaluation: options, progress, summaries and results. */
import type { EmbeddingOptimizerType, LossKind, OptimizerType, RawProgress, ScheduleType } from '../addon';
import type { Calibration, CalibrationMethod, ReliabilityCurve } from '../calibration';
import type { DataStream } from '../data/stream';
import type { TensorDataset } from '../dataset';
import type { ProcessGroup } from '../distributed';
import type { ExpertHealth, ExpertHealthOptions } from '../expert-health';
import type { Device, Model } from '../model';
import type { StateDict } from '../tensor';
import type { ScriptModel } from '../torchscript';

export type { EmbeddingOptimizerType, LossKind, OptimizerType, ScheduleType } from '../addon';

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

/** A native model, or a TorchScript model whose tasks are configured. */
export type TrainableModel = Model | ScriptModel;

/** Rows held in memory, or streamed from files (`openStream`). */
export type Data = TensorDataset | DataStream;

/** One chunk of `predictChunks`: its predictions per task (as `predict`) and its labels, in source order. */
export interface PredictedChunk {
  /** Rows before this chunk in the pass. */
  offset: number;
  size: number;
  predictions: Record<string, Float32Array>;
  labels: Record<string, Float32Array>;
}

/** Where a training run stands, enough to continue it exactly (same seed, one thread). */
export interface TrainingState {
  /** The epoch a resumed run starts with. */
  nextEpoch: number;
  /** Optimizer steps taken so far (drives the learning-rate schedule). */
  step: number;
  /** The shuffle seed of the run (batches of epoch e are shuffled by (seed, e)). */
  seed: number;
  optimizerType: string;
  /** How the tables trained: an embedding optimizer type, or 'dense' (also for checkpoints that predate it). */
  embeddingOptimizerType?: string;
  /** 'fixed', 'uncertainty', 'gradnorm' or 'dwa' (absent in older checkpoints: 'fixed'). */
  taskWeighting?: string;
  /** Native optimizer state (moments, step counts). */
  optimizerState: Uint8Array;
  history: EpochSummary[];
  bestEpoch?: number;
  bestValue?: number;
  epochsSinceBest: number;
  /** Weights of the best epoch so far, when the run restores the best weights at its end. */
  bestWeights?: StateDict;
}
