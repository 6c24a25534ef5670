/**
 * DuckDB (`@duckdb/node-api`) as the data layer's engine: it parses and scans the sources (CSV,
 * Parquet, JSON lines, SQL) on its own threads and streams the result once; the addon codes each
 * text column's strings by a native dictionary, so that JavaScript only copies typed results into
 * a `Table` and never makes a string of a cell. One in-memory database per process, created on
 * first use; each read has its own connection. See docs/architecture.md.
 */
import { availableParallelism } from 'node:os';
import type { DuckDBConnection, DuckDBDataChunk, DuckDBInstance } from '@duckdb/node-api';
import { AdattError, callNative, FileError, ValidationError } from '../errors';
import { loadAddon, type RawTextDictionary } from '../addon';
import { countPerCode } from './cells';
import { GrowableArray, NULL_CODE, resolvePositions, type Column, type TextColumn } from './table';
import type { ColumnRef } from './types';

let database: Promise<DuckDBInstance> | undefined;

/** DuckDB's threads: ADATT_DATA_THREADS, else every core. */
function engineThreads(): number {
  const configured = Number(process.env.ADATT_DATA_THREADS);
  return Number.isInteger(configured) && configured > 0 ? configured : availableParallelism();
}

const STREAMING_BUFFER = '64MB';

/** Runs `work` on a fresh connection to the process's database, closed afterwards. */
export async function withConnection<T>(work: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
  database ??= import('@duckdb/node-api').then(({ DuckDBInstance }) =>
    DuckDBInstance.create(':memory:', { threads: String(engineThreads()) }),
  );
  const connection = await (await database).connect();
  // DuckDB runs ahead of a streamed result only by this much (about one chunk by default), and
  // stalls while JavaScript copies the chunk before: 64 MB lets its threads keep reading.
  try {
    await connection.run(`SET streaming_buffer_size = '${STREAMING_BUFFER}'`);
    return await work(connection);
  } finally {
    connection.closeSync();
  }
}

