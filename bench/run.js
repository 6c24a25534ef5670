#!/usr/bin/env node
'use strict';
/**
 * The benchmark suite (`npm run bench`): adatt against its Python peer (scripts/reference on
 * Debian's python3-torch), per model config and batch size, plus the machine's fp32 GEMM rate.
 *
 *   node bench/run.js [--quick] [--config NAME[,NAME…]] [--batch 256,1024] [--repeats 3]
 *                     [--threads 2] [--json FILE] [--python /usr/bin/python3] [--no-peer] [--work GFLOP]
 *                     [--max-wait SECONDS] [--env KEY=VALUE] [--mtl-lib PATH]
 * --mtl-lib: Meta's mtl_lib.py (a checkout of facebookresearch/AdaTT) as a second peer, run beside
 * the in-repo reference with the same training loop (bench/peer.py).
 *
 * Every measurement runs in a fresh child process (bench/ours.js, bench/peer.py) so that peak RSS
 * is that cell's; ours and the peer alternate, each cell is repeated, and the report gives medians.
 * Before each child it waits (up to --max-wait s, default 30; 15 min per run at most) until other
 * processes leave the CPUs idle, and records how many CPUs others used before and during each run (`otherCpusBefore`,
 * `otherCpusDuring`): on a shared machine that matters.
 * Needs `npx tsc -p tsconfig.json` (dist/) and the built addon. See docs/benchmarks.md.
 */
const { median } = require('./stats');
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { normalizeModelConfig, validateModelConfig } = require('../dist');
const { BATCHES, HEADLINE, HEADLINE_BATCH, selectConfigs, forwardFlops } = require('./configs');

const HERE = __dirname;
/** --env settings, passed to every child. */
const extraEnv = {};
const USAGE =
  'usage: node bench/run.js [--quick] [--config NAME[,NAME…]] [--batch B[,B…]] [--repeats N] ' +
  '[--threads N] [--json FILE] [--python PATH] [--no-peer] [--mtl-lib PATH] [--work GFLOP] [--max-wait SECONDS] [--env KEY=VALUE]';

