/** `adatt train`: config + flags -> data -> model -> fit -> run directory with metrics and report. */
import * as path from 'node:path';
import { loadAddon } from '../../addon';
import { loadCheckpoint, saveCheckpoint } from '../../checkpoint';
import type { TrainingState } from '../../training';
import { CALIBRATION_METHODS } from '../../calibration';
import { MODEL_KINDS, type ModelConfig } from '../../config';
import { modelSections, type ModelSectionsOptions } from '../../data/sections';
import type { FittedSchema } from '../../data/types';
import { TensorDataset } from '../../dataset';
import { createModel, type Model } from '../../model';
import { evaluate, fit, type FitOptions, type FitResult } from '../../training';
import { setThreadCount } from '../../threads';
import { positionalsOf, type ParsedArgs } from '../args';
import { JSON_OPTION, type Command } from '../command';
import { loadTrainingData, requireSameSchema, rowsOf, SPLITS, splitDatasets, type SplitDatasets, type TrainingData } from '../data';
import { EXIT, exitCodeOf, InterruptedError, inSection, inSectionSync } from '../exit';
import { formatMetric, metricsTable } from '../format';
import { measureGates } from '../gates';
import { Interrupts } from '../interrupts';
import type { Output } from '../output';
import { groupParameters } from '../parameters';
import { TrainingReporter } from '../progress';
import { buildReport } from '../report/html';
import { RunDirectory, type MetricsRecord, type RunInfo, type RunStatus } from '../run-dir';
import {
  annotate,
  buildRunConfig,
  isBuiltinDataset,
  modelConfigOf,
  parseSetOption,
  readConfigFile,
  sourceName,
  type Override,
  type RunConfig,
} from '../run-config';

/** Flags that set config fields (besides --set). */
const FLAG_FIELDS: Readonly<Record<string, { flag: string; fields: string[] }>> = {
  model: { flag: '--model', fields: ['model.kind'] },
  data: { flag: '--data', fields: ['data.source'] },
  tasks: { flag: '--tasks', fields: ['data.tasks'] },
  optimizer: { flag: '--optimizer', fields: ['training.optimizer.type'] },
  lr: { flag: '--lr', fields: ['training.optimizer.lr'] },
  epochs: { flag: '--epochs', fields: ['training.epochs'] },
  batchSize: { flag: '--batch-size', fields: ['training.batchSize'] },
  device: { flag: '--device', fields: ['training.device'] },
  threads: { flag: '--threads', fields: ['training.threads'] },
  seed: { flag: '--seed', fields: ['model.seed', 'training.seed'] },
  calibrate: { flag: '--calibrate', fields: ['training.calibration.method'] },
};

