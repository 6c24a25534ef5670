/**
 * `Table`: raw columns as read from a source, before any schema is applied. Text columns are
 * dictionary-encoded (each distinct string is stored once, rows hold codes), which keeps a few
 * hundred thousand rows of repetitive categorical data small and lets fitting and encoding work per
 * distinct value instead of per cell. A table can be a view of some of its source's rows (a split).
 */
import { ValidationError } from '../errors';
import { describeValue } from '../validation';
import type { CellValue, ColumnRef } from './types';

/** Strings, dictionary-encoded: row r holds `values[codes[r]]`, or null when `codes[r]` is -1. */
export interface TextColumn {
  readonly kind: 'text';
  readonly name: string;
  /** 0-based position in the source (kept when a reader keeps only some columns). */
  readonly position: number;
  readonly codes: Int32Array;
  readonly values: readonly string[];
}

/** Numbers; NaN means missing. */
export interface NumberColumn {
  readonly kind: 'number';
  readonly name: string;
  readonly position: number;
  readonly values: Float64Array;
}

export type Column = TextColumn | NumberColumn;

export const NULL_CODE = -1;

interface TableOptions {
  /** 1-based line in the source file where each physical row starts (for error messages). */
  lineNumbers?: Int32Array;
  /** Says where a physical row comes from, instead of `lineNumbers` (e.g. found only when an error needs it). */
  locateRow?: (physicalRow: number) => string;
  /** The physical rows of this view (default: all). */
  rows?: Int32Array;
}

export class Table {
  /** Where the rows came from, for error messages (a file name, or a description). */
  readonly source: string;
  readonly columnNames: readonly string[];
  /** The physical row index of each row of this view. */
  readonly rows: Int32Array;
  /** True when the view is every physical row in order (row i is physical row i), e.g. a table as read. */
  readonly isWhole: boolean;
  private readonly columns: readonly Column[];
  private readonly byName = new Map<string, Column>();
  private readonly byPosition = new Map<number, Column>();
  private readonly locateRow: (physicalRow: number) => string;

  constructor(source: string, columns: readonly Column[], options: TableOptions = {}) {
    const physicalRows = columns.length === 0 ? 0 : columnLength(columns[0] as Column);
    for (const column of columns) {
      if (columnLength(column) !== physicalRows) {
        throw new ValidationError(
          column.name,
          `Invalid data in ${source}: column '${column.name}' has ${columnLength(column)} rows, expected ${physicalRows}`,
        );
      }
      if (this.byName.has(column.name)) {
        throw new ValidationError(column.name, `Invalid data in ${source}: column name '${column.name}' appears twice`);
      }
      this.byName.set(column.name, column);
      this.byPosition.set(column.position, column);
    }
    this.source = source;
    this.columns = columns;
    this.columnNames = columns.map((column) => column.name);
    const { lineNumbers } = options;
    this.locateRow =
      options.locateRow ??
      (lineNumbers
        ? (physical) => `line ${lineNumbers[physical] as number} of ${source}`
        : (physical) => `row ${physical + 1} of ${source}`);
    this.rows = options.rows ?? identityRows(physicalRows);
    this.isWhole = options.rows === undefined;
  }

  /** Number of rows in this view. */
  get size(): number {
    return this.rows.length;
  }

  /** The column a reference names, or undefined. */
  findColumn(ref: ColumnRef): Column | undefined {
    return typeof ref === 'number' ? this.byPosition.get(ref) : this.byName.get(ref);
  }

  /** Describes a column reference that `findColumn` did not resolve. */
  describeMissingColumn(ref: ColumnRef): string {
    const listing = listColumns(this.columns.map((column) => [column.position, column.name]));
    return `${this.source} has no ${describeRef(ref)} (it has ${listing})`;
  }

  /** Where view row `row` comes from: "line 12 of adult.data" or "row 5 of <source>". */
  locate(row: number): string {
    return this.locateRow(this.rows[row] as number);
  }

  /** The cell of view row `row`. */
  value(column: Column, row: number): CellValue {
    const physical = this.rows[row] as number;
    if (column.kind === 'number') {
      const value = column.values[physical] as number;
      return Number.isNaN(value) ? null : value;
    }
    const code = column.codes[physical] as number;
    return code === NULL_CODE ? null : (column.values[code] as string);
  }

