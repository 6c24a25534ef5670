/**
 * A data source that is read through the engine without becoming a table first: files, globs of
 * shards or a SQL query, with their format and CSV dialect. Streams (lib/data/stream.ts) and
 * schema fitting over a source (lib/data/fit-source.ts) take the same source and options.
 */
import { basename } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { FieldChecker } from '../validation';
import { defaultDelimiter, expandFiles, fileFormatOf, jsonLinesScan, parquetScan, sqlRelation, sqlString, sqlStrings } from './engine';

export type StreamFormat = 'parquet' | 'csv' | 'jsonl';
const STREAM_FORMATS: readonly StreamFormat[] = ['parquet', 'csv', 'jsonl'];

/** A file, a glob of shards (`'events/*.parquet'`), or a DuckDB query over them. */
export type StreamSource = string | { sql: string };

/** How a source is read (the options `openStream` and `fitSchemaFrom` share). */
export interface SourceOptions {
  /** Default: from the file extension (.parquet; .csv, .tsv, .csv.gz; .jsonl, .ndjson, .json). */
  format?: StreamFormat;
  /** CSV dialect (DuckDB's reader; every cell is read as text and parsed by the schema). */
  csv?: { delimiter?: string; quote?: string; header?: boolean };
  /** Name used in error messages (default: the path's base name, or 'SQL query'). */
  source?: string;
}

export const SOURCE_OPTION_KEYS = ['format', 'csv', 'source'] as const;

/** The relation of some of a source's files; `withFilename` adds DuckDB's `filename` column. */
export type FileScan = (files: readonly string[], withFilename?: boolean) => string;

/** A checked source: its files and their scan, or a query. */
export interface SourceSettings {
  name: string;
  path: string | undefined;
  sql: string | undefined;
  /** Absent for a SQL source. */
  format: StreamFormat | undefined;
  csv: CsvDialect;
  /** Absent for a SQL source. */
  scan: FileScan | undefined;
}

/** The CSV dialect of a source (used when its format is CSV). */
export interface CsvDialect {
  delimiter: string;
  quote: string;
  header: boolean;
}

function formatOf(check: FieldChecker, path: string, given: StreamFormat | undefined): StreamFormat {
  const format = given ?? fileFormatOf(path);
  if (format === undefined || format === 'arrow') {
    const problem =
      format === 'arrow' ? `${path} is Arrow IPC, which only readArrow reads` : `the format of ${path} is not told by its name`;
    check.fail('format', `${problem}; give format ('parquet', 'csv' or 'jsonl')`);
  }
  return format;
}

/** Checks `source` and the source options of `given` (already a checked record). */
export function sourceSettings(check: FieldChecker, source: unknown, given: Record<string, unknown>): SourceSettings {
  let sql: string | undefined;
  let path: string | undefined;
  if (typeof source === 'string' && source !== '') path = source;
  else if (typeof source === 'object' && source !== null && typeof (source as { sql?: unknown }).sql === 'string')
    sql = (source as { sql: string }).sql;
  else check.fail('source', 'the source must be a path, a glob of shards or { sql: "SELECT ..." }');
  const format =
    path === undefined
      ? undefined
      : formatOf(check, path, given.format === undefined ? undefined : check.oneOf(given.format, 'format', STREAM_FORMATS));
  const csv = given.csv === undefined ? {} : check.record(given.csv, 'csv', ['delimiter', 'quote', 'header']);
  const delimiter = csv.delimiter === undefined ? defaultDelimiter(path) : check.string(csv.delimiter, 'csv.delimiter');
  const quote = csv.quote === undefined ? '"' : check.string(csv.quote, 'csv.quote', true);
  const header = csv.header === undefined ? true : check.boolean(csv.header, 'csv.header');
  const name = given.source === undefined ? (path === undefined ? 'SQL query' : basename(path)) : check.string(given.source, 'source');
  const scan: FileScan | undefined =
    format === undefined
      ? undefined
      : (files, withFilename = false) => {
          const list = `${sqlStrings(files)}${withFilename ? ', filename = true' : ''}`;
          if (format === 'parquet') return parquetScan(list);
          if (format === 'jsonl') return jsonLinesScan(list);
          return `read_csv(${list}, header = ${header}, delim = ${sqlString(delimiter)}, quote = ${sqlString(quote)}, escape = ${sqlString(quote)}, all_varchar = true, strict_mode = true, null_padding = false, nullstr = chr(0))`;
        };
  return { name, path, sql, format, csv: { delimiter, quote, header }, scan };
}

/** A source opened on a connection: its files (none for a query) and the relation of all its rows. */
export interface OpenedSource {
  files: string[];
  /** A SQL source's query as a relation (checked). */
  query: string | undefined;
  relation: string;
}

export async function openSource(connection: DuckDBConnection, settings: SourceSettings): Promise<OpenedSource> {
  const { path, scan, name } = settings;
  const files = path === undefined ? [] : await expandFiles(connection, path, name);
  const query = scan ? undefined : await sqlRelation(connection, settings.sql as string);
  return { files, query, relation: query ?? (scan as FileScan)(files) };
}
