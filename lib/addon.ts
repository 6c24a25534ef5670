/**
 * The raw contract of the native addon (docs/architecture.md, "Raw addon contract") and its loader.
 * Nothing here validates: callers hand the addon only normalised, already checked values.
 */
import * as path from 'node:path';
import { NativeLoadError } from './errors';

export type ModelKind = 'adatt-sp' | 'adatt' | 'mmoe' | 'ple' | 'cross-stitch' | 'shared-bottom' | 'single-task';

export type Pooling = 'mean' | 'sum';
export type WeightLayout = 'reference' | 'native';

/** The normalised model config the addon receives. */
export interface NativeModelConfig {
  kind: ModelKind;
  /** Number of dense features (may be 0). */
  denseDim: number;
  /** One id per example per feature. */
  categorical: { vocab: number; dim: number }[];
  /** Bags of ids, pooled with an EmbeddingBag. */
  multiValued: { vocab: number; dim: number; pooling: Pooling }[];
  /** outputs: 1 (binary, regression) or K (multiclass). */
  /** conditionalOn: the parent task's index (ESMM), -1 for none. */
  tasks: { name: string; outputs: number; conditionalOn: number }[];
  /** Per fusion level, the expert MLP's layer widths (reference `expert_out_dims`). */
  expertDims: number[][];
  /** Task tower MLP widths (reference `task_mlp`), may be []. */
  towerDims: number[];
  /** Length T for adatt-sp (all equal), adatt and ple; [] for other kinds. */
  expertsPerTask: number[];
  /** adatt, ple: shared experts per level; mmoe: experts per level; else 0. */
  sharedExperts: number;
  /** mmoe only: per level, gate MLP widths ([] = linear gate); else []. */
  gateDims: number[][];
  /** adatt-sp, adatt: the native-expert residual (paper ablation switch); false for other kinds. */
  nativeResidual: boolean;
  /** Parameter initialisation seed (non-negative integer). */
  seed: number;
}

export interface RawTensor {
  shape: number[];
  data: Float32Array;
}

export interface RawBatch {
  /** B */
  size: number;
  /** [B * denseDim], row-major. */
  dense?: Float32Array;
  /** [B * C], row-major. */
  categorical?: Int32Array;
  /** Per feature, EmbeddingBag style (offsets length B). */
  multiValued?: { indices: Int32Array; offsets: Int32Array }[];
}

/** One level's softmax gate outputs averaged over the batch: [gates * experts], row-major. */
export interface RawGateLevel {
  gates: number;
  experts: number;
  data: Float32Array;
}

/** adatt::ExpertActivity: per level, sums over the rows (gateSum [G, E] for kinds with gates; zeroCount [E]; activeRows [E, D]; normSum [E]). */
export interface RawExpertActivity {
  rows: number;
  levels: { gateSum?: RawTensor; zeroCount: RawTensor; activeRows: RawTensor; normSum: RawTensor }[];
}

/** What both model classes of the addon have (native/binding/model_state.h, TaskModelWrap). */
export interface RawTaskModel {
  to(device: string): Promise<void>;
  device(): string;
  parameterCount(): number;
  /** Per task, metrics over the whole dataset (see docs/training.md). */
  evaluate(dataset: RawDataset, options: RawDatasetOptions): Promise<Record<string, number>[]>;
  /** Per task, predictions [N * outputs]: probabilities (binary, multiclass) or values (regression). */
  predict(dataset: RawDataset, options: RawDatasetOptions): Promise<Float32Array[]>;
  dispose(): void;
}

