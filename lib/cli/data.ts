/**
 * The data of a run, from its config's `data` section: a built-in dataset (loadDataset), or a file,
 * a glob of shards or a SQL query read with the schema of the config (readCsv / readParquet /
 * readJsonLines / readArrow / readSql, splitRandom, fitSchema, encode). Evaluation and prediction re-read the same source and encode it with the model's
 * fitted schema, so new rows are encoded exactly as the training rows were.
 */
import { loadDataset, type BuiltinDatasetName } from '../data/builtin';
import { readArrow, readJsonLines, readParquet, readSql } from '../data/columnar';
import { readCsv } from '../data/csv';
import { encode } from '../data/encode';
import { fitSchema } from '../data/fit';
import { fitSchemaFrom } from '../data/fit-source';
import type { SourceOptions } from '../data/source';
import { DataStream, openStream } from '../data/stream';
import { TensorDataset } from '../dataset';
import { schemaColumns, type SchemaColumns } from '../data/spec';
import { splitRandom } from '../data/split';
import { NULL_CODE, Table, type Column } from '../data/table';
import type { EncodedData, FittedSchema, SchemaSpec } from '../data/types';
import { ConfigError, ValidationError } from '../errors';
import { inSection, inSectionSync, prefixField, UsageError } from './exit';
import { fileFormatOf } from '../data/engine';
import { isBuiltinDataset, sourceName, type DataSection, type DataSource, streamReadingOf } from './run-config';

export const SPLITS = ['train', 'validation', 'test'] as const;
export type SplitName = (typeof SPLITS)[number];

const DEFAULT_SPLIT: Readonly<Record<SplitName, number>> = { train: 0.8, validation: 0.1, test: 0.1 };

/** A split's rows: encoded in memory, or streamed from its source (`data.stream`). */
export type SplitData = EncodedData | DataStream;

export interface TrainingData {
  name: string;
  schema: FittedSchema;
  train: SplitData;
  validation?: SplitData;
  test?: SplitData;
}

export function rowsOf(split: SplitData | TensorDataset): number {
  return split instanceof DataStream ? split.rows : split.size;
}

/** The splits as fit and evaluate take them: encoded ones as TensorDatasets (the caller disposes of them), streams as they are. */
export type SplitDatasets = Partial<Record<SplitName, TensorDataset | DataStream>>;

export function splitDatasets(data: TrainingData): SplitDatasets {
  const encoded: Record<string, EncodedData> = {};
  const streamed: SplitDatasets = {};
  for (const split of SPLITS) {
    const rows = data[split];
    if (rows instanceof DataStream) streamed[split] = rows;
    else if (rows !== undefined) encoded[split] = rows;
  }
  return { ...TensorDataset.fromSplits(data.schema, encoded), ...streamed };
}

/** Loads and encodes every split of the run's data, fitting the schema on the training rows. */
export async function loadTrainingData(data: DataSection): Promise<TrainingData> {
  if (isBuiltinDataset(data.source)) {
    const { source, ...options } = data;
    return inSection('data', () => loadDataset(source as BuiltinDatasetName, options as Record<string, unknown>));
  }
  const spec = data.schema as SchemaSpec;
  if (data.stream) {
    // Fitted over the source in the engine, then every split streamed: no split is held in memory.
    const schema = await inSection('data', () => fitSchemaFrom(spec, data.source, sourceOptionsOf(data)));
    const splits = await Promise.all(
      SPLITS.map(async (split) => {
        const source = split === 'train' ? data.source : data.stream![split];
        return source === undefined ? [] : [[split, await openSplitStream(data, source, schema, split)] as const];
      }),
    );
    return { name: sourceName(data.source), schema, ...Object.fromEntries(splits.flat()) } as TrainingData;
  }
  const parts = splitTable(await readTable(data, schemaColumns(spec)), data);
  const schema = inSectionSync('data.schema', () => fitSchema(spec, parts.train!));
  const encoded = Object.fromEntries(Object.entries(parts).map(([name, table]) => [name, encode(schema, table!)]));
  return { name: sourceName(data.source), schema, ...encoded } as TrainingData;
}

