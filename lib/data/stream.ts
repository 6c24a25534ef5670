/**
 * Streaming datasets: data bigger than memory, read in chunks while the model trains. A
 * `DataStream` names its source (Parquet, CSV or JSON-lines files or globs of shards, or a SQL
 * query) and a fitted schema; every pass over it runs on a worker thread (lib/data/stream-worker.ts)
 * that reads with DuckDB, encodes, shuffles through a bounded seeded buffer and hands over encoded
 * chunks at most `prefetch` ahead. Memory is bounded by chunkRows, shuffleBufferRows and prefetch,
 * not by the data. `fit`, `evaluate`, `predict` and `predictChunks` take one (docs/datasets.md).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ConfigError, FileError, ValidationError } from '../errors';
import { optionsChecker, type FieldChecker } from '../validation';
import { engineRead, typedColumns } from './engine';
import { validateFittedSchema } from './fitted';
import { SeededRandom } from './random';
import { openSource, SOURCE_OPTION_KEYS, sourceSettings, type FileScan, type SourceOptions, type StreamSource } from './source';
import type { EncodedData, FittedSchema } from './types';

export interface StreamOptions extends SourceOptions {
  /** The fitted schema that encodes every chunk (from `fitSchemaFrom` or `fitSchema`, or its JSON). */
  schema: FittedSchema;
  /** Rows per chunk handed to training (default 131,072; smaller chunks cost more queries per row). */
  chunkRows?: number;
  /** Rows the shuffle buffer holds before it releases half of them (default 4 x chunkRows; 0: no buffer, chunks in file order). */
  shuffleBufferRows?: number;
  /** Seeds the file order and the shuffle buffer of every training pass, with the epoch (default 0). */
  seed?: number;
  /** Encoded chunks ready ahead of the one training (default 2). */
  prefetch?: number;
}

/** One pass: what the worker reads and how (structured-cloned to it). */
export interface PassPlan {
  relation: string;
  schema: FittedSchema;
  source: string;
  chunkRows: number;
  shuffleBufferRows: number;
  /** Absent: no shuffle (evaluation, prediction). */
  shuffleSeed?: number;
  prefetch: number;
  /** This pass keeps chunk k when k % chunkStride == chunkOffset (data-parallel ranks over one file). */
  chunkStride: number;
  chunkOffset: number;
}

export type WorkerMessage =
  | { type: 'chunk'; data: EncodedData }
  | { type: 'end' }
  | { type: 'error'; name: string; message: string; field?: string };

export interface PassOptions {
  /** Shuffles file order and rows, seeded by (seed, epoch). Default false. */
  shuffle?: boolean;
  epoch?: number;
  /** Data-parallel: this rank reads a disjoint part (whole files when there are at least as many as ranks, else every worldSize-th chunk). */
  rank?: number;
  worldSize?: number;
}

/** How long a reading thread may take to stop before it is terminated. */
const STOP_GRACE_MS = 30_000;

function workerFile(): string {
  // Compiled next to this file in dist/; from the TypeScript sources (tests) the compiled copy.
  const beside = join(__dirname, 'stream-worker.js');
  return existsSync(beside) ? beside : join(__dirname, '..', '..', 'dist', 'data', 'stream-worker.js');
}

export class DataStream {
  /** Rows of the whole source (counted once when opened). */
  readonly rows: number;
  readonly schema: FittedSchema;
  readonly taskNames: readonly string[];
  readonly source: string;
  readonly chunkRows: number;
  readonly #scan: FileScan | undefined;
  readonly #files: readonly string[];
  /** A SQL source's query as a relation (checked when opened). */
  readonly #query: string | undefined;
  readonly #settings: Required<Pick<StreamOptions, 'shuffleBufferRows' | 'seed' | 'prefetch'>>;

  /** @internal Use `openStream`. */
  constructor(init: {
    rows: number;
    schema: FittedSchema;
    source: string;
    chunkRows: number;
    files: readonly string[];
    scan: FileScan | undefined;
    query: string | undefined;
    settings: Required<Pick<StreamOptions, 'shuffleBufferRows' | 'seed' | 'prefetch'>>;
  }) {
    this.rows = init.rows;
    this.schema = init.schema;
    this.taskNames = init.schema.tasks.map((task) => task.name);
    this.source = init.source;
    this.chunkRows = init.chunkRows;
    this.#files = init.files;
    this.#scan = init.scan;
    this.#query = init.query;
    this.#settings = init.settings;
  }

