/**
 * CSV reading (RFC 4180 plus the UCI dialect): streamed from a file (plain or gzip'd) or a stream,
 * or parsed from a string, into a `Table`. Quoted fields may hold delimiters, doubled quotes and
 * line breaks; `trim` handles UCI's ", " separators and padded values. Blank lines are skipped.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { pipeline, type Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import { AdattError, FileError, ValidationError } from '../errors';
import { describeValue } from '../validation';
import { optionsChecker } from './check';
import { DEFAULT_MISSING_VALUES, GrowableArray, parseNumber, resolvePositions, Table, TextColumnBuilder, type Column } from './table';
import type { ColumnRef } from './types';

export interface CsvOptions {
  /** Field separator, one or more characters (default ','). */
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
}

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
}

const CSV_OPTION_KEYS = [
  'delimiter', 'quote', 'header', 'columnNames', 'trim', 'skipLines', 'columns', 'numeric', 'missingValues', 'gzip', 'source',
] as const;

function csvSettings(options: unknown): CsvSettings {
  const check = optionsChecker('CSV options');
  const given = check.record(options, '', CSV_OPTION_KEYS);
  const delimiter = given.delimiter === undefined ? ',' : check.string(given.delimiter, 'delimiter');
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
    missingValues: new Set(given.missingValues === undefined ? DEFAULT_MISSING_VALUES : check.strings(given.missingValues, 'missingValues', true)),
    gzip: given.gzip === undefined ? undefined : check.boolean(given.gzip, 'gzip'),
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
        throw new ValidationError(this.source, `Invalid data in line ${this.recordLine} of ${this.source}: unexpected ${JSON.stringify(text.slice(end, end + 10))} after a closing quote (a quote inside a quoted field must be doubled)`);
      }
      return end;
    }
  }
}

function isBlank(charCode: number): boolean {
  return charCode === 0x20 || charCode === 0x09;
}

/** Turns records into table columns: header, field-count checks, column selection, numbers. */
class CsvTableBuilder {
  private expectedFields = -1;
  private kept: { position: number; text?: TextColumnBuilder; numbers?: GrowableArray<Float64Array>; name: string }[] = [];
  private readonly lineNumbers = new GrowableArray((n) => new Int32Array(n));

  constructor(private readonly settings: CsvSettings, private readonly source: string) {}

  add(fields: string[], line: number): void {
    if (this.expectedFields < 0) {
      const names = this.settings.columnNames ?? (this.settings.header ? fields : fields.map((_, i) => String(i)));
      this.layOut(names, this.settings.header ? fields.length : names.length, line);
      if (this.settings.header) return;
    }
    if (fields.length !== this.expectedFields) {
      throw new ValidationError(this.source, `Invalid data in line ${line} of ${this.source}: ${fields.length} fields, expected ${this.expectedFields}`);
    }
    for (const column of this.kept) {
      const text = fields[column.position] as string;
      if (column.text) {
        column.text.push(text);
        continue;
      }
      const value = parseNumber(text, this.settings.missingValues);
      if (value === undefined) {
        throw new ValidationError(column.name, `Invalid data in line ${line} of ${this.source}, column '${column.name}': ${JSON.stringify(text)} is not a number`);
      }
      (column.numbers as GrowableArray<Float64Array>).push(value);
    }
    this.lineNumbers.push(line);
  }

  finish(): Table {
    if (this.expectedFields < 0 && this.settings.columnNames) this.layOut(this.settings.columnNames, this.settings.columnNames.length, 0);
    const columns = this.kept.map(({ name, position, text, numbers }): Column =>
      text ? text.finish() : { kind: 'number', name, position, values: (numbers as GrowableArray<Float64Array>).toArray() },
    );
    return new Table(this.source, columns, { lineNumbers: this.lineNumbers.toArray() });
  }

  private layOut(names: readonly string[], fieldCount: number, line: number): void {
    if (names.length !== fieldCount) {
      throw new ValidationError('columnNames', `Invalid data in line ${line} of ${this.source}: the header has ${fieldCount} fields but columnNames has ${names.length}`);
    }
    this.expectedFields = fieldCount;
    const numeric = new Set(resolvePositions(names, this.settings.numeric, 'numeric', this.source));
    const keptPositions = resolvePositions(names, this.settings.columns, 'columns', this.source);
    this.kept = keptPositions.map((position) => {
      const name = names[position] as string;
      return numeric.has(position)
        ? { name, position, numbers: new GrowableArray((n) => new Float64Array(n)) }
        : { name, position, text: new TextColumnBuilder(name, position) };
    });
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

/** Wires splitter -> parser -> builder; `skipLines` lines never reach the parser. */
function csvPipeline(settings: CsvSettings, source: string): { lines: LineSplitter; finish: () => Table } {
  const builder = new CsvTableBuilder(settings, source);
  const parser = new CsvRecordParser(settings, source, (fields, line) => builder.add(fields, line));
  const lines = new LineSplitter((line, lineNumber) => {
    if (lineNumber > settings.skipLines) parser.line(line, lineNumber);
  });
  return {
    lines,
    finish: () => {
      lines.end();
      parser.end();
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
 * Reads a CSV file (gzip'd or not, detected from its first bytes) or stream into a `Table`,
 * streaming: memory holds the table's columns, not the text.
 */
export async function readCsv(input: string | Readable, options: CsvOptions = {}): Promise<Table> {
  const settings = csvSettings(options);
  const source = options.source ?? (typeof input === 'string' ? basename(input) : 'CSV stream');
  const { lines, finish } = csvPipeline(settings, source);
  const decoder = new StringDecoder('utf8');
  try {
    const stream = typeof input === 'string'
      ? await openDataFile(input, settings.gzip)
      : settings.gzip ? pipeline(input, createGunzip(), () => {}) : input;
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