export const trainCommand: Command = {
  spec: {
    name: 'train',
    summary: 'train a model; writes a run directory with checkpoints, metrics.jsonl and report.html',
    description: `The config file has the sections model, data, training and report (docs/cli.md); flags override it,
and without a file the defaults train AdaTT-sp on the synthetic tasks. Ctrl-C stops before the next batch
and saves checkpoints/interrupted.adatt (a second Ctrl-C quits at once).`,
    positionals: [{ name: 'config', description: 'run config file (.json, .yaml or .yml)' }],
    options: [
      { name: 'model', type: 'string', value: 'KIND', description: `model kind: ${MODEL_KINDS.join(', ')}` },
      {
        name: 'data',
        type: 'string',
        value: 'SOURCE',
        description:
          "census-income, adult, synthetic, a .csv/.parquet/.jsonl/.arrow file or a quoted glob of shards ('shards/*.parquet'; schema in the config)",
      },
      { name: 'tasks', type: 'string', value: 'GROUP', description: 'census-income task group: income-marital, education-marital, all' },
      { name: 'optimizer', type: 'string', value: 'NAME', description: 'adam, adamw, adagrad or sgd' },
      { name: 'lr', type: 'number', value: 'RATE', description: 'learning rate' },
      { name: 'epochs', type: 'integer', value: 'N', description: 'epochs (default 5)' },
      { name: 'batch-size', type: 'integer', value: 'N', description: 'training batch size (default 256)' },
      { name: 'device', type: 'string', value: 'DEVICE', description: 'cpu, cuda or cuda:N' },
      { name: 'threads', type: 'integer', value: 'N', description: 'LibTorch threads (default: all cores)' },
      { name: 'seed', type: 'integer', value: 'N', description: 'seed of parameter initialisation and shuffling' },
      {
        name: 'calibrate',
        type: 'string',
        value: 'METHOD',
        description: `after training, calibrate binary tasks on validation: ${CALIBRATION_METHODS.join(', ')}`,
      },
      {
        name: 'set',
        type: 'string',
        value: 'KEY=VALUE',
        repeatable: true,
        description: 'set any config field, e.g. --set training.schedule.type=cosine',
      },
      { name: 'out', short: 'o', type: 'string', value: 'DIR', description: 'run directory (default runs/<date>-<time>-<model>-<data>)' },
      {
        name: 'overwrite',
        type: 'boolean',
        description: 'replace the run in an existing --out directory (only its files), or write beside the files of a non-empty one',
      },
      {
        name: 'resume',
        type: 'string',
        value: 'CHECKPOINT',
        description: 'continue from a checkpoint: its weights (and optimizer state, if saved at an epoch end)',
      },
      { name: 'dry-run', type: 'boolean', description: 'check the config, print it resolved, and stop' },
      JSON_OPTION,
    ],
    examples: [
      'adatt train --data census-income --tasks income-marital --epochs 3',
      'adatt train examples/configs/census-adatt.yaml --lr 2e-3 --out runs/census',
      'adatt train my-data.yaml --model mmoe --set model.experts=6 --set training.schedule.type=cosine',
      'adatt train --data synthetic --epochs 2 --json > events.jsonl',
      'adatt train runs/census/config.json --resume runs/census/checkpoints/epoch-0002.adatt --epochs 6 --out runs/census-more',
    ],
  },
  run: train,
  handlesInterrupts: true,
};

async function collectOverrides(options: Record<string, unknown>): Promise<Override[]> {
  const overrides: Override[] = [];
  for (const [key, { flag, fields }] of Object.entries(FLAG_FIELDS)) {
    let value = options[key];
    if (value === undefined) continue;
    if (key === 'data' && typeof value === 'string' && !isBuiltinDataset(value)) value = path.resolve(value);
    for (const field of fields) overrides.push({ field, value, flag });
  }
  for (const text of (options.set as string[] | undefined) ?? []) overrides.push(await parseSetOption(text));
  return overrides;
}

function timestamp(date: Date): string {
  return date.toISOString().slice(0, 19).replace('T', '-').replace(/:/g, '');
}

function defaultRunDirectory(config: RunConfig, started: Date): string {
  const data = isBuiltinDataset(config.data.source)
    ? config.data.source
    : sourceName(config.data.source)
        .replace(/\..*$/, '')
        .replace(/[^\w-]+/g, '-');
  return path.join('runs', `${timestamp(started)}-${config.model.kind}-${data}`);
}

/** The model to train: a fresh one from the config, or the weights (and training state) of --resume. */
async function prepareModel(
  config: RunConfig,
  schema: FittedSchema,
  resumeFrom: string | undefined,
  out: Output,
): Promise<{ model: Model; resume?: TrainingState }> {
  if (resumeFrom === undefined) {
    const sectionOptions: ModelSectionsOptions = {
      ...(config.model.embeddingDim === undefined ? {} : { embeddingDim: config.model.embeddingDim as number }),
      ...(config.model.pooling === undefined ? {} : { pooling: config.model.pooling as 'mean' | 'sum' }),
      ...(config.model.conditionalOn === undefined ? {} : { conditionalOn: config.model.conditionalOn as Record<string, string> }),
    };
    const modelConfig = modelConfigOf(config.model, modelSections(schema, sectionOptions));
    return { model: inSectionSync('model', () => createModel(modelConfig as unknown as ModelConfig)) };
  }
  const checkpoint = await loadCheckpoint(resumeFrom);
  try {
    if (checkpoint.schema) requireSameSchema(checkpoint.schema, schema, `this config's data (${sourceName(config.data.source)})`);
  } catch (err) {
    checkpoint.model.dispose();
    throw err;
  }
  if (!checkpoint.training) {
    out.warn(
      `${resumeFrom} holds weights only (saved on an interrupt), no optimizer state: training them with a fresh optimizer from epoch 1`,
    );
    return { model: checkpoint.model };
  }
  return { model: checkpoint.model, resume: checkpoint.training };
}

