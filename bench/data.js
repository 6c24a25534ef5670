#!/usr/bin/env node
'use strict';
/**
 * The data path (`npm run bench:data`): read + fitSchema + encode of a Criteo-like data set (2 labels,
 * 13 dense, 26 categorical hex columns, a few with hundreds of thousands of distinct values), as CSV
 * and as Parquet, beside pandas `read_csv` on the same CSV, in one run.
 *
 *   node bench/data.js [--rows 2000000] [--repeats 3] [--engines duckdb,javascript,source] [--formats csv,parquet]
 *                      [--dir DIR] [--dist DIR] [--no-peer] [--json FILE]
 *
 * The files are generated once per row count and seed with DuckDB's COPY (seeded by `hash` of the
 * row number, so every run and machine writes the same rows) into DIR (default the system's
 * temporary folder). Every measurement is a fresh child process, so that peak RSS is the step's own;
 * the report gives medians. `source` times `fitSchemaFrom` on the file (fitting in the engine, no
 * table), beside read + fitSchema + encode. `--engines default` times readCsv without an `engine` option (how the
 * numbers of the code before the DuckDB engine were taken, with `--dist` pointing at that code's
 * compiled dist/). Needs dist/ (`npm run build:ts`).
 */
const { median, positiveInteger } = require('./stats');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const USAGE =
  'usage: node bench/data.js [--rows N] [--repeats N] [--engines E[,E…]] [--formats csv,parquet] [--dir DIR] [--dist DIR] [--no-peer] [--json FILE]';
const SEED = 15;
const DENSE = Array.from({ length: 13 }, (_, k) => `I${k + 1}`);
/** Distinct values per categorical column at 2M rows (Criteo's spread: a few tiny, a few huge). */
const CARDINALITIES = [
  1400, 550, 400000, 250000, 300, 24, 12000, 630, 3, 90000, 5600, 300000, 3200, 27, 14000, 450000, 10, 5700, 2100, 4, 350000, 18, 15,
  120000, 100, 80000,
];
const CATEGORICAL = CARDINALITIES.map((_, k) => `C${k + 1}`);
const SPEC = {
  dense: DENSE,
  categorical: CATEGORICAL,
  tasks: [
    { name: 'click', type: 'binary', column: 'click', positive: '1' },
    { name: 'conversion', type: 'binary', column: 'conversion', positive: '1' },
  ],
};

function parseArgs(argv) {
  const args = {
    rows: 2_000_000,
    repeats: 3,
    engines: ['duckdb', 'javascript', 'source'],
    formats: ['csv', 'parquet'],
    dir: os.tmpdir(),
    dist: path.join(__dirname, '..', 'dist'),
    peer: true,
    json: undefined,
  };
  const positive = (value, flag) => positiveInteger(value, flag, USAGE);
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i];
    const next = () => argv[++i] ?? '';
    switch (flag) {
      case '--rows':
        args.rows = positive(next(), flag);
        break;
      case '--repeats':
        args.repeats = positive(next(), flag);
        break;
      case '--engines':
        args.engines = next().split(',');
        break;
      case '--formats':
        args.formats = next().split(',');
        break;
      case '--dir':
        args.dir = next();
        break;
      case '--dist':
        args.dist = path.resolve(next());
        break;
      case '--no-peer':
        args.peer = false;
        break;
      case '--json':
        args.json = next();
        break;
      default:
        throw new Error(`unknown argument ${flag}\n${USAGE}`);
    }
  }
  return args;
}

/** Skewed ids (u³ puts most rows on few values) as 8-digit hex; about 4 % of the cells empty. */
function generatorQuery(rows) {
  const uniform = (salt) => `(hash(i, ${SEED}, ${salt}) % 1000003) / 1000003.0`;
  const dense = DENSE.map(
    (name, k) =>
      `CASE WHEN ${uniform(100 + k)} < 0.1 THEN NULL ELSE floor(pow(${uniform(200 + k)}, 4) * ${10 ** (1 + (k % 4))})::BIGINT - ${k === 1 ? 2 : 0} END AS ${name}`,
  );
  const categorical = CATEGORICAL.map(
    (name, k) =>
      `CASE WHEN ${uniform(300 + k)} < 0.04 THEN NULL ELSE printf('%08x', (hash(floor(pow(${uniform(400 + k)}, 3) * ${Math.max(2, Math.round((CARDINALITIES[k] * rows) / 2_000_000))})::BIGINT, ${k}) % 4294967291)::BIGINT) END AS ${name}`,
  );
  return `SELECT (${uniform(1)} < 0.25)::INTEGER AS click, (${uniform(2)} < 0.03)::INTEGER AS conversion, ${[...dense, ...categorical].join(', ')} FROM range(${rows}) t(i)`;
}

async function generate(args) {
  const base = path.join(args.dir, `adatt-criteo-${args.rows}-${SEED}`);
  const files = { csv: `${base}.csv`, parquet: `${base}.parquet` };
  if (Object.values(files).every((file) => fs.existsSync(file))) return files;
  const { DuckDBInstance } = require('@duckdb/node-api');
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  const started = Date.now();
  await connection.run(`CREATE TABLE criteo AS ${generatorQuery(args.rows)}`);
  await connection.run(`COPY criteo TO '${files.csv}' (HEADER, DELIMITER ',')`);
  await connection.run(`COPY criteo TO '${files.parquet}' (FORMAT parquet)`);
  connection.closeSync();
  const size = (file) => `${(fs.statSync(file).size / 1e6).toFixed(0)} MB`;
  console.log(
    `generated ${args.rows} rows in ${((Date.now() - started) / 1000).toFixed(1)} s: ${files.csv} (${size(files.csv)}), ${files.parquet} (${size(files.parquet)})`,
  );
  return files;
}