/** openStream's source options from the data section: the CSV dialect, when given. */
function sourceOptionsOf(data: DataSection): SourceOptions {
  return data.csv === undefined ? {} : { csv: data.csv as SourceOptions['csv'] };
}

/** A stream of one split's source (`data.source` for train), with the run's reading options. */
async function openSplitStream(data: DataSection, source: DataSource, schema: FittedSchema, split: SplitName): Promise<DataStream> {
  const field = split === 'train' ? 'data' : `data.stream.${split}`;
  return inSection(field, () => openStream(source, { schema, ...sourceOptionsOf(data), ...streamReadingOf(data.stream!) }));
}

export interface EvaluationData<Rows extends SplitData = SplitData> {
  /** Dataset name and split, for messages. */
  description: string;
  rows: Rows;
  /** The rows as read (file sources read into memory only), for copying columns into predictions. */
  table?: Table;
}

/**
 * One split of `data` encoded with `schema` (the model's). `split: 'all'` takes every row of a
 * file. With `labels: 'optional'` (prediction) the label columns may be absent; their labels are NaN.
 * A streamed run (`data.stream`) reads the split's own source (`data.source` for train and all),
 * as a stream when `streamed` allows it, else into memory.
 */
export async function loadEvaluationData(
  data: DataSection,
  schema: FittedSchema,
  split: SplitName | 'all',
  options: { labels: 'required' | 'optional'; streamed: false },
): Promise<EvaluationData<EncodedData>>;
export async function loadEvaluationData(
  data: DataSection,
  schema: FittedSchema,
  split: SplitName | 'all',
  options: { labels: 'required' | 'optional'; streamed: boolean },
): Promise<EvaluationData>;
export async function loadEvaluationData(
  data: DataSection,
  schema: FittedSchema,
  split: SplitName | 'all',
  options: { labels: 'required' | 'optional'; streamed: boolean },
): Promise<EvaluationData> {
  if (isBuiltinDataset(data.source)) {
    if (split === 'all') throw new UsageError(`--split all needs a data file; ${data.source} has the splits ${SPLITS.join(', ')}`);
    const { source, ...loaderOptions } = data;
    const loaded = await inSection('data', () => loadDataset(source as BuiltinDatasetName, loaderOptions as Record<string, unknown>));
    requireSameSchema(schema, loaded.schema, source);
    return { description: `${source} ${split} split`, rows: loaded[split] };
  }
  const name = sourceName(data.source);
  const description = split === 'all' ? name : `${name} ${split} split`;
  let source = data.source;
  if (data.stream) {
    const own = split === 'all' || split === 'train' ? data.source : data.stream[split];
    if (own === undefined) throw new UsageError(`${name} has no ${split} split: the run config gives no data.stream.${split} source`);
    if (options.streamed) return { description, rows: await openSplitStream(data, own, schema, split === 'all' ? 'train' : split) };
    source = own;
  }
  const section = { ...data, source };
  const read =
    options.labels === 'required'
      ? await readTable(section, schemaColumns(schema))
      : withMissingColumns(
          await readTable(section, undefined, schema.missingValues),
          schema.tasks.map((task) => task.column),
          schema.tasks.flatMap((task) => (task.sampleWeight === undefined ? [] : [task.sampleWeight])),
        );
  let table = read;
  if (split !== 'all' && !data.stream) {
    const part = splitTable(read, data)[split];
    if (!part) throw new UsageError(`${name} has no ${split} split (data.split: ${JSON.stringify(data.split)})`);
    table = part;
  }
  return { description, rows: encode(schema, table), table };
}

/**
 * The schema of loaded data must be the model's (a built-in dataset re-fits its schema on every
 * load): same tasks, vocabularies and normalisation, or the model would read the wrong features.
 */
