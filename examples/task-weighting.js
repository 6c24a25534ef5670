#!/usr/bin/env node
// What each task-weighting strategy does on UCI Census-Income (KDD), the AdaTT paper's public data
// set (all three tasks: income, marital status, education): AdaTT-sp trained with 'fixed',
// 'uncertainty', 'gradnorm' and 'dwa' over several seeds; prints each task's test AUC and the mean
// NE as mean ± sd over the seeds, and how long each strategy trains. Read the spread before the
// means: a difference smaller than the seeds' sd is no difference.
// Data: $ADATT_DATA_DIR, the user's cache folder or ../shared/data (as census-quickstart.js).
// Sizes: ADATT_SEEDS (default 3), ADATT_EPOCHS (3), ADATT_EXAMPLE_ROWS (every training row),
// ADATT_THREADS (all cores).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const adatt = require('..');

const STRATEGIES = ['fixed', 'uncertainty', 'gradnorm', 'dwa'];
const sharedData = path.join(__dirname, '..', '..', 'shared', 'data');

function meanAndSd(values) {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.length > 1 ? values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1) : 0;
  return `${mean.toFixed(4)} ± ${Math.sqrt(variance).toFixed(4)}`;
}

async function main() {
  const seeds = Number(process.env.ADATT_SEEDS ?? 3);
  const epochs = Number(process.env.ADATT_EPOCHS ?? 3);
  adatt.setNumThreads(Number(process.env.ADATT_THREADS ?? require('node:os').availableParallelism()));
  const dataDir = [process.env.ADATT_DATA_DIR, adatt.defaultDataDir(), sharedData].find(
    (dir) => dir && fs.existsSync(path.join(dir, 'census-income')),
  );
  if (dataDir === undefined) throw new Error('census-income not found: fetch it with  npx adatt datasets download census-income');
  const data = await adatt.loadCensusIncome({ dataDir, tasks: 'all' });
  const splits = adatt.TensorDataset.fromSplits(data.schema, { train: data.train, validation: data.validation, test: data.test });
  const rows = Math.min(Number(process.env.ADATT_EXAMPLE_ROWS ?? splits.train.size), splits.train.size);
  const train = rows < splits.train.size ? splits.train.subset(Int32Array.from({ length: rows }, (_, i) => i)) : splits.train;
  const tasks = data.schema.tasks.map((task) => task.name);
  console.log(`census-income: ${rows} training rows, tasks ${tasks.join(', ')}; ${seeds} seeds x ${epochs} epochs per strategy`);

  const results = {};
  for (const strategy of STRATEGIES) {
    results[strategy] = { auc: Object.fromEntries(tasks.map((task) => [task, []])), ne: [], seconds: [], weights: [] };
    for (let seed = 0; seed < seeds; seed++) {
      const model = adatt.createModel({
        kind: 'adatt-sp',
        ...adatt.modelSections(data.schema),
        expertDims: [[64], [32]],
        towerDims: [16],
        expertsPerTask: 2,
        seed,
      });
      const run = await adatt.fit(model, train, { epochs, batchSize: 1024, optimizer: { lr: 2e-3 }, seed, taskWeighting: strategy });
      const metrics = await adatt.evaluate(model, splits.test);
      const r = results[strategy];
      for (const task of tasks) r.auc[task].push(metrics[task].auc);
      r.ne.push(tasks.reduce((sum, task) => sum + metrics[task].ne, 0) / tasks.length);
      r.seconds.push(run.epochs.reduce((sum, epoch) => sum + epoch.seconds, 0));
      r.weights.push(run.epochs.at(-1).taskWeights);
      model.dispose();
    }
  }
  console.log('\nTest AUC per task and mean NE (mean ± sd over seeds), training seconds:');
  console.table(
    Object.fromEntries(
      STRATEGIES.map((strategy) => {
        const r = results[strategy];
        return [
          strategy,
          {
            ...Object.fromEntries(tasks.map((task) => [`${task} auc`, meanAndSd(r.auc[task])])),
            'mean ne': meanAndSd(r.ne),
            seconds: meanAndSd(r.seconds).replace(/(\d+\.\d)\d+/g, '$1'),
          },
        ];
      }),
    ),
  );
  console.log('Task weights after the last epoch (seed 0):');
  for (const strategy of STRATEGIES) {
    const weights = results[strategy].weights[0];
    console.log(`  ${strategy}: ${tasks.map((task) => `${task} ${weights[task].toFixed(3)}`).join(', ')}`);
  }
  if (train !== splits.train) train.dispose();
  for (const split of Object.values(splits)) split.dispose();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
