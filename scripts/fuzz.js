#!/usr/bin/env node
'use strict';
// Robustness fuzzing: every case must end in a typed adatt error or a correct result, never a crash or
// a hang. Run larger than the test suite does: `node scripts/fuzz.js --cases 1000`.
//   --cases N     cases per kind (default 1000)
//   --kinds LIST  comma list of checkpoint, weights, torchscript, config, csv (default all)
//   --seed S      random seed (default 1)
//   --fixtures D  folder with scripted.pt (scripts/reference/make_torchscript_fixtures.py); made if absent
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const adatt = require('..');

const KINDS = ['checkpoint', 'weights', 'torchscript', 'config', 'csv'];

function parseArgs(argv) {
  const args = { cases: 1000, kinds: KINDS, seed: 1, fixtures: undefined };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === '--cases') args.cases = Number(value);
    else if (flag === '--kinds') args.kinds = value.split(',');
    else if (flag === '--seed') args.seed = Number(value);
    else if (flag === '--fixtures') args.fixtures = value;
    else throw new Error(`unknown option ${flag}`);
  }
  return args;
}

function random(seed) {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 2 ** 32;
  };
}

/** Truncations, bit flips and random bytes derived from a valid file. */
function* mutations(bytes, count, next) {
  for (let i = 0; i < count; i += 1) {
    const kind = i % 3;
    if (kind === 0) yield ['truncated', bytes.subarray(0, Math.floor(next() * bytes.length))];
    else if (kind === 1) {
      const copy = Buffer.from(bytes);
      const flips = 1 + Math.floor(next() * 8);
      for (let f = 0; f < flips; f += 1) copy[Math.floor(next() * copy.length)] ^= 1 << Math.floor(next() * 8);
      yield ['bit-flipped', copy];
    } else {
      yield ['random', Buffer.from(Array.from({ length: Math.floor(next() * 4096) }, () => Math.floor(next() * 256)))];
    }
  }
}

const MODEL = {
  kind: 'adatt',
  input: { dense: 3, categorical: [{ name: 'c', vocab: 5, dim: 2 }] },
  tasks: [
    { name: 'a', type: 'binary' },
    { name: 'b', type: 'multiclass', classes: 3 },
  ],
  expertDims: [[6], [4]],
  expertsPerTask: [2, 1],
  sharedExperts: 1,
};
const BATCH = { dense: [[1, 2, 3]], categorical: [[4]] };

async function expectHandled(label, action, tally) {
  try {
    await action();
    tally.accepted += 1;
  } catch (err) {
    if (!(err instanceof adatt.AdattError)) throw new Error(`${label}: untyped error ${err?.stack}`);
    tally.rejected += 1;
  }
}

async function fuzzFiles(kind, cases, next, dir, fixtures) {
  const tally = { accepted: 0, rejected: 0 };
  const model = adatt.createModel(MODEL);
  const source = path.join(dir, `source.${kind}`);
  if (kind === 'checkpoint') await adatt.saveCheckpoint(source, model);
  else if (kind === 'weights') await model.saveWeights(source);
  else fs.copyFileSync(path.join(fixtures, 'scripted.pt'), source);
  const bytes = fs.readFileSync(source);
  const file = path.join(dir, `case.${kind}`);
  for (const [mutation, content] of mutations(bytes, cases, next)) {
    fs.writeFileSync(file, content);
    await expectHandled(
      `${kind} ${mutation}`,
      async () => {
        if (kind === 'checkpoint') {
          const { model: loaded } = await adatt.loadCheckpoint(file);
          await loaded.forward(BATCH);
          loaded.dispose();
        } else if (kind === 'weights') {
          await model.loadWeights(file);
        } else {
          const scripted = await adatt.loadTorchScript(file);
          scripted.dispose();
        }
      },
      tally,
    );
  }
  model.dispose();
  return tally;
}

function randomValue(next, depth = 0) {
  const choice = Math.floor(next() * (depth > 2 ? 6 : 8));
  return [
    () => -1,
    () => 0,
    () => 1.5,
    () => 'x',
    () => null,
    () => 2 ** 40,
    () => [randomValue(next, depth + 1)],
    () => ({ k: randomValue(next, depth + 1) }),
  ][choice]();
}

/** A valid config with one field replaced by a random value (or removed, or an unknown key added). */
function mutateConfig(next) {
  const config = JSON.parse(JSON.stringify(MODEL));
  const paths = [
    ['kind'],
    ['input', 'dense'],
    ['input', 'categorical', 0, 'vocab'],
    ['input', 'categorical', 0, 'dim'],
    ['tasks', 0, 'type'],
    ['tasks', 1, 'classes'],
    ['tasks', 0, 'name'],
    ['expertDims', 0, 0],
    ['expertDims', 1],
    ['expertsPerTask'],
    ['expertsPerTask', 0],
    ['sharedExperts'],
    ['towerDims'],
    ['seed'],
    ['bogus'],
  ];
  const target = paths[Math.floor(next() * paths.length)];
  let holder = config;
  for (const key of target.slice(0, -1)) holder = holder[key];
  if (next() < 0.15) delete holder[target.at(-1)];
  else holder[target.at(-1)] = randomValue(next);
  return config;
}

async function fuzzConfigs(cases, next) {
  const tally = { accepted: 0, rejected: 0 };
  for (let i = 0; i < cases; i += 1) {
    await expectHandled(
      'config',
      async () => {
        const model = adatt.createModel(mutateConfig(next));
        await model.forward(BATCH).catch((err) => {
          if (!(err instanceof adatt.AdattError)) throw err;
        });
        model.dispose();
      },
      tally,
    );
  }
  return tally;
}

function malformedRow(next) {
  const pieces = ['1', '2.5', 'abc', '"q"', '"unterminated', '""', '', '?', ',', '\t', ' , ', '"a""b"', 'NaN', '1e999', '-'];
  return Array.from({ length: Math.floor(next() * 7) }, () => pieces[Math.floor(next() * pieces.length)]).join(',');
}

async function fuzzCsv(cases, next) {
  const tally = { accepted: 0, rejected: 0 };
  const spec = {
    dense: [{ column: 'x' }],
    categorical: [{ column: 'c' }],
    tasks: [{ name: 'y', type: 'binary', column: 'y', positive: '1' }],
  };
  for (let i = 0; i < cases; i += 1) {
    const text = `x,c,y\n1,a,1\n2,b,0\n${malformedRow(next)}\n3,a,1\n`;
    await expectHandled(
      'csv',
      async () => {
        const table = adatt.parseCsv(text, { numeric: ['x'] });
        const schema = adatt.fitSchema(spec, table);
        adatt.encode(schema, table);
      },
      tally,
    );
  }
  return tally;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adatt-fuzz-'));
  let fixtures = args.fixtures;
  if (args.kinds.includes('torchscript') && !fixtures) {
    fixtures = dir;
    execFileSync(process.env.ADATT_PYTHON || '/usr/bin/python3', [
      path.join(__dirname, 'reference', 'make_torchscript_fixtures.py'),
      fixtures,
    ]);
  }
  const results = {};
  for (const kind of args.kinds) {
    const started = Date.now();
    // One stream per kind, so a failing case can be replayed with --kinds alone.
    const next = random(args.seed * 7919 + KINDS.indexOf(kind));
    if (kind === 'config') results[kind] = await fuzzConfigs(args.cases, next);
    else if (kind === 'csv') results[kind] = await fuzzCsv(args.cases, next);
    else results[kind] = await fuzzFiles(kind, args.cases, next, dir, fixtures);
    results[kind].seconds = (Date.now() - started) / 1000;
  }
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(JSON.stringify(results));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