export function requireSameSchema(model: FittedSchema, data: FittedSchema, dataName: string): void {
  const tasks = (schema: FittedSchema): string => schema.tasks.map((task) => task.name).join(', ');
  if (tasks(model) !== tasks(data)) {
    throw new ConfigError(
      'data.tasks',
      `the model's tasks are [${tasks(model)}] but ${dataName} has [${tasks(data)}]; use the data (and task group) the model was trained on`,
    );
  }
  // Numbers to 12 digits: fitSchemaFrom sums on DuckDB's threads, so a refit varies in the last bits.
  const text = (schema: FittedSchema): string =>
    JSON.stringify(schema, (_, value: unknown) => (typeof value === 'number' ? Number(value.toPrecision(12)) : value));
  if (text(model) !== text(data)) {
    throw new ConfigError(
      'data',
      `${dataName} encodes its features differently from the model's schema (other data, or other loader options such as minFrequency)`,
    );
  }
}

async function readTable(data: DataSection, columns?: SchemaColumns, missingValues?: readonly string[]): Promise<Table> {
  const selection = columns ? { columns: columns.columns } : {};
  if (typeof data.source !== 'string') {
    try {
      return await readSql(data.source.sql, selection);
    } catch (err) {
      // Only the query is a config field; a missing column is named by the message.
      throw err instanceof ValidationError && err.field === 'sql' ? prefixField(err, 'data.source') : err;
    }
  }
  const file = data.source;
  switch (fileFormatOf(file)) {
    case 'csv': {
      const csv = (data.csv ?? {}) as Record<string, unknown>;
      try {
        return await readCsv(file, { ...csv, ...(columns ?? {}), ...(missingValues ? { missingValues } : {}) });
      } catch (err) {
        // columns and numeric come from the schema, and the message names the missing column: no config field to point at.
        if (err instanceof ValidationError && /^(columns|numeric)\b/.test(err.field)) throw err;
        throw prefixField(err, 'data.csv');
      }
    }
    case 'parquet':
      return readParquet(file, selection);
    case 'jsonl':
      return readJsonLines(file, selection);
    case 'arrow':
      return readArrow(file, selection);
    default:
      throw new ConfigError('data.source', `cannot tell the format of ${file} from its name (.csv, .csv.gz, .parquet, .jsonl, .arrow)`);
  }
}

function splitTable(table: Table, data: DataSection): Partial<Record<SplitName, Table>> {
  const fractions = (data.split ?? DEFAULT_SPLIT) as Partial<Record<SplitName, number>>;
  const seed = (data.seed ?? 0) as number;
  return inSectionSync('data.split', () => splitRandom(table, fractions as Record<SplitName, number>, seed));
}

/**
 * The table with an all-missing text column for each label column of `names` it lacks, and a
 * column of ones for each sample-weight column of `weights` (unlabelled rows to predict).
 */
function withMissingColumns(table: Table, names: readonly string[], weights: readonly string[]): Table {
  const columns = table.columnNames.map((name) => table.findColumn(name) as Column);
  const first = columns[0];
  const physicalRows = first === undefined ? 0 : first.kind === 'text' ? first.codes.length : first.values.length;
  let position = Math.max(-1, ...columns.map((column) => column.position));
  const absent = (list: readonly string[]): string[] => [...new Set(list)].filter((name) => table.findColumn(name) === undefined);
  const [missing, missingWeights] = [absent(names), absent(weights).filter((name) => !names.includes(name))];
  if (missing.length + missingWeights.length === 0) return table;
  for (const name of missing) {
    position += 1;
    columns.push({ kind: 'text', name, position, codes: new Int32Array(physicalRows).fill(NULL_CODE), values: [] });
  }
  for (const name of missingWeights) {
    position += 1;
    columns.push({ kind: 'number', name, position, values: new Float64Array(physicalRows).fill(1) });
  }
  return new Table(table.source, columns, { rows: table.rows });
}