/** fit()'s options from the training section: threads were set before the data loaded; checkpoints go to the run. */
function fitOptionsOf(config: RunConfig, run: RunDirectory): FitOptions {
  const { threads: _threads, checkpoint, ...options } = config.training;
  return { ...(options as FitOptions), checkpoint: { ...(checkpoint as object | undefined), dir: run.path('checkpoints') } };
}

async function train(args: ParsedArgs, out: Output): Promise<number> {
  const started = new Date();
  const { config: configFile } = positionalsOf(trainCommand.spec, args) as { config?: string };
  const options = args.options;
  const overrides = await collectOverrides(options);
  const config = buildRunConfig(configFile ? await readConfigFile(configFile) : undefined, overrides);
  if (options.dryRun) {
    out.print(JSON.stringify(config, null, 2));
    out.event('config', { config });
    return EXIT.ok;
  }
  setThreadCount(config.training.threads);
  const run = await RunDirectory.create((options.out as string | undefined) ?? defaultRunDirectory(config, started), {
    overwrite: Boolean(options.overwrite),
  });
  await run.writeJson('config', config);
  out.info(`run directory: ${run.dir}`);
  out.event('run', { dir: run.dir, config });

  const state: TrainingRun = { phase: 'loading', finishedEpochs: new Set() };
  using interrupts = new Interrupts(out, () =>
    state.phase === 'training'
      ? 'stopping before the next batch, then saving a checkpoint (Ctrl-C again quits without saving)'
      : `stopping after ${state.phase} (Ctrl-C again quits now)`,
  );
  try {
    return await trainInto(run, config, overrides, options, state, interrupts, out, started);
  } catch (err) {
    out.clearStatus();
    // A run that never trained (bad option, missing file, Ctrl-C while loading) leaves nothing behind.
    if (state.finishedEpochs.size === 0 && (state.phase === 'loading' || exitCodeOf(err) === EXIT.usage)) {
      await run.discard();
    } else {
      await markFailed(run, err);
    }
    throw err;
  }
}

interface TrainingRun {
  phase: 'loading' | 'training' | 'saving';
  /** Epochs that ran to their end (including a resumed run's earlier ones). */
  finishedEpochs: Set<number>;
}

