/**
 * Parquet (through hyparquet, pure JavaScript) and Arrow IPC (through apache-arrow) files into a
 * `Table`. Both libraries are loaded on first use, so that CSV-only programs never pay for them.
 * Flat columns of numbers, booleans and strings (dictionary-encoded or not) are supported.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { AdattError, FileError, ValidationError } from '../errors';
import { optionsChecker } from './check';
import { columnFromValues, resolvePositions, Table, type Column } from './table';
import type { ColumnRef } from './types';

export interface ColumnarReadOptions {
  /** Keep only these columns (default all). */
  columns?: readonly ColumnRef[];
  /** Name used in error messages (default: the file's base name). */
  source?: string;
}

function readSettings(path: unknown, options: unknown, subject: string): { path: string; columns: ColumnRef[] | undefined; source: string } {
  const check = optionsChecker(subject);
  const file = check.string(path, 'path');
  const given = check.record(options, '', ['columns', 'source']);
  return {
    path: file,
    columns: given.columns === undefined
      ? undefined
      : check.array(given.columns, 'columns', 'column names or positions').map((ref, i) => check.columnRef(ref, `columns[${i}]`)),
    source: given.source === undefined ? basename(file) : check.string(given.source, 'source'),
  };
}

/** Runs a read, turning library and file-system errors into a FileError that names the file. */
async function reading<T>(source: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof AdattError) throw err;
    throw new FileError(`Cannot read ${source}: ${(err as Error).message}`, { cause: err });
  }
}

function unsupportedColumn(name: string, source: string, type: string): ValidationError {
  return new ValidationError(name, `Invalid data in ${source}: column '${name}' has type ${type}, which adatt does not read (it reads flat columns of numbers, booleans and strings; store multi-valued features as delimited strings)`);
}

/** Reads a Parquet file (snappy, gzip, brotli, zstd or lz4 compressed) into a `Table`. */
export async function readParquet(path: string, options: ColumnarReadOptions = {}): Promise<Table> {
  const settings = readSettings(path, options, 'Parquet options');
  const { source } = settings;
  return reading(source, async () => {
    const { asyncBufferFromFile, parquetMetadataAsync, parquetRead, parquetSchema } = await import('hyparquet');
    const { compressors } = await import('hyparquet-compressors');
    const file = await asyncBufferFromFile(settings.path);
    const metadata = await parquetMetadataAsync(file);
    const fields = parquetSchema(metadata).children;
    const names = fields.map((field) => field.element.name);
    const positions = resolvePositions(names, settings.columns, 'columns', source);
    for (const position of positions) {
      const field = fields[position] as (typeof fields)[number];
      if (field.children.length > 0) throw unsupportedColumn(field.element.name, source, 'nested (list, map or struct)');
    }
    const chunks = new Map<string, { rowStart: number; data: ArrayLike<unknown> }[]>();
    await parquetRead({
      file,
      metadata,
      compressors,
      columns: positions.map((position) => names[position] as string),
      onChunk: ({ columnName, columnData, rowStart }) => {
        const list = chunks.get(columnName) ?? [];
        list.push({ rowStart, data: columnData });
        chunks.set(columnName, list);
      },
    });
    const columns = positions.map((position): Column => {
      const name = names[position] as string;
      const values: unknown[] = [];
      for (const { data } of (chunks.get(name) ?? []).sort((a, b) => a.rowStart - b.rowStart)) {
        for (let i = 0; i < data.length; i++) values.push(data[i]);
      }
      return columnFromValues(name, position, values, source);
    });
    return new Table(source, columns);
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
      const isText = DataType.isUtf8(type) || DataType.isLargeUtf8(type) || (DataType.isDictionary(type) && DataType.isUtf8(type.dictionary));
      if (!isNumeric && !isText && !DataType.isBool(type)) throw unsupportedColumn(name, source, String(type));
      // toArray() is a zero-copy typed array for numbers, but it ignores the validity bitmap.
      const values: ArrayLike<unknown> = isNumeric && vector.nullCount === 0 ? vector.toArray() : Array.from(vector);
      return columnFromValues(name, position, values, source);
    });
    return new Table(source, columns);
  });
}
