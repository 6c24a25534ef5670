/**
 * fit: the epoch loop. Each epoch's batches (forward, loss, backward, optimizer step) run natively
 * off the event loop; here are validation, early stopping, best-weight restore, checkpoints and
 * calibration between epochs.
 */
import type { RawGradientConflict, RawProgress, RawTrainer } from '../addon';
import { loadAddon } from '../addon';
import { saveCheckpoint } from '../checkpoint';
import { DataStream } from '../data/stream';
import type { TensorDataset } from '../dataset';
import { callNative, callNativeAsync } from '../errors';
import { ensureDirectory } from '../files';
import type { Model, StateDict } from '../model';
import { trainStreamEpoch } from '../streaming';
import { setThreadCount } from '../threads';
import { datasetPlan, modelPlan } from './agreement';
import { CheckpointCadence } from './checkpoints';
import { EarlyStopping, monitoredValue } from './early-stopping';
import { calibrate, evaluate } from './evaluation';
import { readFitOptions } from './options';
import { dwaWeights } from './task-weighting';
import { byTask, tasksOf } from './tasks';
import type { Data, EpochSummary, FitOptions, FitResult, TrainableModel } from './types';

/**
 * Trains `model` on `train`. Resolves with per-epoch summaries; rejects with `ValidationError` for bad
 * options or data that does not fit the model, `NonFiniteError` on a NaN loss (nonFinite: 'stop').
 */
