#!/usr/bin/env node
'use strict';
/**
 * Census-Income end to end, adatt against the Python peer doing the same job:
 * read the two UCI files, fit the schema on census-income.data, encode, train the headline
 * architecture (AdaTT-sp, 3 tasks, 2 experts per task, experts [[256],[128]], towers [64]) for
 * one epoch with Adam at batch 1024, and evaluate AUC on census-income.test (the whole file).
 *
 *   node bench/census.js [--data ../shared/data] [--threads 2] [--repeats 1] [--json FILE] [--python /usr/bin/python3]
 *                        [--train-rows N (smoke tests: train on the first N rows only)]
 *
 * Each side runs in its own process (peak RSS per side); sides alternate across repeats.
 */
const { median } = require('./stats');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const HERE = __dirname;
const MODEL = { kind: 'adatt-sp', expertsPerTask: 2, expertDims: [[256], [128]], towerDims: [64] };
const BATCH = 1024;

/** Concatenates encoded splits (dense and categorical only, as census has). */
function concat(parts) {
  const join = (key, Type) => {
    const out = new Type(parts.reduce((n, p) => n + p[key].length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p[key], at);
      at += p[key].length;
    }
    return out;
  };
  return {
    size: parts.reduce((n, p) => n + p.size, 0),
    dense: join('dense', Float32Array),
    categorical: join('categorical', Int32Array),
    labels: parts[0].labels.map((_, t) => {
      const out = new Float32Array(parts.reduce((n, p) => n + p.size, 0));
      let at = 0;
      for (const p of parts) {
        out.set(p.labels[t], at);
        at += p.size;
      }
      return out;
    }),
  };
}

async function oursSide({ data, threads, trainRows }) {
  const adatt = require('../dist');
  const { loadCensusIncome, modelSections } = adatt;
  adatt.setNumThreads(threads);
  const times = {};
  let t = performance.now();
  const lap = (name) => {
    const now = performance.now();
    times[name] = (now - t) / 1000;
    t = now;
  };

  const census = await loadCensusIncome({ dataDir: path.resolve(data), tasks: 'all' });
  lap('load');
  const sections = modelSections(census.schema);
  const taskNames = sections.tasks.map((task) => task.name);
  let train = adatt.TensorDataset.fromEncoded(census.train, { taskNames });
  if (trainRows < train.size) train = train.subset(Int32Array.from({ length: trainRows }, (_, i) => i));
  const test = adatt.TensorDataset.fromEncoded(concat([census.validation, census.test]), { taskNames });
  lap('tensors');
  const model = adatt.createModel({ ...MODEL, ...sections });
  const fitted = await adatt.fit(model, train, { epochs: 1, batchSize: BATCH, threads, optimizer: { type: 'adam', lr: 1e-3 } });
  lap('train');
  const metrics = await adatt.evaluate(model, test, { batchSize: 4096 });
  lap('evaluate');
  return {
    times,
    trainRows: train.size,
    testRows: test.size,
    steps: fitted.steps,
    parameters: model.parameterCount(),
    inputWidth: (sections.input.dense ?? 0) + (sections.input.categorical ?? []).reduce((s, f) => s + f.dim, 0),
    auc: Object.fromEntries(Object.entries(metrics).map(([task, m]) => [task, m.auc])),
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  };
}

function run(command, argv, threads) {
  const n = String(threads);
  const env = { ...process.env, OMP_NUM_THREADS: n, OPENBLAS_NUM_THREADS: n, MKL_NUM_THREADS: n };
  const started = performance.now();
  const child = spawnSync(command, argv, { cwd: path.join(HERE, '..'), env, encoding: 'utf8', maxBuffer: 64 << 20 });
  const wall = (performance.now() - started) / 1000;
  const last = child.stdout?.trim().split('\n').pop();
  if (child.status === 0 && last) return { ...JSON.parse(last), processSeconds: wall };
  return { error: `exit ${child.status ?? child.signal}: ${(child.stderr || '').trim().split('\n').slice(-3).join(' | ')}` };
}

