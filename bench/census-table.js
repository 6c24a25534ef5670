#!/usr/bin/env node
'use strict';
/**
 * Census-Income quality table (docs/census.md): per-task test AUC and NE, mean ± std over seeds,
 * of every model kind trained by adatt and by the in-repo Python reference (scripts/reference)
 * under one protocol and on the very same encoded arrays.
 *
 *   node bench/census-table.js [--data ../shared/data] [--epochs 4] [--seeds 0,1,2] [--kinds adatt-sp,mmoe,…]
 *                              [--sides ours,reference] [--json FILE] [--python /usr/bin/python3]
 *                              [--train-rows N (smoke tests: the first N training rows only)]
 *
 * Protocol: loadCensusIncome (tasks 'all'; train = census-income.data, census-income.test split 1:1
 * with seed 0 into validation/test); one architecture per kind (below); Adam lr 1e-3, batch 1024,
 * a fixed number of epochs, the epoch with the best mean validation AUC kept; 1 thread per side,
 * sides run one after the other. Needs the built addon and dist/ (npm run build).
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const adatt = require('../dist');

const ROOT = path.join(__dirname, '..');
const LR = 1e-3;
const BATCH = 1024;
const SHAPE = { expertDims: [[64], [32]], towerDims: [16] };
const KINDS = {
  'adatt-sp': { label: 'AdaTT-sp', options: { expertsPerTask: 2 } },
  adatt: { label: 'AdaTT', options: { expertsPerTask: 2, sharedExperts: 1 } },
  mmoe: { label: 'MMoE', options: { experts: 6 } },
  ple: { label: 'PLE', options: { expertsPerTask: 2, sharedExperts: 1 } },
  'cross-stitch': { label: 'Cross-stitch', options: {} },
  'shared-bottom': { label: 'Shared-bottom', options: {} },
  'single-task': { label: 'Single-task', options: {} },
};
const SIDES = { ours: 'adatt (LibTorch)', reference: 'Python reference' };

function parseArgs(argv) {
  const args = {
    data: path.join(ROOT, '..', 'shared', 'data'),
    epochs: 4,
    seeds: [0, 1, 2],
    kinds: Object.keys(KINDS),
    sides: Object.keys(SIDES),
    json: path.join(os.tmpdir(), 'adatt-census-table.json'),
    python: '/usr/bin/python3',
    trainRows: Infinity,
  };
  const list = (value) => value.split(',').filter(Boolean);
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    switch (flag) {
      case '--data':
        args.data = path.resolve(value);
        break;
      case '--epochs':
        args.epochs = Number(value);
        break;
      case '--seeds':
        args.seeds = list(value).map(Number);
        break;
      case '--kinds':
        args.kinds = list(value);
        break;
      case '--sides':
        args.sides = list(value);
        break;
      case '--json':
        args.json = path.resolve(value);
        break;
      case '--python':
        args.python = value;
        break;
      case '--train-rows':
        args.trainRows = Number(value);
        break;
      default:
        throw new Error(`unknown option ${flag}`);
    }
  }
  for (const kind of args.kinds) if (!(kind in KINDS)) throw new Error(`unknown kind ${kind}`);
  for (const side of args.sides) if (!(side in SIDES)) throw new Error(`unknown side ${side}`);
  return args;
}

/** The first `rows` rows of a split (dense and categorical only, as census has). */
function head(data, rows) {
  if (rows >= data.size) return data;
  const width = (values) => values.length / data.size;
  return {
    size: rows,
    dense: data.dense.slice(0, rows * width(data.dense)),
    categorical: data.categorical.slice(0, rows * width(data.categorical)),
    labels: data.labels.map((labels) => labels.slice(0, rows)),
  };
}

/** Raw little-endian arrays the Python side reads with torch.frombuffer; labels task-major. */
function writeSplit(dir, name, data) {
  const bytes = (array) => Buffer.from(array.buffer, array.byteOffset, array.byteLength);
  fs.writeFileSync(path.join(dir, `${name}.dense.f32`), bytes(data.dense));
  fs.writeFileSync(path.join(dir, `${name}.categorical.i32`), bytes(data.categorical));
  fs.writeFileSync(path.join(dir, `${name}.labels.f32`), Buffer.concat(data.labels.map(bytes)));
}

async function runOurs(configs, splits, args) {
  adatt.setNumThreads(1);
  const data = adatt.TensorDataset.fromSplits(splits.schema, { train: splits.train, validation: splits.validation, test: splits.test });
  const results = {};
  try {
    for (const [kind, config] of Object.entries(configs)) {
      results[kind] = [];
      for (const seed of args.seeds) {
        const start = performance.now();
        const model = adatt.createModel({ ...config, seed });
        let fitted, test;
        try {
          fitted = await adatt.fit(model, data.train, {
            epochs: args.epochs,
            batchSize: BATCH,
            optimizer: { type: 'adam', lr: LR },
            seed,
            validation: data.validation,
            earlyStopping: { metric: 'auc', task: 'mean', patience: args.epochs },
            restoreBest: true,
          });
          test = await adatt.evaluate(model, data.test);
        } finally {
          model.dispose();
        }
        const run = {
          seed,
          bestEpoch: fitted.bestEpoch,
          validationAuc: fitted.epochs.map((epoch) => epoch.monitored),
          test: Object.fromEntries(Object.entries(test).map(([task, m]) => [task, { auc: m.auc, logLoss: m.logLoss, ne: m.ne }])),
          seconds: (performance.now() - start) / 1000,
        };
        results[kind].push(run);
        const line = Object.entries(run.test)
          .map(([task, m]) => `${task} ${m.auc.toFixed(4)}`)
          .join(', ');
        console.error(`ours ${kind} seed ${seed}: best epoch ${run.bestEpoch}, test AUC ${line} (${run.seconds.toFixed(0)} s)`);
      }
    }
  } finally {
    for (const dataset of Object.values(data)) dataset.dispose();
  }
  return { libtorch: adatt.info().libtorchVersion, threads: 1, results };
}

