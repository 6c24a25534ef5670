/**
 * The run config of `adatt train`: a JSON or YAML file with four sections, the CLI's defaults
 * under it and command-line flags over it. Checks happen before any data is read, reusing the
 * library's validators (model config, schema spec), so a typo costs no loading time; the rest
 * (optimizer, schedule, loader options) is checked by the library when it is used, with the field
 * placed in its section (`training.optimizer.lr`).
 */
import * as fs from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import { MODEL_KINDS, validateModelConfig, type ModelKind, type TaskConfig } from '../config';
import { BUILTIN_DATASETS, type BuiltinDatasetName } from '../data/builtin';
import { CENSUS_INCOME_TASK_GROUPS } from '../data/builtin/census-income';
import { fileFormatOf, isGlob } from '../data/engine';
import { validateSchemaSpec } from '../data/spec';
import { STREAM_READING_KEYS, streamReading } from '../data/stream';
import { ConfigError } from '../errors';
import { configChecker, isRecord, quoteList } from '../validation';
import { FlaggedConfigError, UsageError, fieldOf, inSectionSync } from './exit';

export type ModelSection = Record<string, unknown> & { kind: ModelKind };
/** A built-in dataset's name, a data file or a glob of shards, or a DuckDB query (`{ sql }`). */
export type DataSource = string | { sql: string };
export type DataSection = Record<string, unknown> & { source: DataSource; stream?: StreamSection };
/** `data.stream`: training reads its source in chunks, and validation and test come from sources of their own. */
export type StreamSection = Record<string, unknown> & Partial<Record<(typeof STREAM_SPLITS)[number], string | { sql: string }>>;
export type TrainingSection = Record<string, unknown> & { epochs: number; threads: number };
export interface ReportSection {
  /** Validation rows the expert-utilisation heatmaps average over. */
  gateSampleRows: number;
}

export interface RunConfig {
  model: ModelSection;
  data: DataSection;
  training: TrainingSection;
  report: ReportSection;
}

/** A value set from the command line, and the flag that set it (for error messages). */
export interface Override {
  field: string;
  value: unknown;
  flag: string;
}

export const SECTIONS = ['model', 'data', 'training', 'report'] as const;
/** Model keys the CLI handles itself: how modelSections() sizes the embeddings. */
const MODEL_INPUT_KEYS = ['embeddingDim', 'pooling', 'conditionalOn'] as const;
/** fit() options a config may set; the run supplies the others (validation, checkpoint.dir, callbacks). */
const TRAINING_KEYS = [
  'epochs',
  'batchSize',
  'optimizer',
  'embeddingOptimizer',
  'schedule',
  'clipNorm',
  'losses',
  'taskWeighting',
  'seed',
  'device',
  'threads',
  'earlyStopping',
  'restoreBest',
  'nonFinite',
  'evalBatchSize',
  'progressInterval',
  'checkpoint',
  'gradientConflict',
  'calibration',
] as const;
const CHECKPOINT_KEYS = ['every', 'keepLast', 'keepBest'] as const;
const REPORT_KEYS = ['gateSampleRows'] as const;
const FILE_DATA_KEYS = ['source', 'schema', 'csv', 'split', 'seed', 'stream'] as const;
/** data.stream: the sources of the other splits, and openStream's reading options. */
const STREAM_SPLITS = ['validation', 'test'] as const;
/** The CSV options a stream reads with (openStream's `csv`); readCsv's others need the rows in memory. */
const STREAM_CSV_KEYS = ['delimiter', 'quote', 'header'] as const;
const SPLIT_NAMES = ['train', 'validation', 'test'] as const;

/** Kind-specific settings a kind needs and the user did not give. */
const KIND_DEFAULTS: Readonly<Record<ModelKind, Record<string, unknown>>> = {
  'adatt-sp': { expertsPerTask: 2 },
  adatt: { expertsPerTask: 1, sharedExperts: 1 },
  mmoe: { experts: 4 },
  ple: { expertsPerTask: 1, sharedExperts: 1 },
  'cross-stitch': {},
  'shared-bottom': {},
  'single-task': {},
};

