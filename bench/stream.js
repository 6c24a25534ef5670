#!/usr/bin/env node
'use strict';
/**
 * Streaming against in-memory training (`npm run bench:stream`): one epoch of the Criteo-like data
 * of bench/data.js (2 labels, 13 dense, 26 categorical columns) as Parquet, trained from a
 * TensorDataset (readParquet + encode first) and from a DataStream (openStream: read and encoded in
 * chunks on a reading thread while the model trains), alternating, in fresh processes.
 *
 *   node bench/stream.js [--rows 250000,1000000] [--repeats 3] [--threads 2] [--batch 1024] [--modes memory,stream]
 *                        [--dir DIR] [--json FILE]
 *
 * `--modes stream` times the stream alone (for data sizes whose in-memory run would not fit).
 *
 * Every run uses one schema, fitted on the first 200,000 rows of the largest file. Reports per row count: training
 * examples/s of the epoch (for the stream this includes waiting for data), the in-memory run's
 * read + encode time, and each process's peak RSS, as medians. Needs dist/ (`npm run build:ts`).
 */
const { median, positiveInteger } = require('./stats');
const { generate, SPEC } = require('./data');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const USAGE =
  'usage: node bench/stream.js [--rows N[,N…]] [--repeats N] [--threads N] [--batch N] [--modes memory,stream] [--dir DIR] [--json FILE]';
const MODES = ['memory', 'stream'];
const SAMPLE_ROWS = 200_000;

function parseArgs(argv) {
  const args = { rows: [250_000, 1_000_000], repeats: 3, threads: 2, batch: 1024, modes: MODES, dir: os.tmpdir(), json: undefined };
  const positive = (value, flag) => positiveInteger(value, flag, USAGE);
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i];
    const next = () => argv[++i] ?? '';
    switch (flag) {
      case '--rows':
        args.rows = next()
          .split(',')
          .map((value) => positive(value, flag));
        break;
      case '--repeats':
        args.repeats = positive(next(), flag);
        break;
      case '--threads':
        args.threads = positive(next(), flag);
        break;
      case '--batch':
        args.batch = positive(next(), flag);
        break;
      case '--modes':
        args.modes = next().split(',');
        if (args.modes.length === 0 || args.modes.some((mode) => !MODES.includes(mode)))
          throw new Error(`--modes takes memory and/or stream\n${USAGE}`);
        break;
      case '--dir':
        args.dir = next();
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

/** One epoch in this (fresh) process; prints a JSON line. */
async function worker(mode, file, schemaFile, threads, batch) {
  const adatt = require(path.join(__dirname, '..', 'dist'));
  adatt.setNumThreads(Number(threads));
  const schema = JSON.parse(fs.readFileSync(schemaFile, 'utf8'));
  const seconds = (from) => Number(process.hrtime.bigint() - from) / 1e9;
  const at = process.hrtime.bigint();
  const data =
    mode === 'memory'
      ? adatt.TensorDataset.fromEncoded(adatt.encode(schema, await adatt.readParquet(file, { columns: schema.columns })), { schema })
      : await adatt.openStream(file, { schema });
  const prepare = seconds(at);
  const model = adatt.createModel({
    kind: 'adatt-sp',
    ...adatt.modelSections(schema),
    expertDims: [[256], [128]],
    towerDims: [64],
    expertsPerTask: 2,
  });
  const result = await adatt.fit(model, data, { epochs: 1, batchSize: Number(batch), optimizer: { type: 'adam', lr: 1e-3 } });
  const epoch = result.epochs[0];
  console.log(
    JSON.stringify({
      rows: epoch.examples,
      prepare,
      examplesPerSecond: epoch.examples / epoch.seconds,
      peakRssMB: process.resourceUsage().maxRSS / 1024,
    }),
  );
}

function run(commandArgs) {
  const result = spawnSync(process.execPath, [__filename, ...commandArgs], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (result.status !== 0) throw new Error(`bench/stream.js ${commandArgs.join(' ')} failed:\n${result.stderr || result.stdout}`);
  return JSON.parse(result.stdout.trim().split('\n').pop());
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const adatt = require(path.join(__dirname, '..', 'dist'));
  // One schema for every row count (fitted on the largest file's first rows), so that the model,
  // its tables and their optimizer state are the same size whatever the data's length.
  const files = new Map();
  for (const count of args.rows) files.set(count, (await generate({ rows: count, dir: args.dir })).parquet);
  const largest = Math.max(...args.rows);
  const schemaFile = path.join(args.dir, `adatt-criteo-stream-schema-${largest}.json`);
  const sample = await adatt.readSql(`SELECT * FROM read_parquet('${files.get(largest)}') LIMIT ${SAMPLE_ROWS}`);
  fs.writeFileSync(schemaFile, JSON.stringify(adatt.fitSchema(SPEC, sample)));
  const rows = [];
  for (const count of args.rows) {
    const parquet = files.get(count);
    const samples = { memory: [], stream: [] };
    for (let repeat = 0; repeat < args.repeats; repeat += 1) {
      for (const mode of args.modes) {
        samples[mode].push(run(['--worker', mode, parquet, schemaFile, String(args.threads), String(args.batch)]));
        process.stderr.write(
          `rows ${count}, repeat ${repeat + 1}, ${mode}: ${samples[mode].at(-1).examplesPerSecond.toFixed(0)} examples/s\n`,
        );
      }
    }
    const of = (mode, key) => median(samples[mode].map((r) => r[key]));
    rows.push({
      rows: count,
      memory: {
        examplesPerSecond: of('memory', 'examplesPerSecond'),
        prepare: of('memory', 'prepare'),
        peakRssMB: of('memory', 'peakRssMB'),
      },
      stream: { examplesPerSecond: of('stream', 'examplesPerSecond'), peakRssMB: of('stream', 'peakRssMB') },
    });
  }
  console.log(
    `\nOne epoch, batch ${args.batch}, ${args.threads} training threads, medians of ${args.repeats}, ${os.availableParallelism()} cores\n`,
  );
  console.log(
    '| rows | in memory: read + encode s | in memory: examples/s | stream: examples/s | stream / memory | in memory: peak RSS MB | stream: peak RSS MB |',
  );
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  // A mode not run (--modes) shows as '–'.
  const cell = (value, digits) => (Number.isFinite(value) ? value.toFixed(digits) : '–');
  for (const r of rows) {
    console.log(
      `| ${r.rows} | ${cell(r.memory.prepare, 1)} | ${cell(r.memory.examplesPerSecond, 0)} | ${cell(r.stream.examplesPerSecond, 0)} | ` +
        `${cell(r.stream.examplesPerSecond / r.memory.examplesPerSecond, 2)} | ${cell(r.memory.peakRssMB, 0)} | ${cell(r.stream.peakRssMB, 0)} |`,
    );
  }
  if (args.json) fs.writeFileSync(args.json, `${JSON.stringify({ args, rows }, null, 2)}\n`);
}

if (require.main === module) {
  const done = process.argv[2] === '--worker' ? worker(...process.argv.slice(3)) : main();
  done.catch((err) => {
    console.error(process.argv[2] === '--worker' ? err : err.message);
    process.exit(1);
  });
}
