#!/usr/bin/env node
'use strict';
/**
 * Vocabulary scaling (`npm run bench:vocab`): training examples/s of one model as its biggest
 * embedding table grows from 1k to 10M ids, adatt (row-sparse tables) beside plain PyTorch with
 * sparse embeddings (nn.Embedding(sparse=True) + SparseAdam, bench/vocab_peer.py), in one run.
 *
 *   node bench/vocab.js [--vocab 1000,100000,1000000,10000000] [--repeats 3] [--steps 40]
 *                       [--threads 2] [--no-peer] [--no-extras] [--json FILE]
 *
 * Every measurement is a fresh child process; ours and the peer alternate within each repeat and
 * the report gives medians. The peer runs in its best honest configurations: 1 thread, and
 * `--threads` threads with OMP_WAIT_POLICY=PASSIVE (its OpenMP pool spinning beside OpenBLAS's
 * costs it most of a second thread otherwise); the better median counts. Extras at the largest
 * vocabulary: row-wise Adagrad's memory, and data-parallel training (1 process x 1 thread against
 * 2 processes x 1 thread, batch per process). Needs dist/ (`npm run build:ts`) and the addon.
 */
const { median, positiveInteger } = require('./stats');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const HERE = __dirname;
const USAGE = 'usage: node bench/vocab.js [--vocab V[,V…]] [--repeats N] [--steps N] [--threads N] [--no-peer] [--no-extras] [--json FILE]';