function parseArgs(argv) {
  const args = {
    data: path.join(HERE, '..', '..', 'shared', 'data'),
    threads: 2,
    repeats: 1,
    json: undefined,
    python: '/usr/bin/python3',
    side: undefined,
    trainRows: Infinity,
  };
  for (let i = 0; i < argv.length; i += 1) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === '--data') args.data = value;
    else if (flag === '--threads') args.threads = Number(value);
    else if (flag === '--repeats') args.repeats = Number(value);
    else if (flag === '--json') args.json = value;
    else if (flag === '--python') args.python = value;
    else if (flag === '--side') args.side = value;
    else if (flag === '--train-rows')
      args.trainRows = Number(value); // smoke tests only
    else throw new Error(`unknown argument ${flag}`);
    i += 1;
  }
  return args;
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.side === 'ours') {
    oursSide(args).then(
      (r) => console.log(JSON.stringify(r)),
      (e) => {
        console.error(e.stack ?? e);
        process.exit(1);
      },
    );
    return;
  }
  const runs = { ours: [], peer: [] };
  const spec = JSON.stringify({
    data: path.resolve(args.data),
    threads: args.threads,
    batch: BATCH,
    model: MODEL,
    trainRows: Number.isFinite(args.trainRows) ? args.trainRows : null,
  });
  const rowArgs = Number.isFinite(args.trainRows) ? ['--train-rows', String(args.trainRows)] : [];
  for (let r = 0; r < args.repeats; r += 1) {
    const sides = [
      [
        'ours',
        () =>
          run(
            process.execPath,
            [__filename, '--side', 'ours', '--data', args.data, '--threads', String(args.threads), ...rowArgs],
            args.threads,
          ),
      ],
      ['peer', () => run(args.python, [path.join(HERE, 'census_peer.py'), spec], args.threads)],
    ];
    if (r % 2 === 1) sides.reverse();
    for (const [name, side] of sides) {
      const result = side();
      runs[name].push(result);
      console.error(
        `[${r + 1}/${args.repeats}] ${name}: ${result.error ?? `${result.processSeconds.toFixed(1)} s, AUC ${JSON.stringify(result.auc)}`}`,
      );
    }
  }
  const summary = {};
  const phases = ['load', 'tensors', 'train', 'evaluate'];
  for (const side of ['ours', 'peer']) {
    const ok = runs[side].filter((x) => !x.error);
    summary[side] =
      ok.length === 0
        ? { error: runs[side][0]?.error }
        : {
            times: Object.fromEntries(phases.map((phase) => [phase, median(ok.map((x) => x.times[phase]))])),
            processSeconds: median(ok.map((x) => x.processSeconds)),
            peakRssMiB: median(ok.map((x) => x.peakRssMiB)),
            auc: ok[0].auc,
            parameters: ok[0].parameters,
            inputWidth: ok[0].inputWidth,
            trainRows: ok[0].trainRows,
            testRows: ok[0].testRows,
            steps: ok[0].steps,
          };
  }
  const o = summary.ours;
  const p = summary.peer;
  // ratio: how many times faster ours is (peer time / ours time, or ours rate / peer rate).
  const rows = [
    ...phases.map((phase) => [`${phase}, s`, o.times?.[phase], p.times?.[phase], 'time']),
    ['whole process, s', o.processSeconds, p.processSeconds, 'time'],
    ['train examples/s', o.trainRows / o.times?.train, p.trainRows / p.times?.train, 'rate'],
    ['peak RSS, MiB', o.peakRssMiB, p.peakRssMiB],
    ...Object.keys(o.auc ?? {}).map((task) => [`test AUC ${task}`, o.auc[task], p.auc?.[task]]),
  ];
  const cell = (x, digits) => (Number.isFinite(x) ? x.toFixed(digits) : '-').padStart(14);
  console.log(`${'census-income, 1 epoch'.padEnd(24)}${['ours', 'peer', 'ours faster'].map((h) => h.padStart(14)).join('')}`);
  for (const [label, ours, peer, kind] of rows) {
    const digits = label.includes('AUC') ? 4 : label.includes('/s') || label.includes('MiB') ? 0 : 2;
    const ratio = kind === 'time' ? (Math.min(ours, peer) >= 0.01 ? peer / ours : NaN) : kind === 'rate' ? ours / peer : NaN;
    console.log(
      `${label.padEnd(24)}${cell(ours, digits)}${cell(peer, digits)}${Number.isFinite(ratio) ? `${ratio.toFixed(2)}x`.padStart(14) : ''}`,
    );
  }
  console.log(
    `parameters ours ${o.parameters}, peer ${p.parameters}; input width ${o.inputWidth} / ${p.inputWidth}; ` +
      `${o.trainRows} training rows, ${o.testRows} test rows; ${args.threads} threads`,
  );
  if (args.json) {
    fs.writeFileSync(
      args.json,
      `${JSON.stringify({ date: new Date().toISOString(), threads: args.threads, load1: os.loadavg()[0], summary, runs }, null, 1)}\n`,
    );
  }
  if (o.error || p.error) process.exitCode = 1;
}

main();