  /** A view of some rows of this view (indices into this view, in the order given). */
  select(rows: Int32Array): Table {
    const physical = new Int32Array(rows.length);
    rows.forEach((row, i) => {
      if (row < 0 || row >= this.rows.length) {
        throw new ValidationError(
          'rows',
          `Invalid rows: rows[${i}] must be a row of ${this.source} in [0, ${this.rows.length}), got ${row}`,
        );
      }
      physical[i] = this.rows[row] as number;
    });
    return new Table(this.source, this.columns, { locateRow: this.locateRow, rows: physical });
  }
}

function describeRef(ref: ColumnRef): string {
  return typeof ref === 'number' ? `column position ${ref}` : `column '${ref}'`;
}

/** "3 columns: 0: 'age', 1: 'sex', …" (the first dozen). */
function listColumns(columns: readonly [number, string][]): string {
  const shown = columns
    .slice(0, 12)
    .map(([position, name]) => `${position}: '${name}'`)
    .join(', ');
  return `${columns.length} columns: ${shown}${columns.length > 12 ? ', …' : ''}`;
}

function identityRows(count: number): Int32Array {
  const rows = new Int32Array(count);
  for (let row = 0; row < count; row++) rows[row] = row;
  return rows;
}

function columnLength(column: Column): number {
  return column.kind === 'text' ? column.codes.length : column.values.length;
}

/**
 * Positions of the referenced columns among a source's column names, in source order (all of them
 * when `refs` is undefined); an unknown reference is a ValidationError naming the option, e.g. `columns[2]`.
 */
export function resolvePositions(
  names: readonly string[],
  refs: readonly ColumnRef[] | undefined,
  option: string,
  source: string,
): number[] {
  if (refs === undefined) return names.map((_, position) => position);
  const positions = refs.map((ref, i) => {
    const position = typeof ref === 'number' ? ref : names.indexOf(ref);
    if (position < 0 || position >= names.length) {
      const listing = listColumns(names.map((name, k) => [k, name]));
      throw new ValidationError(`${option}[${i}]`, `Invalid ${option}[${i}]: ${source} has no ${describeRef(ref)} (it has ${listing})`);
    }
    return position;
  });
  return [...new Set(positions)].sort((a, b) => a - b);
}

/** The error for data with no rows to `purpose` ("fit a schema on"). */
export function noRowsError(field: string, purpose: string, source: string, hint = ''): ValidationError {
  return new ValidationError(field, `Invalid data: cannot ${purpose} ${source}: it has no rows${hint}`);
}

/** A table with at least one row, or a ValidationError that says what was empty. */
export function requireRows(table: unknown, field: string, purpose: string): Table {
  if (!(table instanceof Table)) {
    throw new ValidationError(
      field,
      `${field} must be a Table (from readCsv, parseCsv, readParquet, readArrow or tableFromColumns), got ${describeValue(table)}`,
    );
  }
  if (table.size === 0) throw noRowsError(field, purpose, `${table.source}`, ' (an empty split?)');
  return table;
}

/** The ValidationError for a bad cell or row, naming the column and where the row came from. */
export function invalidData(table: Table, row: number, column: string, message: string): ValidationError {
  return invalidDataAt(table.locate(row), column, message);
}

/** `invalidData` for a cell that `where` locates ("row 3 of part-2.parquet"). */
export function invalidDataAt(where: string, column: string, message: string): ValidationError {
  return new ValidationError(column, `Invalid data in ${where}, column '${column}': ${message}`);
}

/** An append-only typed array that doubles its capacity as it grows. */
export class GrowableArray<T extends Int32Array | Float32Array | Float64Array> {
  private data: T;
  length = 0;

  constructor(private readonly create: (capacity: number) => T) {
    this.data = create(1024);
  }

  push(value: number): void {
    if (this.length === this.data.length) this.grow(1);
    this.data[this.length++] = value;
  }

  /** Appends all of `values` (e.g. a chunk's outputs). */
  pushAll(values: T): void {
    if (this.length + values.length > this.data.length) this.grow(values.length);
    this.data.set(values, this.length);
    this.length += values.length;
  }

  /** Appends `count` values that `write` puts at `data[offset…]` (e.g. codes a native call writes in place). */
  pushWith(count: number, write: (data: T, offset: number) => void): void {
    if (this.length + count > this.data.length) this.grow(count);
    write(this.data, this.length);
    this.length += count;
  }

  private grow(needed: number): void {
    const grown = this.create(Math.max(this.data.length * 2, this.length + needed));
    grown.set(this.data.subarray(0, this.length));
    this.data = grown;
  }

