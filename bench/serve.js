#!/usr/bin/env node
'use strict';
/**
 * Load test of `adatt serve` on loopback: closed-loop clients (each sends its next request when
 * the previous one is answered) at several concurrencies, with micro-batching on and off.
 *
 *   node bench/serve.js [--seconds 2] [--concurrency 1,4,16,64] [--rows 1 | --candidates N] [--threads 1] [--json FILE]
 *
 * Requests are POST /predict with --rows rows each, or with --candidates, POST /score with one user
 * (age, session_minutes, city, device) and N candidates (genres).
 *
 * The model is the headline AdaTT-sp (3 tasks, 2 experts per task, experts [[256],[128]], towers
 * [64]) on the examples' demo-events schema, untrained (latency does not depend on the weights).
 * Each mode runs in its own `adatt serve` process on 127.0.0.1; the client runs in this process,
 * so on a small machine both share the CPUs. Last, without HTTP, it times one request's encoding,
 * its `predictEncoded` and the bare `model.forward` of the same rows. Needs dist/ (npx tsc -p tsconfig.json) and the addon.
 * See docs/serving.md.
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const adatt = require('../dist');
const { EVENTS_SCHEMA, writeEventsCsv } = require('../examples/lib/demo-events');

const BIN = path.join(__dirname, '..', 'bin', 'adatt.js');
const MODES = [
  { name: 'batching while busy (default)', flags: ['--max-batch', '256', '--max-wait', '0'] },
  { name: 'batching, 2 ms wait', flags: ['--max-batch', '256', '--max-wait', '2'] },
  { name: 'no batching', flags: ['--max-batch', '1', '--max-wait', '0'] },
];
const USAGE = 'usage: node bench/serve.js [--seconds S] [--concurrency C[,C…]] [--rows N | --candidates N] [--threads N] [--json FILE]';

function parseArgs(argv) {
  const args = { seconds: 2, concurrency: [1, 4, 16, 64], rows: 1, candidates: undefined, threads: 1, json: undefined };
  for (let i = 0; i < argv.length; i += 1) {
    const [flag, value] = [argv[i], argv[i + 1]];
    const positive = () => {
      const n = Number(value);
      if (!(n > 0)) throw new Error(`${flag} needs a positive number\n${USAGE}`);
      i += 1;
      return n;
    };
    if (flag === '--seconds') args.seconds = positive();
    else if (flag === '--rows') args.rows = Math.round(positive());
    else if (flag === '--candidates') args.candidates = Math.round(positive());
    else if (flag === '--threads') args.threads = Math.round(positive());
    else if (flag === '--concurrency') {
      args.concurrency = String(value).split(',').map(Number);
      if (!args.concurrency.every((n) => Number.isInteger(n) && n > 0)) throw new Error(`--concurrency needs positive integers\n${USAGE}`);
      i += 1;
    } else if (flag === '--json') {
      args.json = value;
      i += 1;
    } else throw new Error(`unknown option ${flag}\n${USAGE}`);
  }
  return args;
}

/** A checkpoint of the headline model with the demo-events schema, and request rows from the same data. */
async function prepare(dir) {
  const csv = writeEventsCsv(path.join(dir, 'events.csv'), { rows: 2000 });
  const table = await adatt.readCsv(csv, adatt.schemaColumns(EVENTS_SCHEMA));
  const schema = adatt.fitSchema(EVENTS_SCHEMA, table);
  const model = adatt.createModel({
    kind: 'adatt-sp',
    ...adatt.modelSections(schema),
    expertDims: [[256], [128]],
    towerDims: [64],
    expertsPerTask: 2,
  });
  const file = path.join(dir, 'serve-bench.adatt');
  try {
    await adatt.saveCheckpoint(file, model, { schema });
  } finally {
    model.dispose();
  }
  const columns = ['age', 'session_minutes', 'city', 'device', 'genres'];
  const rows = Array.from({ length: 512 }, (_, row) =>
    Object.fromEntries(
      columns.map((name) => {
        const value = table.value(table.findColumn(name), row);
        return [name, name === 'age' || name === 'session_minutes' ? Number(value) : value];
      }),
    ),
  );
  return { file, rows };
}

/** One user (the i-th row's user columns) with `count` candidates (the genres of the following rows). */
function scoreBody(rows, i, count) {
  const { genres, ...user } = rows[i % rows.length];
  return { user, candidates: Array.from({ length: count }, (_, c) => ({ genres: rows[(i + 1 + c) % rows.length].genres })) };
}

function startServer(file, flags, threads) {
  const child = spawn(process.execPath, [BIN, 'serve', file, '--port', '0', '--json', '--threads', String(threads), ...flags], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (text) => {
      stdout += text;
      const line = stdout.split('\n').find((entry) => entry.includes('"listening"'));
      if (line) resolve({ child, port: JSON.parse(line).port });
    });
    child.on('exit', (code) => reject(new Error(`adatt serve exited with ${code}`)));
  });
}

