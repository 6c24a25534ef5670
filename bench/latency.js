#!/usr/bin/env node
'use strict';
/**
 * Per-call latency at small batches, side by side with PyTorch eager: the headline model
 * (AdaTT-sp, 3 tasks, 2 experts per task, experts [[256], [128]], towers [64], 128 dense inputs),
 * one thread, calls one after another. Ours: `model.forward` (tower outputs) and `model.predictions`
 * (probabilities: what the Predictor and `adatt serve` run). The peer: the in-repo
 * PyTorch reference (scripts/reference/adatt_reference.py) under `torch.inference_mode()`, with
 * torch.set_num_threads(1) (its fastest setting at these sizes: nothing to parallelise).
 *
 *   node bench/latency.js [--batch 1,8] [--calls 3000] [--rounds 3]
 *
 * Each round runs ours and the peer in fresh processes, alternating; a process warms up, then
 * times every call. Prints per batch the median over rounds of each side's p50 and p99 (µs) and
 * the ratio of the peer's p50 to ours. Needs dist/ (npm run build:ts) and the addon; the peer runs
 * with Debian's /usr/bin/python3 (python3-torch). See docs/benchmarks.md, "Per-call latency".
 */
const { execFileSync } = require('node:child_process');
const path = require('node:path');
const { HEADLINE, catalogue } = require('./configs');
const { median, positiveInteger } = require('./stats');

const USAGE = 'usage: node bench/latency.js [--batch B[,B…]] [--calls N] [--rounds N]';
const PYTHON = process.env.ADATT_PYTHON || '/usr/bin/python3';

function parseArgs(argv) {
  const args = { batch: [1, 8], calls: 3000, rounds: 3, child: undefined };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === '--batch')
      args.batch = String(value)
        .split(',')
        .map((b) => positiveInteger(b, flag, USAGE));
    else if (flag === '--calls') args.calls = positiveInteger(value, flag, USAGE);
    else if (flag === '--rounds') args.rounds = positiveInteger(value, flag, USAGE);
    else if (flag === '--child') args.child = JSON.parse(value);
    else throw new Error(`unknown option ${flag}\n${USAGE}`);
  }
  return args;
}

function percentile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function summary(microseconds) {
  const sorted = [...microseconds].sort((a, b) => a - b);
  return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };
}

/** In a fresh process: time `calls` forwards and predictions of our model. */
async function runOurs({ batch, calls }) {
  const adatt = require('../dist');
  adatt.setNumThreads(1);
  const entry = catalogue().find((c) => c.name === HEADLINE);
  const model = adatt.createModel(entry.config);
  const width = entry.config.input.dense;
  const dense = Float32Array.from({ length: batch * width }, (_, i) => Math.sin(i));
  const time = async (call) => {
    for (let i = 0; i < Math.min(500, calls); i += 1) await call(); // warm-up
    const us = [];
    for (let i = 0; i < calls; i += 1) {
      const start = process.hrtime.bigint();
      await call();
      us.push(Number(process.hrtime.bigint() - start) / 1000);
    }
    return summary(us);
  };
  const forward = await time(() => model.forward({ size: batch, dense }));
  const predictions = await time(() => model.predictions({ size: batch, dense }));
  model.dispose();
  return { forward, predictions };
}

function child(kind, spec) {
  if (kind === 'ours') {
    const out = execFileSync(process.execPath, [__filename, '--child', JSON.stringify(spec)], { encoding: 'utf8' });
    return JSON.parse(out.trim().split('\n').at(-1));
  }
  const out = execFileSync(PYTHON, [path.join(__dirname, 'peer.py'), 'latency', JSON.stringify(spec)], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').at(-1));
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.child) {
    console.log(JSON.stringify(await runOurs(args.child)));
    return;
  }
  const adatt = require('../dist');
  const entry = catalogue().find((c) => c.name === HEADLINE);
  const native = adatt.normalizeModelConfig(adatt.validateModelConfig(entry.config));
  console.log(
    `# per-call latency, ${HEADLINE}, 1 thread, ${args.calls} calls per process, ${args.rounds} rounds (µs; medians over rounds)\n`,
  );
  console.log(
    '| batch | ours forward p50 | p99 | ours predictions p50 | p99 | PyTorch eager p50 | p99 | PyTorch p50 / ours forward p50 | / ours predictions p50 |',
  );
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const batch of args.batch) {
    const rounds = { ours: [], peer: [] };
    for (let r = 0; r < args.rounds; r += 1) {
      rounds.ours.push(child('ours', { batch, calls: args.calls }));
      rounds.peer.push(child('peer', { native, batch, calls: args.calls, threads: 1 }));
    }
    const m = (values) => median(values);
    const f50 = m(rounds.ours.map((o) => o.forward.p50));
    const p50 = m(rounds.ours.map((o) => o.predictions.p50));
    const peer50 = m(rounds.peer.map((p) => p.p50));
    const cells = [
      batch,
      f50,
      m(rounds.ours.map((o) => o.forward.p99)),
      p50,
      m(rounds.ours.map((o) => o.predictions.p99)),
      peer50,
      m(rounds.peer.map((p) => p.p99)),
    ].map((v, i) => (i === 0 ? String(v) : v.toFixed(0)));
    console.log(`| ${cells.join(' | ')} | ${(peer50 / f50).toFixed(2)} | ${(peer50 / p50).toFixed(2)} |`);
  }
}

main().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
