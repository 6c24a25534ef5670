/**
 * Calibrated probabilities for binary tasks: the calibrator types users hold (and checkpoints
 * store), their checks, and their conversion to and from the addon's. Fitting runs natively
 * (native/src/calibration.cpp); `calibrate` and `reliabilityCurves` are in training/evaluation.ts.
 */
import { CALIBRATION_METHODS, type CalibrationMethod, type RawCalibrator, type RawReliabilityCurve } from './addon';
import type { TaskConfig } from './config';
import { describeValue, findUnknownKey, isRecord, optionError, quoteList } from './validation';

export { CALIBRATION_METHODS, type CalibrationMethod } from './addon';

/**
 * One binary task's map from its tower's logit z to a probability: temperature scaling
 * sigmoid(z / temperature), Platt scaling sigmoid(scale z + bias), or isotonic regression: a
 * non-decreasing piecewise-linear map through (logits[k], probabilities[k]), flat beyond the ends.
 */
export type TaskCalibrator =
  | { method: 'temperature'; temperature: number }
  | { method: 'platt'; scale: number; bias: number }
  | { method: 'isotonic'; logits: number[]; probabilities: number[] };

/** Per binary task name, its calibrator (tasks left out predict uncalibrated). */
export type Calibration = Readonly<Record<string, TaskCalibrator>>;

/** One bin of a reliability curve: predictions in [lower, upper). */
export interface ReliabilityBin {
  lower: number;
  upper: number;
  /** Labelled rows in the bin, and their sum of sample weights (= rows without weights). */
  rows: number;
  weight: number;
  /** Weighted mean prediction and positive rate in the bin; null when it is empty. */
  meanPrediction: number | null;
  positiveRate: number | null;
}

/** Predicted probability against observed positive rate, in 15 equal-width bins, and its ECE. */
export interface ReliabilityCurve {
  bins: ReliabilityBin[];
  /** Expected calibration error: the weight-share-weighted mean of |meanPrediction - positiveRate|. */
  ece: number;
}

function finite(value: unknown, field: string, { positive = false } = {}): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || (positive && value <= 0)) {
    optionError(field, `${field} must be a ${positive ? 'positive' : 'finite'} number, got ${describeValue(value)}`);
  }
  return value;
}

function readCalibrator(value: unknown, field: string): TaskCalibrator {
  if (!isRecord(value) || !CALIBRATION_METHODS.includes(value.method as CalibrationMethod)) {
    optionError(
      `${field}.method`,
      `${field} must be a calibrator with method ${quoteList(CALIBRATION_METHODS)}, got ${describeValue(value)}`,
    );
  }
  const method = value.method as CalibrationMethod;
  const keys = { temperature: ['temperature'], platt: ['scale', 'bias'], isotonic: ['logits', 'probabilities'] }[method];
  const unknown = findUnknownKey(value, ['method', ...keys]);
  if (unknown !== undefined)
    optionError(`${field}.${unknown}`, `unknown key ${field}.${unknown} for a ${method} calibrator (allowed: ${quoteList(keys)})`);
  switch (method) {
    case 'temperature':
      return { method, temperature: finite(value.temperature, `${field}.temperature`, { positive: true }) };
    case 'platt':
      return { method, scale: finite(value.scale, `${field}.scale`), bias: finite(value.bias, `${field}.bias`) };
    case 'isotonic': {
      const numbers = (key: 'logits' | 'probabilities'): number[] => {
        const list = value[key];
        if (!Array.isArray(list) || list.length === 0)
          optionError(`${field}.${key}`, `${field}.${key} must be a non-empty array of numbers`);
        return Array.from(list, (item, i) => finite(item, `${field}.${key}[${i}]`));
      };
      const [logits, probabilities] = [numbers('logits'), numbers('probabilities')];
      if (logits.length !== probabilities.length)
        optionError(field, `${field} has ${logits.length} logits but ${probabilities.length} probabilities`);
      for (let k = 1; k < logits.length; k++) {
        if (!(logits[k]! > logits[k - 1]!)) optionError(`${field}.logits`, `${field}.logits must be strictly increasing (index ${k})`);
        if (probabilities[k]! < probabilities[k - 1]!)
          optionError(`${field}.probabilities`, `${field}.probabilities must be non-decreasing (index ${k})`);
      }
      const outside = probabilities.findIndex((p) => p < 0 || p > 1);
      if (outside >= 0) optionError(`${field}.probabilities`, `${field}.probabilities[${outside}] must lie in [0, 1]`);
      return { method, logits, probabilities };
    }
  }
}

/** Checks `value` as a calibration of `tasks` (binary task names only) and returns a frozen copy. */
export function readCalibration(value: unknown, tasks: readonly TaskConfig[], field = 'calibration'): Calibration {
  if (!isRecord(value)) optionError(field, `${field} must be an object of calibrators by task name, got ${describeValue(value)}`);
  const binary = tasks.filter((task) => task.type === 'binary').map((task) => task.name);
  const entries = Object.entries(value).map(([name, calibrator]): [string, TaskCalibrator] => {
    if (!binary.includes(name)) {
      optionError(`${field}.${name}`, `${field}.${name}: calibrators are for the binary tasks ${quoteList(binary)}`);
    }
    return [name, Object.freeze(readCalibrator(calibrator, `${field}.${name}`))];
  });
  return Object.freeze(Object.fromEntries(entries));
}

/** The addon's form of one task's calibrator. */
export function rawCalibrator(calibrator: TaskCalibrator): RawCalibrator {
  switch (calibrator.method) {
    case 'temperature':
      return { method: 'temperature', scale: 1 / calibrator.temperature, bias: 0, knotLogits: [], knotProbabilities: [] };
    case 'platt':
      return { method: 'platt', scale: calibrator.scale, bias: calibrator.bias, knotLogits: [], knotProbabilities: [] };
    case 'isotonic':
      return { method: 'isotonic', scale: 1, bias: 0, knotLogits: calibrator.logits, knotProbabilities: calibrator.probabilities };
  }
}

/** The calibrator of a fitted raw one. */
export function taskCalibrator(raw: RawCalibrator): TaskCalibrator {
  switch (raw.method) {
    case 'temperature':
      return { method: 'temperature', temperature: 1 / raw.scale };
    case 'platt':
      return { method: 'platt', scale: raw.scale, bias: raw.bias };
    case 'isotonic':
      return { method: 'isotonic', logits: raw.knotLogits, probabilities: raw.knotProbabilities };
  }
}

/** Per task in model order, its raw calibrator or null; undefined when no task has one. */
export function rawCalibrators(calibration: Calibration | undefined, tasks: readonly TaskConfig[]): (RawCalibrator | null)[] | undefined {
  if (calibration === undefined || Object.keys(calibration).length === 0) return undefined;
  return tasks.map((task) => (calibration[task.name] === undefined ? null : rawCalibrator(calibration[task.name]!)));
}

/** The addon's curve with bin bounds, and null (not NaN, which JSON cannot hold) for empty bins. */
export function reliabilityCurveOf(raw: RawReliabilityCurve): ReliabilityCurve {
  const bins = raw.rows.length;
  const orNull = (value: number | undefined): number | null => (value === undefined || Number.isNaN(value) ? null : value);
  return {
    bins: raw.rows.map((rows, b) => ({
      lower: b / bins,
      upper: (b + 1) / bins,
      rows,
      weight: raw.weight[b]!,
      meanPrediction: orNull(raw.predicted[b]),
      positiveRate: orNull(raw.positive[b]),
    })),
    ece: raw.ece,
  };
}
