#!/usr/bin/env node
'use strict';
/**
 * Vocabulary fitting at scale (`npm run bench:vocab-fit`): fitSchema and encode of a table of
 * --rows rows (default 20M) whose id column holds --distinct distinct values (default 5M, drawn
 * Zipf-like: a few values very often, most rarely), as a reader leaves it (dictionary-coded text).
 * Prints wall time per step and RSS; a memory baseline of the table alone is printed first.
 * `--parquet` fits the same kind of column from a file instead (`fitSchemaFrom`, no table in
 * memory): the rows are written once by DuckDB (seeded by `hash` of the row number) to
 * adatt-vocab-ROWS-DISTINCT.parquet in the system's temporary folder.
 *
 *   node --max-old-space-size=8192 bench/vocab-fit.js [--rows N] [--distinct N] [--max-vocabulary K] [--parquet]
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const adatt = require('../dist');

function parseArgs(argv) {
  const args = { rows: 20_000_000, distinct: 5_000_000, maxVocabulary: undefined, parquet: false };
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '--parquet') {
      args.parquet = true;
      i -= 1;
      continue;
    }
    const value = Number(argv[i + 1]);
    if (!Number.isInteger(value) || value < 1) throw new Error(`${argv[i]} needs a positive integer`);
    if (argv[i] === '--rows') args.rows = value;
    else if (argv[i] === '--distinct') args.distinct = value;
    else if (argv[i] === '--max-vocabulary') args.maxVocabulary = value;
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  return args;
}

const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

/** The spec of the benchmark's two columns. */
function specOf(maxVocabulary) {
  return {
    categorical: [{ column: 'item', ...(maxVocabulary ? { maxVocabulary } : {}) }],
    tasks: [{ name: 'clicked', type: 'binary', column: 'clicked', positive: 1 }],
  };
}

/** fitSchemaFrom on a Parquet file of the same shape: every value once, then floor(distinct * u^4). */
async function fitFromParquet({ rows, distinct, maxVocabulary }) {
  const file = path.join(os.tmpdir(), `adatt-vocab-${rows}-${distinct}.parquet`);
  if (!fs.existsSync(file)) {
    const { DuckDBInstance } = require('@duckdb/node-api');
    const connection = await (await DuckDBInstance.create(':memory:')).connect();
    const start = process.hrtime.bigint();
    await connection.run(`COPY (
        SELECT printf('%08x', 268435456 + (id * 2654435761) % 4026531839) AS item, CASE WHEN id % 3 = 0 THEN 1 ELSE 0 END AS clicked
        FROM (SELECT CASE WHEN i < ${distinct} THEN i ELSE floor(${distinct} * pow(((hash(i) % 1000000007) + 0.5) / 1000000007, 4))::BIGINT END AS id
              FROM range(${rows}) t(i))
      ) TO '${file}.partial' (FORMAT parquet)`);
    connection.closeSync();
    fs.renameSync(`${file}.partial`, file);
    console.log(`wrote ${file} (${mib(fs.statSync(file).size)}) in ${(Number(process.hrtime.bigint() - start) / 1e9).toFixed(1)} s`);
  }
  const start = process.hrtime.bigint();
  const schema = await adatt.fitSchemaFrom(specOf(maxVocabulary), file);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(
    `fitSchemaFrom ${path.basename(file)}: ${seconds.toFixed(2)} s, ${schema.fittedRows.toLocaleString('en-US')} rows, vocabulary ${schema.categorical[0].vocabulary.length.toLocaleString('en-US')}; peak RSS ${mib(process.resourceUsage().maxRSS * 1024)}`,
  );
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.parquet) return fitFromParquet(args);
  const { rows, distinct, maxVocabulary } = args;
  let state = 12345;
  const uniform = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state + 0.5) / 2 ** 32;
  };
  // Every value occurs at least once; the rest of the rows pick value floor(distinct * u^4).
  const values = Array.from({ length: distinct }, (_, i) => (0x10000000 + ((i * 2654435761) % 0xefffffff)).toString(16));
  const codes = new Int32Array(rows);
  for (let r = 0; r < rows; r += 1) codes[r] = r < distinct ? r : Math.floor(distinct * uniform() ** 4);
  const labels = Float64Array.from({ length: rows }, (_, r) => (codes[r] % 3 === 0 ? 1 : 0));
  const table = new adatt.Table('generated ids', [
    { kind: 'text', name: 'item', position: 0, codes, values },
    { kind: 'number', name: 'clicked', position: 1, values: labels },
  ]);
  global.gc?.();
  console.log(
    `table: ${rows.toLocaleString('en-US')} rows, ${distinct.toLocaleString('en-US')} distinct ids; RSS ${mib(process.memoryUsage().rss)}`,
  );
  const spec = specOf(maxVocabulary);
  let start = process.hrtime.bigint();
  const schema = adatt.fitSchema(spec, table);
  const fitSeconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(
    `fitSchema: ${fitSeconds.toFixed(2)} s, vocabulary ${schema.categorical[0].vocabulary.length.toLocaleString('en-US')}; RSS ${mib(process.memoryUsage().rss)}`,
  );
  start = process.hrtime.bigint();
  const encoded = adatt.encode(schema, table);
  const encodeSeconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(
    `encode: ${encodeSeconds.toFixed(2)} s (${encoded.categorical.length.toLocaleString('en-US')} ids); RSS ${mib(process.memoryUsage().rss)}, peak ${mib(process.resourceUsage().maxRSS * 1024)}`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
