/**
 * CSV reading (RFC 4180 plus the UCI dialect): streamed from a file (plain or gzip'd) or a stream,
 * or parsed from a string, into a `Table`. Quoted fields may hold delimiters, doubled quotes and
 * line breaks; `trim` handles UCI's ", " separators and padded values. Blank lines are skipped.
 */
import { closeSync, createReadStream, openSync, readFileSync, readSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { pipeline, type Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip, gunzipSync } from 'node:zlib';
import { AdattError, FileError, ValidationError } from '../errors';
import { describeValue, optionsChecker } from '../validation';
import {
  columnAlias,
  defaultDelimiter,
  expandFiles,
  isGlob,
  locateInFiles,
  readColumns,
  sqlString,
  sqlStrings,
  withConnection,
  type EngineColumn,
} from './engine';
import { DEFAULT_MISSING_VALUES, GrowableArray, parseNumber, resolvePositions, Table, TextColumnBuilder, type Column } from './table';
import type { ColumnRef } from './types';

export interface CsvOptions {
  /** Field separator, one or more characters (default: a tab for a `.tsv` file, else ','). */
  delimiter?: string;
  /** Quote character (default '"'); inside a quoted field it is escaped by doubling it. */
  quote?: string;
  /** Whether the first record (after `skipLines`) holds the column names (default true). */
  header?: boolean;
  /** Column names: required names when there is no header (default '0', '1', …), or renames the header's. */
  columnNames?: readonly string[];
  /** Remove whitespace around every unquoted field and around quoted ones (default false). */
  trim?: boolean;
  /** Lines to skip at the start, before the header or the data (default 0). */
  skipLines?: number;
  /** Keep only these columns (default all); the others are checked for count but not stored. */
  columns?: readonly ColumnRef[];
  /** Columns to store as numbers; a cell that is neither a number nor a missing marker is an error. */
  numeric?: readonly ColumnRef[];
  /** Cells of numeric columns that mean "missing" (default ['', '?']). */
  missingValues?: readonly string[];
  /** Whether the input is gzip'd (default: detected from the file's first bytes; false for streams). */
  gzip?: boolean;
  /** Name used in error messages (default: the file's base name, or 'CSV text' / 'CSV stream'). */
  source?: string;
  /**
   * Who parses a file: 'duckdb' (DuckDB's parallel reader, with adatt's JavaScript parser deciding
   * wherever the two could differ; see docs/datasets.md), 'javascript' (only the latter), or 'auto'
   * (the default: DuckDB for globs and for files of about 64 MB of text or more, where it is faster).
   * The table is the same either way. Strings and streams are always parsed in JavaScript; globs of
   * shards need DuckDB.
   */
  engine?: CsvEngine;
}

export type CsvEngine = 'auto' | 'duckdb' | 'javascript';
const CSV_ENGINES: readonly CsvEngine[] = ['auto', 'duckdb', 'javascript'];

/**
 * 'auto' reads files from this much text on with DuckDB. Below it DuckDB's fixed cost per column
 * (a dictionary and a join each) outweighs its parallel parsing: Criteo-like CSV, 53 MB read in
 * 2.6 s by DuckDB and 1.6 s by the JavaScript parser, 158 MB in 4.3 s and 8.0 s.
 */
const DUCKDB_MIN_BYTES = 64 * 2 ** 20;
/** How much text a gzip'd CSV byte stands for, roughly (UCI's census-income: 17x; ids and numbers: 3-5x). */
const GZIP_EXPANSION = 4;

interface CsvSettings {
  delimiter: string;
  quote: string;
  header: boolean;
  columnNames: readonly string[] | undefined;
  trim: boolean;
  skipLines: number;
  columns: readonly ColumnRef[] | undefined;
  numeric: readonly ColumnRef[];
  missingValues: ReadonlySet<string>;
  gzip: boolean | undefined;
  engine: CsvEngine;
}

const CSV_OPTION_KEYS = [
  'delimiter',
  'quote',
  'header',
  'columnNames',
  'trim',
  'skipLines',
  'columns',
  'numeric',
  'missingValues',
  'gzip',
  'source',
  'engine',
] as const;

/** `path`: the file read, whose name gives the default delimiter. */
function csvSettings(options: unknown, path?: string): CsvSettings {
  const check = optionsChecker('CSV options');
  const given = check.record(options, '', CSV_OPTION_KEYS);
  const delimiter = given.delimiter === undefined ? defaultDelimiter(path) : check.string(given.delimiter, 'delimiter');
  const quote = given.quote === undefined ? '"' : check.string(given.quote, 'quote');
  if (quote.length !== 1) check.fail('quote', `quote must be a single character, got ${JSON.stringify(quote)}`);
  if (delimiter.includes(quote)) check.fail('delimiter', `delimiter ${JSON.stringify(delimiter)} must not contain the quote character`);
  const refs = (value: unknown, field: string): ColumnRef[] =>
    check.array(value, field, 'column names or positions').map((ref, i) => check.columnRef(ref, `${field}[${i}]`));
  if (given.source !== undefined) check.string(given.source, 'source');
  return {
    delimiter,
    quote,
    header: given.header === undefined ? true : check.boolean(given.header, 'header'),
    columnNames: given.columnNames === undefined ? undefined : check.strings(given.columnNames, 'columnNames'),
    trim: given.trim === undefined ? false : check.boolean(given.trim, 'trim'),
    skipLines: given.skipLines === undefined ? 0 : check.integer(given.skipLines, 'skipLines', 0),
    columns: given.columns === undefined ? undefined : refs(given.columns, 'columns'),
    numeric: given.numeric === undefined ? [] : refs(given.numeric, 'numeric'),
    missingValues: new Set(
      given.missingValues === undefined ? DEFAULT_MISSING_VALUES : check.strings(given.missingValues, 'missingValues', true),
    ),
    gzip: given.gzip === undefined ? undefined : check.boolean(given.gzip, 'gzip'),
    engine: given.engine === undefined ? 'auto' : check.oneOf(given.engine, 'engine', CSV_ENGINES),
  };
}

/**
 * Splits lines into records. Records without a quote character take the fast path (String#split);
 * the others go through a small state machine, which carries a quoted field over line breaks.
 */
class CsvRecordParser {
  private fields: string[] = [];
  private quotedText = '';
  private inQuotedField = false;
  private recordLine = 0;

  constructor(
    private readonly settings: CsvSettings,
    private readonly source: string,
    private readonly onRecord: (fields: string[], line: number) => void,
  ) {}

  line(text: string, lineNumber: number): void {
    if (this.inQuotedField) {
      this.quotedText += '\n';
      this.continueRecord(text, this.readQuotedRest(text, 0));
      return;
    }
    if (text === '') return;
    this.recordLine = lineNumber;
    if (!text.includes(this.settings.quote)) {
      const fields = text.split(this.settings.delimiter);
      if (this.settings.trim) for (let i = 0; i < fields.length; i++) fields[i] = (fields[i] as string).trim();
      this.onRecord(fields, lineNumber);
      return;
    }
    this.fields = [];
    this.continueRecord(text, this.readField(text, 0));
  }

  /** Call after the last line. */
  end(): void {
    if (this.inQuotedField) {
      throw new ValidationError(this.source, `Invalid data in line ${this.recordLine} of ${this.source}: a quoted field is never closed`);
    }
  }

  /** Reads the fields after one that ended at `end` (a delimiter or the line's end; -1: inside quotes). */
  private continueRecord(text: string, end: number): void {
    let next = end;
    while (next >= 0 && next < text.length) next = this.readField(text, next + this.settings.delimiter.length);
    if (next >= 0) {
      this.onRecord(this.fields, this.recordLine);
      this.fields = [];
    }
  }

  /** Reads one field; returns where it ends (a delimiter or the line's end), or -1 inside quotes. */
  private readField(text: string, start: number): number {
    const { delimiter, quote, trim } = this.settings;
    let pos = start;
    if (trim) while (pos < text.length && isBlank(text.charCodeAt(pos)) && !text.startsWith(delimiter, pos)) pos++;
    if (text.startsWith(quote, pos)) {
      this.inQuotedField = true;
      this.quotedText = '';
      return this.readQuotedRest(text, pos + 1);
    }
    let end = text.indexOf(delimiter, start);
    if (end < 0) end = text.length;
    const field = text.slice(start, end);
    this.fields.push(trim ? field.trim() : field);
    return end;
  }

  /** Continues a quoted field at `pos`; returns the position after it, or -1 if the line ends inside it. */
  private readQuotedRest(text: string, start: number): number {
    const { delimiter, quote, trim } = this.settings;
    let pos = start;
    for (;;) {
      const quoteAt = text.indexOf(quote, pos);
      if (quoteAt < 0) {
        this.quotedText += text.slice(pos);
        return -1;
      }
      this.quotedText += text.slice(pos, quoteAt);
      if (text.startsWith(quote, quoteAt + 1)) {
        this.quotedText += quote;
        pos = quoteAt + 2;
        continue;
      }
      this.inQuotedField = false;
      this.fields.push(this.quotedText);
      let end = quoteAt + 1;
      if (trim) while (end < text.length && isBlank(text.charCodeAt(end)) && !text.startsWith(delimiter, end)) end++;
      if (end < text.length && !text.startsWith(delimiter, end)) {
        throw new ValidationError(
          this.source,
          `Invalid data in line ${this.recordLine} of ${this.source}: unexpected ${JSON.stringify(text.slice(end, end + 10))} after a closing quote (a quote inside a quoted field must be doubled)`,
        );
      }
      return end;
    }
  }
}

function isBlank(charCode: number): boolean {
  return charCode === 0x20 || charCode === 0x09;
}

/** A kept column of a CSV file: where it is, its name, and whether it is read as numbers. */
interface CsvColumn {
  name: string;
  position: number;
  numeric: boolean;
}

/**
 * The kept columns of a CSV file whose records have `fieldCount` fields, given the header's (or the
 * default) names; `line` is the header's, for the error about columnNames of the wrong length.
 */
function csvColumns(settings: CsvSettings, names: readonly string[], fieldCount: number, line: number, source: string): CsvColumn[] {
  if (names.length !== fieldCount) {
    throw new ValidationError(
      'columnNames',
      `Invalid data in line ${line} of ${source}: the header has ${fieldCount} fields but columnNames has ${names.length}`,
    );
  }
  const numeric = new Set(resolvePositions(names, settings.numeric, 'numeric', source));
  return resolvePositions(names, settings.columns, 'columns', source).map((position) => ({
    name: names[position] as string,
    position,
    numeric: numeric.has(position),
  }));
}

/** The column names a file's first record gives: columnNames, the header's fields, or '0', '1', …. */
function namesFromFirstRecord(settings: CsvSettings, fields: readonly string[]): readonly string[] {
  return settings.columnNames ?? (settings.header ? fields : fields.map((_, i) => String(i)));
}

/** Turns records into table columns: header, field-count checks, column selection, numbers. */
class CsvTableBuilder {
  private expectedFields = -1;
  private kept: { position: number; text?: TextColumnBuilder; numbers?: GrowableArray<Float64Array>; name: string }[] = [];
  private readonly lineNumbers = new GrowableArray((n) => new Int32Array(n));

  constructor(
    private readonly settings: CsvSettings,
    private readonly source: string,
  ) {}

  add(fields: string[], line: number): void {
    if (this.expectedFields < 0) {
      const names = namesFromFirstRecord(this.settings, fields);
      this.layOut(names, this.settings.header ? fields.length : names.length, line);
      if (this.settings.header) return;
    }
    if (fields.length !== this.expectedFields) {
      throw new ValidationError(
        this.source,
        `Invalid data in line ${line} of ${this.source}: ${fields.length} fields, expected ${this.expectedFields}`,
      );
    }
    for (const column of this.kept) {
      const text = fields[column.position] as string;
      if (column.text) {
        column.text.push(text);
        continue;
      }
      const value = parseNumber(text, this.settings.missingValues);
      if (value === undefined) {
        throw new ValidationError(
          column.name,
          `Invalid data in line ${line} of ${this.source}, column '${column.name}': ${JSON.stringify(text)} is not a number`,
        );
      }
      (column.numbers as GrowableArray<Float64Array>).push(value);
    }
    this.lineNumbers.push(line);
  }

  finish(): Table {
    if (this.expectedFields < 0 && this.settings.columnNames) this.layOut(this.settings.columnNames, this.settings.columnNames.length, 0);
    const columns = this.kept.map(
      ({ name, position, text, numbers }): Column =>
        text ? text.finish() : { kind: 'number', name, position, values: (numbers as GrowableArray<Float64Array>).toArray() },
    );
    return new Table(this.source, columns, { lineNumbers: this.lineNumbers.toArray() });
  }

  private layOut(names: readonly string[], fieldCount: number, line: number): void {
    this.expectedFields = fieldCount;
    this.kept = csvColumns(this.settings, names, fieldCount, line, this.source).map(({ name, position, numeric }) =>
      numeric
        ? { name, position, numbers: new GrowableArray((n) => new Float64Array(n)) }
        : { name, position, text: new TextColumnBuilder(name, position) },
    );
  }
}

/** Splits text chunks into lines (LF or CRLF), numbered from 1; drops a leading byte-order mark. */
class LineSplitter {
  private rest = '';
  private lineNumber = 0;

  constructor(private readonly onLine: (line: string, lineNumber: number) => void) {}

  push(chunk: string): void {
    const text = this.lineNumber === 0 && this.rest === '' && chunk.startsWith('\uFEFF') ? chunk.slice(1) : chunk;
    const joined = this.rest + text;
    let start = 0;
    for (let newline = joined.indexOf('\n'); newline >= 0; newline = joined.indexOf('\n', start)) {
      this.emit(joined.slice(start, newline));
      start = newline + 1;
    }
    this.rest = joined.slice(start);
  }

  end(): void {
    if (this.rest !== '') this.emit(this.rest);
    this.rest = '';
  }

  private emit(line: string): void {
    this.onLine(line.endsWith('\r') ? line.slice(0, -1) : line, ++this.lineNumber);
  }
}

/** Wires splitter -> parser -> `onRecord`; `skipLines` lines never reach the parser. */
function recordPipeline(
  settings: CsvSettings,
  source: string,
  onRecord: (fields: string[], line: number) => void,
): { lines: LineSplitter; end: () => void } {
  const parser = new CsvRecordParser(settings, source, onRecord);
  const lines = new LineSplitter((line, lineNumber) => {
    if (lineNumber > settings.skipLines) parser.line(line, lineNumber);
  });
  return {
    lines,
    end: () => {
      lines.end();
      parser.end();
    },
  };
}

/** Splitter -> parser -> table builder. */
function csvPipeline(settings: CsvSettings, source: string): { lines: LineSplitter; finish: () => Table } {
  const builder = new CsvTableBuilder(settings, source);
  const { lines, end } = recordPipeline(settings, source, (fields, line) => builder.add(fields, line));
  return {
    lines,
    finish: () => {
      end();
      return builder.finish();
    },
  };
}

/** Parses CSV text that is already in memory. */
export function parseCsv(text: string, options: CsvOptions = {}): Table {
  if (typeof text !== 'string') throw new ValidationError('text', `parseCsv needs the CSV text as a string, got ${describeValue(text)}`);
  const settings = csvSettings(options);
  const { lines, finish } = csvPipeline(settings, options.source ?? 'CSV text');
  lines.push(text);
  return finish();
}

const GZIP_MAGIC = [0x1f, 0x8b];
const READ_CHUNK_BYTES = 1 << 20;

async function startsWithGzipMagic(path: string): Promise<boolean> {
  const file = await open(path, 'r');
  try {
    const head = Buffer.alloc(2);
    const { bytesRead } = await file.read(head, 0, 2, 0);
    return bytesRead === 2 && head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1];
  } finally {
    await file.close();
  }
}

