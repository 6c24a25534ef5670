/** adatt: multi-task recommendation models (AdaTT, MMoE, PLE, …) on LibTorch. */
import { loadAddon, type RawInfo } from './addon';
import { callNative } from './errors';
import { setThreadCount, type ThreadOptions } from './threads';

export { createModel, Model } from './model';
export * from './data';
export { TensorDataset } from './dataset';
export type { TensorDatasetOptions } from './dataset';
export type { ThreadOptions } from './threads';
export { calibrate, evaluate, fit, predict, predictChunks, reliabilityCurves } from './training';
export { CALIBRATION_METHODS } from './calibration';
export type { Calibration, CalibrationMethod, ReliabilityBin, ReliabilityCurve, TaskCalibrator } from './calibration';
export { TaskModel } from './task-model';
export type { ExpertHealth, ExpertHealthFlag, ExpertHealthOptions, ExpertStats, TaskGateShares } from './expert-health';
export { loadTorchScript, ScriptModel } from './torchscript';
export { initProcessGroup, launch, launchWorkers, ProcessGroup } from './distributed';
export type { LaunchOptions, ProcessGroupOptions, WorkerExit } from './distributed';
export type { CudaBackend } from './addon';
export type { ScriptTaskOptions, ScriptTensor, ScriptValue } from './torchscript';
export { CHECKPOINT_FORMAT_VERSION, loadCheckpoint, saveCheckpoint } from './checkpoint';
export * from './serving';
export type { Checkpoint } from './checkpoint';
export type {
  CalibrateOptions,
  CalibrationResult,
  CheckpointOptions,
  EarlyStoppingOptions,
  EmbeddingOptimizerOptions,
  EmbeddingOptimizerType,
  EpochSummary,
  EvaluateOptions,
  FitOptions,
  FitResult,
  LossKind,
  Metrics,
  OptimizerOptions,
  OptimizerType,
  ProgressEvent,
  ScheduleOptions,
  ScheduleType,
  TaskLossOptions,
  TaskMetrics,
  TrainableModel,
  TrainingState,
  Data,
  PredictedChunk,
} from './training';
export type {
  Device,
  LoadOptions,
  SaveWeightsOptions,
  StateDict,
  StateDictOptions,
  Tensor,
  WeightFormat,
  WeightLayout,
} from './model';
export type { GateLevel } from './gates';
export type { Bags, Batch, Rows } from './batch';
export { LIMITS, MODEL_KINDS, normalizeModelConfig, validateModelConfig } from './config';
export type {
  AdaTTConfig,
  AdaTTSpConfig,
  CategoricalFeature,
  CrossStitchConfig,
  InputConfig,
  MMoEConfig,
  ModelConfig,
  ModelKind,
  MultiValuedFeature,
  PLEConfig,
  Pooling,
  SharedBottomConfig,
  SingleTaskConfig,
  TaskConfig,
  TaskType,
} from './config';
export type { NativeModelConfig } from './addon';
export {
  AdattError,
  BusyError,
  ConfigError,
  DisposedError,
  FileError,
  NativeLoadError,
  NonFiniteError,
  TorchError,
  ValidationError,
} from './errors';
export type { AdattErrorCode } from './errors';

/** This package's version. */
export const version: string = (require('../package.json') as { version: string }).version;

export interface Info extends RawInfo {
  /** This package's version. */
  version: string;
}

/** The LibTorch in use (and the one the addon was built with), CUDA availability and thread counts. */
export function info(): Info {
  const addon = loadAddon();
  return { version, ...callNative(() => addon.info()) };
}

/** Sets LibTorch's intra-op thread count for this process (`torch.set_num_threads`). */
export const setNumThreads: (n: number, options?: ThreadOptions) => void = setThreadCount;
