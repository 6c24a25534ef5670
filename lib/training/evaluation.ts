/**
 * Evaluation, prediction and calibration over a TensorDataset or a DataStream, computed natively off
 * the event loop (metrics exact over the whole data, also across data-parallel ranks).
 */
import type { RawDatasetOptions } from '../addon';
import { loadAddon } from '../addon';
import { CALIBRATION_METHODS, readCalibration, reliabilityCurveOf, taskCalibrator, type ReliabilityCurve } from '../calibration';
import { DataStream } from '../data/stream';
import { callNative, callNativeAsync } from '../errors';
import { chunkPredictions, streamAllPredictions, streamLabelledOutputs, streamMetrics, type LabelledOutputs } from '../streaming';
import { describeValue, optionError, readChoice, readNumber, readOptions } from '../validation';
import { datasetPlan, modelPlan, readGroup } from './agreement';
import { binaryTasks, byTask, checkDatasetTasks, readSampleSpace, taskKinds, tasksOf } from './tasks';
import type { CalibrateOptions, CalibrationResult, Data, EvaluateOptions, Metrics, PredictedChunk, TrainableModel } from './types';

/**
 * The native options of evaluate and predict, validated; ranks that evaluate together first agree
 * on the model, the rows and the batch size (their outputs are gathered row by row).
 */
async function datasetOptions(what: string, model: TrainableModel, data: Data, options: EvaluateOptions): Promise<RawDatasetOptions> {
  const {
    batchSize: givenBatchSize,
    distributed,
    where: givenWhere,
    calibrated,
  } = readOptions(options, 'options', ['batchSize', 'distributed', 'where', 'calibrated']);
  checkDatasetTasks(model, data, 'data');
  const batchSize = readNumber(givenBatchSize, 'batchSize', 4096, { min: 1, integer: true });
  const group = readGroup(distributed);
  if (givenWhere !== undefined && what !== 'evaluate') optionError('where', 'where is an option of evaluate');
  const names = tasksOf(model).map((task) => task.name);
  const whereOf = givenWhere === undefined ? undefined : readOptions(givenWhere, 'where', names);
  const where =
    whereOf === undefined
      ? {}
      : {
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
async function binaryLabelledOutputs(
  model: TrainableModel,
  data: Data,
  native: RawDatasetOptions,
  tasks: readonly { index: number }[],
): Promise<{ outputs: Float32Array[]; labels: Float32Array[]; weights?: Float32Array[] }> {
  const all = await labelledOutputs(model, data, native);
  const pick = (values: readonly Float32Array[]): Float32Array[] => tasks.map((task) => values[task.index]!);
  return { outputs: pick(all.outputs), labels: pick(all.labels), ...(all.sampleWeights ? { weights: pick(all.sampleWeights) } : {}) };
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
  const fitted = await callNativeAsync(() =>
    addon.fitCalibrators(
      outputs,
      labels,
      weights,
      tasks.map(() => method),
    ),
  );
  const before = await callNativeAsync(() => addon.reliabilityCurves(outputs, labels, weights));
  const after = await callNativeAsync(() => addon.reliabilityCurves(outputs, labels, weights, fitted));
  return {
    calibration: readCalibration(Object.fromEntries(tasks.map((task, i) => [task.name, taskCalibrator(fitted[i]!)])), tasksOf(model)),
    curves: Object.fromEntries(
      tasks.map((task, i) => [task.name, { before: reliabilityCurveOf(before[i]!), after: reliabilityCurveOf(after[i]!) }]),
    ),
  };
}

/**
 * Per binary task name, the reliability curve of its predictions on `data` (with the model's
 * calibration unless `calibrated: false`): predicted probability against positive rate in 15 bins,
 * and the ECE, as `evaluate` reports it.
 */
export async function reliabilityCurves(
  model: TrainableModel,
  data: Data,
  options: Omit<EvaluateOptions, 'where'> = {},
): Promise<Record<string, ReliabilityCurve>> {
  const tasks = binaryTasks(model, undefined, 'model', 'to draw a reliability curve for');
  const native = await datasetOptions(
    'reliabilityCurves',
    model,
    data,
    readOptions(options, 'options', ['batchSize', 'distributed', 'calibrated']),
  );
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

/**
 * Predictions over a stream chunk by chunk, in source order, in memory bounded by the stream's
 * chunks (e.g. to write scores of data bigger than memory). Leaving the loop stops the reading.
 */
export async function* predictChunks(
  model: TrainableModel,
  data: DataStream,
  options: EvaluateOptions = {},
): AsyncGenerator<PredictedChunk> {
  if (!(data instanceof DataStream)) optionError('data', `predictChunks needs a DataStream (openStream), got ${describeValue(data)}`);
  const native = await datasetOptions('predict', model, data, options);
  let offset = 0;
  for await (const { outputs, encoded } of chunkPredictions(model._raw(), data, native)) {
    yield { offset, size: encoded.size, predictions: predictionsByTask(model, outputs), labels: byTask(model, encoded.labels) };
    offset += encoded.size;
  }
}