export function defaultRunConfig(): Record<string, Record<string, unknown>> {
  return {
    model: { kind: 'adatt-sp', expertDims: [[64], [32]], towerDims: [16] },
    data: { source: 'synthetic' },
    training: { epochs: 5, threads: availableParallelism() },
    report: { gateSampleRows: 2048 },
  };
}

const check = configChecker('run config');

export function isBuiltinDataset(source: DataSource): source is BuiltinDatasetName {
  return typeof source === 'string' && (BUILTIN_DATASETS as readonly string[]).includes(source);
}

/** A data source's short name, for run directories and messages: the file's base name, or 'sql'. */
export function sourceName(source: DataSource): string {
  return typeof source === 'string' ? path.basename(source) : 'sql';
}

const SOURCE_CHOICES = `${quoteList(BUILTIN_DATASETS)}, a .csv, .csv.gz, .parquet, .jsonl or .arrow file, a glob of such shards ('shards/*.parquet'), or { sql: "SELECT …" }`;

/** Reads a JSON or YAML config file (by extension). */
export async function readConfigFile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(
      `cannot read the config file ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    );
  }
  let parsed: unknown;
  if (/\.ya?ml$/i.test(file)) {
    const YAML = await import('yaml');
    const document = YAML.parseDocument(text, { prettyErrors: true });
    const problem = document.errors[0];
    if (problem) throw new ConfigError('', `cannot parse ${file}: ${problem.message}`);
    parsed = document.toJS();
  } else if (/\.json$/i.test(file)) {
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new ConfigError('', `cannot parse ${file}: ${(err as Error).message}`);
    }
  } else {
    throw new UsageError(`the config file must end in .json, .yaml or .yml, got ${path.basename(file)}`);
  }
  if (!isRecord(parsed)) throw new ConfigError('', `${file} must hold an object with the sections ${quoteList(SECTIONS)}`);
  resolvePaths(parsed, path.dirname(path.resolve(file)));
  return parsed;
}

/** Paths inside a config file are relative to the file, so that a config and its data can move together. */
function resolvePaths(config: Record<string, unknown>, baseDir: string): void {
  const data = config.data;
  if (!isRecord(data)) return;
  // A query's paths stay as written: DuckDB resolves them against the working directory.
  if (typeof data.source === 'string' && !isBuiltinDataset(data.source)) data.source = path.resolve(baseDir, data.source);
  if (typeof data.dataDir === 'string') data.dataDir = path.resolve(baseDir, data.dataDir);
  if (isRecord(data.stream)) {
    for (const split of STREAM_SPLITS) {
      const source = data.stream[split];
      if (typeof source === 'string') data.stream[split] = path.resolve(baseDir, source);
    }
  }
}

/** `--set training.schedule.type=cosine`: the value is read as YAML, so numbers, booleans and [lists] work. */
export async function parseSetOption(text: string): Promise<Override> {
  const at = text.indexOf('=');
  const field = at > 0 ? text.slice(0, at) : '';
  if (!/^[A-Za-z]\w*(\.[A-Za-z]\w*)+$/.test(field)) {
    throw new UsageError(`--set needs SECTION.KEY=VALUE (e.g. training.schedule.type=cosine), got '${text}'`);
  }
  const YAML = await import('yaml');
  let value: unknown;
  try {
    value = YAML.parse(text.slice(at + 1));
  } catch (err) {
    throw new UsageError(`--set ${field}: cannot read the value: ${(err as Error).message}`);
  }
  return { field, value, flag: `--set ${field}` };
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

/** Deep merge: objects key by key, everything else (arrays included) replaced. */
function merge(base: Record<string, unknown>, top: Record<string, unknown>): Record<string, unknown> {
  const merged = { ...base };
  for (const [key, value] of Object.entries(top)) {
    merged[key] = isRecord(value) && isRecord(merged[key]) ? merge(merged[key] as Record<string, unknown>, value) : clone(value);
  }
  return merged;
}

function setPath(target: Record<string, unknown>, field: string, value: unknown): void {
  const keys = field.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    if (!isRecord(node[key])) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]!] = value;
}

/** Defaults, then the file, then the overrides; then every check that needs no data. */
export function buildRunConfig(file: Record<string, unknown> | undefined, overrides: readonly Override[]): RunConfig {
  const raw = merge(defaultRunConfig(), file ?? {});
  for (const { field, value } of overrides) setPath(raw, field, value);
  return annotated(overrides, () => checkRunConfig(raw));
}

function annotated<T>(overrides: readonly Override[], work: () => T): T {
  try {
    return work();
  } catch (err) {
    throw annotate(err, overrides);
  }
}

/** A config error about a value that came from the command line, with the flag attached ("set by --epochs"). */
export function annotate(err: unknown, overrides: readonly Override[]): unknown {
  const field = fieldOf(err);
  if (field === undefined || !(err instanceof Error)) return err;
  const source = overrides.find((o) => field === o.field || field.startsWith(`${o.field}.`) || o.field.startsWith(`${field}.`));
  if (!source) return err;
  return new FlaggedConfigError(field, err.message, source.flag, { cause: err });
}

export function checkRunConfig(raw: Record<string, unknown>): RunConfig {
  check.record(raw, '', SECTIONS);
  for (const section of SECTIONS) requireObject(raw[section], section);
  check.record(raw.training, 'training', TRAINING_KEYS);
  check.record(raw.report, 'report', REPORT_KEYS);
  const model = checkModelSection(raw.model as Record<string, unknown>);
  const data = checkDataSection(raw.data as Record<string, unknown>);
  const training = raw.training as Record<string, unknown>;
  check.integer(training.epochs, 'training.epochs', 1);
  check.integer(training.threads, 'training.threads', 1, 1024);
  if (training.checkpoint !== undefined) check.record(training.checkpoint, 'training.checkpoint', CHECKPOINT_KEYS);
  const report = raw.report as Record<string, unknown>;
  check.integer(report.gateSampleRows, 'report.gateSampleRows', 1, 1 << 20);
  return { model, data, training: training as TrainingSection, report: report as unknown as ReportSection };
}

/** An object with any keys (the library checks them where it uses them). */
function requireObject(value: unknown, field: string): Record<string, unknown> {
  return check.record(value, field, isRecord(value) ? Object.keys(value) : []);
}

function checkModelSection(raw: Record<string, unknown>): ModelSection {
  const kind = check.oneOf(raw.kind, 'model.kind', MODEL_KINDS);
  for (const derived of ['input', 'tasks'] as const) {
    if (raw[derived] !== undefined) {
      check.fail(`model.${derived}`, `model.${derived} comes from the data's schema; remove it from the config`);
    }
  }
  const model: ModelSection = { ...KIND_DEFAULTS[kind], ...raw, kind };
  const { embeddingDim, pooling, conditionalOn, ...architecture } = model;
  if (embeddingDim !== undefined) check.integer(embeddingDim, 'model.embeddingDim', 1, 65_536);
  if (conditionalOn !== undefined) {
    for (const [task, parent] of Object.entries(requireObject(conditionalOn, 'model.conditionalOn')))
      check.string(parent, `model.conditionalOn.${task}`);
  }
  if (pooling !== undefined) check.oneOf(pooling, 'model.pooling', ['mean', 'sum'] as const);
  // The real input and tasks come with the data; stand-ins let the library check everything else now.
  const taskCount = Array.isArray(architecture.expertsPerTask) ? architecture.expertsPerTask.length : 1;
  const tasks: TaskConfig[] = Array.from({ length: Math.max(taskCount, 1) }, (_, t) => ({ name: `task${t}`, type: 'binary' }));
  inSectionSync('model', () => validateModelConfig({ ...architecture, input: { dense: 1 }, tasks }));
  return model;
}

