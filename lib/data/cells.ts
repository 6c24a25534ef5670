/**
 * A column's cells over a table's view rows, in the two forms that fitting and encoding work on:
 * coded (distinct values plus one code per row, so that work per value is done once) and numeric.
 */
import { invalidData, NULL_CODE, parseNumber, type Column, type Table } from './table';
import type { LabelValue, Normalization } from './types';

/** Row i of the view holds `values[codes[i]]`, or null when `codes[i]` is -1. */
export interface CodedCells {
  codes: Int32Array;
  /** Text for text columns, numbers for number columns. */
  values: readonly LabelValue[];
}

export function codedCells(table: Table, column: Column): CodedCells {
  const { rows } = table;
  // The column's own codes when the view is the whole table: callers only read them.
  if (column.kind === 'text' && table.isWhole) return { codes: column.codes, values: column.values };
  const codes = new Int32Array(rows.length);
  if (column.kind === 'text') {
    for (let i = 0; i < rows.length; i++) codes[i] = column.codes[rows[i] as number] as number;
    return { codes, values: column.values };
  }
  const values: number[] = [];
  const codeOf = new Map<number, number>();
  for (let i = 0; i < rows.length; i++) {
    const value = column.values[rows[i] as number] as number;
    if (Number.isNaN(value)) {
      codes[i] = NULL_CODE;
      continue;
    }
    let code = codeOf.get(value);
    if (code === undefined) {
      code = values.length;
      values.push(value);
      codeOf.set(value, code);
    }
    codes[i] = code;
  }
  return { codes, values };
}

/** How many rows hold each distinct value. */
export function countPerCode(cells: CodedCells): Int32Array {
  const counts = new Int32Array(cells.values.length);
  for (const code of cells.codes) if (code >= 0) counts[code] = (counts[code] as number) + 1;
  return counts;
}

/** Per distinct value: 1 when it is a missing marker. */
export function missingFlags(values: readonly LabelValue[], missingValues: ReadonlySet<string>): Uint8Array {
  // A plain loop: Uint8Array.from with a callback is several times slower over a million values.
  const flags = new Uint8Array(values.length);
  for (let code = 0; code < values.length; code++) {
    const value = values[code];
    if (typeof value === 'string' && missingValues.has(value)) flags[code] = 1;
  }
  return flags;
}

/** The column's values over the view rows as numbers (NaN = missing); a non-numeric cell is an error. */
export function numericCells(table: Table, column: Column, missingValues: ReadonlySet<string>): Float64Array {
  const { rows } = table;
  if (column.kind === 'number' && table.isWhole) return column.values;
  const numbers = new Float64Array(rows.length);
  if (column.kind === 'number') {
    for (let i = 0; i < rows.length; i++) numbers[i] = column.values[rows[i] as number] as number;
    return numbers;
  }
  // Each distinct text is parsed once (`done` rather than a NaN sentinel, since NaN means missing).
  const parsed = new Float64Array(column.values.length);
  const done = new Uint8Array(column.values.length);
  for (let i = 0; i < rows.length; i++) {
    const code = column.codes[rows[i] as number] as number;
    if (code === NULL_CODE) {
      numbers[i] = NaN;
      continue;
    }
    if (done[code] === 0) {
      const text = column.values[code] as string;
      const value = parseNumber(text, missingValues);
      if (value === undefined) throw invalidData(table, i, column.name, notANumber(text));
      parsed[code] = value;
      done[code] = 1;
    }
    numbers[i] = parsed[code] as number;
  }
  return numbers;
}

/** Why a text cell of a numeric column is refused. */
export function notANumber(text: string): string {
  return `${JSON.stringify(text)} is not a number`;
}

/**
 * Why a present dense value (not NaN) is refused: an infinity, which no normalisation can centre,
 * or a value that `normalize` cannot take; undefined when it is fine.
 */
export function untransformable(value: number, normalize: Normalization): string | undefined {
  if (!Number.isFinite(value)) return `${value} is not a finite number`;
  return normalize === 'log1p' && value <= -1 ? `${value} is not > -1, which 'log1p' normalisation needs` : undefined;
}

/** The values inside one multi-valued cell: split, trimmed, empty pieces dropped. */
export function splitTokens(text: string, separator: string): string[] {
  return text
    .split(separator)
    .map((token) => token.trim())
    .filter((token) => token !== '');
}

/**
 * t(x) of a dense normalisation: log(1 + x) for 'log1p', else x. Throws for a value `untransformable`
 * refuses, naming view row `row` of `table`.
 */
export function transformDense(table: Table, row: number, column: Column, value: number, normalize: Normalization): number {
  const problem = untransformable(value, normalize);
  if (problem !== undefined) throw invalidData(table, row, column.name, problem);
  return normalize === 'log1p' ? Math.log1p(value) : value;
}
