#!/usr/bin/env node
// Distributed data-parallel training: the same script is the launcher and the worker.
//   node examples/distributed-training.js            # launches 2 local workers of itself
//   adatt launch --nproc 2 -- node examples/distributed-training.js   # same, through the CLI
//   torchrun-style: set MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK on each host and run it there.
// Each worker joins the c10d process group, trains AdaTT on its shard of every global batch with
// gradients averaged across workers, and rank 0 prints the validation metrics (the same on all ranks).
'use strict';
const adatt = require('..');

const WORKERS = Number(process.env.ADATT_WORKERS ?? 2);
const EPOCHS = Number(process.env.ADATT_EPOCHS ?? 3);

async function worker() {
  adatt.setNumThreads(1);
  const group = await adatt.initProcessGroup({ timeoutMs: 30_000 });
  // Every rank builds the same data; each trains on its own slice of every global batch.
  const data = await adatt.loadSynthetic({ size: 8000, seed: 3 });
  const { train, validation } = adatt.TensorDataset.fromSplits(data.schema, { train: data.train, validation: data.validation });
  const model = adatt.createModel({
    kind: 'adatt-sp',
    ...adatt.modelSections(data.schema),
    expertDims: [[32], [16]],
    towerDims: [8],
    expertsPerTask: 2,
    seed: group.rank, // different on purpose: fit starts every rank from rank 0's weights
  });
  const result = await adatt.fit(model, train, {
    epochs: EPOCHS,
    batchSize: 128,
    validation,
    distributed: group,
    optimizer: { lr: 3e-3 },
    onEpoch: (e) => {
      if (group.rank === 0) {
        const rmse = Object.entries(e.validation)
          .map(([task, m]) => `${task} ${m.rmse.toFixed(3)}`)
          .join(', ');
        console.log(`epoch ${e.epoch + 1}/${EPOCHS} on ${group.worldSize} workers: validation rmse ${rmse}`);
      }
    },
  });
  const weights = await model.stateDict();
  const checksum = Object.values(weights).reduce((sum, t) => sum + t.data.reduce((a, b) => a + b, 0), 0);
  console.log(`rank ${group.rank}: ${result.steps} steps, weight checksum ${checksum.toFixed(6)}`);
  group.dispose();
}

async function main() {
  if (process.env.WORLD_SIZE !== undefined) return worker();
  console.log(`launching ${WORKERS} workers on 127.0.0.1`);
  const codes = await adatt.launch({ nproc: WORKERS, command: process.execPath, args: [__filename] });
  console.log(`workers exited with ${codes.join(', ')}`);
  if (codes.some((code) => code !== 0)) process.exit(1);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