/** The model config for data with these input and tasks sections (validated again for real). */
export function modelConfigOf(model: ModelSection, sections: { input: unknown; tasks: unknown }): Record<string, unknown> {
  const architecture: Record<string, unknown> = { ...model };
  for (const key of MODEL_INPUT_KEYS) delete architecture[key];
  return { ...architecture, ...sections };
}

/** A data file, a glob of shards or `{ sql }` at `field`. */
function checkFileOrQuery(value: unknown, field: string): void {
  if (isRecord(value)) {
    check.string(check.record(value, field, ['sql']).sql, `${field}.sql`);
    return;
  }
  const source = check.string(value, field);
  if (fileFormatOf(source) === undefined) check.fail(field, `${field} must be ${SOURCE_CHOICES}, got '${source}'`);
  // A glob's matches are listed when it is read (no match is a FileError then).
  if (!isGlob(source) && !existsSync(source)) check.fail(field, `${field}: no such file ${source}`);
}

function checkDataSection(raw: Record<string, unknown>): DataSection {
  if (raw.stream === false || raw.stream === null) {
    // Not streamed: checked, csv options included, as if data.stream were absent.
    const { stream, ...inMemory } = raw;
    return checkDataSection(inMemory);
  }
  if (isRecord(raw.source)) {
    checkFileOrQuery(raw.source, 'data.source');
    check.record(
      raw,
      'data',
      FILE_DATA_KEYS.filter((key) => key !== 'csv'),
    );
    return checkSchemaAndSplit(raw);
  }
  const source = check.string(raw.source, 'data.source');
  if (isBuiltinDataset(source)) {
    if (raw.stream !== undefined)
      check.fail('data.stream', `data.stream reads a data file, a glob of shards or a query; ${source} is built in`);
    if (raw.tasks !== undefined && source !== 'census-income') {
      check.fail(
        'data.tasks',
        `data.tasks picks a census-income task group (${quoteList(CENSUS_INCOME_TASK_GROUPS)}); ${source} has fixed tasks`,
      );
    }
    return raw as DataSection;
  }
  checkFileOrQuery(source, 'data.source');
  check.record(raw, 'data', FILE_DATA_KEYS);
  if (raw.csv !== undefined) {
    if (raw.stream === undefined) requireObject(raw.csv, 'data.csv');
    else check.record(raw.csv, 'data.csv', STREAM_CSV_KEYS);
  }
  return checkSchemaAndSplit(raw);
}