  /** A copy of exactly the pushed values (so that the spare capacity is freed). */
  toArray(): T {
    return this.data.slice(0, this.length) as T;
  }
}

/** Builds a `TextColumn` one cell at a time. */
export class TextColumnBuilder {
  private readonly codes = new GrowableArray((n) => new Int32Array(n));
  private readonly values: string[] = [];
  private readonly codeOf = new Map<string, number>();

  constructor(
    readonly name: string,
    readonly position: number,
  ) {}

  push(value: string | null): void {
    if (value === null) {
      this.codes.push(NULL_CODE);
      return;
    }
    let code = this.codeOf.get(value);
    if (code === undefined) {
      code = this.values.length;
      this.values.push(value);
      this.codeOf.set(value, code);
    }
    this.codes.push(code);
  }

  finish(): TextColumn {
    return { kind: 'text', name: this.name, position: this.position, codes: this.codes.toArray(), values: this.values };
  }
}

/** Text cells that mean "missing" unless a schema or reader says otherwise. */
export const DEFAULT_MISSING_VALUES: readonly string[] = Object.freeze(['', '?']);

/**
 * Parses a text cell as a number: NaN for a missing marker, undefined when it is not a finite
 * number. Stricter than `Number()`, which reads '' and '  ' as 0.
 */
export function parseNumber(text: string, missingValues: ReadonlySet<string>): number | undefined {
  if (missingValues.has(text)) return NaN;
  const value = Number(text);
  return Number.isFinite(value) && text.trim() !== '' ? value : undefined;
}

type NumericTypedArray =
  | Float64Array
  | Float32Array
  | Int32Array
  | Uint32Array
  | Int16Array
  | Uint16Array
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray;

function isNumericTypedArray(values: unknown): values is NumericTypedArray {
  return (
    ArrayBuffer.isView(values) && !(values instanceof DataView) && !(values instanceof BigInt64Array) && !(values instanceof BigUint64Array)
  );
}

/**
 * A column from in-memory values: typed arrays and arrays of numbers (booleans count as 1/0, bigints
 * are converted) become number columns, arrays of strings become text columns; null and undefined are
 * missing. Used for in-memory data and for the columns that Parquet and Arrow readers decode.
 */
export function columnFromValues(name: string, position: number, values: ArrayLike<unknown>, source: string): Column {
  if (isNumericTypedArray(values)) {
    return { kind: 'number', name, position, values: Float64Array.from(values) };
  }
  const firstPresent = Array.prototype.find.call(values, (value: unknown) => value !== null && value !== undefined);
  if (typeof firstPresent === 'string' || firstPresent === undefined) {
    const builder = new TextColumnBuilder(name, position);
    for (let row = 0; row < values.length; row++) {
      const value = values[row];
      if (value !== null && value !== undefined && typeof value !== 'string') {
        throw new ValidationError(
          name,
          `Invalid data in row ${row + 1} of ${source}, column '${name}': expected text like the rows before, got ${describeValue(value)}`,
        );
      }
      builder.push(value ?? null);
    }
    return builder.finish();
  }
  const numbers = new Float64Array(values.length);
  for (let row = 0; row < values.length; row++) {
    const value = values[row];
    if (value === null || value === undefined) numbers[row] = NaN;
    else if (typeof value === 'number' || typeof value === 'bigint') numbers[row] = Number(value);
    else if (typeof value === 'boolean') numbers[row] = value ? 1 : 0;
    else {
      throw new ValidationError(
        name,
        `Invalid data in row ${row + 1} of ${source}, column '${name}': expected a number, boolean or null, got ${describeValue(value)}`,
      );
    }
  }
  return { kind: 'number', name, position, values: numbers };
}

/**
 * A table from in-memory columns, e.g. `{ age: Float32Array, city: ['Paris', null, …] }`. Column
 * positions follow the key order.
 */
export function tableFromColumns(columns: Readonly<Record<string, ArrayLike<unknown>>>, options: { source?: string } = {}): Table {
  const source = options.source ?? 'in-memory columns';
  return new Table(
    source,
    Object.entries(columns).map(([name, values], position) => {
      const isArrayLike = Array.isArray(values) || (ArrayBuffer.isView(values) && !(values instanceof DataView));
      if (!isArrayLike) {
        throw new ValidationError(
          name,
          `Invalid data in ${source}: column '${name}' must be an array or a typed array, got ${describeValue(values)}`,
        );
      }
      return columnFromValues(name, position, values, source);
    }),
  );
}
