#!/usr/bin/env node
// Serving predictions over HTTP: a checkpoint (weights plus the fitted schema) behind adatt's
// PredictionServer, which is what `adatt serve` runs. JSON rows of raw feature values in,
// per-task probabilities out; concurrent requests share model calls (docs/serving.md).
//
//   node examples/serve-http.js [model.adatt] [--serve]
//
// Without a checkpoint it first trains a small model on demo events (examples/lib/demo-events.js).
// It then listens on 127.0.0.1, sends itself a few requests, prints the answers and stops; with
// --serve it keeps serving on $PORT (default 8080) until SIGTERM or Ctrl-C:
//
//   curl -s localhost:8080/predict -d '{"rows":[{"age":25,"session_minutes":30,"city":"paris","device":"ios","genres":"comedy"}]}'
//   curl -s localhost:8080/score -d '{"user":{"age":25,"session_minutes":30,"city":"paris","device":"ios"},"candidates":[{"genres":"comedy"},{"genres":"drama"}]}'
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const adatt = require('..');
const { EVENTS_SCHEMA, writeEventsCsv } = require('./lib/demo-events');

/** A checkpoint to serve: the one given, or a quickly trained demo model. */
async function checkpointFile(given) {
  if (given) return given;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adatt-serve-'));
  const table = await adatt.readCsv(writeEventsCsv(path.join(dir, 'events.csv'), { rows: 3000 }), adatt.schemaColumns(EVENTS_SCHEMA));
  const schema = adatt.fitSchema(EVENTS_SCHEMA, table);
  const train = adatt.TensorDataset.fromEncoded(adatt.encode(schema, table), { schema, taskNames: schema.tasks.map((t) => t.name) });
  const model = adatt.createModel({
    kind: 'adatt-sp',
    ...adatt.modelSections(schema),
    expertDims: [[16]],
    towerDims: [8],
    expertsPerTask: 1,
  });
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

const round = (_key, value) => (typeof value === 'number' ? Number(value.toFixed(4)) : value);

async function selfTest(base) {
  const post = (route, body) => fetch(`${base}${route}`, { method: 'POST', body: JSON.stringify(body) });
  console.log('GET /health ->', JSON.stringify(await (await fetch(`${base}/health`)).json()));
  const rows = [
    { age: 24, session_minutes: 35, city: 'paris', device: 'ios', genres: 'comedy|drama' },
    { age: 61, session_minutes: 3, city: 'lima', device: 'web', genres: ['documentary'] },
    { age: 40, session_minutes: null, city: 'atlantis', device: 'android', genres: '' }, // unseen city: out of vocabulary
  ];
  const answer = await post('/predict', { rows });
  console.log(`POST /predict (${rows.length} rows) -> ${answer.status}`);
  console.log(JSON.stringify(await answer.json(), round, 2));
  // One user, several candidates: the user's columns are sent once.
  const user = { age: 24, session_minutes: 35, city: 'paris', device: 'ios' };
  const candidates = [{ genres: 'comedy' }, { genres: 'documentary' }, { genres: 'horror|kids' }];
  const scored = await post('/score', { user, candidates });
  const clicks = (await scored.json()).predictions.map((p) => p.click.toFixed(3));
  console.log(`POST /score (1 user, ${candidates.length} candidates) -> ${scored.status}: click ${clicks.join(', ')}`);
  // Concurrent requests are merged into shared model calls, not refused.
  const many = await Promise.all(Array.from({ length: 8 }, () => post('/predict', { rows })));
  console.log('8 concurrent requests ->', many.map((r) => r.status).join(', '));
  const metrics = await (await fetch(`${base}/metrics`)).text();
  const calls = metrics.match(/^adatt_batch_requests_count (\d+)$/m)?.[1];
  const requests = metrics.match(/^adatt_batch_requests_sum (\d+)$/m)?.[1];
  console.log(`GET /metrics -> ${requests} requests in ${calls} model calls`);
  const bad = await post('/predict', { rows: [{ ...rows[0], age: 'old' }] });
  const { error, field } = await bad.json();
  console.log(`POST /predict with age "old" -> ${bad.status} (${field}): ${error}`);
  return answer.status === 200 && scored.status === 200 && many.every((r) => r.status === 200) && bad.status === 400;
}

async function main() {
  const args = process.argv.slice(2);
  const serve = args.includes('--serve');
  const file = await checkpointFile(args.find((a) => !a.startsWith('--')));
  const predictor = await adatt.Predictor.load(file);
  // The self-test's tiny model answers in well under a millisecond, before the next request is even
  // parsed: a short wait lets its concurrent requests share model calls. Serving keeps the default
  // (no wait: batches form while the model is busy).
  const server = new adatt.PredictionServer(predictor, serve ? {} : { maxWaitMs: 20 });
  const { port } = await server.listen(serve ? Number(process.env.PORT ?? 8080) : 0, '127.0.0.1');
  const base = `http://127.0.0.1:${port}`;
  console.log(`serving ${predictor.model.config.kind} (${predictor.schema.tasks.map((t) => t.name).join(', ')}) on ${base}`);
  if (serve) {
    const stop = () => server.close().then(() => predictor.dispose());
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    return;
  }
  const ok = await selfTest(base);
  await server.close();
  predictor.dispose();
  console.log(ok ? 'self-test passed; server stopped' : 'self-test FAILED');
  process.exitCode = ok ? 0 : 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