/** A SQL string literal. */
export function sqlString(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/** A SQL identifier. */
export function sqlIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A SQL list of string literals. */
export function sqlStrings(texts: readonly string[]): string {
  return `[${texts.map(sqlString).join(', ')}]`;
}

/** True for a path DuckDB expands as a glob (`shards/*.parquet`, `day=[0-9]/part-?.csv`). */
export function isGlob(path: string): boolean {
  return /[*?[]/.test(path);
}

export type FileFormat = 'csv' | 'parquet' | 'arrow' | 'jsonl';

/** The reader for a data file (or a glob of shards), from its extension. */
export function fileFormatOf(file: string): FileFormat | undefined {
  const name = file.toLowerCase();
  if (/\.(csv|tsv|txt|data)(\.gz)?$/.test(name)) return 'csv';
  if (name.endsWith('.parquet')) return 'parquet';
  if (/\.(arrow|feather|ipc)$/.test(name)) return 'arrow';
  if (/\.(jsonl|ndjson)(\.gz)?$/.test(name)) return 'jsonl';
  return undefined;
}

/** A CSV path's field separator when none is given: a tab for `.tsv` files (and globs of them), else a comma. */
export function defaultDelimiter(path: string | undefined): string {
  return path !== undefined && /\.tsv(\.gz)?$/i.test(path) ? '\t' : ',';
}

/** DuckDB's scan of Parquet files; `files` is a SQL list of paths (and options). */
export const parquetScan = (files: string): string => `read_parquet(${files})`;
/** DuckDB's scan of JSON-lines files; `files` is a SQL list of paths (and options). */
export const jsonLinesScan = (files: string): string => `read_json(${files}, format = 'newline_delimited')`;

/**
 * A user's SQL query as a relation, checked first on its own so that DuckDB's message points into
 * the user's SQL (a ValidationError on field 'sql').
 */
export async function sqlRelation(connection: DuckDBConnection, query: string): Promise<string> {
  try {
    (await connection.prepare(query)).destroySync();
  } catch (err) {
    throw new ValidationError('sql', `Invalid SQL source: ${(err as Error).message}`, { cause: err });
  }
  return `(${query.trim().replace(/;$/, '')})`;
}

/** The files a path names: itself, or a glob's matches in name order (a FileError when none match). */
export async function expandFiles(connection: DuckDBConnection, path: string, source: string): Promise<string[]> {
  if (!isGlob(path)) return [path];
  const files = (await connection.runAndReadAll(`SELECT file FROM glob(${sqlString(path)}) ORDER BY file`))
    .getRows()
    .map(([file]) => String(file));
  if (files.length === 0) throw new FileError(`Cannot read ${source}: no file matches ${path}`);
  return files;
}

/** A column of the result: the SQL expression over the materialised rows, and what it becomes. */
export interface EngineColumn {
  name: string;
  position: number;
  kind: 'text' | 'number';
  /** SQL over the source relation: VARCHAR for text, DOUBLE for numbers (NULL = missing). */
  expression: string;
}

/** `c{k}`: the name of column k in a read's select list, for conditions over it (`stopWhen`). */
export const columnAlias = (k: number): string => `c${k}`;

type Bindings = typeof import('@duckdb/node-bindings');
let bindings: Bindings | undefined;

/** A column's values of a chunk as DuckDB holds them (a copy of the vector's data). */
function vectorData(chunk: DuckDBDataChunk, k: number, bytes: number): Uint8Array {
  bindings ??= require('@duckdb/node-bindings') as Bindings;
  return bindings.vector_get_data(bindings.data_chunk_get_vector(chunk.chunk, k), bytes);
}

/** A column's validity mask in a chunk (bit r of byte r / 8), or null when every row is valid. */
function vectorValidity(chunk: DuckDBDataChunk, k: number, rows: number): Uint8Array | null {
  bindings ??= require('@duckdb/node-bindings') as Bindings;
  const vector = bindings.data_chunk_get_vector(chunk.chunk, k);
  // Typed as a Uint8Array, but null (or empty) when the vector has no mask.
  const mask = bindings.vector_get_validity(vector, Math.ceil(rows / 64) * 8) as Uint8Array | null;
  return mask === null || mask.length === 0 ? null : mask;
}

/** The code a sealed native dictionary gives a value it does not hold (native kUnknownCode). */
export const UNKNOWN_CODE = -2;

/**
 * Turns a text column's DuckDB strings into ids of its own, natively (a fitted vocabulary:
 * lib/data/vocabulary-coder.ts), so that the column never becomes a dictionary of JS strings.
 */
export interface TextCoder {
  /** Writes the ids of a chunk's `count` strings (`validity`: its mask, null when all valid) into out[offset…]. */
  code(strings: Uint8Array, validity: Uint8Array | null, count: number, out: Int32Array, offset: number): void;
}

/** What `ColumnsBuilder.finishWithIds` returns: the table's columns, and the coded columns' ids by column name. */
export interface BuiltColumns {
  columns: Column[];
  ids: Map<string, Int32Array>;
}

/**
 * Columns of a table from the chunks of a DuckDB result whose first columns are `columns` (DOUBLE
 * without NULLs for numbers, VARCHAR for text): numbers copied, text coded by the addon's native
 * dictionary (in order of first appearance, so codes do not depend on DuckDB's thread count), so
 * that no cell becomes a JavaScript string and only distinct values do.
 */
export class ColumnsBuilder {
  private numbers: GrowableArray<Float64Array>[] = [];
  private codes: GrowableArray<Int32Array>[] = [];
  /** Per text column, made when its first chunk comes (none for a builder that reads nothing more). */
  private dictionaries: (RawTextDictionary | undefined)[] = [];
  /** Ids of the columns that `coders` codes, by column name. */
  private ids = new Map<string, GrowableArray<Int32Array>>();
  rowCount = 0;
  private static layoutChecked: Promise<void> | undefined;

  /**
   * A builder for results whose first columns are `columns`. A text column that `coders` names is
   * coded by its coder into ids (`finishWithIds`) and is not one of the table's columns.
   */
  static async create(
    connection: DuckDBConnection,
    columns: readonly EngineColumn[],
    coders: ReadonlyMap<string, TextCoder> = new Map(),
  ): Promise<ColumnsBuilder> {
    await ColumnsBuilder.checkStringLayout(connection);
    return new ColumnsBuilder(columns, coders);
  }

  private constructor(
    private readonly columns: readonly EngineColumn[],
    private readonly coders: ReadonlyMap<string, TextCoder> = new Map(),
  ) {
    for (const name of coders.keys()) {
      if (!columns.some((column) => column.name === name && column.kind === 'text'))
        throw new RangeError(`ColumnsBuilder: no text column '${name}' to code`);
    }
    this.reset();
  }

  /**
   * Checks once per thread that DuckDB's strings are laid out as the native dictionary reads them
   * (`duckdb_string_t` of DuckDB's C API: inlined up to 12 bytes, else a pointer), so that a DuckDB
   * other than the one this package pins is an error instead of garbage.
   */
  private static checkStringLayout(connection: DuckDBConnection): Promise<void> {
    ColumnsBuilder.layoutChecked ??= (async () => {
      const expected = ['short', null, 'a string longer than twelve bytes', 'é', ''];
      const result = await connection.run(
        `SELECT * FROM (VALUES ${expected.map((text) => `(${text === null ? 'NULL' : sqlString(text)})`).join(', ')})`,
      );
      const builder = new ColumnsBuilder([{ name: 'text', position: 0, kind: 'text', expression: '' }]);
      for (let chunk = await result.fetchChunk(); chunk !== null && chunk.rowCount > 0; chunk = await result.fetchChunk())
        builder.append(chunk);
      const [column] = builder.finish();
      const read = column?.kind === 'text' ? Array.from(column.codes, (code) => (code === NULL_CODE ? null : column.values[code])) : [];
      if (JSON.stringify(read) !== JSON.stringify(expected)) {
        throw new AdattError(
          `DuckDB's strings are not laid out as adatt reads them (read ${JSON.stringify(read)}): install the @duckdb/node-api version that adatt's package.json names`,
        );
      }
    })();
    return ColumnsBuilder.layoutChecked;
  }

  /** Appends every row of a chunk. */
  append(chunk: DuckDBDataChunk): void {
    const count = chunk.rowCount;
    let text = 0;
    let number = 0;
    this.columns.forEach((column, k) => {
      if (column.kind === 'number') {
        const data = vectorData(chunk, k, count * Float64Array.BYTES_PER_ELEMENT);
        (this.numbers[number++] as GrowableArray<Float64Array>).pushAll(new Float64Array(data.buffer, data.byteOffset, count));
        return;
      }
      const strings = vectorData(chunk, k, count * DUCKDB_STRING_BYTES);
      const validity = vectorValidity(chunk, k, count);
      const coder = this.coders.get(column.name);
      if (coder !== undefined) {
        (this.ids.get(column.name) as GrowableArray<Int32Array>).pushWith(count, (ids, offset) =>
          coder.code(strings, validity, count, ids, offset),
        );
        return;
      }
      const dictionary = this.dictionaries[text] ?? new (loadAddon().TextDictionary)();
      this.dictionaries[text] = dictionary;
      (this.codes[text++] as GrowableArray<Int32Array>).pushWith(count, (codes, offset) =>
        callNative(() => dictionary.codeStrings(strings, validity, 0, count, codes, offset)),
      );
    });
    this.rowCount += count;
  }

  /** The columns of the rows appended since the last `finish`; the builder starts over. */
  finish(): Column[] {
    return this.finishWithIds().columns;
  }

  /** The columns and the coded columns' ids of the rows appended since the last `finish`; the builder starts over. */
  finishWithIds(): BuiltColumns {
    const ids = new Map(Array.from(this.ids, ([name, values]) => [name, values.toArray()]));
    const numbers = this.numbers.map((values) => values.toArray());
    const codes = this.codes.map((values) => values.toArray());
    const dictionaries = this.codes.map((_, text) => {
      const dictionary = this.dictionaries[text];
      return dictionary ? callNative(() => dictionary.values()) : [];
    });
    this.discard();
    let text = 0;
    let number = 0;
    const columns = this.tableColumns().map(
      ({ name, position, kind }): Column =>
        kind === 'number'
          ? { kind, name, position, values: numbers[number++] as Float64Array }
          : { kind, name, position, codes: codes[text] as Int32Array, values: dictionaries[text++] as string[] },
    );
    return { columns, ids };
  }

  /** The columns that become the table's (not coded). */
  private tableColumns(): readonly EngineColumn[] {
    return this.coders.size === 0 ? this.columns : this.columns.filter((column) => !this.coders.has(column.name));
  }

  /** Drops the rows appended since the last `finish` (and frees their dictionaries); the builder starts over. */
  discard(): void {
    for (const dictionary of this.dictionaries) dictionary?.dispose();
    this.reset();
  }

  private reset(): void {
    const columns = this.tableColumns();
    const texts = columns.filter((column) => column.kind === 'text').length;
    this.numbers = Array.from({ length: columns.length - texts }, () => new GrowableArray((n) => new Float64Array(n)));
    this.codes = Array.from({ length: texts }, () => new GrowableArray((n) => new Int32Array(n)));
    this.ids = new Map(Array.from(this.coders.keys(), (name) => [name, new GrowableArray((n) => new Int32Array(n))]));
    this.dictionaries = [];
    this.rowCount = 0;
  }
}

/** Bytes of one string of a DuckDB VARCHAR vector (`duckdb_string_t`). */
const DUCKDB_STRING_BYTES = 16;

/** The columns of `relation` for a read, in DuckDB's select list: numbers never NULL (NaN = missing). */
export function selectList(columns: readonly EngineColumn[]): string {
  return columns.map((column, k) => (column.kind === 'number' ? `coalesce(${columnAlias(k)}, 'NaN'::DOUBLE)` : columnAlias(k))).join(', ');
}

/** `SELECT <expression> AS c0, …` over the relation: the subquery that `selectList` and conditions read. */
export function aliasedRelation(relation: string, columns: readonly EngineColumn[]): string {
  return `(SELECT ${columns.map((column, k) => `${column.expression} AS ${columnAlias(k)}`).join(', ') || '1 AS unused'} FROM ${relation})`;
}

export interface ReadColumns {
  columns: Column[];
  /** Rows per file of a multi-file read (`files` order); [rows] for one source. */
  rowsPerFile: number[];
  /** True when a row met `stopWhen` (the columns are then incomplete). */
  stopped: boolean;
}

/**
 * Streams the columns of a relation, in its order, into typed arrays and dictionaries
 * (`ColumnsBuilder`): the source is scanned once and no copy of its text is materialised.
 * `files`: the files of a multi-file scan whose relation has DuckDB's `filename` column, counted
 * per file for error messages. `stopWhen`: a SQL condition over the columns (`c0`, `c1`, …) that
 * stops the read at the first chunk where a row meets it.
 */
export async function readColumns(
  connection: DuckDBConnection,
  relation: string,
  columns: readonly EngineColumn[],
  options: { files?: readonly string[]; stopWhen?: string } = {},
): Promise<ReadColumns> {
  const files = options.files ?? [];
  const byFile = files.length > 1;
  // The file of each row is one more text column: a few distinct values, counted at the end.
  const read = byFile ? [...columns, { name: 'filename', position: -1, kind: 'text', expression: 'filename' } as const] : columns;
  const stopAt = read.length;
  const stop = options.stopWhen ? [`coalesce((${options.stopWhen}), false)`] : [];
  // Before the read's query: a connection's next query ends the stream of the one before.
  const builder = await ColumnsBuilder.create(connection, read);
  const result = await connection.stream(`SELECT ${[selectList(read), ...stop].join(', ') || '1'} FROM ${aliasedRelation(relation, read)}`);
  for (let chunk = await result.fetchChunk(); chunk !== null && chunk.rowCount > 0; chunk = await result.fetchChunk()) {
    if (stop.length > 0 && vectorData(chunk, stopAt, chunk.rowCount).includes(1)) {
      builder.discard();
      return { columns: [], rowsPerFile: [], stopped: true };
    }
    builder.append(chunk);
  }
  const rowCount = builder.rowCount;
  const built = builder.finish();
  if (!byFile) return { columns: built, rowsPerFile: [rowCount], stopped: false };
  const fileColumn = built.pop() as TextColumn;
  const counts = countPerCode(fileColumn);
  const rowsOf = new Map(fileColumn.values.map((file, code) => [file, counts[code] as number]));
  return { columns: built, rowsPerFile: files.map((file) => rowsOf.get(file) ?? 0), stopped: false };
}

/**
 * The first row of `relation`, in its order, whose text column `cell` is one of `among` or whose
 * SQL `condition` over it holds; undefined when none does. For errors found in aggregates: it scans
 * until the row. Membership is looked up natively per chunk, not joined in SQL: DuckDB's threads
 * stream a join's rows out of order.
 */
export async function firstRowWhere(
  connection: DuckDBConnection,
  relation: string,
  { among = [], condition }: { among?: readonly string[]; condition?: string },
): Promise<number | undefined> {
  const flag = condition === undefined ? 'false' : `coalesce(CAST((${condition}) AS BOOLEAN), false)`;
  const dictionary = among.length === 0 ? undefined : new (loadAddon().TextDictionary)();
  try {
    if (dictionary !== undefined) {
      callNative(() => dictionary.add(among));
      dictionary.seal();
    }
    const result = await connection.stream(
      `SELECT CAST(${flag} AS DOUBLE), ${dictionary ? 'CAST(cell AS VARCHAR)' : 'NULL'} FROM ${relation}`,
    );
    let codes = new Int32Array(0);
    let row = 0;
    for (let chunk = await result.fetchChunk(); chunk !== null && chunk.rowCount > 0; chunk = await result.fetchChunk()) {
      const count = chunk.rowCount;
      const data = vectorData(chunk, 0, count * Float64Array.BYTES_PER_ELEMENT);
      const flags = new Float64Array(data.buffer, data.byteOffset, count);
      let found = flags.indexOf(1);
      if (dictionary !== undefined) {
        if (codes.length < count) codes = new Int32Array(count);
        const strings = vectorData(chunk, 1, count * DUCKDB_STRING_BYTES);
        const validity = vectorValidity(chunk, 1, count);
        callNative(() => dictionary.codeStrings(strings, validity, 0, count, codes, 0));
        const member = codes.subarray(0, count).findIndex((code) => code >= 0);
        if (member >= 0 && (found < 0 || member < found)) found = member;
      }
      if (found >= 0) return row + found;
      row += count;
    }
    return undefined;
  } finally {
    dictionary?.dispose();
  }
}

/** How a column of a DuckDB type is read: as a number, as text, or not at all (nested and binary types). */
function kindOfType(type: string): 'number' | 'text' | undefined {
  if (
    /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|BOOLEAN|DECIMAL\(\d+,\d+\))$/.test(
      type,
    )
  )
    return 'number';
  if (/[[\]()]|^(BLOB|BIT|UNION|VARIANT|GEOMETRY)/.test(type)) return undefined;
  return 'text';
}

export function unsupportedColumn(name: string, source: string, type: string): ValidationError {
  return new ValidationError(
    name,
    `Invalid data in ${source}: column '${name}' has type ${type}, which adatt does not read (it reads flat columns of numbers, booleans and strings; store multi-valued features as delimited strings)`,
  );
}

/**
 * The columns of a relation as a table reads them, by DuckDB type: numbers and booleans as number
 * columns, strings (and dates, times, UUIDs as their text) as text columns; `refs` picks some.
 */
export async function typedColumns(
  connection: DuckDBConnection,
  relation: string,
  refs: readonly ColumnRef[] | undefined,
  source: string,
): Promise<EngineColumn[]> {
  const described = (await connection.runAndReadAll(`DESCRIBE SELECT * FROM ${relation}`))
    .getRows()
    .map(([name, type]) => [String(name), String(type)] as const);
  const names = described.map(([name]) => name);
  return resolvePositions(names, refs, 'columns', source).map((position) => {
    const [name, type] = described[position] as readonly [string, string];
    const kind = kindOfType(type);
    if (kind === undefined) throw unsupportedColumn(name, source, type);
    const column = sqlIdentifier(name);
    return { name, position, kind, expression: kind === 'number' ? `CAST(${column} AS DOUBLE)` : `CAST(${column} AS VARCHAR)` };
  });
}

/** The file of a multi-file read that holds a physical row, and the row's 0-based position in it. */
export function fileRowOf(counts: readonly number[], physicalRow: number): { file: number; row: number } {
  let row = physicalRow;
  for (const [file, count] of counts.entries()) {
    if (row < count) return { file, row };
    row -= count;
  }
  return { file: counts.length - 1, row };
}

/** Locates physical rows of a multi-file read: "row 3 of part-2.parquet" (`describe` gets the file and its 0-based row). */
export function locateInFiles(counts: readonly number[], describe: (file: number, row: number) => string): (physicalRow: number) => string {
  return (physicalRow) => {
    const { file, row } = fileRowOf(counts, physicalRow);
    return describe(file, row);
  };
}

/** Runs a read, turning library and file-system errors into a FileError that names the source. */
export async function reading<T>(source: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof AdattError) throw err;
    throw new FileError(`Cannot read ${source}: ${(err as Error).message}`, { cause: err });
  }
}

/** `reading` on a fresh connection to the engine. */
export async function engineRead<T>(source: string, read: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
  return reading(source, () => withConnection(read));
}
