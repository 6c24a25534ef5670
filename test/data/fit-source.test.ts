/** fitSchemaFrom: fitting in the engine over files, shards and queries equals fitSchema over the same rows in memory. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  fitSchema,
  fitSchemaFrom,
  readCsv,
  readParquet,
  readSql,
  validateFittedSchema,
  type FittedSchema,
  type SchemaSpec,
  type Table,
} from '../../lib';
import { ConfigError, FileError, ValidationError } from '../../lib/errors';
import { rejectionOf, temporaryFolder } from './helpers';

const folder = temporaryFolder();
const ROWS = 6000;
const parquet = path.join(folder, 'events.parquet');
const csv = path.join(folder, 'events.csv.gz');
const jsonLines = path.join(folder, 'events.jsonl');
const shards = path.join(folder, 'shard-*.parquet');

/** Every kind of fitted field, on text and number columns, with missing markers and cuts. */
const SPEC: SchemaSpec = {
  dense: [
    'amount',
    { column: 'amount', name: 'amount_log', normalize: 'log1p' },
    { column: 'x', normalize: 'minmax' },
    { column: 'code', normalize: 'none' },
  ],
  categorical: [
    'item',
    { column: 'city', minFrequency: 20 },
    { column: 'city', name: 'top_cities', maxVocabulary: 5 },
    { column: 'code', name: 'code_id' },
    { column: 'user', hashBuckets: 64 },
  ],
  multiValued: [{ column: 'tags', separator: '|' }],
  tasks: [
    { name: 'click', type: 'binary', column: 'click', positive: [1] },
    { name: 'kind', type: 'multiclass', column: 'kind' },
    { name: 'spend', type: 'regression', column: 'spend', sampleWeight: 'weight' },
  ],
  group: 'user',
  missingValues: ['?', ''],
};

let inMemory: FittedSchema;
let table: Table;

beforeAll(async () => {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  // item: about 2,000 distinct values, skewed, with count ties; city: '?' and NULL as missing;
  // code: an integer column (a number column in Parquet, text in CSV); amount: heavy tailed.
  await connection.run(`CREATE TABLE events AS SELECT i AS id,
      round(exp((hash(i) % 1000) / 100.0) - 1, 3) AS amount,
      CASE WHEN i % 97 = 0 THEN NULL ELSE sin(i * 12.9898) END AS x,
      (i % 7) * 10 AS code,
      'item-' || (floor(pow((hash(i * 3) % 10000) / 10000.0, 3) * 2000))::BIGINT::VARCHAR AS item,
      CASE WHEN i % 50 = 0 THEN NULL WHEN i % 31 = 0 THEN '?' ELSE 'city' || (i * 7 % 23)::VARCHAR END AS city,
      'u' || (i % 300)::VARCHAR AS user,
      CASE i % 5 WHEN 0 THEN '' WHEN 1 THEN 'a' WHEN 2 THEN 'a| b' WHEN 3 THEN 'b|c|d' ELSE 'é|a' END AS tags,
      CASE WHEN sin(i * 12.9898) > 0.3 THEN 1 ELSE 0 END AS click,
      CASE i % 3 WHEN 0 THEN 'low' WHEN 1 THEN 'mid' ELSE 'high' END AS kind,
      (i % 13)::DOUBLE / 4 AS spend,
      1 + (i % 2) AS weight
    FROM range(${ROWS}) t(i) ORDER BY i`);
  await connection.run(`COPY events TO '${parquet}' (FORMAT parquet, ROW_GROUP_SIZE 1000)`);
  await connection.run(`COPY events TO '${csv}' (FORMAT csv, HEADER, COMPRESSION gzip)`);
  await connection.run(`COPY events TO '${jsonLines}' (FORMAT json)`);
  for (let k = 0; k < 3; k++) {
    await connection.run(
      `COPY (SELECT * FROM events WHERE id >= ${k * 2000} AND id < ${(k + 1) * 2000} ORDER BY id) TO '${path.join(folder, `shard-${k}.parquet`)}' (FORMAT parquet)`,
    );
  }
  connection.closeSync();
  table = await readParquet(parquet);
  inMemory = fitSchema(SPEC, table);
});

/** Equal to `expected`, the dense parameters to rounding (the engine sums in another order). */
function expectSameSchema(actual: FittedSchema, expected: FittedSchema): void {
  expect({ ...actual, dense: [] }).toEqual({ ...expected, dense: [] });
  expect(actual.dense).toHaveLength(expected.dense.length);
  actual.dense.forEach((feature, j) => {
    const want = expected.dense[j]!;
    expect({ ...feature, center: 0, scale: 0, fill: 0 }).toEqual({ ...want, center: 0, scale: 0, fill: 0 });
    for (const key of ['center', 'scale', 'fill'] as const) {
      expect(Math.abs(feature[key] - want[key]), `${feature.name}.${key}`).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(want[key])));
    }
  });
}