async function trainInto(
  run: RunDirectory,
  config: RunConfig,
  overrides: readonly Override[],
  options: Record<string, unknown>,
  state: TrainingRun,
  interrupts: Interrupts,
  out: Output,
  started: Date,
): Promise<number> {
  const data = await withFlags(overrides, () => loadTrainingData(config.data));
  if (interrupts.interrupted) throw new InterruptedError('interrupted while loading the data; nothing was trained');
  const splits = splitDatasets(data);
  let model: Model | undefined;
  try {
    const prepared = await withFlags(overrides, () => prepareModel(config, data.schema, options.resume as string | undefined, out));
    model = prepared.model;
    const { resume } = prepared;
    const info = initialRunInfo(config, data, model, started, options.resume as string | undefined);
    info.model.parts = groupParameters(
      await model.stateDict(),
      model.config.tasks.map((t) => t.name),
    );
    await run.writeJson('run', info);
    out.info(
      `${data.name}: ${Object.entries(info.dataset.rows)
        .map(([s, n]) => `${s} ${n.toLocaleString('en-US')}`)
        .join(', ')} rows; ` + `tasks ${model.config.tasks.map((t) => t.name).join(', ')}`,
    );
    out.info(
      `${model.config.kind}: ${info.model.parameters.toLocaleString('en-US')} parameters, ${config.training.threads} thread${config.training.threads === 1 ? '' : 's'}`,
    );
    out.event('data', { name: data.name, rows: info.dataset.rows, tasks: info.dataset.tasks });
    out.event('model', { config: model.config, parameters: info.model.parameters, parts: info.model.parts });

    const reporter = new TrainingReporter(out, {
      epochs: config.training.epochs,
      trainRows: rowsOf(data.train),
      tasks: model.config.tasks,
    });
    // onEpoch is synchronous: metrics lines are appended in order on a promise chain.
    let writes: Promise<void> = Promise.resolve();
    const record = (entry: MetricsRecord): void => {
      writes = writes.then(() => run.appendMetrics(entry));
    };
    for (const summary of resume?.history ?? []) {
      state.finishedEpochs.add(summary.epoch);
      record({ type: 'epoch', ...summary });
    }

    state.phase = 'training';
    const trained = model;
    const result = await withFlags(overrides, () =>
      inSection('training', () =>
        fit(trained, splits.train!, {
          ...fitOptionsOf(config, run),
          ...(splits.validation ? { validation: splits.validation } : {}),
          // Expert health measures on validation rows in memory; a streamed run's report has the gates alone.
          ...(splits.validation instanceof TensorDataset ? { expertHealth: { rows: config.report.gateSampleRows as number } } : {}),
          ...(resume ? { resume } : {}),
          signal: interrupts.signal,
          onProgress: (event) => reporter.progress(event),
          onEpoch: (summary) => {
            reporter.epoch(summary);
            state.finishedEpochs.add(summary.epoch);
            record({ type: 'epoch', ...summary });
          },
        }),
      ),
    );
    out.clearStatus();
    state.phase = 'saving';
    const status = await finishRun(run, info, model, data, splits, result, state.finishedEpochs, record, out, config);
    await writes;
    info.status = status;
    info.finishedAt = new Date().toISOString();
    info.seconds = (Date.now() - started.getTime()) / 1000;
    await run.writeJson('run', info);
    await run.writeReport(buildReport(await run.readArtifacts()));
    return await summarize(run, info, out);
  } finally {
    model?.dispose();
    for (const split of Object.values(splits)) if (split instanceof TensorDataset) split.dispose();
  }
}

/** Config errors from the data loader, model or fit, with the flag that set the value named. */
async function withFlags<T>(overrides: readonly Override[], work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw annotate(err, overrides);
  }
}

function initialRunInfo(config: RunConfig, data: TrainingData, model: Model, started: Date, resumedFrom?: string): RunInfo {
  const rows: Record<string, number> = {};
  for (const split of SPLITS) {
    const encoded = data[split];
    if (encoded) rows[split] = rowsOf(encoded);
  }
  const stopping = config.training.earlyStopping as { metric: string; task?: string } | undefined;
  return {
    adatt: (require('../../../package.json') as { version: string }).version,
    libtorch: loadAddon().info().libtorchVersion,
    command: ['adatt', ...process.argv.slice(2)],
    startedAt: started.toISOString(),
    status: 'running',
    ...(resumedFrom ? { resumedFrom: path.resolve(resumedFrom) } : {}),
    dataset: { name: data.name, rows, tasks: [...model.config.tasks] },
    model: { config: model.config, parameters: model.parameterCount(), parts: [] },
    training: {
      epochs: config.training.epochs,
      completedEpochs: 0,
      ...(stopping ? { monitor: { metric: stopping.metric, task: stopping.task ?? 'mean' } } : {}),
    },
    files: { checkpoints: [] },
  };
}

