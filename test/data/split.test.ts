import { describe, expect, it } from 'vitest';
import { splitRandom, splitWhere, tableFromColumns, type Table } from '../../lib/data';
import { ValidationError } from '../../lib/errors';
import { cellsOf, errorOf } from './helpers';

const table = tableFromColumns({
  id: Array.from({ length: 1000 }, (_, i) => i),
  year: Array.from({ length: 1000 }, (_, i) => (i % 2 === 0 ? '94' : '95')),
});
const ids = (split: Table): number[] => cellsOf(split, 'id') as number[];

describe('splitRandom', () => {
  it('is disjoint, complete, sized by the fractions and in table order', () => {
    const { train, validation, test } = splitRandom(table, { train: 0.8, validation: 0.1, test: 0.1 }, 7);
    expect([train.size, validation.size, test.size]).toEqual([800, 100, 100]);
    const all = [...ids(train), ...ids(validation), ...ids(test)];
    expect(new Set(all).size).toBe(1000);
    expect(ids(train)).toEqual([...ids(train)].sort((a, b) => a - b));
  });

  it('is determined by the seed', () => {
    const first = splitRandom(table, { a: 0.5, b: 0.5 }, 1);
    expect(ids(splitRandom(table, { a: 0.5, b: 0.5 }, 1).a)).toEqual(ids(first.a));
    expect(ids(splitRandom(table, { a: 0.5, b: 0.5 }, 2).a)).not.toEqual(ids(first.a));
  });

  it('splits a split again, keeping its rows', () => {
    const { a } = splitRandom(table, { a: 0.3, b: 0.7 }, 3);
    const { c, d } = splitRandom(a, { c: 0.5, d: 0.5 }, 3);
    expect([...ids(c), ...ids(d)].sort((x, y) => x - y)).toEqual(ids(a));
  });

  it('rejects fractions that do not add up to 1, bad seeds and empty splits', () => {
    expect(errorOf(() => splitRandom(table, { a: 0.5, b: 0.4 }, 0), ValidationError).message).toMatch(/must add up to 1, got 0.9/);
    expect(errorOf(() => splitRandom(table, { a: 1.5, b: -0.5 }, 0), ValidationError).field).toBe('fractions.a');
    expect(errorOf(() => splitRandom(table, { a: 1 }, -1), ValidationError).field).toBe('seed');
    const err = errorOf(() => splitRandom(table, { a: 0.9996, b: 0.0004 }, 0), ValidationError);
    expect(err.message).toMatch(/split 'b' of in-memory columns would be empty \(fraction 0.0004 of 1000 rows\)/);
  });
});

describe('splitWhere', () => {
  it('splits by a predicate on the row', () => {
    const { matching, rest } = splitWhere(table, (row) => row.get('year') === '95' && (row.get(0) as number) < 10);
    expect(ids(matching)).toEqual([1, 3, 5, 7, 9]);
    expect(rest.size).toBe(995);
    expect(matching.locate(0)).toBe('row 2 of in-memory columns');
  });

  it('rejects an unknown column and an empty side', () => {
    expect(errorOf(() => splitWhere(table, (row) => row.get('month') === 1), ValidationError).message).toMatch(/has no column 'month'/);
    expect(errorOf(() => splitWhere(table, () => true), ValidationError).message).toMatch(
      /split 'rest' .* would be empty \(the predicate accepts every row\)/,
    );
  });
});
