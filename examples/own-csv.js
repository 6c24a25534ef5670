#!/usr/bin/env node
// Your own data: a CSV file with a schema -> split -> fit the schema on the training rows ->
// encode -> train AdaTT on three tasks of different types -> evaluate -> save a checkpoint that
// `adatt eval`, `adatt predict` and examples/serve-http.js can use.
//
//   node examples/own-csv.js [events.csv]
//
// Without a file it writes a demo CSV (examples/lib/demo-events.js) to a temporary folder.
// ADATT_EXAMPLE_ROWS (default 20000), ADATT_EPOCHS (default 6) and ADATT_THREADS make it smaller/faster.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const adatt = require('..');
const { EVENTS_SCHEMA, writeEventsCsv } = require('./lib/demo-events');

async function main() {
  adatt.setNumThreads(Number(process.env.ADATT_THREADS ?? os.availableParallelism()));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adatt-own-csv-'));
  const csv = process.argv[2] ?? writeEventsCsv(path.join(dir, 'events.csv'), { rows: Number(process.env.ADATT_EXAMPLE_ROWS ?? 20000) });

  // 1. Read only the columns the schema needs, numbers parsed as numbers.
  const table = await adatt.readCsv(csv, adatt.schemaColumns(EVENTS_SCHEMA));
  // 2. Split, then fit vocabularies and normalisation on the training rows only.
  const splits = adatt.splitRandom(table, { train: 0.8, validation: 0.1, test: 0.1 }, 42);
  const schema = adatt.fitSchema(EVENTS_SCHEMA, splits.train);
  // 3. Encode every split with the training rows' schema, and copy them into native tensors.
  const { train, validation, test } = adatt.TensorDataset.fromSplits(schema, {
    train: adatt.encode(schema, splits.train),
    validation: adatt.encode(schema, splits.validation),
    test: adatt.encode(schema, splits.test),
  });
  console.log(`${path.basename(csv)}: ${table.size} rows; tasks ${schema.tasks.map((t) => `${t.name} (${t.type})`).join(', ')}`);

  // 4. The input and tasks sections come from the schema, so vocabularies and classes always match.
  const model = adatt.createModel({
    kind: 'adatt-sp',
    ...adatt.modelSections(schema),
    expertDims: [[32], [16]],
    towerDims: [8],
    expertsPerTask: 2,
  });
  const result = await adatt.fit(model, train, {
    epochs: Number(process.env.ADATT_EPOCHS ?? 6),
    batchSize: 256,
    optimizer: { type: 'adamw', lr: 3e-3, weightDecay: 1e-4 },
    // Watch time is in seconds (variance ~ 10^3): weigh it down so it does not drown the other losses.
    losses: { watch: { loss: 'huber', huberDelta: 10, weight: 0.05 } },
    validation,
    earlyStopping: { metric: 'auc', task: 'click', patience: 2 },
    onEpoch: (e) =>
      console.log(
        `epoch ${e.epoch + 1}: click auc ${e.validation.click.auc.toFixed(4)}, ` +
          `rating accuracy ${e.validation.rating.accuracy.toFixed(4)}, watch rmse ${e.validation.watch.rmse.toFixed(2)}`,
      ),
  });

  // 5. Test metrics of the best epoch (restored by early stopping).
  const metrics = await adatt.evaluate(model, test);
  console.log(`\nTest metrics (best epoch ${result.bestEpoch + 1}):`);
  console.table(
    Object.fromEntries(
      Object.entries(metrics).map(([task, m]) => [task, Object.fromEntries(Object.entries(m).map(([k, v]) => [k, Number(v.toFixed(4))]))]),
    ),
  );

  // 6. One file with the weights and the fitted schema: new rows are encoded exactly like these.
  const checkpoint = path.join(dir, 'events.adatt');
  await adatt.saveCheckpoint(checkpoint, model, { schema });
  console.log(`checkpoint: ${checkpoint}`);
  console.log(`try: npx adatt eval ${checkpoint} --data ${csv}    or    node examples/serve-http.js ${checkpoint}`);
  model.dispose();
  for (const split of [train, validation, test]) split.dispose();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
