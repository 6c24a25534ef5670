/**
 * Splits of a table into views: seeded random fractions, or by a predicate on the row. Every split
 * is disjoint from the others, together they cover the table, and an empty split is an error (it
 * would fail later, far from its cause).
 */
import { ValidationError } from '../errors';
import { describeValue, isRecord, optionsChecker } from '../validation';
import { requireSeed, SeededRandom } from './random';
import { requireRows, type Column, type Table } from './table';
import type { CellValue, ColumnRef } from './types';

/** One row as a split predicate sees it; the object is reused from row to row. */
export interface TableRow {
  /** 0-based index in the table (view) being split. */
  readonly index: number;
  /** The row's cell in a column (by name or position); null when missing. */
  get(column: ColumnRef): CellValue;
}

function requireNonEmpty(table: Table, name: string, rows: Int32Array, why: string): Table {
  if (rows.length === 0) throw new ValidationError(name, `Invalid split: split '${name}' of ${table.source} would be empty (${why})`);
  return table.select(rows);
}

/**
 * Shuffles the rows with a seeded generator and cuts them into the given fractions (which must add
 * up to 1). The same table, fractions and seed always give the same splits; each split keeps the
 * table's row order.
 */
export function splitRandom<K extends string>(table: Table, fractions: Readonly<Record<K, number>>, seed: number): Record<K, Table> {
  const source = requireRows(table, 'table', 'split');
  const check = optionsChecker('split');
  if (!isRecord(fractions)) check.fail('fractions', `fractions must be an object { splitName: fraction }, got ${describeValue(fractions)}`);
  const given: Record<string, unknown> = fractions;
  const names = Object.keys(given) as K[];
  if (names.length === 0) check.fail('fractions', 'fractions must name at least one split');
  let total = 0;
  for (const name of names) {
    const fraction = check.finite(given[name], `fractions.${name}`);
    if (fraction <= 0 || fraction > 1) check.fail(`fractions.${name}`, `fractions.${name} must be in (0, 1], got ${fraction}`);
    total += fraction;
  }
  if (Math.abs(total - 1) > 1e-9) check.fail('fractions', `fractions must add up to 1, got ${total}`);
  const order = new Int32Array(source.size);
  for (let i = 0; i < order.length; i++) order[i] = i;
  new SeededRandom(requireSeed(seed, 'seed')).shuffle(order);

  // Cut at rounded cumulative fractions, so that sizes add up to the row count exactly.
  const splits = {} as Record<K, Table>;
  let cumulative = 0;
  let start = 0;
  names.forEach((name, k) => {
    cumulative += given[name] as number;
    const end = k === names.length - 1 ? order.length : Math.round(cumulative * order.length);
    const rows = order.slice(start, end).sort();
    splits[name] = requireNonEmpty(source, name, rows, `fraction ${String(given[name])} of ${order.length} rows`);
    start = end;
  });
  return splits;
}

/** Splits rows into those the predicate accepts and the rest. */
export function splitWhere(table: Table, predicate: (row: TableRow) => boolean): { matching: Table; rest: Table } {
  const source = requireRows(table, 'table', 'split');
  if (typeof predicate !== 'function') {
    throw new ValidationError('predicate', `Invalid split: predicate must be a function, got ${describeValue(predicate)}`);
  }
  const columns = new Map<ColumnRef, Column>();
  const row = {
    index: 0,
    get(ref: ColumnRef): CellValue {
      let column = columns.get(ref);
      if (!column) {
        column = source.findColumn(ref);
        if (!column) throw new ValidationError(String(ref), `Invalid split: ${source.describeMissingColumn(ref)}`);
        columns.set(ref, column);
      }
      return source.value(column, this.index);
    },
  };
  const matching: number[] = [];
  const rest: number[] = [];
  for (let i = 0; i < source.size; i++) {
    row.index = i;
    (predicate(row) ? matching : rest).push(i);
  }
  return {
    matching: requireNonEmpty(source, 'matching', Int32Array.from(matching), 'the predicate accepts no row'),
    rest: requireNonEmpty(source, 'rest', Int32Array.from(rest), 'the predicate accepts every row'),
  };
}