/** A stream of the file's (decompressed) bytes; errors of either stage surface on the returned stream. */
export async function openDataFile(path: string, gzip?: boolean): Promise<Readable> {
  const compressed = gzip ?? (await startsWithGzipMagic(path));
  const file = createReadStream(path, { highWaterMark: READ_CHUNK_BYTES });
  return compressed ? pipeline(file, createGunzip({ chunkSize: READ_CHUNK_BYTES }), () => {}) : file;
}

/**
 * Reads a CSV file (gzip'd or not, detected from its first bytes), a glob of CSV shards with the
 * same columns (`'shards/*.csv.gz'`) or a stream into a `Table`. Files go through DuckDB (see
 * `CsvOptions.engine`); streams are parsed in JavaScript, streaming: memory holds the table's
 * columns, not the text.
 */
export async function readCsv(input: string | Readable, options: CsvOptions = {}): Promise<Table> {
  const settings = csvSettings(options, typeof input === 'string' ? input : undefined);
  const source = options.source ?? (typeof input === 'string' ? basename(input) : 'CSV stream');
  if (
    typeof input !== 'string' ||
    settings.engine === 'javascript' ||
    (settings.engine === 'auto' && (await isSmallFile(input, settings.gzip)))
  ) {
    return readCsvInJavaScript(input, settings, source);
  }
  const read = await readCsvWithEngine(input, settings, source);
  if (read.table) return read.table;
  // DuckDB could not read it exactly as adatt's parser would: that parser decides (the table, or the error naming file, line and column).
  const tables = await Promise.all(
    read.files.map((file) => readCsvInJavaScript(file, settings, read.files.length > 1 ? basename(file) : source)),
  );
  if (tables.length === 1) return tables[0] as Table;
  throw new ValidationError(
    source,
    `Invalid data in ${source}: DuckDB could not read these ${tables.length} files as one (${read.reason}), though each parses on its own; read them one by one`,
  );
}

