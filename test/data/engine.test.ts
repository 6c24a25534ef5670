import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import {
  encode,
  FIRST_VALUE_ID,
  fitSchema,
  MISSING_ID,
  OUT_OF_VOCABULARY_ID,
  readCsv,
  readJsonLines,
  readParquet,
  readSql,
  Table,
  type CsvOptions,
} from '../../lib/data';
import { DataEncoder } from '../../lib/data/encode';
import { aliasedRelation, ColumnsBuilder, selectList, typedColumns, withConnection } from '../../lib/data/engine';
import { VocabularyCoder, vocabularyCoders } from '../../lib/data/vocabulary-coder';
import { loadAddon } from '../../lib/addon';
import { callNative, DisposedError, FileError, ValidationError } from '../../lib/errors';
import { cellsOf, rejectionOf, temporaryFolder } from './helpers';

const folder = temporaryFolder();

function writeFile(name: string, content: string | Buffer): string {
  const file = path.join(folder, name);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, content);
  return file;
}

/** Every cell of every column, and where each row is. */
function contentOf(table: Table): Record<string, unknown[]> {
  return {
    ...Object.fromEntries(table.columnNames.map((name) => [name, cellsOf(table, name)])),
    kinds: table.columnNames.map((name) => table.findColumn(name)?.kind),
    where: Array.from({ length: table.size }, (_, row) => table.locate(row)),
  };
}

/** Reads a file with DuckDB and with the JavaScript parser, expecting the same table. */
async function expectSameAsJavaScript(file: string, options: CsvOptions): Promise<Table> {
  const table = await readCsv(file, { ...options, engine: 'duckdb' });
  expect(contentOf(table)).toEqual(contentOf(await readCsv(file, { ...options, engine: 'javascript' })));
  return table;
}

// Small files: 'auto' (the default) would parse them in JavaScript, so these ask for DuckDB.
describe('readCsv through DuckDB', () => {
  it('reads quoted, multi-line and empty fields, missing markers and numbers as the JavaScript parser does', async () => {
    const text = 'id,city,amount,note\n1,Paris,1.5,"a, b"\n2,"Ly""on",?,\n\n3,Paris,,"two\nlines"\n4,Nice,-2e3,x\n';
    const table = await expectSameAsJavaScript(writeFile('mixed.csv', text), { numeric: ['amount', 'id'] });
    expect(cellsOf(table, 'amount')).toEqual([1.5, null, null, -2000]);
    expect(cellsOf(table, 'note')).toEqual(['a, b', '', 'two\nlines', 'x']);
    expect(table.locate(3)).toBe('line 7 of mixed.csv');
  });

  it("reads the UCI dialect (no header, ', ' separators, trim, skipped lines) and gzip", async () => {
    const text = '|1x3 Cross validator\n25, Private, ?, <=50K.\n38, Self emp , 89814, >50K.\n';
    const options: CsvOptions = {
      header: false,
      trim: true,
      skipLines: 1,
      columnNames: ['age', 'work', 'weight', 'income'],
      numeric: ['age', 'weight'],
    };
    const table = await expectSameAsJavaScript(writeFile('adult.test.gz', gzipSync(text)), options);
    expect(cellsOf(table, 'weight')).toEqual([null, 89814]);
    expect(cellsOf(table, 'work')).toEqual(['Private', 'Self emp']);
  });

  it('leaves cells that DuckDB reads differently to the JavaScript parser', async () => {
    // Hexadecimal numbers, CRLF inside quotes, quotes after blanks and Unicode blanks under trim.
    await expectSameAsJavaScript(writeFile('hex.csv', 'a,b\n0x1F,1\n2,3\n'), { numeric: ['a'] });
    await expectSameAsJavaScript(writeFile('crlf.csv', 'a,b\r\n1,"x\r\ny"\r\n'), {});
    await expectSameAsJavaScript(writeFile('trim.csv', 'a,b\n1,  " x, y " \n'), { trim: true });
    await expectSameAsJavaScript(writeFile('nbsp.csv', 'a,b\n1,\u00a0x\u3000\n'), { trim: true });
    await expectSameAsJavaScript(writeFile('single.csv', 'a\n1\n\n2\n'), {});
    expect((await expectSameAsJavaScript(writeFile('header-only.csv', 'a,b\n'), { numeric: ['b'] })).size).toBe(0);
  });

  it('names the file, line and column of a bad number, also where DuckDB reads one leniently', async () => {
    for (const bad of ['x1', '1_000', 'inf']) {
      const err = await rejectionOf(
        readCsv(writeFile('bad.csv', `a,b\n1,2\n\n${bad},3\n`), { numeric: ['a'], engine: 'duckdb' }),
        ValidationError,
      );
      expect(err.field).toBe('a');
      expect(err.message).toBe(`Invalid data in line 4 of bad.csv, column 'a': ${JSON.stringify(bad)} is not a number`);
    }
  });

  it('locates rows for errors after reading (encode) by the lines of the file', async () => {
    const table = await readCsv(writeFile('labels.csv', 'x,label\n1,"a\nb"\n2,c\n3,d\n'), { numeric: ['x'], engine: 'duckdb' });
    const schema = fitSchema({ dense: ['x'], tasks: [{ name: 'k', type: 'multiclass', column: 'label', classes: ['a\nb', 'c'] }] }, table);
    expect(() => encode(schema, table)).toThrow(/line 5 of labels.csv, column 'label': label "d" is not one of the 2 classes/);
  });
});