function request(agent, port, method, route, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method, path: route, agent, headers: body ? { 'content-type': 'application/json' } : {} },
      (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function batchStats(agent, port) {
  const { body } = await request(agent, port, 'GET', '/metrics');
  const value = (series) => Number(body.match(new RegExp(`^${series} (\\S+)$`, 'm'))?.[1] ?? 0);
  return { calls: value('adatt_batch_requests_count'), requests: value('adatt_batch_requests_sum') };
}

function percentile(sorted, p) {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/** `concurrency` clients, each with its own connection, for `seconds` (after a short warm-up). */
async function measure(port, concurrency, seconds, route, bodies) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies = [];
  const statuses = {};
  const run = async (until, record) => {
    const clients = Array.from({ length: concurrency }, async (_, client) => {
      for (let i = client; performance.now() < until; i += concurrency) {
        const started = performance.now();
        const { status } = await request(agent, port, 'POST', route, bodies[i % bodies.length]);
        if (!record) continue;
        statuses[status] = (statuses[status] ?? 0) + 1;
        if (status === 200) latencies.push(performance.now() - started);
      }
    });
    await Promise.all(clients);
  };
  await run(performance.now() + Math.min(500, seconds * 250), false);
  const before = await batchStats(agent, port);
  const started = performance.now();
  await run(started + seconds * 1000, true);
  const elapsed = (performance.now() - started) / 1000;
  const after = await batchStats(agent, port);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    concurrency,
    requestsPerSecond: (statuses[200] ?? 0) / elapsed,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    requestsPerCall: (after.requests - before.requests) / Math.max(1, after.calls - before.calls),
    statuses,
  };
}

/** Median microseconds of `call` over `count` calls, after a warm-up. */
async function medianMicroseconds(call, count = 1000) {
  for (let i = 0; i < 100; i += 1) await call();
  const times = [];
  for (let i = 0; i < count; i += 1) {
    const started = process.hrtime.bigint();
    await call();
    times.push(Number(process.hrtime.bigint() - started) / 1000);
  }
  return times.sort((a, b) => a - b)[Math.floor(count / 2)];
}

/** Where the time of one request's rows goes without HTTP: encoding, the predict path, the bare forward. */
async function inProcessBreakdown(file, body, threads) {
  adatt.setNumThreads(threads);
  const predictor = await adatt.Predictor.load(file);
  try {
    const encode = () => (body.rows ? predictor.encodeRows(body.rows) : predictor.encodeCandidates(body.user, body.candidates));
    const features = encode();
    const { size: _size, ...batch } = features;
    return {
      encodeMicroseconds: await medianMicroseconds(encode),
      predictEncodedMicroseconds: await medianMicroseconds(() => predictor.predictEncoded(features)),
      forwardMicroseconds: await medianMicroseconds(() => predictor.model.forward(batch)),
    };
  } finally {
    predictor.dispose();
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adatt-serve-bench-'));
  try {
    const { file, rows } = await prepare(dir);
    const route = args.candidates === undefined ? '/predict' : '/score';
    const bodies = Array.from({ length: 64 }, (_, i) =>
      JSON.stringify(
        args.candidates === undefined
          ? { rows: Array.from({ length: args.rows }, (_, r) => rows[(i * args.rows + r) % rows.length]) }
          : scoreBody(rows, i, args.candidates),
      ),
    );
    const results = [];
    for (const mode of MODES) {
      const { child, port } = await startServer(file, mode.flags, args.threads);
      try {
        for (const concurrency of args.concurrency) {
          const result = { mode: mode.name, ...(await measure(port, concurrency, args.seconds, route, bodies)) };
          results.push(result);
          process.stderr.write(`${mode.name}, ${concurrency} clients: ${result.requestsPerSecond.toFixed(0)} req/s\n`);
        }
      } finally {
        child.kill('SIGTERM');
        await new Promise((resolve) => child.once('exit', resolve));
      }
    }
    const header = `| mode | clients | requests/s | p50 ms | p99 ms | requests per model call |\n| --- | ---: | ---: | ---: | ---: | ---: |`;
    const lines = results.map(
      (r) =>
        `| ${r.mode} | ${r.concurrency} | ${r.requestsPerSecond.toFixed(0)} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.requestsPerCall.toFixed(1)} |`,
    );
    const perRequest =
      args.candidates === undefined ? `${args.rows} row(s) per request` : `1 user and ${args.candidates} candidates per request`;
    const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}, Node ${process.version}, ${perRequest}, ${args.seconds} s per point, model threads ${args.threads}`;
    const breakdown = await inProcessBreakdown(file, JSON.parse(bodies[0]), args.threads);
    const steps =
      `In process, one request's rows (median µs): encode ${breakdown.encodeMicroseconds.toFixed(0)}, ` +
      `predictEncoded ${breakdown.predictEncodedMicroseconds.toFixed(0)} (model.forward alone ${breakdown.forwardMicroseconds.toFixed(0)})`;
    console.log(`${machine}\n\n${header}\n${lines.join('\n')}\n\n${steps}`);
    if (args.json) fs.writeFileSync(args.json, `${JSON.stringify({ machine, results, breakdown }, null, 2)}\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
