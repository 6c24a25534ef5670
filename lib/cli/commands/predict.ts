/** `adatt predict`: a model on rows -> per-task probabilities / values as CSV or Parquet. */
import * as path from 'node:path';
import { TensorDataset } from '../../dataset';
import { predict } from '../../training';
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
import { loadEvaluationData, type EvaluationData } from '../data';
import { UsageError } from '../exit';
import { formatInteger } from '../format';
import { openModel } from '../model-source';
import type { Output } from '../output';
import { csvChunks, formatOfOutput, predictionColumns, writePredictions, type OutputColumn } from '../prediction-file';
import { schemaOf } from './eval';

export const predictCommand: Command = {
  spec: {
    name: 'predict',
    summary: 'score rows with a model and write the predictions as CSV or Parquet',
    description: `Columns: <task> for binary tasks (probability of the positive class) and regression tasks (the value),
<task>_<class> per class for multiclass tasks, after the --keep columns copied from the input.
Label columns may be missing from the input. Without --output, CSV goes to stdout.`,
    positionals: [{ name: 'model', description: 'run directory or .adatt checkpoint', required: true }],
    options: [
      { name: 'output', short: 'o', type: 'string', value: 'FILE', description: 'a .csv or .parquet file (default: CSV on stdout)' },
      {
        name: 'keep',
        type: 'string',
        value: 'COLUMNS',
        description: 'input columns to copy into the output, comma-separated (e.g. an id)',
      },
      ...DATA_OPTIONS,
      { name: 'batch-size', type: 'integer', value: 'N', description: 'prediction batch size (default 4096)' },
      UNCALIBRATED_OPTION,
      DEVICE_OPTION,
      THREADS_OPTION,
      JSON_OPTION,
    ],
    examples: [
      'adatt predict runs/census --output test-scores.parquet',
      'adatt predict runs/my-csv --data new-rows.csv --keep user_id --output scores.csv',
      'adatt predict model.adatt --data census-income --tasks income-marital --split validation > scores.csv',
    ],
  },
  run: predictRows,
};

function keptColumns(rows: EvaluationData, names: readonly string[]): OutputColumn[] {
  if (names.length === 0) return [];
  const table = rows.table;
  if (!table) throw new UsageError('--keep copies columns of a data file; built-in datasets have no columns to keep');
  return names.map((name) => {
    const column = table.findColumn(name);
    if (!column) throw new UsageError(`--keep: ${table.describeMissingColumn(name)}`);
    return { name, values: Array.from({ length: table.size }, (_, row) => table.value(column, row)) };
  });
}

async function predictRows(args: ParsedArgs, out: Output): Promise<number> {
  const { model: modelPath } = positionalsOf(predictCommand.spec, args) as { model: string };
  const output = args.options.output as string | undefined;
  const format = output === undefined ? 'csv' : formatOfOutput(output);
  if (!format) throw new UsageError(`--output must end in .csv or .parquet, got ${output!}`);
  if (output === undefined && out.json) throw new UsageError('--json needs --output: without it, stdout carries the CSV');
  const keep = ((args.options.keep as string | undefined) ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  applyThreads(args.options);
  const opened = await openModel(modelPath, deviceOf(args.options));
  using model = opened.checkpoint.model;
  const schema = schemaOf(opened);
  const { data, split } = await selectData(args.options, opened);
  const rows = await loadEvaluationData(data, schema, split, { labels: 'optional', streamed: false });
  const kept = keptColumns(rows, keep);
  using dataset = TensorDataset.fromEncoded(rows.rows, { schema, taskNames: schema.tasks.map((task) => task.name) });
  const batchSize = args.options.batchSize as number | undefined;
  const predictions = await predict(model, dataset, {
    ...(batchSize === undefined ? {} : { batchSize }),
    calibrated: args.options.uncalibrated !== true,
  });
  const columns = [...kept, ...predictionColumns(schema, predictions)];
  if (output === undefined) {
    for (const chunk of csvChunks(columns)) process.stdout.write(chunk);
  } else {
    await writePredictions(path.resolve(output), format, columns);
    out.print(path.resolve(output));
  }
  out.info(`${formatInteger(rows.rows.size)} rows of ${rows.description} scored: ${columns.map((c) => c.name).join(', ')}`);
  out.event('predictions', {
    model: opened.file,
    data: rows.description,
    rows: rows.rows.size,
    output: output === undefined ? null : path.resolve(output),
    columns: columns.map((c) => c.name),
  });
  return 0;
}
