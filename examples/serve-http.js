#!/usr/bin/env node
// Serving predictions over HTTP with node:http: a model loaded from a checkpoint (weights plus the
// fitted schema), POST /predict with JSON rows of raw feature values -> per-task probabilities.
//
//   node examples/serve-http.js [model.adatt] [--serve]
//
// Without a checkpoint it first trains a small model on demo events (examples/lib/demo-events.js).
// It then listens on 127.0.0.1, sends itself a few requests, prints the answers and stops; with
// --serve it keeps serving on $PORT (default 8080):
//
//   curl -s localhost:8080/predict -d '{"rows":[{"age":25,"session_minutes":30,"city":"paris","device":"ios","genres":"comedy"}]}'
'use strict';
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const adatt = require('..');
const { EVENTS_SCHEMA, writeEventsCsv } = require('./lib/demo-events');

const MAX_BODY_BYTES = 1 << 20;
const MAX_ROWS = 10000;

/** A checkpoint to serve: the one given, or a quickly trained demo model. */
async function checkpointFile(given) {
  if (given) return given;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adatt-serve-'));
  const table = await adatt.readCsv(writeEventsCsv(path.join(dir, 'events.csv'), { rows: 3000 }), adatt.schemaColumns(EVENTS_SCHEMA));
  const schema = adatt.fitSchema(EVENTS_SCHEMA, table);
  const train = adatt.TensorDataset.fromEncoded(adatt.encode(schema, table), { schema, taskNames: schema.tasks.map((t) => t.name) });
  const model = adatt.createModel({ kind: 'adatt-sp', ...adatt.modelSections(schema), expertDims: [[16]], towerDims: [8], expertsPerTask: 1 });
  try {
    await adatt.fit(model, train, { epochs: 2, batchSize: 128, optimizer: { lr: 5e-3 }, losses: { watch: { weight: 0.001 } } });
    const file = path.join(dir, 'demo.adatt');
    await adatt.saveCheckpoint(file, model, { schema });
    console.log(`trained a demo model: ${file}`);
    return file;
  } finally {
    model.dispose();
    train.dispose();
  }
}

/**
 * Raw rows -> encoded features, with the checkpoint's fitted schema (the training vocabularies and
 * normalisation). Label columns are not part of a request: they are added as missing.
 */
function encodeRows(schema, rows) {
  const columns = {};
  for (const column of schema.columns) columns[column] = rows.map((row) => row[column] ?? null);
  return adatt.encode(schema, adatt.tableFromColumns(columns, { source: 'request' }));
}

/** Per row, per task: the probability (binary), the class probabilities (multiclass) or the value. */
function toRows(schema, outputs, count) {
  return Array.from({ length: count }, (_, i) => Object.fromEntries(schema.tasks.map((task) => {
    const values = outputs[task.name];
    if (task.type !== 'multiclass') return [task.name, values[i]];
    const k = task.classes.length;
    return [task.name, Object.fromEntries(task.classes.map((label, c) => [label, values[i * k + c]]))];
  })));
}

/** A model runs one operation at a time (others would get a BusyError): queue the requests. */
function serialized() {
  let queue = Promise.resolve();
  return (work) => {
    const result = queue.then(work, work);
    queue = result.catch(() => undefined);
    return result;
  };
}

async function readJson(request) {
  let size = 0;
  const chunks = [];
  for await (const chunk of request) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw Object.assign(new Error(`body over ${MAX_BODY_BYTES} bytes`), { status: 413 });
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw Object.assign(new Error(`invalid JSON: ${err.message}`), { status: 400 });
  }
}

function createServer(model, schema) {
  const exclusive = serialized();
  const taskNames = schema.tasks.map((t) => t.name);
  return http.createServer(async (request, response) => {
    const send = (status, body) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    };
    try {
      if (request.url === '/health' && request.method === 'GET') {
        return send(200, { model: model.config.kind, tasks: schema.tasks.map((t) => ({ name: t.name, type: t.type })) });
      }
      if (request.url !== '/predict') return send(404, { error: 'not found: use POST /predict or GET /health' });
      if (request.method !== 'POST') return send(405, { error: 'use POST' });
      const body = await readJson(request);
      if (!Array.isArray(body?.rows) || body.rows.length === 0 || body.rows.length > MAX_ROWS) {
        return send(400, { error: `the body must be { "rows": [ {column: value, …}, … ] } with 1 to ${MAX_ROWS} rows` });
      }
      const encoded = encodeRows(schema, body.rows);
      const outputs = await exclusive(async () => {
        const rows = adatt.TensorDataset.fromEncoded(encoded, { taskNames });
        try {
          return await adatt.predict(model, rows);
        } finally {
          rows.dispose();
        }
      });
      return send(200, { predictions: toRows(schema, outputs, body.rows.length) });
    } catch (err) {
      // Bad input (an unknown column type, a non-numeric age, …) is the client's error, with adatt's message.
      const status = err.status ?? (err instanceof adatt.ValidationError || err instanceof adatt.ConfigError ? 400 : 500);
      return send(status, { error: err.message });
    }
  });
}

async function selfTest(base) {
  const post = (body) => fetch(`${base}/predict`, { method: 'POST', body: JSON.stringify(body) });
  console.log('GET /health ->', await (await fetch(`${base}/health`)).json());
  const rows = [
    { age: 24, session_minutes: 35, city: 'paris', device: 'ios', genres: 'comedy|drama' },
    { age: 61, session_minutes: 3, city: 'lima', device: 'web', genres: 'documentary' },
    { age: 40, session_minutes: 12, city: 'atlantis', device: 'android', genres: '' }, // unseen city: out of vocabulary
  ];
  const answer = await post({ rows });
  console.log(`POST /predict (${rows.length} rows) -> ${answer.status}`);
  console.log(JSON.stringify(await answer.json(), (k, v) => (typeof v === 'number' ? Number(v.toFixed(4)) : v), 2));
  // Concurrent requests are queued, not refused.
  const many = await Promise.all(Array.from({ length: 4 }, () => post({ rows })));
  console.log('4 concurrent requests ->', many.map((r) => r.status).join(', '));
  const bad = await post({ rows: [{ age: 'old' }] });
  console.log(`POST /predict with age "old" -> ${bad.status}: ${(await bad.json()).error}`);
  return answer.status === 200 && many.every((r) => r.status === 200) && bad.status === 400;
}

async function main() {
  const args = process.argv.slice(2);
  const serve = args.includes('--serve');
  const file = await checkpointFile(args.find((a) => !a.startsWith('--')));
  const { model, schema } = await adatt.loadCheckpoint(file);
  if (!schema) throw new Error(`${file} has no data schema: save it with saveCheckpoint(file, model, { schema })`);
  const server = createServer(model, schema);
  const port = serve ? Number(process.env.PORT ?? 8080) : 0;
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  console.log(`serving ${model.config.kind} (${schema.tasks.map((t) => t.name).join(', ')}) on ${base}`);
  if (serve) {
    process.once('SIGINT', () => server.close(() => model.dispose()));
    return;
  }
  const ok = await selfTest(base);
  await new Promise((resolve) => server.close(resolve));
  model.dispose();
  console.log(ok ? 'self-test passed; server stopped' : 'self-test FAILED');
  process.exitCode = ok ? 0 : 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
