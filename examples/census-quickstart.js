#!/usr/bin/env node
// Quick start: train AdaTT on UCI Census-Income (KDD) and print per-task test metrics. The data is
// read from $ADATT_DATA_DIR (else the user's cache folder, where `adatt datasets download` puts it)
// or ../shared/data beside this repository; `--download` fetches it (checksums verified) when it is
// in neither. Without it, the example says how to get it and trains on the built-in synthetic tasks.
// Run with `npm run quickstart` (sets the machine up first), or `npm run quickstart -- --download`.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const adatt = require('..');

const sharedData = path.join(__dirname, '..', '..', 'shared', 'data');

function hasCensus(dataDir) {
  return ['census-income.data.gz', 'census-income.data'].some((file) => fs.existsSync(path.join(dataDir, 'census-income', file)));
}

async function loadData() {
  const dataDir = [adatt.defaultDataDir(), sharedData].find(hasCensus);
  if (dataDir !== undefined) return adatt.loadCensusIncome({ dataDir });
  if (process.argv.includes('--download')) {
    console.log(`downloading census-income into ${adatt.defaultDataDir()} (9 MB gzipped, checksums verified)`);
    return adatt.loadCensusIncome({ download: true });
  }
  console.log(
    [
      `census-income is not in ${adatt.defaultDataDir()} or ${sharedData}; training on the synthetic tasks instead.`,
      'Fetch it (9 MB gzipped, checksums verified) with:  npx adatt datasets download census-income',
      'or run:  npm run quickstart -- --download',
    ].join('\n'),
  );
  return adatt.loadSynthetic({ size: 20000, seed: 1 });
}

async function main() {
  const threads = Number(process.env.ADATT_THREADS ?? require('node:os').availableParallelism());
  adatt.setNumThreads(threads);
  const started = Date.now();
  const data = await loadData();
  console.log(`${data.name}: ${data.train.size} training rows, tasks ${data.schema.tasks.map((t) => t.name).join(', ')}`);
  const { train, validation, test } = adatt.TensorDataset.fromSplits(data.schema, {
    train: data.train,
    validation: data.validation,
    test: data.test,
  });
  const model = adatt.createModel({
    kind: 'adatt-sp',
    ...adatt.modelSections(data.schema),
    expertDims: [[64], [32]],
    towerDims: [16],
    expertsPerTask: 2,
  });
  console.log(`AdaTT-sp with ${model.parameterCount().toLocaleString()} parameters, ${threads} threads`);
  const result = await adatt.fit(model, train, {
    epochs: 4,
    batchSize: 1024,
    optimizer: { lr: 2e-3 },
    validation,
    earlyStopping: { metric: data.name === 'synthetic' ? 'rmse' : 'auc', patience: 2 },
    onEpoch: (e) =>
      console.log(
        `epoch ${e.epoch + 1}: ${Math.round(e.examplesPerSecond).toLocaleString()} examples/s, ` +
          `loss ${Object.entries(e.loss)
            .map(([k, v]) => `${k} ${v.toFixed(4)}`)
            .join(', ')}`,
      ),
  });
  const metrics = await adatt.evaluate(model, test);
  console.log(`\nTest metrics (best epoch ${result.bestEpoch + 1}):`);
  const rows = Object.entries(metrics).map(([task, m]) => ({
    task,
    ...Object.fromEntries(
      ['auc', 'ne', 'logLoss', 'accuracy', 'rmse', 'mae'].filter((k) => k in m).map((k) => [k, Number(m[k].toFixed(4))]),
    ),
  }));
  console.table(rows);
  console.log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  model.dispose();
  for (const split of [train, validation, test]) split.dispose();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