describe('globs of shards', () => {
  writeFile('shards/part-1.csv', 'id,city\n1,Paris\n2,Lyon\n');
  writeFile('shards/part-2.csv', 'id,city\n3,"Ni\nce"\n4,Paris\n');
  writeFile('shards/part-3.csv', 'id,city\n5,x\n6,7,8\n');

  it('reads CSV shards as one table, in name order, locating rows in their file', async () => {
    const table = await readCsv(path.join(folder, 'shards/part-[12].csv'), { numeric: ['id'] });
    expect(table.source).toBe('part-[12].csv');
    expect(cellsOf(table, 'id')).toEqual([1, 2, 3, 4]);
    expect(cellsOf(table, 'city')).toEqual(['Paris', 'Lyon', 'Ni\nce', 'Paris']);
    expect(table.locate(3)).toBe('line 4 of part-2.csv');
    expect((table.findColumn('city') as { values: readonly string[] }).values).toEqual(['Paris', 'Lyon', 'Ni\nce']);
  });

  it('names the shard and line of a ragged row, and says when no file matches', async () => {
    const err = await rejectionOf(readCsv(path.join(folder, 'shards/*.csv')), ValidationError);
    expect(err.message).toBe('Invalid data in line 3 of part-3.csv: 3 fields, expected 2');
    expect((await rejectionOf(readCsv(path.join(folder, 'none/*.csv')), FileError)).message).toMatch(
      /Cannot read \*\.csv: no file matches/,
    );
  });

  it('reads Parquet shards and JSON lines', async () => {
    const parquet = path.join(folder, 'shards/p-*.parquet');
    const connection = await (await DuckDBInstance.create(':memory:')).connect();
    for (const [part, from, to] of [
      [1, 0, 3],
      [2, 3, 5],
    ]) {
      await connection.run(
        `COPY (SELECT range AS id, 'v' || (range % 2) AS tag FROM range(${from}, ${to})) TO '${path.join(folder, `shards/p-${part}.parquet`)}' (FORMAT parquet)`,
      );
    }
    connection.closeSync();
    const table = await readParquet(parquet);
    expect(cellsOf(table, 'id')).toEqual([0, 1, 2, 3, 4]);
    expect(cellsOf(table, 'tag')).toEqual(['v0', 'v1', 'v0', 'v1', 'v0']);
    expect(table.locate(4)).toBe('row 2 of p-2.parquet');

    const lines = await readJsonLines(
      writeFile('events.jsonl', '{"user":"a","clicks":3,"ok":true}\n{"user":null,"clicks":1.5,"ok":false}\n'),
    );
    expect(contentOf(lines)).toEqual({
      user: ['a', null],
      clicks: [3, 1.5],
      ok: [1, 0],
      kinds: ['text', 'number', 'number'],
      where: ['row 1 of events.jsonl', 'row 2 of events.jsonl'],
    });
  });
});