  /** The plan of one pass: which files in which order, which chunks, which shuffle. */
  plan(options: PassOptions = {}): PassPlan {
    const { shuffle = false, epoch = 0, rank = 0, worldSize = 1 } = options;
    const { seed, shuffleBufferRows, prefetch } = this.#settings;
    const random = new SeededRandom(seed * 1000003 + epoch);
    let files = [...this.#files];
    if (shuffle && files.length > 1) {
      const order = Int32Array.from(files, (_, i) => i);
      random.shuffle(order);
      files = Array.from(order, (i) => files[i] as string);
    }
    // Whole files per rank when each gets one; else every rank reads all and keeps every worldSize-th chunk.
    const byFile = this.#scan !== undefined && files.length >= worldSize;
    if (byFile) files = files.filter((_, i) => i % worldSize === rank);
    const relation = this.#scan ? this.#scan(files) : (this.#query as string);
    return {
      relation,
      schema: this.schema,
      source: this.source,
      chunkRows: this.chunkRows,
      shuffleBufferRows,
      ...(shuffle && shuffleBufferRows > 0 ? { shuffleSeed: random.uint32() } : {}),
      prefetch,
      chunkStride: byFile ? 1 : worldSize,
      chunkOffset: byFile ? 0 : rank,
    };
  }

  /**
   * The encoded chunks of one pass, read on a worker thread while the caller works on the previous
   * ones. Leaving the loop early stops the reading.
   */
  async *chunks(options: PassOptions = {}): AsyncGenerator<EncodedData> {
    const worker = new Worker(workerFile(), { workerData: this.plan(options) });
    const queue: (WorkerMessage | { type: 'exit'; error?: Error })[] = [];
    let wake: (() => void) | undefined;
    const push = (message: (typeof queue)[number]): void => {
      queue.push(message);
      wake?.();
    };
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', push);
    worker.on('error', (error) => push({ type: 'exit', error }));
    worker.on('exit', () => push({ type: 'exit' }));
    try {
      for (;;) {
        while (queue.length === 0)
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
        const message = queue.shift()!;
        if (message.type === 'end') return;
        if (message.type === 'exit') {
          throw new FileError(
            `Cannot read ${this.source}: the reading thread stopped${message.error ? `: ${message.error.message}` : ''}`,
            { cause: message.error },
          );
        }
        if (message.type === 'error') throw workerError(message);
        worker.postMessage('more');
        yield message.data;
      }
    } finally {
      // Asked to stop rather than terminated: DuckDB's bindings must close their connections on
      // their own thread (terminating one mid-query aborts the process). The thread stops after its
      // current DuckDB chunk; terminate only if it hangs.
      worker.postMessage('stop');
      const hung = setTimeout(() => void worker.terminate(), STOP_GRACE_MS);
      await exited;
      clearTimeout(hung);
    }
  }
}

function workerError(message: Extract<WorkerMessage, { type: 'error' }>): Error {
  if (message.name === 'ValidationError') return new ValidationError(message.field ?? '', message.message);
  if (message.name === 'ConfigError') return new ConfigError(message.field ?? '', message.message);
  return new FileError(message.message);
}

/** The options of `openStream` that shape its passes. */
export const STREAM_READING_KEYS = ['chunkRows', 'shuffleBufferRows', 'seed', 'prefetch'] as const;

/** Those options, given or their defaults (checked; `section` prefixes the fields, as the CLI's `data.stream.`). */
export function streamReading(
  check: FieldChecker,
  given: Partial<Record<(typeof STREAM_READING_KEYS)[number], unknown>>,
  section = '',
): Required<Pick<StreamOptions, (typeof STREAM_READING_KEYS)[number]>> {
  const field = (key: (typeof STREAM_READING_KEYS)[number]): string => `${section}${key}`;
  const chunkRows = given.chunkRows === undefined ? 131_072 : check.integer(given.chunkRows, field('chunkRows'), 1);
  return {
    chunkRows,
    shuffleBufferRows:
      given.shuffleBufferRows === undefined ? 4 * chunkRows : check.integer(given.shuffleBufferRows, field('shuffleBufferRows'), 0),
    seed: given.seed === undefined ? 0 : check.integer(given.seed, field('seed'), 0),
    prefetch: given.prefetch === undefined ? 2 : check.integer(given.prefetch, field('prefetch'), 1, 64),
  };
}

/**
 * Opens a stream over files or a query: checks the options and that the source has every column
 * the schema reads, and counts its rows (Parquet from its metadata; CSV and JSON by a scan).
 */
export async function openStream(source: StreamSource, options: StreamOptions): Promise<DataStream> {
  const check = optionsChecker('stream options');
  const given = check.record(options, '', ['schema', ...SOURCE_OPTION_KEYS, ...STREAM_READING_KEYS]);
  if (given.schema === undefined) check.fail('schema', 'schema is required: the fitted schema that encodes the chunks');
  const schema = validateFittedSchema(given.schema);
  const predicateTask = schema.tasks.find((task) => task.type === 'binary' && task.positive === 'predicate');
  if (predicateTask) {
    check.fail(
      'schema',
      `task '${predicateTask.name}' was fitted with a predicate function, which a stream's reading thread cannot call; fit it with positive values instead`,
    );
  }
  const { chunkRows, ...settings } = streamReading(check, given);
  const settingsOfSource = sourceSettings(check, source, given);
  const { name, scan } = settingsOfSource;
  return engineRead(name, async (connection) => {
    const { files, query, relation } = await openSource(connection, settingsOfSource);
    await typedColumns(connection, relation, schema.columns, name);
    const rows = Number((await connection.runAndReadAll(`SELECT count(*) FROM ${relation}`)).getRows()[0]?.[0] ?? 0);
    if (rows === 0) throw new ValidationError('source', `Invalid data: ${name} has no rows`);
    return new DataStream({ rows, schema, source: name, chunkRows, files, scan, query, settings });
  });
}