function runReference(configs, splits, args) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adatt-census-'));
  try {
    for (const name of ['train', 'validation', 'test']) writeSplit(dir, name, splits[name]);
    const normalized = Object.fromEntries(Object.entries(configs).map(([kind, config]) => [kind, adatt.normalizeModelConfig(config)]));
    fs.writeFileSync(
      path.join(dir, 'manifest.json'),
      JSON.stringify({
        epochs: args.epochs,
        batchSize: BATCH,
        lr: LR,
        seeds: args.seeds,
        threads: 1,
        tasks: configs[args.kinds[0]].tasks.map((task) => task.name),
        denseDim: splits.train.dense.length / splits.train.size,
        sizes: { train: splits.train.size, validation: splits.validation.size, test: splits.test.size },
        models: normalized,
      }),
    );
    const script = path.join(ROOT, 'scripts', 'reference', 'train_census.py');
    const child = spawnSync(args.python, [script, dir], { stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20, encoding: 'utf8' });
    if (child.status !== 0) throw new Error(`${args.python} ${script} failed (${child.status ?? child.signal})`);
    return JSON.parse(child.stdout);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function meanStd(values) {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.length > 1 ? values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1) : 0;
  return { mean, std: Math.sqrt(variance) };
}

function table(report) {
  const tasks = report.tasks;
  const lines = [
    `| model | implementation | ${tasks.map((task) => `${task} AUC | ${task} NE`).join(' | ')} |`,
    `| --- | --- | ${tasks.map(() => '---: | ---:').join(' | ')} |`,
  ];
  const cell = (runs, task, metric) => {
    const { mean, std } = meanStd(runs.map((run) => run.test[task][metric]));
    return `${mean.toFixed(4)} ± ${std.toFixed(4)}`;
  };
  for (const kind of report.kinds) {
    for (const side of report.sides) {
      const runs = report[side].results[kind];
      lines.push(
        `| ${KINDS[kind].label} | ${SIDES[side]} | ${tasks.map((task) => `${cell(runs, task, 'auc')} | ${cell(runs, task, 'ne')}`).join(' | ')} |`,
      );
    }
  }
  return lines.join('\n');
}

/** Ours minus the reference, per task: the difference of the mean test AUCs ± its standard error. */
function deltaTable(report) {
  const tasks = report.tasks;
  const lines = [`| model | ${tasks.map((task) => `Δ ${task} AUC`).join(' | ')} |`, `| --- | ${tasks.map(() => '---:').join(' | ')} |`];
  for (const kind of report.kinds) {
    const cells = tasks.map((task) => {
      const [a, b] = ['ours', 'reference'].map((side) => report[side].results[kind].map((run) => run.test[task].auc));
      const [x, y] = [meanStd(a), meanStd(b)];
      const se = Math.sqrt(x.std ** 2 / a.length + y.std ** 2 / b.length);
      return `${x.mean >= y.mean ? '+' : '-'}${Math.abs(x.mean - y.mean).toFixed(5)} ± ${se.toFixed(5)}`;
    });
    lines.push(`| ${KINDS[kind].label} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const begin = performance.now();
  const census = await adatt.loadCensusIncome({ dataDir: args.data, tasks: 'all' });
  const splits = { schema: census.schema, train: head(census.train, args.trainRows), validation: census.validation, test: census.test };
  const sections = adatt.modelSections(census.schema);
  const configs = Object.fromEntries(args.kinds.map((kind) => [kind, { kind, ...sections, ...SHAPE, ...KINDS[kind].options }]));
  const report = {
    protocol: {
      epochs: args.epochs,
      seeds: args.seeds,
      batchSize: BATCH,
      optimizer: { type: 'adam', lr: LR },
      ...SHAPE,
      kinds: Object.fromEntries(args.kinds.map((kind) => [kind, KINDS[kind].options])),
      trainRows: splits.train.size,
      validationRows: splits.validation.size,
      testRows: splits.test.size,
      selection: 'best mean validation AUC',
    },
    machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version },
    tasks: sections.tasks.map((task) => task.name),
    kinds: args.kinds,
    sides: args.sides,
    seconds: {},
  };
  for (const side of args.sides) {
    const start = performance.now();
    report[side] = side === 'ours' ? await runOurs(configs, splits, args) : runReference(configs, splits, args);
    report.seconds[side] = (performance.now() - start) / 1000;
  }
  report.seconds.total = (performance.now() - begin) / 1000;
  fs.writeFileSync(args.json, `${JSON.stringify(report, null, 1)}\n`);
  console.log(table(report));
  if (report.ours && report.reference) console.log(`\n${deltaTable(report)}`);
  const timing = Object.entries(report.seconds)
    .map(([name, s]) => `${name} ${(s / 60).toFixed(1)} min`)
    .join(', ');
  console.log(`\n${args.epochs} epochs, seeds ${args.seeds.join(',')}; ${timing}; JSON: ${args.json}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