export interface RawModel extends RawTaskModel {
  /**
   * Per task, [B * outputs]: the tower outputs, or with `predictions` what predict returns (sigmoid,
   * softmax, calibrated where a calibrator is given). `inline`: computed on the calling thread, settled before it returns (queued anyway off the CPU).
   */
  forward(
    batch: RawBatch,
    inline?: boolean,
    predictions?: { taskTypes: TaskKind[]; calibrators?: (RawCalibrator | null)[] },
  ): Promise<Float32Array[]>;
  /** Per level, softmax gate output (before any residual). */
  gateWeights(batch: RawBatch): Promise<RawGateLevel[]>;
  /** Expert health sums over `rows` of `dataset` (adatt::expert_activity), in batches of `batchSize`. */
  expertActivity(dataset: RawDataset, rows: Int32Array, batchSize: number): Promise<RawExpertActivity>;
  /** d(Σ_t <out_t, seed_t>)/dθ, reference layout. */
  gradients(batch: RawBatch, seeds: Float32Array[]): Promise<Record<string, RawTensor>>;
  stateDict(layout: WeightLayout): Promise<Record<string, RawTensor>>;
  loadStateDict(tensors: Record<string, RawTensor>, strict: boolean): Promise<void>;
  /** torch.save-compatible zip (dict of tensors). */
  saveWeights(path: string, layout: WeightLayout): Promise<void>;
  /** torch.save'd dict / state_dict, either layout. */
  loadWeights(path: string, strict: boolean): Promise<void>;
}

/** The task types, defined once: configs, schemas, TorchScript tasks and the addon use these names. */
export const TASK_KINDS = ['binary', 'multiclass', 'regression'] as const;
export type TaskKind = (typeof TASK_KINDS)[number];

export interface RawDatasetOptions {
  batchSize: number;
  taskTypes: TaskKind[];
  distributed?: RawProcessGroup;
  /** predict only: the towers' raw outputs [N * outputs] (no sigmoid or softmax), for `taskMetrics`. */
  rawOutputs?: boolean;
  /** evaluate (and taskMetrics): per task, metrics over the rows whose label of task `task` equals `equals` (task -1: all). */
  where?: { task: number; equals: number }[];
  /** evaluate and predict (not rawOutputs): per task, a binary task's calibrator or null (adatt::Calibrator). */
  calibrators?: (RawCalibrator | null)[];
}

/** How a binary task's probabilities are calibrated (native/include/adatt/calibration.h). */
export const CALIBRATION_METHODS = ['temperature', 'platt', 'isotonic'] as const;
export type CalibrationMethod = (typeof CALIBRATION_METHODS)[number];

/** adatt::Calibrator: p = sigmoid(scale z + bias), or isotonic: piecewise linear through the knots. */
export interface RawCalibrator {
  method: CalibrationMethod;
  scale: number;
  bias: number;
  knotLogits: number[];
  knotProbabilities: number[];
}

/** adatt::ReliabilityCurve: per bin of the predicted probability; NaN means and positive rates for empty bins. */
export interface RawReliabilityCurve {
  rows: number[];
  weight: number[];
  predicted: number[];
  positive: number[];
  ece: number;
}

/** What `new Dataset(…)` copies into tensors (row-major; labels NaN where missing). */
export interface RawDatasetInit {
  size: number;
  denseDim: number;
  dense?: Float32Array;
  categoricalCount: number;
  categorical?: Int32Array;
  multiValued?: { indices: Int32Array; offsets: Int32Array }[];
  labels: Float32Array[];
  /** Per task [N]: each row's weight in the loss and metrics (finite, >= 0); absent: all 1. */
  sampleWeights?: Float32Array[];
  /** [N]: each row's group for grouped AUC. */
  groups?: BigInt64Array;
}

export interface RawDataset {
  size(): number;
  bytes(): number;
  subset(rows: Int32Array): RawDataset;
  /** Per task, its labels [N] (a copy). */
  labels(): Float32Array[];
  /** Per task, its sample weights [N] (a copy); undefined when every row weighs 1. */
  sampleWeights(): Float32Array[] | undefined;
  dispose(): void;
}

export type LossKind = 'bce' | 'cross-entropy' | 'mse' | 'huber';