/** One measurement in this (fresh) process: read, fit, encode (or, for `source`, fitSchemaFrom alone); prints a JSON line. */
async function worker(dist, format, engine, file) {
  const data = require(path.join(dist, 'data'));
  const seconds = (from) => Number(process.hrtime.bigint() - from) / 1e9;
  const vocabularyOf = (schema) => schema.categorical.reduce((sum, feature) => sum + feature.vocabulary.length, 0);
  if (engine === 'source') {
    const at = process.hrtime.bigint();
    const schema = await data.fitSchemaFrom(SPEC, file);
    const fit = seconds(at);
    console.log(
      JSON.stringify({ rows: schema.fittedRows, fit, vocabulary: vocabularyOf(schema), peakRssMB: process.resourceUsage().maxRSS / 1024 }),
    );
    return;
  }
  const options = { ...data.schemaColumns(SPEC), ...(engine === 'default' || format !== 'csv' ? {} : { engine }) };
  let at = process.hrtime.bigint();
  const table = format === 'csv' ? await data.readCsv(file, options) : await data.readParquet(file, { columns: options.columns });
  const read = seconds(at);
  at = process.hrtime.bigint();
  const schema = data.fitSchema(SPEC, table);
  const fit = seconds(at);
  at = process.hrtime.bigint();
  const encoded = data.encode(schema, table);
  const encode = seconds(at);
  console.log(
    JSON.stringify({
      rows: encoded.size,
      read,
      fit,
      encode,
      vocabulary: vocabularyOf(schema),
      peakRssMB: process.resourceUsage().maxRSS / 1024,
    }),
  );
}

const PANDAS = `
import resource, sys, time
import pandas as pd
start = time.perf_counter()
frame = pd.read_csv(sys.argv[1], dtype={f'C{k}': 'category' for k in range(1, 27)})
read = time.perf_counter() - start
print('{"rows": %d, "read": %f, "peakRssMB": %f}' % (len(frame), read, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
`;

/** Reads a file through once, so that every measurement starts with it in the page cache. */
function warm(file) {
  const buffer = Buffer.alloc(1 << 24);
  const fd = fs.openSync(file, 'r');
  try {
    while (fs.readSync(fd, buffer, 0, buffer.length, null) > 0);
  } finally {
    fs.closeSync(fd);
  }
}

function run(command, commandArgs, input) {
  warm(input);
  const result = spawnSync(command, commandArgs, { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (result.status !== 0) throw new Error(`${command} ${commandArgs.join(' ')} failed:\n${result.stderr || result.stdout}`);
  return JSON.parse(result.stdout.trim().split('\n').pop());
}

function pandasAvailable() {
  return spawnSync('/usr/bin/python3', ['-c', 'import pandas'], { encoding: 'utf8' }).status === 0;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const files = await generate(args);
  const cases = [];
  for (const format of args.formats) {
    const engines = format === 'csv' ? args.engines : args.engines.filter((engine) => engine !== 'javascript');
    for (const engine of engines) {
      cases.push({
        label: engine === 'source' ? `adatt ${format}: fitSchemaFrom` : `adatt ${format} (${engine})`,
        measure: () => run(process.execPath, [__filename, '--worker', args.dist, format, engine, files[format]], files[format]),
      });
    }
  }
  const peer = args.peer && pandasAvailable();
  if (args.peer && !peer) console.log('pandas is not installed for /usr/bin/python3 (apt-get install python3-pandas): no pandas peer');
  if (peer) cases.push({ label: 'pandas read_csv', measure: () => run('/usr/bin/python3', ['-c', PANDAS, files.csv], files.csv) });

  const samples = new Map(cases.map(({ label }) => [label, []]));
  for (let repeat = 0; repeat < args.repeats; repeat += 1) {
    for (const { label, measure } of cases) samples.get(label).push(measure());
  }
  const results = cases.map(({ label }) => {
    const runs = samples.get(label);
    const of = (key) => (runs[0][key] === undefined ? undefined : median(runs.map((r) => r[key])));
    const read = of('read');
    const total = median(runs.map((r) => (r.read ?? 0) + (r.fit ?? 0) + (r.encode ?? 0)));
    return {
      label,
      rows: runs[0].rows,
      read,
      fit: of('fit'),
      encode: of('encode'),
      total,
      peakRssMB: of('peakRssMB'),
      vocabulary: runs[0].vocabulary,
    };
  });
  const fmt = (value, digits = 2) => (value === undefined ? '' : value.toFixed(digits));
  console.log(`\n${args.rows} rows, medians of ${args.repeats}, ${os.availableParallelism()} cores\n`);
  console.log('| path | read s | fitSchema s | encode s | total s | µs/row | peak RSS MB |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of results) {
    console.log(
      `| ${r.label} | ${fmt(r.read)} | ${fmt(r.fit)} | ${fmt(r.encode)} | ${fmt(r.total)} | ${fmt((r.total / r.rows) * 1e6, 2)} | ${fmt(r.peakRssMB, 0)} |`,
    );
  }
  if (args.json) fs.writeFileSync(args.json, `${JSON.stringify({ rows: args.rows, repeats: args.repeats, results }, null, 2)}\n`);
}

/** The generated files and the schema spec, for bench/stream.js. */
module.exports = { generate, SPEC };

if (require.main === module) {
  const done = process.argv[2] === '--worker' ? worker(process.argv[3], process.argv[4], process.argv[5], process.argv[6]) : main();
  done.catch((err) => {
    console.error(process.argv[2] === '--worker' ? err : err.message);
    process.exit(1);
  });
}