async function readCsvInJavaScript(input: string | Readable, settings: CsvSettings, source: string): Promise<Table> {
  const { lines, finish } = csvPipeline(settings, source);
  const decoder = new StringDecoder('utf8');
  try {
    const stream =
      typeof input === 'string'
        ? await openDataFile(input, settings.gzip)
        : settings.gzip
          ? pipeline(input, createGunzip(), () => {})
          : input;
    for await (const chunk of stream as AsyncIterable<Buffer | string>) {
      lines.push(typeof chunk === 'string' ? chunk : decoder.write(chunk));
    }
    lines.push(decoder.end());
  } catch (err) {
    if (err instanceof AdattError) throw err;
    throw new FileError(`Cannot read ${source}: ${(err as Error).message}`, { cause: err });
  }
  return finish();
}

/** True for one file (not a glob) of less than DUCKDB_MIN_BYTES of text, or one that cannot be read (the JavaScript reader names the problem). */
async function isSmallFile(path: string, gzip: boolean | undefined): Promise<boolean> {
  if (isGlob(path)) return false;
  try {
    const { size } = await stat(path);
    return size * ((gzip ?? (await startsWithGzipMagic(path))) ? GZIP_EXPANSION : 1) < DUCKDB_MIN_BYTES;
  } catch {
    return true;
  }
}