export const OPTIMIZER_TYPES = ['adam', 'adamw', 'adagrad', 'sgd'] as const;
export type OptimizerType = (typeof OPTIMIZER_TYPES)[number];
export const SCHEDULE_TYPES = ['constant', 'step', 'cosine'] as const;
export type ScheduleType = (typeof SCHEDULE_TYPES)[number];
/** Row-sparse optimizers for embedding tables (native/include/adatt/sparse_optimizer.h). */
export const EMBEDDING_OPTIMIZER_TYPES = ['adam', 'adagrad', 'rowwise-adagrad', 'sgd'] as const;
export type EmbeddingOptimizerType = (typeof EMBEDDING_OPTIMIZER_TYPES)[number];
/** How the native trainer weights task losses (adatt::TaskWeighting); DWA is 'fixed' with weights set per epoch. */
export type NativeTaskWeighting = 'fixed' | 'uncertainty' | 'gradnorm';

export interface RawTrainerOptions {
  optimizer: { type: OptimizerType; lr: number; weightDecay: number; momentum: number; beta1: number; beta2: number; eps: number };
  /** 'dense': the tables are trained by `optimizer` with full gradients. */
  embeddingOptimizer:
    | { type: 'dense' }
    | { type: EmbeddingOptimizerType; lr: number; weightDecay: number; beta1: number; beta2: number; eps: number };
  schedule: { type: ScheduleType; warmupSteps: number; stepSize: number; gamma: number; totalSteps: number; minLr: number };
  taskTypes: TaskKind[];
  /** whereTask: the index of the task whose label must equal whereEquals for a row to count (-1: all rows). */
  losses: { loss: LossKind; weight: number; huberDelta: number; whereTask: number; whereEquals: number }[];
  taskWeighting: NativeTaskWeighting;
  /** GradNorm's alpha (taskWeighting 'gradnorm'). */
  gradNormAlpha?: number;
  batchSize: number;
  seed: number;
  clipNorm: number;
  nonFinite: 'stop' | 'skip';
  /** Measure task-gradient conflict every this many steps (0: never). */
  conflictEvery: number;
  distributed?: RawProcessGroup;
}

export interface RawProgress {
  epoch: number;
  step: number;
  batch: number;
  batches: number;
  examples: number;
  examplesPerSecond: number;
  lr: number;
  loss: number[];
}

export interface RawEpochResult {
  steps: number;
  examples: number;
  skipped: number;
  seconds: number;
  aborted: boolean;
  loss: number[];
  /** Task-gradient conflict over the measured steps (adatt::GradientConflict), when measured. */
  conflict?: RawGradientConflict;
}

/** Sums over measured steps: per task (normSums, normCounts [T]) and per task pair (cosineSums, cosineCounts [T * T], row-major). */
export interface RawGradientConflict {
  steps: number;
  normSums: number[];
  normCounts: number[];
  cosineSums: number[];
  cosineCounts: number[];
}

/** How one trainEpoch call reads its data (adatt::EpochPass). */
export interface RawEpochPass {
  /** Seeds the shuffle with the trainer's seed: the epoch in memory, (epoch, chunk) for a stream. */
  shuffleKey: number;
  /** -1: every rank holds the same rows and takes its slice of each global batch; else this rank's own rows, in exactly this many steps. */
  ownBatches: number;
  /** False for a rank whose stream has ended while others' go on: it takes part with empty batches. */
  hasRows: boolean;
}

export interface RawTrainer {
  /** One pass over `dataset` (see `RawEpochPass`); progress reports `epoch`. */
  trainEpoch(
    dataset: RawDataset,
    epoch: number,
    onProgress: ((p: RawProgress) => void) | undefined,
    intervalSeconds: number,
    pass: RawEpochPass,
  ): Promise<RawEpochResult>;
  /** Stops the running epoch before its next batch, and every later one of this trainer at its first. */
  abort(): void;
  step(): number;
  learningRate(step?: number): number;
  /** Each task's weight on its loss now (between passes only). */
  taskWeights(): number[];
  /** Weights multiplying the fixed ones from the next pass on (Dynamic Weight Averaging); between passes only. */
  setTaskWeights(weights: number[]): void;
  /** Optimizer state as bytes (for checkpoints). */
  saveState(): Promise<Uint8Array>;
  loadState(state: Uint8Array, step: number): Promise<void>;
  dispose(): void;
}

