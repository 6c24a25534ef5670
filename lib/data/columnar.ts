/**
 * Columnar and SQL sources into a `Table`: Parquet and JSON lines (files or globs of shards) and SQL
 * queries through DuckDB (lib/data/engine.ts), Arrow IPC through apache-arrow (DuckDB reads Arrow
 * files only with an extension it would download). Flat columns of numbers, booleans and strings
 * are supported.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { optionsChecker, type FieldChecker } from '../validation';
import {
  engineRead,
  expandFiles,
  jsonLinesScan,
  locateInFiles,
  parquetScan,
  readColumns,
  reading,
  sqlRelation,
  sqlStrings,
  typedColumns,
  unsupportedColumn,
} from './engine';
import { columnFromValues, resolvePositions, Table, type Column } from './table';
import type { ColumnRef } from './types';

export interface ColumnarReadOptions {
  /** Keep only these columns (default all). */
  columns?: readonly ColumnRef[];
  /** Name used in error messages (default: the file's base name). */
  source?: string;
}

interface ReadSettings {
  path: string;
  columns: ColumnRef[] | undefined;
  source: string;
}

function columnRefs(check: FieldChecker, columns: unknown): ColumnRef[] | undefined {
  return columns === undefined
    ? undefined
    : check.array(columns, 'columns', 'column names or positions').map((ref, i) => check.columnRef(ref, `columns[${i}]`));
}

function readSettings(path: unknown, options: unknown, subject: string): ReadSettings {
  const check = optionsChecker(subject);
  const file = check.string(path, 'path');
  const given = check.record(options, '', ['columns', 'source']);
  return {
    path: file,
    columns: columnRefs(check, given.columns),
    source: given.source === undefined ? basename(file) : check.string(given.source, 'source'),
  };
}

/**
 * Reads through DuckDB the relation `scan(files)` makes of the file (or glob of shards) at `path`:
 * columns by type (numbers and booleans as numbers, strings as text), rows in file order. Rows of a
 * glob are located as "row k of <file>".
 */
async function readFiles(settings: ReadSettings, scan: (files: string) => string): Promise<Table> {
  const { source } = settings;
  return engineRead(source, async (connection) => {
    const files = await expandFiles(connection, settings.path, source);
    const relation = scan(`${sqlStrings(files)}, filename = ${files.length > 1}`);
    const columns = await typedColumns(connection, relation, settings.columns, source);
    const read = await readColumns(connection, relation, columns, { files });
    const locateRow =
      files.length > 1 ? locateInFiles(read.rowsPerFile, (file, row) => `row ${row + 1} of ${basename(files[file] as string)}`) : undefined;
    return new Table(source, read.columns, locateRow ? { locateRow } : {});
  });
}

/**
 * Reads a Parquet file, or a glob of shards with the same columns (`'events/*.parquet'`), into a
 * `Table` (snappy, gzip, zstd, brotli or lz4 compressed).
 */
export async function readParquet(path: string, options: ColumnarReadOptions = {}): Promise<Table> {
  return readFiles(readSettings(path, options, 'Parquet options'), parquetScan);
}

/**
 * Reads JSON lines (one object per line; gzip'd when the name ends in .gz), or a glob of such
 * files, into a `Table`: keys become columns, by the types DuckDB infers from the values.
 */
export async function readJsonLines(path: string, options: ColumnarReadOptions = {}): Promise<Table> {
  return readFiles(readSettings(path, options, 'JSON lines options'), jsonLinesScan);
}

export interface SqlReadOptions {
  /** Keep only these columns of the result (default all). */
  columns?: readonly ColumnRef[];
  /** Name used in error messages (default 'SQL query'). */
  source?: string;
}

/**
 * The result of a DuckDB SQL query as a `Table`, e.g. feature preparation over shards:
 * `readSql("SELECT * FROM read_parquet('events/*.parquet') WHERE day < 20")`. Rows keep the
 * query's order (give it an ORDER BY when the order matters, e.g. for seeded splits of a join).
 * A query that DuckDB rejects is a ValidationError with DuckDB's message.
 */
export async function readSql(sql: string, options: SqlReadOptions = {}): Promise<Table> {
  const check = optionsChecker('SQL options');
  const query = check.string(sql, 'sql');
  const given = check.record(options, '', ['columns', 'source']);
  const source = given.source === undefined ? 'SQL query' : check.string(given.source, 'source');
  const refs = columnRefs(check, given.columns);
  return engineRead(source, async (connection) => {
    const relation = await sqlRelation(connection, query);
    const columns = await typedColumns(connection, relation, refs, source);
    return new Table(source, (await readColumns(connection, relation, columns)).columns);
  });
}

/** Reads an Arrow IPC file (file or stream format, e.g. `.arrow` / `.feather` v2) into a `Table`. */
export async function readArrow(path: string, options: ColumnarReadOptions = {}): Promise<Table> {
  const settings = readSettings(path, options, 'Arrow options');
  const { source } = settings;
  return reading(source, async () => {
    const { DataType, tableFromIPC } = await import('apache-arrow');
    const table = tableFromIPC(await readFile(settings.path));
    const names = table.schema.fields.map((field) => field.name);
    const positions = resolvePositions(names, settings.columns, 'columns', source);
    const columns = positions.map((position): Column => {
      const name = names[position] as string;
      const vector = table.getChildAt(position) as NonNullable<ReturnType<typeof table.getChildAt>>;
      const { type } = vector;
      const isNumeric = DataType.isInt(type) || DataType.isFloat(type);
      const isText =
        DataType.isUtf8(type) || DataType.isLargeUtf8(type) || (DataType.isDictionary(type) && DataType.isUtf8(type.dictionary));
      if (!isNumeric && !isText && !DataType.isBool(type)) throw unsupportedColumn(name, source, String(type));
      // toArray() is a zero-copy typed array for numbers, but it ignores the validity bitmap.
      const values: ArrayLike<unknown> = isNumeric && vector.nullCount === 0 ? vector.toArray() : Array.from(vector);
      return columnFromValues(name, position, values, source);
    });
    return new Table(source, columns);
  });
}