describe('readSql', () => {
  it('reads a query over files as a table, by column type', async () => {
    const file = writeFile('events.csv', 'user,clicks,day\na,3,1\nb,5,2\na,1,3\n');
    const table = await readSql(
      `SELECT user, sum(clicks) AS clicks, count(*) > 1 AS repeat FROM read_csv('${file}') GROUP BY user ORDER BY user`,
      { source: 'per user' },
    );
    expect(contentOf(table)).toEqual({
      user: ['a', 'b'],
      clicks: [4, 5],
      repeat: [1, 0],
      kinds: ['text', 'number', 'number'],
      where: ['row 1 of per user', 'row 2 of per user'],
    });
    expect((await readSql('SELECT 1 AS a, 2 AS b', { columns: ['b'] })).columnNames).toEqual(['b']);
  });

  it('reads many columns of both kinds, NULL as missing', async () => {
    const columns = Array.from({ length: 12 }, (_, k) =>
      k % 3 === 0 ? `range * ${k} AS n${k}` : `CASE WHEN range = 1 THEN NULL ELSE 'v' || (range % ${k + 1}) END AS t${k}`,
    );
    const table = await readSql(`SELECT ${columns.join(', ')} FROM range(4)`);
    for (let k = 0; k < 12; k++) {
      const expected = [0, 1, 2, 3].map((row) => (k % 3 === 0 ? row * k : row === 1 ? null : `v${row % (k + 1)}`));
      expect(cellsOf(table, k % 3 === 0 ? `n${k}` : `t${k}`), `column ${k}`).toEqual(expected);
    }
  });

  it('rejects SQL that DuckDB rejects, nested columns and unknown columns', async () => {
    const err = await rejectionOf(readSql('SELEC 1'), ValidationError);
    expect(err.field).toBe('sql');
    expect(err.message).toMatch(/^Invalid SQL source: Parser Error: syntax error at or near "SELEC"\n\nLINE 1: SELEC 1/);
    expect((await rejectionOf(readSql('SELECT [1, 2] AS tags'), ValidationError)).message).toMatch(
      /column 'tags' has type INTEGER\[\], which adatt does not read/,
    );
    expect((await rejectionOf(readSql('SELECT 1 AS a', { columns: ['b'] }), ValidationError)).message).toMatch(
      /SQL query has no column 'b'/,
    );
  });
});

describe('text columns through the native dictionary', () => {
  it('codes inlined and long strings, UTF-8, empty strings and NULLs across chunks, in order of first appearance', async () => {
    // 5,000 rows (three DuckDB chunks), 1,700 distinct values: the hash table grows while coding.
    const sql = `SELECT CASE WHEN i % 11 = 0 THEN NULL WHEN i % 13 = 0 THEN '' WHEN i % 2 = 0 THEN 'id' || (i * 7919 % 1700)
      ELSE 'é一 long value past twelve bytes ' || (i % 97) END AS t FROM range(5000) r(i) ORDER BY i`;
    const table = await readSql(sql);
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    const expected = (await connection.runAndReadAll(sql)).getRowObjects().map((row) => row.t as string | null);
    connection.closeSync();
    expect(cellsOf(table, 't')).toEqual(expected);
    const column = table.findColumn('t');
    if (column?.kind !== 'text') throw new Error('t is not a text column');
    const firstSeen = [...new Set(expected.filter((value) => value !== null))];
    expect(column.values).toEqual(firstSeen);
  });

  it('rejects bad arguments with a typed error and refuses use after dispose', () => {
    const raw = new (loadAddon().TextDictionary)();
    // The calls as lib/data/engine.ts makes them: addon errors become typed ones.
    const dictionary = {
      codeStrings: (...args: Parameters<typeof raw.codeStrings>) => callNative(() => raw.codeStrings(...args)),
      values: () => callNative(() => raw.values()),
      dispose: () => raw.dispose(),
    };
    const strings = new Uint8Array(32);
    const codes = new Int32Array(2);
    expect(() => dictionary.codeStrings(strings, null, 0, 3, codes, 0)).toThrow(ValidationError);
    expect(() => dictionary.codeStrings(strings, null, 0, 2, codes, 1)).toThrow(/codes has no room/);
    expect(() => dictionary.codeStrings(strings, new Uint8Array(0), 0, 2, codes, 0)).toThrow(/validity must hold/);
    expect(() => dictionary.codeStrings(strings, null, -1, 1, codes, 0)).toThrow(/first must be a non-negative integer/);
    expect(() => dictionary.codeStrings(new Float64Array(4) as unknown as Uint8Array, null, 0, 1, codes, 0)).toThrow(
      /strings must be a Uint8Array/,
    );
    // Two zero-length inlined strings, the second marked NULL.
    dictionary.codeStrings(strings, new Uint8Array([0b01]), 0, 2, codes, 0);
    expect(Array.from(codes)).toEqual([0, -1]);
    expect(dictionary.values()).toEqual(['']);
    dictionary.dispose();
    expect(() => dictionary.values()).toThrow(DisposedError);
  });
});

