// One rank of the distributed tests (started by `launch`): trains on deterministic data and writes
// its final weights, loss history and validation metrics as JSON to OUT_DIR/rank-<RANK>.json.
// TEST_MODE=die-after-epoch makes rank 1 kill itself after its first epoch; hang-after-epoch makes
// it block forever instead. TEST_DEVICE=cuda trains on cuda:LOCAL_RANK; TEST_CUDA_BACKEND picks the
// group's engine for CUDA tensors (scripts/gpu-check.js). TEST_TABLES=<embedding optimizer type>
// adds a categorical feature and a bag of ids, trained row-sparse by that optimizer.
// TEST_MISMATCH=<what> makes rank 1 differ from rank 0 in one thing (width, experts, tasks,
// optimizer, batch, vocab), as a stale config or per-shard vocabularies would; every rank that
// fails writes its error to OUT_DIR/error-<RANK>.json. TEST_STREAM=<glob of Parquet shards with x0..x5,
// a, b> trains on a DataStream of them instead (each rank reading its own shards), validated on it.
// TEST_SPARSE_LABELS=1 leaves task b unlabelled on 39 rows in 40; TEST_WEIGHTING picks taskWeighting.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const adatt = require(process.env.ADATT_DIST);

const TABLES = process.env.TEST_TABLES;

function data(size, seed) {
  let state = seed;
  const next = () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 2 ** 32;
  };
  const dense = Float32Array.from({ length: size * 6 }, () => next() * 2 - 1);
  const labels = [0, 1].map((t) => Float32Array.from({ length: size }, (_, i) => (dense[6 * i + t] + dense[6 * i + 2] > 0 ? 1 : 0)));
  // Task b labelled on 1 row in 40, so many global batches have none of its labels at all.
  if (process.env.TEST_SPARSE_LABELS) {
    for (let i = 0; i < size; i += 1) if (i % 40 !== 7) labels[1][i] = Number.NaN;
  }
  // Groups (users) of uneven size, for grouped AUC over the whole split.
  const groups = BigInt64Array.from({ length: size }, (_, i) => BigInt((i * i) % 23));
  if (!TABLES) return adatt.TensorDataset.fromEncoded({ size, dense, labels, groups });
  const categorical = Int32Array.from({ length: size }, () => Math.floor(next() * 50));
  const indices = [];
  const offsets = new Int32Array(size);
  for (let i = 0; i < size; i += 1) {
    offsets[i] = indices.length;
    for (let k = Math.floor(next() * 4); k > 0; k -= 1) indices.push(Math.floor(next() * 20));
  }
  return adatt.TensorDataset.fromEncoded({
    size,
    dense,
    categorical,
    multiValued: [{ indices: Int32Array.from(indices), offsets }],
    labels,
  });
}

async function main() {
  adatt.setNumThreads(1);
  const group = await adatt.initProcessGroup({
    timeoutMs: Number(process.env.TEST_TIMEOUT_MS || 20000),
    cudaBackend: process.env.TEST_CUDA_BACKEND || 'auto',
  });
  const differs = (what) => group.rank === 1 && process.env.TEST_MISMATCH === what;
  const model = adatt.createModel({
    kind: 'adatt-sp',
    input: TABLES
      ? {
          dense: 6,
          categorical: [{ name: 'c', vocab: differs('vocab') ? 51 : 50, dim: 4 }],
          multiValued: [{ name: 'm', vocab: 20, dim: 3, pooling: 'sum' }],
        }
      : { dense: 6 },
    tasks: [
      { name: 'a', type: 'binary' },
      { name: differs('tasks') ? 'c' : 'b', type: 'binary' },
    ],
    expertDims: [[differs('width') ? 65 : 16], [8]],
    towerDims: [4],
    expertsPerTask: differs('experts') ? 3 : 2,
    seed: 100 + group.rank, // rank 0's weights win
  });
  const stream =
    process.env.TEST_STREAM &&
    (await adatt.openStream(process.env.TEST_STREAM, {
      schema: adatt.fitSchema(
        {
          dense: ['x0', 'x1', 'x2', 'x3', 'x4', 'x5'],
          tasks: ['a', 'b'].map((name) => ({ name, type: 'binary', column: name, positive: [1] })),
        },
        await adatt.readParquet(process.env.TEST_STREAM),
      ),
      chunkRows: 128,
    }));
  const result = await adatt.fit(model, stream || data(1000, 1), {
    epochs: Number(process.env.TEST_EPOCHS || 3),
    batchSize: Number(process.env.TEST_BATCH) * (differs('batch') ? 2 : 1),
    seed: 5,
    optimizer: { type: differs('optimizer') ? 'sgd' : 'adam', lr: 0.01 },
    validation: stream || data(333, 2),
    distributed: group,
    ...(process.env.TEST_WEIGHTING ? { taskWeighting: process.env.TEST_WEIGHTING } : {}),
    ...(TABLES ? { embeddingOptimizer: { type: TABLES, lr: 0.05 }, clipNorm: 1 } : {}),
    device: process.env.TEST_DEVICE === 'cuda' ? `cuda:${group.localRank}` : 'cpu',
    onEpoch: () => {
      if (group.rank !== 1) return;
      if (process.env.TEST_MODE === 'die-after-epoch') process.kill(process.pid, 'SIGKILL');
      if (process.env.TEST_MODE === 'hang-after-epoch') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    },
  });
  const state = await model.stateDict();
  fs.writeFileSync(
    path.join(process.env.OUT_DIR, `rank-${group.rank}.json`),
    JSON.stringify({
      backends: group.backends,
      weights: Object.fromEntries(Object.entries(state).map(([k, v]) => [k, Array.from(v.data)])),
      loss: result.epochs.map((e) => e.loss),
      examples: result.epochs.map((e) => e.examples),
      validation: result.epochs.map((e) => e.validation),
    }),
  );
  group.dispose();
}

main().catch((err) => {
  console.error(`rank ${process.env.RANK}: ${err.message}`);
  if (process.env.OUT_DIR) {
    fs.writeFileSync(
      path.join(process.env.OUT_DIR, `error-${process.env.RANK}.json`),
      JSON.stringify({ name: err.name, field: err.field, message: err.message }),
    );
  }
  process.exit(1);
});
