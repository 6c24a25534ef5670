import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { parseCsv, readCsv } from '../../lib/data';
import { FileError, ValidationError } from '../../lib/errors';
import { cellsOf, errorOf, rejectionOf, temporaryFolder } from './helpers';

const folder = temporaryFolder();

function writeFile(name: string, content: string | Buffer): string {
  const file = path.join(folder, name);
  writeFileSync(file, content);
  return file;
}

describe('parseCsv reads', () => {
  it('a header and rows, keeping text as text', () => {
    const table = parseCsv('name,age\nAda,36\nAlan,41\n');
    expect(table.columnNames).toEqual(['name', 'age']);
    expect(table.size).toBe(2);
    expect(cellsOf(table, 'name')).toEqual(['Ada', 'Alan']);
    expect(cellsOf(table, 'age')).toEqual(['36', '41']);
  });

  it('quoted fields with delimiters, doubled quotes and line breaks (RFC 4180), and CRLF', () => {
    const text = 'id,comment\r\n1,"a, b"\r\n2,"she said ""hi"""\r\n3,"two\r\nlines"\r\n4,""\r\n';
    const table = parseCsv(text);
    expect(cellsOf(table, 'comment')).toEqual(['a, b', 'she said "hi"', 'two\nlines', '']);
    expect(table.locate(3)).toBe('line 6 of CSV text');
  });

  it('quotes inside unquoted fields literally', () => {
    expect(cellsOf(parseCsv('height\n5\'10"\n'), 'height')).toEqual(['5\'10"']);
  });

  it('without a header, naming columns by position or by columnNames', () => {
    expect(parseCsv('1,2\n3,4', { header: false }).columnNames).toEqual(['0', '1']);
    const named = parseCsv('1,2\n3,4', { header: false, columnNames: ['a', 'b'] });
    expect(cellsOf(named, 'b')).toEqual(['2', '4']);
  });

  it('any delimiter, including multi-character ones', () => {
    expect(cellsOf(parseCsv('a;b\n1;"x;y"', { delimiter: ';' }), 'b')).toEqual(['x;y']);
    expect(cellsOf(parseCsv('a\tb\n1\t2', { delimiter: '\t' }), 'b')).toEqual(['2']);
    expect(cellsOf(parseCsv('a::b\n1::2', { delimiter: '::' }), 'b')).toEqual(['2']);
  });

  it("UCI's ', ' separators and padded values with trim, skipping lines and blank lines", () => {
    const text = '|1x3 Cross validator\n25, Private, ?, <=50K.\n\n38, Self emp , 89814, >50K.\n\n';
    const table = parseCsv(text, { header: false, trim: true, skipLines: 1, columnNames: ['age', 'work', 'weight', 'income'] });
    expect(table.size).toBe(2);
    expect(cellsOf(table, 'work')).toEqual(['Private', 'Self emp']);
    expect(cellsOf(table, 'income')).toEqual(['<=50K.', '>50K.']);
    expect(table.locate(1)).toBe('line 4 of CSV text');
  });

  it('trim around quoted fields, but not inside them', () => {
    const table = parseCsv('1,  " x " ,\n', { trim: true, header: false, columnNames: ['a', 'b', 'c'] });
    expect([cellsOf(table, 'b'), cellsOf(table, 'c')]).toEqual([[' x '], ['']]);
  });

  it('numeric columns as numbers, with missing markers as null', () => {
    const table = parseCsv('a,b\n1.5,x\n?,y\n,z\n-2e3,w', { numeric: ['a'] });
    expect(cellsOf(table, 'a')).toEqual([1.5, null, null, -2000]);
    expect(table.findColumn('a')?.kind).toBe('number');
    expect(table.findColumn('b')?.kind).toBe('text');
  });

  it('only the selected columns, which keep their source positions', () => {
    const table = parseCsv('a,b,c\n1,2,3', { columns: ['c', 0] });
    expect(table.columnNames).toEqual(['a', 'c']);
    expect(table.findColumn(2)?.name).toBe('c');
    expect(table.findColumn(1)).toBeUndefined();
  });

  it('a byte-order mark and a last line without a newline', () => {
    expect(parseCsv('\uFEFFa,b\n1,2').columnNames).toEqual(['a', 'b']);
  });
});