describe('categorical columns coded natively against a fitted vocabulary', () => {
  // Three DuckDB chunks; values past twelve bytes, UTF-8, '' , a missing marker, NULLs, and values
  // the vocabulary (fitted on the first 1,000 rows) has never seen.
  const sql = `SELECT CASE WHEN i % 11 = 0 THEN NULL WHEN i % 13 = 0 THEN '' WHEN i % 17 = 0 THEN '?'
      WHEN i % 2 = 0 THEN 'id' || (i * 7919 % 1700) ELSE 'é一 long value past twelve bytes ' || (i % 97) END AS item,
      'c' || (i % 3) AS city, i % 2 AS click FROM range(5000) r(i) ORDER BY i`;
  const spec = {
    categorical: ['item', { column: 'city', hashBuckets: 8 }],
    tasks: [{ name: 'click', type: 'binary' as const, column: 'click', positive: [1] }],
  };

  it('gives the ids encode gives, and leaves hashed and shared columns to the table', async () => {
    const table = await readSql(sql);
    const schema = fitSchema(spec, await readSql(`${sql} LIMIT 1000`));
    const expected = encode(schema, table).categorical as Int32Array;
    const built = await withConnection(async (connection) => {
      const columns = await typedColumns(connection, `(${sql})`, schema.columns, 'test');
      const coders = vocabularyCoders(schema, new Set(['item', 'city', 'click']));
      expect([...coders.keys()]).toEqual(['item']); // city is hashed
      const builder = await ColumnsBuilder.create(connection, columns, coders);
      const result = await connection.stream(`SELECT ${selectList(columns)} FROM ${aliasedRelation(`(${sql})`, columns)}`);
      for (let chunk = await result.fetchChunk(); chunk !== null && chunk.rowCount > 0; chunk = await result.fetchChunk())
        builder.append(chunk);
      for (const coder of coders.values()) coder.dispose();
      return builder.finishWithIds();
    });
    expect(built.columns.map((column) => column.name)).toEqual(['city', 'click']);
    const ids = built.ids.get('item') as Int32Array;
    expect(Array.from(ids)).toEqual(Array.from({ length: table.size }, (_, row) => expected[row * 2]));
    // Every kind of id occurs: missing (NULL, '?'), out of vocabulary, known.
    expect(new Set(ids).has(MISSING_ID) && new Set(ids).has(OUT_OF_VOCABULARY_ID) && ids.some((id) => id >= FIRST_VALUE_ID)).toBe(true);
    const encoded = encode(schema, table);
    const coded = new DataEncoder(schema).encodeRows(new Table('test', built.columns), built.ids);
    expect(coded).toEqual(encoded);

    const groupedToo = fitSchema({ categorical: ['city'], group: 'city', tasks: spec.tasks }, table);
    expect(vocabularyCoders(groupedToo, new Set(['city'])).size).toBe(0); // the group reads the column too
  });

  it('treats a missing marker as missing even when a vocabulary holds it, and seals its dictionary', async () => {
    const coder = new VocabularyCoder({ name: 'x', column: 'x', vocabulary: ['a', 'NA', 'b'] }, ['NA', '?']);
    const ids = await withConnection(async (connection) => {
      const column = { name: 'x', position: 0, kind: 'text', expression: '' } as const;
      const builder = await ColumnsBuilder.create(connection, [column], new Map([['x', coder]]));
      const result = await connection.run(`SELECT * FROM (VALUES ('a'), ('NA'), ('b'), ('zz'), (NULL), ('?'), ('a'))`);
      for (let chunk = await result.fetchChunk(); chunk !== null && chunk.rowCount > 0; chunk = await result.fetchChunk())
        builder.append(chunk);
      return builder.finishWithIds().ids.get('x') as Int32Array;
    });
    expect(Array.from(ids)).toEqual([2, 0, 4, 1, 0, 0, 2]);
    expect(() => new VocabularyCoder({ name: 'x', column: 'x', vocabulary: [], hashBuckets: 4 }, [])).toThrow(/is hashed/);
    const raw = new (loadAddon().TextDictionary)();
    expect(Array.from(raw.add(['a', 'b', 'a']))).toEqual([0, 1, 0]);
    raw.seal();
    expect(Array.from(raw.add(['c']))).toEqual([2]); // add still adds after seal
    expect(() => callNative(() => raw.add([1 as unknown as string]))).toThrow(/values\[0\] is not a string/);
    expect(() => callNative(() => raw.add('a' as unknown as string[]))).toThrow(ValidationError);
    raw.dispose();
    coder.dispose();
  });
});