export interface RawScriptModule extends RawTaskModel {
  methods(): string[];
  run(method: string, args: unknown[]): Promise<never>;
  configure(options: { inputs: string[]; tasks: { name: string; outputs: number }[] }): void;
  save(path: string): Promise<void>;
}

/** Which engine carries collectives over CUDA tensors; host tensors always go through Gloo. */
export type CudaBackend = 'auto' | 'nccl' | 'gloo';

export interface RawProcessGroup {
  rank(): number;
  worldSize(): number;
  /** The process groups in use: ['gloo'] or ['gloo', 'nccl']. */
  backends(): string[];
  barrier(): Promise<void>;
  /** Every rank's bytes, in rank order (sizes may differ). */
  allGatherBytes(local: Uint8Array): Promise<Uint8Array[]>;
  dispose(): void;
}

export interface RawInfo {
  /** The LibTorch version the addon was compiled against. */
  libtorchVersion: string;
  /** The version of the LibTorch actually loaded ('' when it cannot be told) and its library path. */
  runtimeLibtorchVersion: string;
  libtorchPath: string;
  torchVersionMajor: number;
  torchVersionMinor: number;
  /** at::get_parallel_info(): threading backend and thread counts. */
  parallelInfo: string;
  cudaBuilt: boolean;
  cudaAvailable: boolean;
  /** Whether the LibTorch was built with c10d's NCCL backend (distributed training on GPUs). */
  ncclBuilt: boolean;
  cudaDeviceCount: number;
  /** LibTorch's intra-op (OpenMP) threads: elementwise kernels and the fusion kernels. */
  numThreads: number;
  numInteropThreads: number;
  /** How many model reads (forward, predict, evaluate) may run at once on the inference threads. */
  inferenceThreads: number;
  /** The BLAS's threads (every GEMM); 0 when the BLAS cannot be asked (not OpenBLAS). */
  blasThreads: number;
  /** How the BLAS runs its threads: 'openblas-pthreads' (Debian's default), 'openblas-openmp', 'openblas-sequential' or 'unknown'. */
  blasThreading: string;
  /** The most threads the BLAS was built for (OpenBLAS's MAX_THREADS); 0 when it cannot be told. */
  blasMaxThreads: number;
}

/**
 * Dictionary coding of DuckDB's VARCHAR vectors (lib/data/engine.ts): codes in order of first
 * appearance, -1 for NULL. `strings` and `validity` are a vector's data and validity mask as
 * @duckdb/node-bindings copies them; the strings' pointers are read while the caller holds the chunk.
 */
export interface RawTextDictionary {
  /** Codes of the strings of a DuckDB VARCHAR vector; once sealed, a value it does not hold gets UNKNOWN_CODE (-2). */
  codeStrings(strings: Uint8Array, validity: Uint8Array | null, first: number, count: number, codes: Int32Array, offset: number): void;
  /** The code of each value (new ones are added, sealed or not). */
  add(values: readonly string[]): Int32Array;
  /** From now on codeStrings looks values up and never adds one. */
  seal(): void;
  /** The distinct values, by code. */
  values(): string[];
  dispose(): void;
}