describe('parseCsv rejects', () => {
  const cases: [string, string, Record<string, unknown>, string, RegExp][] = [
    ['a row with too few fields', 'a,b\n1,2\n3\n', {}, 'CSV text', /line 3 of CSV text: 1 fields, expected 2/],
    ['a row with too many fields', 'a,b\n1,2,3\n', {}, 'CSV text', /line 2 of CSV text: 3 fields, expected 2/],
    [
      'a non-numeric cell of a numeric column',
      'a\n1\n\nx1\n',
      { numeric: ['a'] },
      'a',
      /line 4 of CSV text, column 'a': "x1" is not a number/,
    ],
    ['a quoted field that is never closed', 'a\n"open\nstill\n', {}, 'CSV text', /line 2 of CSV text: a quoted field is never closed/],
    ['text after a closing quote', 'a,b\n"x"y,1\n', {}, 'CSV text', /line 2 of CSV text: unexpected "y,1" after a closing quote/],
    [
      'an unknown column',
      'a,b\n1,2\n',
      { columns: ['c'] },
      'columns[0]',
      /CSV text has no column 'c' \(it has 2 columns: 0: 'a', 1: 'b'\)/,
    ],
    ['a column position out of range', 'a,b\n1,2\n', { numeric: [5] }, 'numeric[0]', /no column position 5/],
    [
      'columnNames of the wrong length',
      'a,b\n1,2\n',
      { columnNames: ['x'] },
      'columnNames',
      /the header has 2 fields but columnNames has 1/,
    ],
    ['an unknown option', 'a\n1', { seperator: ';' }, 'seperator', /unknown key seperator/],
    ['a multi-character quote', 'a\n1', { quote: '""' }, 'quote', /single character/],
  ];
  it.each(cases)('%s', (_, text, options, field, message) => {
    const err = errorOf(() => parseCsv(text, options), ValidationError);
    expect(err.field).toBe(field);
    expect(err.message).toMatch(message);
  });
});

describe('readCsv', () => {
  const text = 'x,label\n1,"a\nb"\n2,c\n';

  it('streams a plain file and a gzip file (detected from its bytes) to the same table', async () => {
    const plain = await readCsv(writeFile('plain.csv', text));
    const gzipped = await readCsv(writeFile('data.bin', gzipSync(text)));
    expect(cellsOf(gzipped, 'label')).toEqual(['a\nb', 'c']);
    expect(cellsOf(plain, 'label')).toEqual(cellsOf(gzipped, 'label'));
    expect(plain.source).toBe('plain.csv');
    expect(gzipped.locate(1)).toBe('line 4 of data.bin');
  });

  it('reads streams, decoding UTF-8 split across chunks', async () => {
    const bytes = Buffer.from('city\nZürich\n', 'utf8');
    const split = bytes.indexOf(0xc3) + 1;
    const table = await readCsv(Readable.from([bytes.subarray(0, split), bytes.subarray(split)]));
    expect(cellsOf(table, 'city')).toEqual(['Zürich']);
    const gzipped = await readCsv(Readable.from([gzipSync(bytes)]), { gzip: true });
    expect(cellsOf(gzipped, 'city')).toEqual(['Zürich']);
  });

  it('splits a .tsv file at tabs unless told otherwise, in both engines (as openStream does)', async () => {
    const file = writeFile('cells.tsv.gz', gzipSync('id\tnote\n1\ta,b\n2\tc\n'));
    const noCommas = writeFile('plain.tsv', 'id\tnote\n1\tc\n');
    for (const engine of ['javascript', 'duckdb'] as const) {
      expect(cellsOf(await readCsv(file, { engine }), 'note')).toEqual(['a,b', 'c']);
      expect((await readCsv(noCommas, { engine, delimiter: ',' })).columnNames).toEqual(['id\tnote']);
    }
  });

  it('gives a FileError for a missing file and for corrupt gzip data', async () => {
    expect((await rejectionOf(readCsv(path.join(folder, 'nope.csv')), FileError)).message).toMatch(/Cannot read nope.csv: .*ENOENT/);
    const corrupt = Buffer.concat([gzipSync(text).subarray(0, 20), Buffer.from('garbage')]);
    expect((await rejectionOf(readCsv(writeFile('corrupt.csv.gz', corrupt)), FileError)).message).toMatch(/Cannot read corrupt.csv.gz/);
  });

  it('names the file and line of a bad row', async () => {
    const err = await rejectionOf(readCsv(writeFile('bad.csv.gz', gzipSync('a,b\n1,2\n3,4,5\n'))), ValidationError);
    expect(err.message).toMatch(/line 3 of bad.csv.gz: 3 fields, expected 2/);
  });
});