describe('fitSchemaFrom', () => {
  it('fits what fitSchema fits on the same rows in memory', async () => {
    // The data exercise what they should: cuts, ties, missing markers, tokens.
    const city = inMemory.categorical.find((feature) => feature.name === 'city')!;
    expect(city.vocabulary).not.toContain('?');
    expect(inMemory.categorical.find((feature) => feature.name === 'top_cities')!.vocabulary).toHaveLength(5);
    expect(inMemory.categorical.find((feature) => feature.name === 'item')!.vocabulary.length).toBeGreaterThan(500);
    expect(inMemory.multiValued[0]!.vocabulary).toEqual(['a', 'b', 'c', 'd', 'é']);
    expectSameSchema(await fitSchemaFrom(SPEC, parquet), inMemory);
  });

  it.each([
    ['gzip CSV (every cell text)', () => csv],
    ['JSON lines', () => jsonLines],
    ['a glob of shards', () => shards],
    ['a SQL query', () => ({ sql: `SELECT * FROM read_parquet('${shards}')` })],
  ])('fits the same schema from %s', async (_, source) => {
    expectSameSchema(await fitSchemaFrom(SPEC, source()), inMemory);
  });

  it('reads every number text as JavaScript does, the engine the decimals and JavaScript the rest', async () => {
    const texts = ['3', ' 3', '+2', '-0', '1E1', '1.e1', '.5', '5.', '0x10', '00012', '1e400', '?', '', '-0.75', '2.5e-3'];
    const numeric = texts.filter((text) => !['1e400', '?', ''].includes(text));
    const withMissing = [...numeric, '?', ''];
    const cell = (values: string[], i: number): string => `"${values[i % values.length]}"`;
    const lines = ['a,b,click', ...Array.from({ length: 600 }, (_, i) => `${cell(numeric, i)},${cell(withMissing, 5 * i)},${i % 2}`)];
    const file = path.join(folder, 'texts.csv');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const spec: SchemaSpec = {
      dense: ['a', { column: 'a', name: 'a_log', normalize: 'log1p' }, { column: 'b', normalize: 'minmax' }],
      tasks: [{ name: 'click', type: 'binary', column: 'click', positive: [1] }],
      missingValues: ['?', ''],
    };
    const fitted = await fitSchemaFrom(spec, file);
    expectSameSchema(fitted, fitSchema(spec, await readCsv(file)));
    // 0x10 is 16 to JavaScript (and no decimal to the engine): the maximum of b.
    expect(fitted.dense[2]).toMatchObject({ center: -0.75, scale: 16.75 });
    // 1e400 is no number to JavaScript, though DuckDB reads it as infinity.
    const withInfinity = { ...spec, dense: ['b'], missingValues: ['?'] };
    writeFileSync(file, 'b,click\n1,1\n1e400,0\n');
    expect((await rejectionOf(fitSchemaFrom(withInfinity, file), ValidationError)).message).toBe(
      `Invalid data in line 3 of texts.csv, column 'b': "1e400" is not a number`,
    );
  });

  it('fits only the rows a query keeps, as fitSchema on that split', async () => {
    const even = await fitSchemaFrom(SPEC, { sql: `SELECT * FROM read_parquet('${parquet}') WHERE id % 2 = 0` });
    const rows = Int32Array.from({ length: ROWS / 2 }, (_, i) => 2 * i);
    expectSameSchema(even, fitSchema(SPEC, table.select(rows)));
    expect(even.fittedRows).toBe(ROWS / 2);
  });

  it('fits a spec that counts no column (hashed features, regression) from the row count alone', async () => {
    const spec: SchemaSpec = {
      categorical: [{ column: 'user', hashBuckets: 16 }],
      tasks: [{ name: 'spend', type: 'regression', column: 'spend' }],
    };
    expect(await fitSchemaFrom(spec, shards)).toEqual(fitSchema(spec, table));
  });

  it('returns a frozen schema that survives JSON, as fitSchema does', async () => {
    const fitted = await fitSchemaFrom(SPEC, parquet);
    expect(Object.isFrozen(fitted.categorical[0]!.vocabulary)).toBe(true);
    expect(validateFittedSchema(JSON.parse(JSON.stringify(fitted)))).toEqual(fitted);
  });
});