export async function fit(model: TrainableModel, train: Data, fitOptions: FitOptions = {}): Promise<FitResult> {
  const plan = readFitOptions(model, train, fitOptions);
  const { resume, validation, group, trainer: raw } = plan;
  const taskNames = tasksOf(model).map((task) => task.name);
  // Side effects from here on: everything above was checked.
  if (group) {
    // The causes first: a batch size changes the schedule's step count too.
    const { distributed: _, batchSize: __, schedule, ...settings } = raw;
    await group.agree('fit', [
      ...modelPlan(model),
      ['batchSize', plan.batchSize],
      ['epochs', plan.epochs],
      ...Object.entries(settings),
      ['schedule', schedule],
      ['resumed at step', resume?.step ?? 0],
      ...datasetPlan('train', train),
      ...(validation ? datasetPlan('validation', validation) : []),
      ['evalBatchSize', plan.evalBatchSize],
    ]);
    raw.distributed = group._raw();
  }
  if (plan.threads !== undefined) setThreadCount(plan.threads);
  model.calibration = undefined;
  if (plan.device !== undefined) await model.to(plan.device);
  if (plan.checkpoints) await ensureDirectory(plan.checkpoints.dir);
  // Only native models get here with checkpoints, restoreBest, resume or expert health (readFitOptions).
  const nativeModel = model as Model;
  const cadence =
    plan.checkpoints && (group === undefined || group.rank === 0)
      ? new CheckpointCadence(plan.checkpoints, plan.epochs, plan.stopping?.mode ?? 'max')
      : undefined;
  const stopping = plan.stopping && new EarlyStopping(plan.stopping, resume);
  const addon = loadAddon();
  const trainer: RawTrainer = callNative(() => new addon.Trainer(model._raw(), raw));
  const onAbort = (): void => trainer.abort();
  plan.signal?.addEventListener('abort', onAbort);

  const result: FitResult = {
    epochs: [...(resume?.history ?? [])],
    checkpoints: [],
    stoppedEarly: false,
    aborted: false,
    steps: 0,
    bestEpoch: resume?.bestEpoch,
    bestValue: resume?.bestValue,
  };
  let best: StateDict | undefined = resume?.bestWeights;
  try {
    if (resume !== undefined) await callNativeAsync(() => trainer.loadState(resume.optimizerState, resume.step));
    for (let epoch = plan.initialEpoch; epoch < plan.epochs; epoch += 1) {
      if (plan.signal?.aborted) {
        result.aborted = true;
        break;
      }
      if (plan.weighting.type === 'dwa') {
        const weights = dwaWeights(result.epochs, taskNames, plan.weighting.temperature);
        callNative(() => trainer.setTaskWeights(weights));
      }
      // A callback that throws stops the run before its next batch, and fit rejects with its error.
      let callbackError: { error: unknown } | undefined;
      const onProgress = plan.onProgress;
      const progress =
        onProgress &&
        ((p: RawProgress): void => {
          if (callbackError) return;
          try {
            onProgress({ ...p, loss: byTask(model, p.loss) });
          } catch (error) {
            callbackError = { error };
            trainer.abort();
          }
        });
      const done =
        train instanceof DataStream
          ? await trainStreamEpoch(trainer, train, epoch, plan.batchSize, progress, plan.progressInterval, group)
          : await callNativeAsync(() =>
              trainer.trainEpoch(train._raw(), epoch, progress, plan.progressInterval, {
                shuffleKey: epoch,
                ownBatches: -1,
                hasRows: true,
              }),
            );
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
        taskWeights: byTask(
          model,
          callNative(() => trainer.taskWeights()),
        ),
        ...(done.conflict ? { gradientConflict: conflictSummary(taskNames, done.conflict) } : {}),
        best: false,
      };
      if (done.aborted) {
        result.aborted = true;
        result.epochs.push(summary);
        break;
      }
      if (validation !== undefined) {
        summary.validation = await evaluate(model, validation, {
          batchSize: plan.evalBatchSize,
          distributed: group,
          where: plan.validationWhere,
        });
      }
      if (plan.expertHealth) summary.expertHealth = await nativeModel.expertStats(validation as TensorDataset, plan.expertHealth);
      if (stopping && summary.validation) {
        summary.monitored = monitoredValue(summary.validation, stopping.rule);
        summary.best = stopping.observe(epoch, summary.monitored);
        result.bestEpoch = stopping.bestEpoch;
        result.bestValue = stopping.bestValue;
        if (summary.best && plan.restoreBest) best = await nativeModel.stateDict({ layout: 'native' });
      }
      result.epochs.push(summary);
      plan.onEpoch?.(summary);
      const stopNow = stopping?.shouldStop ?? false;
      if (cadence?.isDue(epoch, stopNow)) {
        await cadence.save(epoch, summary.monitored, async (file) =>
          saveCheckpoint(file, nativeModel, {
            schema: train.schema,
            training: {
              nextEpoch: epoch + 1,
              step: trainer.step(),
              seed: raw.seed,
              optimizerType: raw.optimizer.type,
              embeddingOptimizerType: raw.embeddingOptimizer.type,
              taskWeighting: plan.weighting.type,
              optimizerState: await callNativeAsync(() => trainer.saveState()),
              history: result.epochs,
              bestEpoch: result.bestEpoch,
              bestValue: result.bestValue,
              epochsSinceBest: stopping?.epochsSinceBest ?? resume?.epochsSinceBest ?? 0,
              ...(plan.restoreBest && best ? { bestWeights: best } : {}),
            },
          }),
        );
      }
      if (stopNow) {
        result.stoppedEarly = true;
        break;
      }
    }
  } finally {
    plan.signal?.removeEventListener('abort', onAbort);
    trainer.dispose();
  }
  if (best !== undefined) await nativeModel.loadStateDict(best);
  result.checkpoints = cadence?.files ?? [];
  if (plan.calibration !== undefined && !result.aborted) {
    result.calibration = await calibrate(model, validation!, { ...plan.calibration, batchSize: plan.evalBatchSize, distributed: group });
    model.calibration = result.calibration.calibration;
  }
  return result;
}

/** Means of a pass's conflict sums by task name and 'a/b' pair (NaN where never measured). */
function conflictSummary(taskNames: readonly string[], conflict: RawGradientConflict): NonNullable<EpochSummary['gradientConflict']> {
  const mean = (sum: number, count: number): number => (count > 0 ? sum / count : NaN);
  const cosine: Record<string, number> = {};
  taskNames.forEach((a, i) => {
    taskNames.forEach((b, j) => {
      const at = i * taskNames.length + j;
      if (i < j) cosine[`${a}/${b}`] = mean(conflict.cosineSums[at] as number, conflict.cosineCounts[at] as number);
    });
  });
  return {
    steps: conflict.steps,
    norm: Object.fromEntries(taskNames.map((name, t) => [name, mean(conflict.normSums[t] as number, conflict.normCounts[t] as number)])),
    cosine,
  };
}