/** The first record of a file (after skipLines) and its line, read in JavaScript; undefined when there is none. */
async function firstRecord(file: string, settings: CsvSettings, source: string): Promise<{ fields: string[]; line: number } | undefined> {
  let first: { fields: string[]; line: number } | undefined;
  const { lines } = recordPipeline(settings, source, (fields, line) => {
    first ??= { fields, line };
  });
  const decoder = new StringDecoder('utf8');
  for await (const chunk of (await openDataFile(file, settings.gzip)) as AsyncIterable<Buffer>) {
    lines.push(decoder.write(chunk));
    if (first) return first;
  }
  lines.push(decoder.end());
  lines.end();
  return first;
}

/**
 * Code points that JavaScript's String#trim removes besides space and tab (line breaks cannot end
 * an unquoted field). DuckDB trims space and tab (a longer trim set is several times slower); a
 * field that still starts or ends with one of these goes to the JavaScript parser.
 */
const OTHER_JS_WHITESPACE = [
  0x0b, 0x0c, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f,
  0x205f, 0x3000, 0xfeff,
];

/**
 * A numeric cell in SQL: NaN for a missing marker, the number, or NULL for a cell the JavaScript
 * parser must judge (not a number to DuckDB, or one DuckDB reads more leniently, such as '1_000').
 */