function parseArgs(argv) {
  const args = {
    quick: false,
    configs: [],
    batches: undefined,
    repeats: undefined,
    threads: 2,
    json: undefined,
    python: '/usr/bin/python3',
    peer: true,
    mtlLib: undefined,
    work: undefined,
    maxWait: 30,
    env: {},
  };
  const list = (value, flag) => {
    if (value === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
    return value.split(',').filter(Boolean);
  };
  const positive = (value, flag) => {
    const n = Number(value);
    if (!(n > 0)) throw new Error(`${flag} needs a positive number, got ${value}\n${USAGE}`);
    return n;
  };
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i];
    const next = () => argv[++i];
    switch (flag) {
      case '--quick':
        args.quick = true;
        break;
      case '--config':
        args.configs.push(...list(next(), flag));
        break;
      case '--batch':
        args.batches = list(next(), flag).map((b) => Math.round(positive(b, flag)));
        break;
      case '--repeats':
        args.repeats = Math.round(positive(next(), flag));
        break;
      case '--threads':
        args.threads = Math.round(positive(next(), flag));
        break;
      case '--json':
        args.json = next();
        break;
      case '--python':
        args.python = next();
        break;
      case '--no-peer':
        args.peer = false;
        break;
      case '--mtl-lib': {
        // Meta's mtl_lib.py (facebookresearch/AdaTT), a second peer beside the in-repo reference
        args.mtlLib = path.resolve(next() ?? '');
        if (!fs.existsSync(args.mtlLib)) throw new Error(`--mtl-lib: no file ${args.mtlLib}\n${USAGE}`);
        break;
      }
      case '--work':
        args.work = positive(next(), flag);
        break;
      case '--max-wait':
        args.maxWait = Number(next());
        break;
      case '--env': {
        // extra environment for both sides, e.g. OMP_WAIT_POLICY=PASSIVE
        const [key, ...value] = (next() ?? '').split('=');
        if (!key || value.length === 0) throw new Error(`--env needs KEY=VALUE\n${USAGE}`);
        args.env[key] = value.join('=');
        break;
      }
      case '-h':
      case '--help':
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${flag}\n${USAGE}`);
    }
  }
  args.batches ??= args.quick ? [HEADLINE_BATCH] : BATCHES;
  args.repeats ??= args.quick ? 1 : 3;
  args.work ??= args.quick ? 6 : 12;
  return args;
}

const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));

const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Jiffies of all CPUs together from /proc/stat: total and idle (incl. iowait). */
function cpuSample() {
  const [, ...fields] = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  return { total: fields.slice(0, 8).reduce((a, b) => a + b, 0), idle: fields[3] + fields[4] };
}

/** CPUs busy on average between two samples (whole machine). */
const busyBetween = (a, b) => os.cpus().length * (1 - (b.idle - a.idle) / Math.max(1, b.total - a.total));

/** CPUs kept busy by other processes (none of ours runs between cells), over `ms`. */
function busyCpus(ms = 500) {
  const a = cpuSample();
  sleep(ms);
  return busyBetween(a, cpuSample());
}

const WAIT_BUDGET_S = 900;
let waitedS = 0;

/**
 * Waits (up to maxWait seconds, and 15 minutes over the whole run) until other processes use
 * under 0.3 CPUs; returns the last reading.
 */
function waitForIdle(maxWait) {
  const started = Date.now();
  const deadline = started + 1000 * Math.min(maxWait, Math.max(0, WAIT_BUDGET_S - waitedS));
  let busy = busyCpus();
  while (busy > 0.3 && Date.now() < deadline) {
    sleep(2000);
    busy = busyCpus();
  }
  waitedS += (Date.now() - started) / 1000;
  return busy;
}

/** The addon binary's hash: other work may rebuild it during a long run. */
function addonHash() {
  try {
    const file = path.join(HERE, '..', 'build', 'Release', 'adatt.node');
    return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex').slice(0, 16);
  } catch {
    return undefined;
  }
}

/** Runs one child; returns its JSON line, or { error }. */
function child(command, argv, threads) {
  const n = String(threads);
  const env = { ...process.env, OMP_NUM_THREADS: n, OPENBLAS_NUM_THREADS: n, MKL_NUM_THREADS: n, ...extraEnv };
  const before = cpuSample();
  const started = Date.now();
  const run = spawnSync(command, argv, { cwd: path.join(HERE, '..'), env, encoding: 'utf8', maxBuffer: 64 << 20 });
  const wall = (Date.now() - started) / 1000;
  const busy = busyBetween(before, cpuSample());
  const last = run.stdout?.trim().split('\n').pop();
  if (run.status === 0 && last) {
    const result = JSON.parse(last);
    // CPUs that other processes used meanwhile: the machine's busy time less the child's own CPU time.
    if (result.cpuSeconds !== undefined) result.otherCpusDuring = Math.max(0, busy - result.cpuSeconds / wall);
    return result;
  }
  const why = run.error?.message ?? (run.stderr || '').trim().split('\n').slice(-3).join(' | ');
  return { error: `exit ${run.status ?? run.signal}: ${why}` };
}

const ours = (arg, threads) => child(process.execPath, [path.join(HERE, 'ours.js'), arg], threads);
const peer = (python, argv, threads) => child(python, [path.join(HERE, 'peer.py'), ...argv], threads);

function machineInfo(args) {
  const lscpu = spawnSync('lscpu', { encoding: 'utf8' }).stdout ?? '';
  const field = (name) => lscpu.match(new RegExp(`^${name}:\\s*(.+)$`, 'm'))?.[1]?.trim();
  return {
    cpu: field('Model name'),
    cpuFamilyModel: `${field('CPU family')}/${field('Model')}`,
    avx512: /\bavx512f\b/.test(field('Flags') ?? ''),
    cpus: os.cpus().length,
    threadsPerCore: Number(field('Thread\\(s\\) per core')),
    memoryGiB: os.totalmem() / 2 ** 30,
    kernel: os.release(),
    node: process.version,
    ours: ours('info', args.threads),
    peer: args.peer ? peer(args.python, ['info'], args.threads) : undefined,
  };
}

function gemm(args, shapes) {
  return peer(args.python, ['gemm', JSON.stringify({ threads: args.threads, shapes })], args.threads);
}

/** The same data size, batches and steps for both sides, scaled so that one epoch is ~`work` GFLOP. */
function cellSpec(entry, batch, args) {
  const native = normalizeModelConfig(validateModelConfig(entry.config));
  const forward = forwardFlops(native);
  const stepsFor = (gflop, lo, hi) => clamp(Math.round((gflop * 1e9) / (3 * forward * batch)), lo, hi);
  const steps = stepsFor(args.work, 1, 64);
  return {
    name: entry.name,
    family: entry.family,
    T: entry.T,
    m: entry.m,
    batch,
    forwardFlops: forward,
    trainFlops: 3 * forward,
    spec: {
      config: entry.config,
      native,
      batch,
      examples: steps * batch,
      epochs: 2,
      latencySteps: stepsFor(args.work / 2, 3, 20),
      inferenceRepeats: 2,
      threads: args.threads,
    },
  };
}

const METRICS = ['trainExamplesPerSecond', 'inferExamplesPerSecond', 'stepMs', 'peakRssMiB', 'otherCpusDuring'];

function summarize(cell, gemmRate) {
  const side = (runs) => {
    const ok = runs.filter((r) => !r.error);
    if (ok.length === 0) return runs.length ? { error: runs[0].error } : undefined;
    const s = Object.fromEntries(METRICS.map((k) => [k, median(ok.map((r) => r[k]))]));
    s.trainGflops = (s.trainExamplesPerSecond * cell.trainFlops) / 1e9;
    s.inferGflops = (s.inferExamplesPerSecond * cell.forwardFlops) / 1e9;
    s.trainFractionOfGemm = s.trainGflops / gemmRate;
    s.inferFractionOfGemm = s.inferGflops / gemmRate;
    s.parameters = ok[0].parameters;
    s.runs = runs;
    return s;
  };
  const o = side(cell.runs.ours);
  const p = side(cell.runs.peer);
  const m = side(cell.runs.meta);
  const ratio = (other, k) => (o && other && !o.error && !other.error ? o[k] / other[k] : undefined);
  const { spec, runs, ...rest } = cell;
  return {
    ...rest,
    examples: spec.examples,
    epochs: spec.epochs,
    latencySteps: spec.latencySteps,
    ours: o,
    peer: p,
    mtlLib: m,
    ratio: { train: ratio(p, 'trainExamplesPerSecond'), infer: ratio(p, 'inferExamplesPerSecond'), stepMs: ratio(p, 'stepMs') },
    ratioToMtlLib: m && { train: ratio(m, 'trainExamplesPerSecond'), infer: ratio(m, 'inferExamplesPerSecond') },
  };
}

const fmt = (x, digits = 0) =>
  Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '-';
const pct = (x) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '-');

function table(results) {
  const head = [
    'config',
    'batch',
    'MFLOP/ex',
    'train ex/s ours',
    'peer',
    'x',
    'infer ex/s ours',
    'peer',
    'x',
    'step ms ours',
    'peer',
    'GFLOP/s ours',
    '%GEMM',
    'peer',
    '%GEMM',
    'RSS MiB ours',
    'peer',
    'others',
  ];
  const rows = results.map((r) => {
    const o = r.ours ?? {};
    const p = r.peer ?? {};
    return [
      r.name,
      String(r.batch),
      fmt(r.trainFlops / 1e6, 2),
      fmt(o.trainExamplesPerSecond),
      fmt(p.trainExamplesPerSecond),
      fmt(r.ratio.train, 2),
      fmt(o.inferExamplesPerSecond),
      fmt(p.inferExamplesPerSecond),
      fmt(r.ratio.infer, 2),
      fmt(o.stepMs, 1),
      fmt(p.stepMs, 1),
      fmt(o.trainGflops, 1),
      pct(o.trainFractionOfGemm),
      fmt(p.trainGflops, 1),
      pct(p.trainFractionOfGemm),
      fmt(o.peakRssMiB),
      fmt(p.peakRssMiB),
      fmt(Math.max(...[o.otherCpusDuring, p.otherCpusDuring].filter(Number.isFinite)), 2),
    ];
  });
  if (results.some((r) => r.mtlLib)) {
    head.push('train ex/s mtl_lib.py', 'x', 'infer ex/s mtl_lib.py', 'x');
    for (const [i, r] of results.entries()) {
      rows[i].push(
        fmt(r.mtlLib?.trainExamplesPerSecond),
        fmt(r.ratioToMtlLib?.train, 2),
        fmt(r.mtlLib?.inferExamplesPerSecond),
        fmt(r.ratioToMtlLib?.infer, 2),
      );
    }
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  Object.assign(extraEnv, args.env);
  const started = Date.now();
  const entries = selectConfigs(args.configs, args.quick);
  const cells = entries.flatMap((entry) => args.batches.map((batch) => cellSpec(entry, batch, args)));
  for (const cell of cells) cell.runs = { ours: [], peer: [], meta: [] };
  const log = (message) => process.stderr.write(`${message}\n`);

  const loadAtStart = os.loadavg()[0];
  const addonAtStart = addonHash();
  if (loadAtStart > 0.5) log(`warning: load average ${loadAtStart.toFixed(2)}: other work on this machine skews the numbers`);
  const machine = machineInfo(args);
  if (machine.ours.error) throw new Error(`bench/ours.js info failed (is dist/ built? npx tsc -p tsconfig.json): ${machine.ours.error}`);
  if (machine.peer?.error) throw new Error(`the peer failed (${args.python}, needs python3-torch): ${machine.peer.error}`);
  log(
    `${machine.cpu}, ${machine.cpus} CPUs; LibTorch ${machine.ours.libtorchVersion}; ${args.threads} threads; ` +
      `${Object.entries(args.env)
        .map(([k, v]) => `${k}=${v}; `)
        .join('')}` +
      `${cells.length} cells x ${args.repeats} repeats`,
  );
  const gemmShapes = [
    [1024, 1024, 1024],
    [HEADLINE_BATCH, 128, 256],
  ];
  const gemmBefore = gemm(args, gemmShapes);
  if (gemmBefore.error) throw new Error(`GEMM measurement failed: ${gemmBefore.error}`);

  let done = 0;
  const total = cells.length * args.repeats;
  for (let r = 0; r < args.repeats; r += 1) {
    for (const [c, cell] of cells.entries()) {
      const arg = JSON.stringify(cell.spec);
      const sides = [['ours', () => ours(arg, args.threads)]];
      if (args.peer) sides.push(['peer', () => peer(args.python, [arg], args.threads)]);
      if (args.mtlLib) sides.push(['meta', () => peer(args.python, [JSON.stringify({ ...cell.spec, mtlLib: args.mtlLib })], args.threads)]);
      // Rotate which side runs first, so that none always runs on a fresher machine.
      for (let turn = (r + c) % sides.length; turn > 0; turn -= 1) sides.push(sides.shift());
      for (const [name, run] of sides) {
        const otherCpusBefore = args.maxWait > 0 ? waitForIdle(args.maxWait) : undefined;
        cell.runs[name].push({ ...run(), otherCpusBefore });
      }
      done += 1;
      const o = cell.runs.ours.at(-1);
      const p = cell.runs.peer.at(-1);
      const m = cell.runs.meta.at(-1);
      const show = (x) => (x === undefined ? '' : x.error ? `ERROR ${x.error}` : `${fmt(x.trainExamplesPerSecond)} ex/s`);
      log(
        `[${done}/${total}] ${cell.name} b${cell.batch}: ours ${show(o)}${args.peer ? `, peer ${show(p)}` : ''}${args.mtlLib ? `, mtl_lib.py ${show(m)}` : ''}`,
      );
    }
  }
  const gemmAfter = gemm(args, gemmShapes);
  const addon = { start: addonAtStart, end: addonHash() };
  if (addon.start !== addon.end) log('warning: build/Release/adatt.node changed during the run');
  // The machine's rate: the best 1024^3 figure of the two measurements (the machine is shared).
  const rateOf = (g, i) => g.rates?.[i]?.gflops ?? NaN;
  const gemmRate = Math.max(rateOf(gemmBefore, 0), rateOf(gemmAfter, 0));
  const results = cells.map((cell) => summarize(cell, gemmRate));

  const headline = results.find((r) => r.name === HEADLINE && r.batch === HEADLINE_BATCH);
  const seconds = (Date.now() - started) / 1000;
  console.log(table(results));
  console.log(
    `\nfp32 GEMM (torch.mm, ${args.threads} threads): 1024x1024x1024 ${fmt(gemmRate, 1)} GFLOP/s; ` +
      `${gemmShapes[1].join('x')} ${fmt(Math.max(rateOf(gemmBefore, 1), rateOf(gemmAfter, 1)), 1)} GFLOP/s`,
  );
  if (headline?.ours && headline.peer) {
    console.log(
      `headline ${HEADLINE} b${HEADLINE_BATCH}: training x${fmt(headline.ratio.train, 2)}, ` +
        `inference x${fmt(headline.ratio.infer, 2)} (ours/peer)` +
        (headline.ratioToMtlLib
          ? `; against mtl_lib.py: training x${fmt(headline.ratioToMtlLib.train, 2)}, inference x${fmt(headline.ratioToMtlLib.infer, 2)}`
          : ''),
    );
  }
  console.log(
    `others: CPUs used by other processes during the runs (median, worse side); ` +
      `${cells.length} cells x ${args.repeats} repeats in ${fmt(seconds)} s (${fmt(waitedS)} s of it waiting for idle CPUs)`,
  );

  if (args.json) {
    const out = {
      date: new Date().toISOString(),
      argv: process.argv.slice(2),
      threads: args.threads,
      repeats: args.repeats,
      env: args.env,
      workGflopPerEpoch: args.work,
      seconds,
      waitedForIdleSeconds: waitedS,
      load: [loadAtStart, os.loadavg()[0]],
      addon,
      machine,
      gemm: { before: gemmBefore, after: gemmAfter, rateGflops: gemmRate },
      results,
    };
    fs.writeFileSync(args.json, `${JSON.stringify(out, null, 1)}\n`);
    log(`wrote ${args.json}`);
  }
  if (results.some((r) => r.ours?.error || r.peer?.error || r.mtlLib?.error)) process.exitCode = 1;
}

try {
  main();
} catch (error) {
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}