export interface RawAddon {
  info(): RawInfo;
  /** intraOp 0 or absent: chosen for the BLAS (see lib/threads.ts); inferenceThreads absent: unchanged. */
  setNumThreads(n: number, intraOp?: number, inferenceThreads?: number): void;
  Model: new (config: NativeModelConfig) => RawModel;
  Dataset: new (init: RawDatasetInit) => RawDataset;
  Trainer: new (model: RawTaskModel, options: RawTrainerOptions) => RawTrainer;
  TextDictionary: new () => RawTextDictionary;
  /** Per task, evaluate's metrics of raw outputs [N * outputs] and labels [N] gathered from several datasets (`where` as evaluate's). */
  taskMetrics(
    outputs: Float32Array[],
    labels: Float32Array[],
    taskTypes: TaskKind[],
    where?: RawDatasetOptions['where'],
    sampleWeights?: Float32Array[],
    groups?: BigInt64Array,
    calibrators?: (RawCalibrator | null)[],
  ): Promise<Record<string, number>[]>;
  /** Per task passed (binary tasks), a calibrator of `method` fitted on its raw outputs [N] and labels [N]. */
  fitCalibrators(
    outputs: Float32Array[],
    labels: Float32Array[],
    sampleWeights: Float32Array[] | undefined,
    methods: CalibrationMethod[],
  ): Promise<RawCalibrator[]>;
  /** Per task passed (binary tasks), the reliability curve of its probabilities (calibrated by its calibrator, if any). */
  reliabilityCurves(
    outputs: Float32Array[],
    labels: Float32Array[],
    sampleWeights: Float32Array[] | undefined,
    calibrators?: (RawCalibrator | null)[],
  ): Promise<RawReliabilityCurve[]>;
  loadScript(path: string, device: string): Promise<RawScriptModule>;
  initProcessGroup(options: {
    masterAddr: string;
    masterPort: number;
    worldSize: number;
    rank: number;
    timeoutMs: number;
    cudaBackend: CudaBackend;
  }): Promise<RawProcessGroup>;
}

const PACKAGE_ROOT = path.join(__dirname, '..');

const BUILD_HINT =
  'Build it with `npm run build:native`, pointing the build at a LibTorch: the system one ' +
  '(`apt install libtorch-dev`), a LibTorch distribution (`LIBTORCH=/path/to/libtorch`) or the one ' +
  "inside PyTorch's pip package (`LIBTORCH_USE_PYTORCH=1`).";

/** dlopen reports a missing dependency as "<soname>: cannot open shared object file". */
const MISSING_TORCH_LIBRARY = /\b(lib(?:torch\w*|c10\w*)\.so[.\d]*): cannot open shared object file/;

/**
 * Explains why loading the addon failed. Three causes need different fixes: no compiled addon,
 * a LibTorch library the addon links that the dynamic loader cannot find, anything else (e.g. an
 * undefined symbol because the addon was built against another LibTorch).
 */
export function nativeLoadError(cause: unknown): NativeLoadError {
  const original = (cause instanceof Error ? cause.message : String(cause)).trim();
  const missingLibrary = MISSING_TORCH_LIBRARY.exec(original)?.[1];
  let message: string;
  if (original.startsWith('No native build was found')) {
    message = `adatt: no compiled native addon found under ${PACKAGE_ROOT}. ${BUILD_HINT}`;
  } else if (missingLibrary !== undefined) {
    message =
      `adatt: the native addon was found but the LibTorch shared library ${missingLibrary} was not. ` +
      'Install the LibTorch it was built against (`apt install libtorch-dev`), or add its lib/ folder ' +
      'to LD_LIBRARY_PATH, or rebuild with `npm run build:native` (LIBTORCH=/path/to/libtorch or ' +
      'LIBTORCH_USE_PYTORCH=1 to choose another LibTorch).';
  } else if ((cause as { code?: unknown }).code === 'ADATT_NATIVE_LOAD') {
    return new NativeLoadError(original, { cause }); // the addon's own check says what to do
  } else {
    message = `adatt: the native addon could not be loaded. If LibTorch changed since it was built, rebuild it. ${BUILD_HINT}`;
  }
  return new NativeLoadError(`${message}\nCause: ${original}`, { cause });
}

let cachedAddon: RawAddon | undefined;

/**
 * Loads the addon on first use (so that importing adatt never fails) and caches it. Failures are
 * not cached: a later call retries, e.g. after the addon has been built.
 */
export function loadAddon(): RawAddon {
  if (cachedAddon) return cachedAddon;
  try {
    const nodeGypBuild = require('node-gyp-build') as (root: string) => unknown;
    cachedAddon = nodeGypBuild(PACKAGE_ROOT) as RawAddon;
  } catch (err) {
    throw nativeLoadError(err);
  }
  return cachedAddon;
}