function numberExpression(cell: string, missingValues: ReadonlySet<string>): string {
  const value = `TRY_CAST(${cell} AS DOUBLE)`;
  const isMissing = missingValues.size > 0 ? `${cell} IN (${[...missingValues].map(sqlString).join(', ')})` : 'false';
  return `CASE WHEN ${isMissing} THEN 'NaN'::DOUBLE WHEN isfinite(${value}) AND NOT contains(${cell}, '_') THEN ${value} END`;
}

async function compressionOf(files: readonly string[], gzip: boolean | undefined): Promise<'gzip' | 'none' | undefined> {
  const compressed = gzip === undefined ? await Promise.all(files.map(startsWithGzipMagic)) : files.map(() => gzip);
  if (compressed.every(Boolean)) return 'gzip';
  return compressed.some(Boolean) ? undefined : 'none';
}

/**
 * The line where each data record of a file starts, as the JavaScript parser numbers them, read
 * synchronously (it runs only when an error message needs a line).
 */
function recordLines(file: string, settings: CsvSettings, source: string, gzip: boolean): Int32Array {
  const starts = new GrowableArray((n) => new Int32Array(n));
  let headerSeen = !settings.header;
  const { lines, end } = recordPipeline(settings, source, (_, line) => {
    if (headerSeen) starts.push(line);
    headerSeen = true;
  });
  const decoder = new StringDecoder('utf8');
  if (gzip) {
    const text = gunzipSync(readFileSync(file));
    for (let at = 0; at < text.length; at += READ_CHUNK_BYTES) lines.push(decoder.write(text.subarray(at, at + READ_CHUNK_BYTES)));
  } else {
    const descriptor = openSync(file, 'r');
    try {
      const buffer = Buffer.alloc(READ_CHUNK_BYTES);
      for (let read = readSync(descriptor, buffer); read > 0; read = readSync(descriptor, buffer))
        lines.push(decoder.write(buffer.subarray(0, read)));
    } finally {
      closeSync(descriptor);
    }
  }
  lines.push(decoder.end());
  end();
  return starts.toArray();
}