function parseArgs(argv) {
  const args = { vocab: [1000, 100000, 1000000, 10000000], repeats: 3, steps: 40, threads: 2, peer: true, extras: true, json: undefined };
  const positive = (value, flag) => positiveInteger(value, flag, USAGE);
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i];
    const next = () => argv[++i];
    switch (flag) {
      case '--vocab':
        args.vocab = (next() ?? '').split(',').map((v) => positive(v, flag));
        break;
      case '--repeats':
        args.repeats = positive(next(), flag);
        break;
      case '--steps':
        args.steps = positive(next(), flag);
        break;
      case '--threads':
        args.threads = positive(next(), flag);
        break;
      case '--no-peer':
        args.peer = false;
        break;
      case '--no-extras':
        args.extras = false;
        break;
      case '--json':
        args.json = next();
        break;
      case '-h':
      case '--help':
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${flag}\n${USAGE}`);
    }
  }
  return args;
}

function runChild(command, args, env = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 1 << 24 });
  const line = (result.stdout ?? '')
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  if (result.status !== 0 || !line) {
    throw new Error(`${command} ${args.join(' ')} failed (status ${result.status}):\n${result.stderr}`);
  }
  return JSON.parse(line);
}

const ours = (spec) => runChild(process.execPath, [path.join(HERE, 'vocab-ours.js'), JSON.stringify(spec)]);
const peer = (spec, env) => runChild('/usr/bin/python3', [path.join(HERE, 'vocab_peer.py'), JSON.stringify(spec)], env);

function main() {
  const args = parseArgs(process.argv.slice(2));
  const base = { batch: 1024, steps: args.steps };
  const peers = [
    { name: 'peer, 1 thread', threads: 1, env: {} },
    { name: `peer, ${args.threads} threads, OMP_WAIT_POLICY=PASSIVE`, threads: args.threads, env: { OMP_WAIT_POLICY: 'PASSIVE' } },
  ];
  const samples = new Map(); // `${vocab}/${side}` -> examples/s per repeat
  const memory = new Map();
  const record = (key, value) => samples.set(key, [...(samples.get(key) ?? []), value]);
  for (let repeat = 0; repeat < args.repeats; repeat += 1) {
    for (const vocab of args.vocab) {
      const mine = ours({ ...base, vocab, threads: args.threads });
      record(`${vocab}/ours`, mine.examplesPerSecond);
      memory.set(`${vocab}/ours`, mine.peakRssMiB);
      process.stderr.write(`repeat ${repeat + 1}, V=${vocab}: adatt ${mine.examplesPerSecond.toFixed(0)}/s`);
      if (args.peer) {
        for (const p of peers) {
          const theirs = peer({ ...base, vocab, threads: p.threads }, p.env);
          record(`${vocab}/${p.name}`, theirs.examplesPerSecond);
          memory.set(`${vocab}/${p.name}`, theirs.peakRssMiB);
          process.stderr.write(`, ${p.name} ${theirs.examplesPerSecond.toFixed(0)}/s`);
        }
      }
      process.stderr.write('\n');
    }
  }
  const smallest = median(samples.get(`${args.vocab[0]}/ours`));
  const rows = args.vocab.map((vocab) => {
    const mine = median(samples.get(`${vocab}/ours`));
    const best = args.peer ? Math.max(...peers.map((p) => median(samples.get(`${vocab}/${p.name}`)))) : NaN;
    return {
      vocab,
      ours: mine,
      oursVsSmallest: mine / smallest,
      oursPeakRssMiB: memory.get(`${vocab}/ours`),
      peers: Object.fromEntries(peers.map((p) => [p.name, median(samples.get(`${vocab}/${p.name}`) ?? [])])),
      bestPeer: best,
      ratio: mine / best,
    };
  });

  const largest = args.vocab.at(-1);
  const extras = {};
  if (args.extras) {
    const rowwise = ours({ ...base, vocab: largest, threads: args.threads, embeddingOptimizer: { type: 'rowwise-adagrad', lr: 0.05 } });
    extras.rowwiseAdagrad = { vocab: largest, ...rowwise, stateMiB: (largest * 4) / 2 ** 20 };
    const one = [];
    const two = [];
    for (let repeat = 0; repeat < args.repeats; repeat += 1) {
      one.push(ours({ ...base, vocab: largest, threads: 1 }).examplesPerSecond);
      two.push(ours({ ...base, vocab: largest, threads: 1, processes: 2 }).examplesPerSecond);
      process.stderr.write(
        `repeat ${repeat + 1}, V=${largest} data-parallel: 1 process ${one.at(-1).toFixed(0)}/s, 2 processes ${two.at(-1).toFixed(0)}/s\n`,
      );
    }
    extras.dataParallel = { vocab: largest, oneProcess: median(one), twoProcesses: median(two), ratio: median(two) / median(one) };
  }

  const fmt = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–');
  console.log(
    `\nTraining examples/s, batch 1024, ${args.steps} steps per epoch (second epoch), medians of ${args.repeats}; adatt at ${args.threads} threads.\n`,
  );
  console.log(
    `| V | adatt | vs V = ${args.vocab[0]} | adatt peak RSS, MiB |${args.peer ? ` ${peers.map((p) => p.name).join(' | ')} | adatt / best peer |` : ''}`,
  );
  console.log(`| ---: | ---: | ---: | ---: |${args.peer ? `${peers.map(() => ' ---: |').join('')} ---: |` : ''}`);
  for (const r of rows) {
    const peerCells = args.peer ? ` ${peers.map((p) => fmt(r.peers[p.name])).join(' | ')} | ${r.ratio.toFixed(2)}x |` : '';
    console.log(`| ${fmt(r.vocab)} | ${fmt(r.ours)} | ${r.oursVsSmallest.toFixed(2)} | ${fmt(r.oursPeakRssMiB)} |${peerCells}`);
  }
  if (extras.rowwiseAdagrad) {
    const m = extras.rowwiseAdagrad;
    console.log(
      `\nRow-wise Adagrad at V = ${fmt(m.vocab)}: ${fmt(m.examplesPerSecond)} examples/s; RSS ${fmt(m.rssBeforeTrainingMiB)} MiB before training ` +
        `(table ${fmt(m.tableMiB)} MiB), peak ${fmt(m.peakRssMiB)} MiB (optimizer state ${m.stateMiB.toFixed(1)} MiB).`,
    );
  }
  if (extras.dataParallel) {
    const d = extras.dataParallel;
    console.log(
      `Data-parallel at V = ${fmt(d.vocab)}, 1 thread per process: 1 process ${fmt(d.oneProcess)}/s, 2 processes ${fmt(d.twoProcesses)}/s (${d.ratio.toFixed(2)}x).`,
    );
  }
  if (args.json) fs.writeFileSync(args.json, JSON.stringify({ args, rows, extras }, null, 2));
}

main();
