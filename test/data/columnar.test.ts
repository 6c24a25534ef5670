import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Table as ArrowTable, tableToIPC, vectorFromArray } from 'apache-arrow';
import { beforeAll, describe, expect, it } from 'vitest';
import { encode, fitSchema, readArrow, readParquet, tableFromColumns, type SchemaSpec, type Table } from '../../lib/data';
import { FileError, ValidationError } from '../../lib/errors';
import { cellsOf, errorOf, rejectionOf, temporaryFolder } from './helpers';

const folder = temporaryFolder();
const expected = {
  count: [1, 2, 3, 40],
  amount: [1.5, null, 3, 0.25],
  city: ['Paris', null, 'Lyon', 'Paris'],
  member: [1, 0, null, 1],
};

function expectRoundTrip(table: Table): void {
  expect(table.columnNames).toEqual(['count', 'amount', 'city', 'member']);
  for (const [name, values] of Object.entries(expected)) expect(cellsOf(table, name), name).toEqual(values);
  expect(table.findColumn('count')?.kind).toBe('number');
  expect(table.findColumn('city')?.kind).toBe('text');
}

const SPEC: SchemaSpec = {
  dense: ['count', 'amount'],
  categorical: ['city'],
  tasks: [{ name: 'member', type: 'binary', column: 'member', positive: 1 }],
};

describe('readParquet', () => {
  const file = path.join(folder, 'data.parquet');
  beforeAll(async () => {
    // hyparquet-writer is ESM-only; a dynamic import keeps this file valid CommonJS for tsc.
    const { parquetWriteBuffer } = await import('hyparquet-writer');
    writeFileSync(
      file,
      Buffer.from(
        parquetWriteBuffer({
          columnData: [
            { name: 'count', data: [1n, 2n, 3n, 40n], type: 'INT64' },
            { name: 'amount', data: expected.amount, type: 'DOUBLE' },
            { name: 'city', data: expected.city, type: 'STRING' },
            { name: 'member', data: [true, false, null, true], type: 'BOOLEAN' },
          ],
          rowGroupSize: 3,
        }),
      ),
    );
  });

  it('reads numbers, bigints, booleans and strings with nulls, across row groups', async () => {
    expectRoundTrip(await readParquet(file));
  });

  it('reads only the selected columns and feeds fit and encode', async () => {
    expect((await readParquet(file, { columns: ['city', 0] })).columnNames).toEqual(['count', 'city']);
    const table = await readParquet(file);
    const encoded = encode(fitSchema(SPEC, table), table);
    expect(Array.from(encoded.categorical ?? [])).toEqual([2, 0, 3, 2]);
    expect(Array.from(encoded.labels[0] ?? [])).toEqual([1, 0, NaN, 1]);
  });

  it('gives clear errors for unknown columns and unreadable files', async () => {
    expect((await rejectionOf(readParquet(file, { columns: ['nope'] }), ValidationError)).message).toMatch(
      /data.parquet has no column 'nope'/,
    );
    const notParquet = path.join(folder, 'not.parquet');
    writeFileSync(notParquet, 'a,b\n1,2\n');
    expect((await rejectionOf(readParquet(notParquet), FileError)).message).toMatch(/Cannot read not.parquet/);
  });
});

describe('readArrow', () => {
  const file = path.join(folder, 'data.arrow');
  writeFileSync(
    file,
    tableToIPC(
      new ArrowTable({
        count: vectorFromArray(Int32Array.from(expected.count)),
        amount: vectorFromArray(expected.amount),
        city: vectorFromArray(expected.city),
        member: vectorFromArray([true, false, null, true]),
      }),
      'file',
    ),
  );

  it('reads numbers, booleans and dictionary-encoded strings with nulls', async () => {
    expectRoundTrip(await readArrow(file));
  });

  it('reads the stream format too', async () => {
    const stream = path.join(folder, 'data.arrows');
    writeFileSync(stream, tableToIPC(new ArrowTable({ x: vectorFromArray([1, 2]) }), 'stream'));
    expect(cellsOf(await readArrow(stream), 'x')).toEqual([1, 2]);
  });

  it('rejects nested columns, naming the column and its type', async () => {
    const nested = path.join(folder, 'nested.arrow');
    writeFileSync(nested, tableToIPC(new ArrowTable({ tags: vectorFromArray([[1, 2], [3]]) })));
    const err = await rejectionOf(readArrow(nested), ValidationError);
    expect(err.field).toBe('tags');
    expect(err.message).toMatch(/column 'tags' has type List<Float64>, which adatt does not read/);
  });
});

describe('tableFromColumns', () => {
  it('takes typed arrays, numbers, booleans, bigints and strings, with null or undefined as missing', () => {
    const table = tableFromColumns({
      f: Float32Array.from([0.5, 1]),
      b: [true, null],
      big: BigInt64Array.from([5n, 6n]),
      s: ['x', undefined],
    });
    expect(cellsOf(table, 'f')).toEqual([0.5, 1]);
    expect(cellsOf(table, 'b')).toEqual([1, null]);
    expect(cellsOf(table, 'big')).toEqual([5, 6]);
    expect(cellsOf(table, 's')).toEqual(['x', null]);
    expect(table.findColumn(3)?.name).toBe('s');
  });

  it('rejects mixed columns, columns of different lengths and non-arrays', () => {
    expect(errorOf(() => tableFromColumns({ a: [1, 'x'] }), ValidationError).message).toMatch(
      /row 2 of in-memory columns, column 'a': expected a number, boolean or null, got "x"/,
    );
    expect(errorOf(() => tableFromColumns({ a: ['x', 2] }), ValidationError).message).toMatch(/expected text like the rows before, got 2/);
    expect(errorOf(() => tableFromColumns({ a: [1, 2], b: [1] }), ValidationError).message).toMatch(/column 'b' has 1 rows, expected 2/);
    expect(errorOf(() => tableFromColumns({ a: 'abc' as unknown as string[] }), ValidationError).field).toBe('a');
  });
});