/**
 * The line where data record `row` (0-based) of a CSV file starts, as `readCsv`'s errors number
 * lines: for errors that the engine finds in a CSV source. Parses the file; only errors call it.
 */
export async function csvRecordLine(
  file: string,
  dialect: { delimiter: string; quote: string; header: boolean },
  row: number,
): Promise<number> {
  const settings = csvSettings(dialect);
  const lines = recordLines(file, settings, basename(file), await startsWithGzipMagic(file));
  return lines[row] as number;
}

/**
 * Reads CSV files through DuckDB: every field as text (DuckDB's strict RFC 4180 reader, no type
 * sniffing, no null strings), then numbers, trimming and dictionaries in SQL. Returns no table
 * wherever DuckDB's reading could differ from the JavaScript parser's (an error of DuckDB's, a cell
 * it would read as a number more leniently, quotes or carriage returns that the two treat
 * differently, a single-column file, whose blank lines DuckDB reads as rows), with the files to
 * read in JavaScript instead.
 */
async function readCsvWithEngine(
  path: string,
  settings: CsvSettings,
  source: string,
): Promise<{ table?: Table; files: string[]; reason?: string }> {
  let files = [path];
  try {
    return await withConnection(async (connection) => {
      files = await expandFiles(connection, path, source);
      const first = await firstRecord(files[0] as string, settings, source);
      const compression = await compressionOf(files, settings.gzip);
      if (!first || first.fields.length === 1 || compression === undefined)
        return { files, reason: "an empty, single-column or partly gzip'd file" };
      const fieldCount = first.fields.length;
      const columns = csvColumns(settings, namesFromFirstRecord(settings, first.fields), fieldCount, first.line, source);
      // With trim, quotes are left to the JavaScript parser: DuckDB does not unquote a field that starts with blanks.
      const quote = sqlString(settings.trim ? '' : settings.quote);
      const relation = `read_csv(${sqlStrings(files)}, auto_detect = false, header = ${settings.header}, skip = ${settings.skipLines},
        delim = ${sqlString(settings.delimiter)}, quote = ${quote}, escape = ${quote}, strict_mode = true, null_padding = false,
        nullstr = chr(0), compression = '${compression}', filename = ${files.length > 1},
        columns = {${first.fields.map((_, i) => `'f${i}': 'VARCHAR'`).join(', ')}})`;
      const engineColumns = columns.map(({ name, position, numeric }): EngineColumn => {
        const cell = settings.trim ? `trim(f${position}, ' \t')` : `f${position}`;
        return numeric
          ? { name, position, kind: 'number', expression: numberExpression(cell, settings.missingValues) }
          : { name, position, kind: 'text', expression: `coalesce(${cell}, '')` };
      });
      const otherWhitespace = `[${String.fromCodePoint(...OTHER_JS_WHITESPACE)}]`;
      const differs = engineColumns.flatMap((column, k) => {
        const alias = columnAlias(k);
        if (column.kind === 'number') return [`${alias} IS NULL`];
        // Without trim, a CR can only be inside quotes (which the JavaScript parser turns into LF); with trim, quotes are literal.
        return settings.trim
          ? [
              `contains(${alias}, ${sqlString(settings.quote)})`,
              `regexp_matches(${alias}, ${sqlString(`^${otherWhitespace}|${otherWhitespace}$`)})`,
            ]
          : [`contains(${alias}, chr(13))`];
      });
      const read = await readColumns(connection, relation, engineColumns, {
        files,
        ...(differs.length > 0 ? { stopWhen: differs.join(' OR ') } : {}),
      });
      if (read.stopped) return { files, reason: 'cells that DuckDB reads differently' };
      const counts = files.length > 1 ? read.rowsPerFile : [Infinity];
      const linesOf = new Map<number, Int32Array>();
      const locateRow = locateInFiles(counts, (file, row) => {
        const name = files.length > 1 ? basename(files[file] as string) : source;
        let lines = linesOf.get(file);
        if (!lines) {
          lines = recordLines(files[file] as string, settings, name, compression === 'gzip');
          linesOf.set(file, lines);
        }
        return `line ${lines[row] as number} of ${name}`;
      });
      return { table: new Table(source, read.columns, { locateRow }), files };
    });
  } catch (err) {
    if (err instanceof AdattError) throw err;
    return { files, reason: (err as Error).message.split('\n')[0] };
  }
}