/** data.stream's reading options (openStream's), without the other splits' sources. */
export function streamReadingOf(stream: StreamSection): Record<string, unknown> {
  const { validation, test, ...reading } = stream;
  return reading;
}

/** data.stream (`true`: every reading option at its default), normalised to its object form. */
function checkStreamSection(raw: Record<string, unknown>): StreamSection {
  const given = raw.stream === true ? {} : check.record(raw.stream, 'data.stream', [...STREAM_SPLITS, ...STREAM_READING_KEYS]);
  for (const key of ['split', 'seed'] as const) {
    if (raw[key] !== undefined) {
      check.fail(
        `data.${key}`,
        `data.${key} splits rows held in memory at random; a streamed run reads its validation and test rows from data.stream.validation and data.stream.test (and seeds its shuffle with data.stream.seed)`,
      );
    }
  }
  for (const split of STREAM_SPLITS) if (given[split] !== undefined) checkFileOrQuery(given[split], `data.stream.${split}`);
  for (const [field, source] of [['data.source', raw.source], ...STREAM_SPLITS.map((split) => [`data.stream.${split}`, given[split]])]) {
    if (typeof source === 'string' && fileFormatOf(source) === 'arrow') {
      check.fail(field as string, `${field as string}: a stream reads Parquet, CSV and JSON lines; convert ${source} to Parquet`);
    }
  }
  streamReading(check, given, 'data.stream.');
  return given as StreamSection;
}

/** The schema (required) and the split and seed of a file or query source. */
function checkSchemaAndSplit(raw: Record<string, unknown>): DataSection {
  if (raw.schema === undefined) {
    check.fail('data.schema', `data.schema is required for a data file: { dense, categorical, multiValued, tasks } (see docs/datasets.md)`);
  }
  inSectionSync('data.schema', () => validateSchemaSpec(raw.schema));
  if (raw.stream !== undefined) return { ...raw, stream: checkStreamSection(raw) } as DataSection;
  if (raw.split !== undefined) {
    const split = check.record(raw.split, 'data.split', SPLIT_NAMES);
    if (split.train === undefined) check.fail('data.split.train', 'data.split needs a train fraction');
  }
  if (raw.seed !== undefined) check.integer(raw.seed, 'data.seed', 0);
  return raw as DataSection;
}