/** After fit: the interrupt checkpoint or the final model, gates, test metrics; returns the status. */
async function finishRun(
  run: RunDirectory,
  info: RunInfo,
  model: Model,
  data: TrainingData,
  splits: SplitDatasets,
  result: FitResult,
  finishedEpochs: ReadonlySet<number>,
  record: (entry: MetricsRecord) => void,
  out: Output,
  config: RunConfig,
): Promise<RunStatus> {
  info.training.completedEpochs = finishedEpochs.size;
  info.training.steps = result.steps;
  if (result.bestEpoch !== undefined) info.training.bestEpoch = result.bestEpoch;
  if (result.bestValue !== undefined) info.training.bestValue = result.bestValue;
  info.files.checkpoints = result.checkpoints.map((file) => run.relative(file));

  const gateData = data.validation ?? data.train;
  const gates = await measureGates(model, gateData, config.report.gateSampleRows, data.validation ? 'validation' : 'training');
  if (gates) await run.writeJson('gates', gates);

  if (result.aborted) {
    // fit reports an epoch cut short by the abort in its result only, never to onEpoch.
    const partial = result.epochs.at(-1);
    if (partial && !finishedEpochs.has(partial.epoch)) record({ type: 'epoch', partial: true, ...partial });
    await saveCheckpoint(run.path('interrupted'), model, { schema: data.schema });
    info.files.interrupted = run.relative(run.path('interrupted'));
    out.event('interrupted', { checkpoint: run.path('interrupted') });
    return 'interrupted';
  }
  for (const flag of result.epochs.at(-1)?.expertHealth?.flags ?? []) out.warn(`expert health: ${flag.message}`);
  if (result.calibration && splits.validation) {
    const { calibration, curves } = result.calibration;
    await run.writeJson('calibration', { split: 'validation', rows: rowsOf(data.validation!), calibration, curves });
    for (const [task, curve] of Object.entries(curves)) {
      out.info(
        `calibrated ${task} (${calibration[task]!.method}) on validation: ECE ${formatMetric('ece', curve.before.ece)} -> ${formatMetric('ece', curve.after.ece)}`,
      );
    }
    out.event('calibration', {
      calibration,
      ece: Object.fromEntries(Object.entries(curves).map(([task, c]) => [task, { before: c.before.ece, after: c.after.ece }])),
    });
  }
  if (splits.test) {
    const metrics = await evaluate(model, splits.test);
    record({ type: 'test', metrics });
    out.event('test', { metrics });
  }
  await saveCheckpoint(run.path('model'), model, { schema: data.schema });
  info.files.model = run.relative(run.path('model'));
  return result.stoppedEarly ? 'stopped-early' : 'completed';
}

async function markFailed(run: RunDirectory, err: unknown): Promise<void> {
  try {
    const artifacts = await run.readArtifacts();
    await run.writeJson('run', { ...artifacts.run, status: 'failed', error: (err as Error).message, finishedAt: new Date().toISOString() });
  } catch {
    // run.json was never written (the failure came first): nothing to mark.
  }
}

async function summarize(run: RunDirectory, info: RunInfo, out: Output): Promise<number> {
  const artifacts = await run.readArtifacts();
  const test = artifacts.metrics.filter((m) => m.type === 'test').at(-1);
  if (test?.type === 'test') out.print(`\nTest metrics:\n${metricsTable(test.metrics)}\n`);
  const files = [
    ['report', run.path('report')],
    ...(info.files.model ? [['model', path.join(run.dir, info.files.model)]] : []),
    ...(info.files.interrupted ? [['checkpoint', path.join(run.dir, info.files.interrupted)]] : []),
  ];
  out.event('done', { dir: run.dir, status: info.status, seconds: info.seconds, files: Object.fromEntries(files) });
  if (info.status === 'interrupted') {
    out.info(
      `interrupted after ${info.training.completedEpochs} finished epochs; the weights at the interrupt are in ${path.join(run.dir, info.files.interrupted!)}`,
    );
    const resumable = info.files.checkpoints.at(-1);
    if (resumable)
      out.info(
        `resume from the last epoch end with: adatt train ${run.path('config')} --resume ${path.join(run.dir, resumable)} --out <new dir>`,
      );
    out.info(`report: ${run.path('report')}`);
    return EXIT.interrupted;
  }
  out.info(`${info.status === 'stopped-early' ? 'stopped early' : 'done'} in ${info.seconds?.toFixed(1)} s`);
  for (const [name, file] of files) out.print(`${name!.padEnd(10)} ${file!}`);
  return 0;
}
