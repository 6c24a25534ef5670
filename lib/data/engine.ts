/**
 * DuckDB (`@duckdb/node-api`) as the data layer's engine: it parses and scans the sources (CSV,
 * Parquet, JSON lines, SQL) on its own threads, and computes each text column's distinct values
 * and every row's code, so that JavaScript only copies typed results into a `Table` and never
 * loops over a cell's string. One in-memory database per process, created on first use; each read
 * has its own connection, so its temporary tables are its own. See docs/architecture.md.
 */
import { availableParallelism } from 'node:os';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { AdattError, FileError, ValidationError } from '../errors';
import { resolvePositions, Table, type Column } from './table';
import type { ColumnRef } from './types';

let database: Promise<DuckDBInstance> | undefined;

/** DuckDB's threads: ADATT_DATA_THREADS, else every core. */
function engineThreads(): number {
  const configured = Number(process.env.ADATT_DATA_THREADS);
  return Number.isInteger(configured) && configured > 0 ? configured : availableParallelism();
}

/** Runs `work` on a fresh connection to the process's database, closed afterwards. */
export async function withConnection<T>(work: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
  database ??= import('@duckdb/node-api').then(({ DuckDBInstance }) => DuckDBInstance.create(':memory:', { threads: String(engineThreads()) }));
  const connection = await (await database).connect();
  try {
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
  const files = (await connection.runAndReadAll(`SELECT file FROM glob(${sqlString(path)}) ORDER BY file`)).getRows().map(([file]) => String(file));
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

/** The temporary table that holds a read's rows, in source order (`rowid`). */
export const ROWS_TABLE = 'adatt_rows';
/** `c{k}`: the name of column k in the rows table, for conditions over it. */
export const columnAlias = (k: number): string => `c${k}`;

/** Rows per source file (the physical row ranges of a multi-file read), in `files` order. */
export async function rowsPerFile(connection: DuckDBConnection, files: readonly string[]): Promise<number[]> {
  const counts = new Map((await connection.runAndReadAll(`SELECT filename, count(*) FROM ${ROWS_TABLE} GROUP BY filename`)).getRows()
    .map(([file, count]) => [String(file), Number(count)]));
  return files.map((file) => counts.get(file) ?? 0);
}

/**
 * Materialises `SELECT <columns> FROM <relation>` as the read's rows table (and, with `keepFilename`,
 * DuckDB's `filename` column for `rowsPerFile`).
 */
export async function materialise(connection: DuckDBConnection, relation: string, columns: readonly EngineColumn[], keepFilename = false): Promise<void> {
  const selected = columns.map((column, k) => `${column.expression} AS ${columnAlias(k)}`);
  if (keepFilename) selected.push('filename');
  await connection.run(`CREATE TEMP TABLE ${ROWS_TABLE} AS SELECT ${selected.join(', ') || '1 AS unused'} FROM ${relation}`);
}

/** Whether any materialised row matches a SQL condition over the columns (`c0`, `c1`, …). */
export async function anyRow(connection: DuckDBConnection, condition: string): Promise<boolean> {
  return (await connection.runAndReadAll(`SELECT 1 FROM ${ROWS_TABLE} WHERE ${condition} LIMIT 1`)).currentRowCount > 0;
}

/**
 * Columns per codes query: each query orders its columns by row, and a few at a time keep that
 * sort small (at 2M rows of 39 columns, groups of 5 took 250 MB instead of 730 MB, and less time).
 */
const COLUMNS_PER_QUERY = 5;

/**
 * The materialised rows as a `Table`: number columns copied into Float64Arrays (NULL as NaN), text
 * columns as their distinct values (in order of first appearance, so the codes are the same on
 * every run whatever DuckDB's thread count) and one Int32 code per row, both computed by DuckDB.
 */
export async function readTable(connection: DuckDBConnection, columns: readonly EngineColumn[], source: string, locateRow?: (physicalRow: number) => string): Promise<Table> {
  const rowCount = Number((await connection.runAndReadAll(`SELECT count(*) FROM ${ROWS_TABLE}`)).getRows()[0]?.[0] ?? 0);
  const dictionaries = new Map<number, string[]>();
  const outputs: { value: string; join: string }[] = [];
  for (const [k, column] of columns.entries()) {
    const alias = columnAlias(k);
    if (column.kind === 'number') {
      outputs.push({ value: `coalesce(r.${alias}, 'NaN'::DOUBLE)`, join: '' });
      continue;
    }
    const dictionary = `adatt_values_${k}`;
    await connection.run(`CREATE TEMP TABLE ${dictionary} AS SELECT value, (row_number() OVER (ORDER BY first) - 1)::INTEGER AS code
      FROM (SELECT ${alias} AS value, min(rowid) AS first FROM ${ROWS_TABLE} WHERE ${alias} IS NOT NULL GROUP BY ${alias})`);
    dictionaries.set(k, await readStrings(connection, `SELECT value FROM ${dictionary} ORDER BY code`));
    outputs.push({ value: `coalesce(${dictionary}.code, -1)`, join: `LEFT JOIN ${dictionary} ON r.${alias} = ${dictionary}.value` });
  }
  const arrays = columns.map((column) => (column.kind === 'number' ? new Float64Array(rowCount) : new Int32Array(rowCount)));
  const { default: bindings } = await import('@duckdb/node-bindings');
  for (let first = 0; first < columns.length; first += COLUMNS_PER_QUERY) {
    const group = outputs.slice(first, first + COLUMNS_PER_QUERY);
    // Streamed: a materialised result would hold a second copy of every code and number.
    const result = await connection.stream(`SELECT ${group.map(({ value }) => value).join(', ')} FROM ${ROWS_TABLE} r ${group.map(({ join }) => join).join(' ')} ORDER BY r.rowid`);
    let offset = 0;
    for (let chunk = await result.fetchChunk(); chunk !== null && chunk.rowCount > 0; chunk = await result.fetchChunk()) {
      const count = chunk.rowCount;
      group.forEach((_, j) => {
        // Chunks of the C API are flat and these columns have no NULLs: their data is the values, copied as bytes.
        const array = arrays[first + j] as Float64Array | Int32Array;
        const bytes = count * array.BYTES_PER_ELEMENT;
        const data = bindings.vector_get_data(bindings.data_chunk_get_vector(chunk.chunk, j), bytes);
        new Uint8Array(array.buffer, offset * array.BYTES_PER_ELEMENT, bytes).set(data);
      });
      offset += count;
    }
  }
  // Dropped, so that the connection can read its next rows table (the chunks of a stream) the same way.
  for (const k of dictionaries.keys()) await connection.run(`DROP TABLE adatt_values_${k}`);
  const tableColumns = columns.map(({ name, position, kind }, k): Column => kind === 'number'
    ? { kind, name, position, values: arrays[k] as Float64Array }
    : { kind, name, position, codes: arrays[k] as Int32Array, values: dictionaries.get(k) as string[] });
  return new Table(source, tableColumns, locateRow ? { locateRow } : {});
}

async function readStrings(connection: DuckDBConnection, sql: string): Promise<string[]> {
  const values: string[] = [];
  const result = await connection.run(sql);
  for (let chunk = await result.fetchChunk(); chunk !== null && chunk.rowCount > 0; chunk = await result.fetchChunk()) {
    const vector = chunk.getColumnVector(0);
    for (let i = 0; i < chunk.rowCount; i++) values.push(vector.getItem(i) as string);
  }
  return values;
}

/** How a column of a DuckDB type is read: as a number, as text, or not at all (nested and binary types). */
function kindOfType(type: string): 'number' | 'text' | undefined {
  if (/^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|BOOLEAN|DECIMAL\(\d+,\d+\))$/.test(type)) return 'number';
  if (/[[\]()]|^(BLOB|BIT|UNION|VARIANT|GEOMETRY)/.test(type)) return undefined;
  return 'text';
}

export function unsupportedColumn(name: string, source: string, type: string): ValidationError {
  return new ValidationError(name, `Invalid data in ${source}: column '${name}' has type ${type}, which adatt does not read (it reads flat columns of numbers, booleans and strings; store multi-valued features as delimited strings)`);
}

/**
 * The columns of a relation as a table reads them, by DuckDB type: numbers and booleans as number
 * columns, strings (and dates, times, UUIDs as their text) as text columns; `refs` picks some.
 */
export async function typedColumns(connection: DuckDBConnection, relation: string, refs: readonly ColumnRef[] | undefined, source: string): Promise<EngineColumn[]> {
  const described = (await connection.runAndReadAll(`DESCRIBE SELECT * FROM ${relation}`)).getRows().map(([name, type]) => [String(name), String(type)] as const);
  const names = described.map(([name]) => name);
  return resolvePositions(names, refs, 'columns', source).map((position) => {
    const [name, type] = described[position] as readonly [string, string];
    const kind = kindOfType(type);
    if (kind === undefined) throw unsupportedColumn(name, source, type);
    const column = sqlIdentifier(name);
    return { name, position, kind, expression: kind === 'number' ? `CAST(${column} AS DOUBLE)` : `CAST(${column} AS VARCHAR)` };
  });
}

/** Locates physical rows of a multi-file read: "row 3 of part-2.parquet" (`describe` gets the file and its 0-based row). */
export function locateInFiles(counts: readonly number[], describe: (file: number, row: number) => string): (physicalRow: number) => string {
  return (physicalRow) => {
    let row = physicalRow;
    for (const [file, count] of counts.entries()) {
      if (row < count) return describe(file, row);
      row -= count;
    }
    return describe(counts.length - 1, row);
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
