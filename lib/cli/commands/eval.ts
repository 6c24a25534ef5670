/** `adatt eval`: a model on a data split -> per-task metrics table (or JSON). */
import { DataStream } from '../../data/stream';
import type { FittedSchema } from '../../data/types';
import type { Model } from '../../model';
import { TensorDataset } from '../../dataset';
import type { ReliabilityCurve } from '../../calibration';
import { evaluate, reliabilityCurves } from '../../training';
import { positionalsOf, type ParsedArgs } from '../args';
import {
  applyThreads,
  DATA_OPTIONS,
  DEVICE_OPTION,
  deviceOf,
  JSON_OPTION,
  selectData,
  THREADS_OPTION,
  UNCALIBRATED_OPTION,
  type Command,
} from '../command';
import { loadEvaluationData, rowsOf } from '../data';
import { UsageError } from '../exit';
import { formatInteger, formatMetric, formatTable, metricsTable } from '../format';
import { openModel, type OpenedModel } from '../model-source';
import type { Output } from '../output';

export const evalCommand: Command = {
  spec: {
    name: 'eval',
    summary: 'evaluate a model on a data split: AUC, NE, log loss, accuracy, RMSE… per task',
    description:
      "MODEL is a run directory (its model.adatt) or a .adatt checkpoint. Rows are encoded with the schema\nstored in the checkpoint; by default they are the test split of the run's data.",
    positionals: [{ name: 'model', description: 'run directory or .adatt checkpoint', required: true }],
    options: [
      ...DATA_OPTIONS,
      { name: 'batch-size', type: 'integer', value: 'N', description: 'evaluation batch size (default 4096)' },
      {
        name: 'reliability',
        type: 'boolean',
        description: 'also the reliability curve of each binary task: 15 bins of the predicted probability',
      },
      UNCALIBRATED_OPTION,
      DEVICE_OPTION,
      THREADS_OPTION,
      JSON_OPTION,
    ],
    examples: [
      'adatt eval runs/census',
      'adatt eval runs/census --split validation',
      'adatt eval runs/census/checkpoints/epoch-0002.adatt --json',
      'adatt eval model.adatt --data census-income --tasks income-marital --data-dir /data',
      'adatt eval runs/my-csv --data fresh-rows.csv',
    ],
  },
  run: evalModel,
};

/** One row per bin: its range, rows, mean prediction and positive rate. */
function reliabilityTable(curve: ReliabilityCurve): string {
  const value = (v: number | null): string => (v === null ? '–' : v.toFixed(4));
  return formatTable(
    ['predicted', 'rows', 'mean prediction', 'positive rate'],
    curve.bins.map((bin) => [
      `${bin.lower.toFixed(3)}–${bin.upper.toFixed(3)}`,
      formatInteger(bin.rows),
      value(bin.meanPrediction),
      value(bin.positiveRate),
    ]),
  );
}

/** The model's fitted schema: what encodes rows for it. */
export function schemaOf(opened: OpenedModel): FittedSchema {
  if (!opened.checkpoint.schema) {
    throw new UsageError(`${opened.file} holds no data schema (it was saved without one), so its input cannot be encoded from data`);
  }
  return opened.checkpoint.schema;
}

async function evalModel(args: ParsedArgs, out: Output): Promise<number> {
  const { model: modelPath } = positionalsOf(evalCommand.spec, args) as { model: string };
  applyThreads(args.options);
  const opened = await openModel(modelPath, deviceOf(args.options));
  using model = opened.checkpoint.model;
  const schema = schemaOf(opened);
  const { data, split } = await selectData(args.options, opened);
  const rows = await loadEvaluationData(data, schema, split, { labels: 'required', streamed: true });
  const dataset =
    rows.rows instanceof DataStream
      ? rows.rows
      : TensorDataset.fromEncoded(rows.rows, { schema, taskNames: schema.tasks.map((task) => task.name) });
  try {
    return await evaluateOn(model, dataset, rows.description, args, opened.file, out);
  } finally {
    if (dataset instanceof TensorDataset) dataset.dispose();
  }
}

async function evaluateOn(
  model: Model,
  dataset: TensorDataset | DataStream,
  description: string,
  args: ParsedArgs,
  file: string,
  out: Output,
): Promise<number> {
  const size = rowsOf(dataset);
  const batchSize = args.options.batchSize as number | undefined;
  const options = { ...(batchSize === undefined ? {} : { batchSize }), calibrated: args.options.uncalibrated !== true };
  const metrics = await evaluate(model, dataset, options);
  const curves = args.options.reliability === true ? await reliabilityCurves(model, dataset, options) : undefined;
  out.event('metrics', {
    model: file,
    data: description,
    rows: size,
    metrics,
    ...(curves ? { reliability: curves } : {}),
  });
  out.info(`${model.config.kind} from ${file} on ${description} (${formatInteger(size)} rows)`);
  if (!out.json) out.print(metricsTable(metrics));
  if (curves && !out.json) {
    for (const [task, curve] of Object.entries(curves))
      out.print(`\n${task}: reliability (ECE ${formatMetric('ece', curve.ece)})\n${reliabilityTable(curve)}`);
  }
  return 0;
}