describe('fitSchemaFrom errors', () => {
  it('locates a cell that is not a number, in the file and line it is on', async () => {
    const header = 'amount,x,code,item,city,user,tags,click,kind,spend,weight';
    const row = (amount: string): string => `${amount},0.5,10,i,c,u1,a,1,low,1,1`;
    for (const [k, bad] of [
      [0, -1],
      [1, 1234],
    ] as const) {
      const lines = [header, ...Array.from({ length: 3000 }, (_, i) => row(i === bad ? '12x' : String(i % 9)))];
      writeFileSync(path.join(folder, `part-${k}.csv`), `${lines.join('\n')}\n`);
    }
    const parts = path.join(folder, 'part-*.csv');
    const error = await rejectionOf(fitSchemaFrom(SPEC, parts), ValidationError);
    expect(error.message).toBe(`Invalid data in line 1236 of part-1.csv, column 'amount': "12x" is not a number`);
    expect(error.field).toBe('amount');
    // Lines as readCsv numbers them.
    const rows = await readCsv(parts);
    expect(() => fitSchema(SPEC, rows)).toThrow(error.message);
  });

  it('locates a value that log1p cannot take', async () => {
    const spec: SchemaSpec = {
      dense: [{ column: 'x', normalize: 'log1p' }],
      tasks: [{ name: 'click', type: 'binary', column: 'click', positive: [1] }],
    };
    const query = { sql: `SELECT CASE WHEN id = 4321 THEN -3.5 ELSE abs(x) END AS x, click FROM read_parquet('${parquet}') ORDER BY id` };
    const error = await rejectionOf(fitSchemaFrom(spec, query), ValidationError);
    expect(error.message).toBe(`Invalid data in row 4322 of SQL query, column 'x': -3.5 is not > -1, which 'log1p' normalisation needs`);
    // The same error as fitSchema's over the same rows read into memory.
    const rows = await readSql(query.sql);
    expect(() => fitSchema(spec, rows)).toThrow(error.message);
  });

  it('locates a decimal text that log1p cannot take', async () => {
    const spec: SchemaSpec = {
      dense: [{ column: 'a', normalize: 'log1p' }],
      tasks: [{ name: 'click', type: 'binary', column: 'click', positive: [1] }],
    };
    const file = path.join(folder, 'negative.csv');
    writeFileSync(file, `a,click\n${Array.from({ length: 500 }, (_, i) => `${i === 321 ? '-2' : ' 0.5'},${i % 2}`).join('\n')}\n`);
    const error = await rejectionOf(fitSchemaFrom(spec, file), ValidationError);
    expect(error.message).toBe(`Invalid data in line 323 of negative.csv, column 'a': -2 is not > -1, which 'log1p' normalisation needs`);
    const rows = await readCsv(file);
    expect(() => fitSchema(spec, rows)).toThrow(error.message);
  });

  it('reports what fitSchema reports first: a cell that is not a number before one log1p refuses', async () => {
    const spec: SchemaSpec = {
      dense: [{ column: 'a', normalize: 'log1p' }],
      tasks: [{ name: 'click', type: 'binary', column: 'click', positive: [1] }],
    };
    const file = path.join(folder, 'mixed.csv');
    const cell = (i: number): string => (i === 4 ? '-2' : i === 9 ? 'abc' : String(i));
    writeFileSync(file, `a,click\n${Array.from({ length: 50 }, (_, i) => `${cell(i)},${i % 2}`).join('\n')}\n`);
    const error = await rejectionOf(fitSchemaFrom(spec, file), ValidationError);
    expect(error.message).toBe(`Invalid data in line 11 of mixed.csv, column 'a': "abc" is not a number`);
    const rows = await readCsv(file);
    expect(() => fitSchema(spec, rows)).toThrow(error.message);
  });

  it('names the first bad row among many distinct bad values', async () => {
    // 400 distinct words from row 777 on, in a scrambled order: a search over some of them could miss the first.
    const word = (i: number): string => `w${(i * 7919) % 400}`;
    const cell = (i: number): string => (i >= 777 && i < 1177 ? word(i) : String(i % 10));
    const file = path.join(folder, 'words.csv');
    writeFileSync(file, `a,click\n${Array.from({ length: 2000 }, (_, i) => `${cell(i)},${i % 2}`).join('\n')}\n`);
    const spec: SchemaSpec = { dense: ['a'], tasks: [{ name: 'click', type: 'binary', column: 'click', positive: [1] }] };
    const error = await rejectionOf(fitSchemaFrom(spec, file), ValidationError);
    expect(error.message).toBe(`Invalid data in line 779 of words.csv, column 'a': "${word(777)}" is not a number`);
    const rows = await readCsv(file);
    expect(() => fitSchema(spec, rows)).toThrow(error.message);
  });

  it('locates a refused number in a shard: infinities are refused, as by fitSchema', async () => {
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    for (const k of [0, 1]) {
      const x = `CASE WHEN ${k} = 1 AND i = 17 THEN 'inf'::DOUBLE WHEN i = 3 THEN 'NaN'::DOUBLE ELSE i::DOUBLE END`;
      await connection.run(
        `COPY (SELECT ${x} AS x, i % 2 AS click FROM range(100) t(i) ORDER BY i) TO '${path.join(folder, `inf-${k}.parquet`)}' (FORMAT parquet)`,
      );
    }
    connection.closeSync();
    const infShards = path.join(folder, 'inf-*.parquet');
    const spec: SchemaSpec = { dense: ['x'], tasks: [{ name: 'click', type: 'binary', column: 'click', positive: [1] }] };
    const error = await rejectionOf(fitSchemaFrom(spec, infShards), ValidationError);
    expect(error.message).toBe(`Invalid data in row 18 of inf-1.parquet, column 'x': Infinity is not a finite number`);
    const rows = await readParquet(infShards);
    expect(() => fitSchema(spec, rows)).toThrow(error.message);
    // Without the infinity, NaN is a missing number in both.
    const finite = { sql: `SELECT * FROM read_parquet('${infShards}') WHERE NOT isinf(x)` };
    expectSameSchema(await fitSchemaFrom(spec, finite), fitSchema(spec, await readSql(finite.sql)));
  });

  it('quotes odd column names and missing markers, and reports a dense column with no values', async () => {
    const sql = `SELECT CASE WHEN i % 3 = 0 THEN 'n''a' ELSE (i / 4)::VARCHAR END AS "it's ""x""", NULL::DOUBLE AS empty, i % 2 AS click FROM range(30) t(i)`;
    const spec: SchemaSpec = {
      dense: [`it's "x"`],
      tasks: [{ name: 'click', type: 'binary', column: 'click', positive: [1] }],
      missingValues: ["n'a"],
    };
    expectSameSchema(await fitSchemaFrom(spec, { sql }), fitSchema(spec, await readSql(sql)));
    const none: SchemaSpec = { ...spec, dense: ['empty'] };
    const error = await rejectionOf(fitSchemaFrom(none, { sql }), ValidationError);
    expect(error.message).toBe(`Invalid data: dense column 'empty' has no values in the 30 training rows of SQL query`);
    const rows = await readSql(sql);
    expect(() => fitSchema(none, rows)).toThrow(error.message);
  });

  it('names missing columns, empty sources, bad options and bad specs', async () => {
    const noColumn = await rejectionOf(fitSchemaFrom({ ...SPEC, categorical: ['nowhere'] }, parquet), ConfigError);
    expect(noColumn.field).toBe('categorical[0]');
    expect(noColumn.message).toMatch(/events\.parquet has no column 'nowhere'/);
    const empty = await rejectionOf(fitSchemaFrom(SPEC, { sql: `SELECT * FROM read_parquet('${parquet}') WHERE false` }), ValidationError);
    expect(empty.message).toMatch(/cannot fit a schema on SQL query: it has no rows/);
    expect((await rejectionOf(fitSchemaFrom(SPEC, path.join(folder, 'none-*.parquet')), FileError)).message).toMatch(/no file matches/);
    expect((await rejectionOf(fitSchemaFrom(SPEC, parquet, { chunkRows: 5 } as never), ValidationError)).field).toBe('chunkRows');
    expect((await rejectionOf(fitSchemaFrom(SPEC, path.join(folder, 'events.bin')), ValidationError)).field).toBe('format');
    expect((await rejectionOf(fitSchemaFrom(SPEC, { sql: 'SELEC 1' }), ValidationError)).field).toBe('sql');
    expect(
      (await rejectionOf(fitSchemaFrom({ ...SPEC, dense: [{ column: 'x', normalize: 'cube' }] } as never, parquet), ConfigError)).field,
    ).toBe('dense[0].normalize');
  });

  it('reports a binary task with no positive row, as fitSchema does', async () => {
    const spec: SchemaSpec = { dense: ['x'], tasks: [{ name: 'click', type: 'binary', column: 'kind', positive: ['none'] }] };
    const fromSource = await rejectionOf(fitSchemaFrom(spec, parquet), ConfigError);
    expect(fromSource.field).toBe('tasks[0].positive');
    expect(fromSource.message).toMatch(/no training row of events\.parquet has a positive value for task 'click'/);
    // The values seen come most frequent first, whatever read the rows.
    expect(fromSource.message).toMatch(/values seen: "high", "low", "mid"\)$/);
    expect(() => fitSchema(spec, table)).toThrow(fromSource.message);
  });
});
