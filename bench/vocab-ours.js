'use strict';
/**
 * One cell of the vocabulary-scaling benchmark (bench/vocab.js) for adatt, in its own process:
 *   node bench/vocab-ours.js '{"vocab":1000000,"batch":1024,"steps":40,"threads":2,
 *                             "embeddingOptimizer":{"type":"adam"},"processes":1}'
 * With "processes" > 1 it launches that many ranks of itself (adatt's launch), which join one
 * process group and each train their slice of every global batch (batch rows per rank). Prints
 * one JSON line (rank 0 only): examples/s of the second epoch over all ranks (the
 * first allocates optimizer state and warms up), RSS before training and at its peak.
 */
const { seededUniform } = require('./stats');
const adatt = require('../dist');
const MODEL = require('./vocab-config.json');

/** Seeded rows: N(0,1) dense features, ids uniform over each vocabulary (the cache's worst case). */
function rows(size, vocab, seed) {
  const uniform = seededUniform(seed);
  const dense = Float32Array.from(
    { length: size * MODEL.dense },
    () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(6.283185307 * uniform()),
  );
  const vocabularies = [vocab, ...MODEL.small.map((f) => f.vocab)];
  const categorical = Int32Array.from({ length: size * vocabularies.length }, (_, i) =>
    Math.floor(uniform() * vocabularies[i % vocabularies.length]),
  );
  const labels = Array.from({ length: MODEL.tasks }, (_, t) =>
    Float32Array.from({ length: size }, (_, r) =>
      dense[r * MODEL.dense + t] + (categorical[r * vocabularies.length + 1] % 7) / 7 - 0.5 > 0 ? 1 : 0,
    ),
  );
  return { size, dense, categorical, labels };
}

function modelConfig(vocab) {
  return {
    kind: MODEL.kind,
    input: {
      dense: MODEL.dense,
      categorical: [{ name: 'big', vocab, dim: MODEL.bigDim }, ...MODEL.small.map((f, i) => ({ name: `small${i}`, ...f }))],
    },
    tasks: Array.from({ length: MODEL.tasks }, (_, t) => ({ name: `task${t}`, type: 'binary' })),
    expertDims: MODEL.expertDims,
    towerDims: MODEL.towerDims,
    expertsPerTask: MODEL.expertsPerTask,
  };
}

const rssMiB = () => process.memoryUsage().rss / 2 ** 20;

async function main() {
  const spec = JSON.parse(process.argv[2]);
  if ((spec.processes ?? 1) > 1 && process.env.WORLD_SIZE === undefined) {
    const codes = await adatt.launch({ nproc: spec.processes, command: process.execPath, args: [__filename, process.argv[2]] });
    process.exit(codes.every((code) => code === 0) ? 0 : 1);
  }
  adatt.setNumThreads(spec.threads);
  const group = process.env.WORLD_SIZE ? await adatt.initProcessGroup({ timeoutMs: 120_000 }) : undefined;
  const world = group?.worldSize ?? 1;
  const data = adatt.TensorDataset.fromEncoded(rows(spec.batch * world * spec.steps, spec.vocab, 7));
  const model = adatt.createModel(modelConfig(spec.vocab));
  const rssBeforeTraining = rssMiB();
  const result = await adatt.fit(model, data, {
    epochs: 2,
    batchSize: spec.batch,
    optimizer: { type: 'adam', lr: 1e-3 },
    embeddingOptimizer: spec.embeddingOptimizer,
    distributed: group,
  });
  const steady = result.epochs[1];
  if ((group?.rank ?? 0) === 0) {
    console.log(
      JSON.stringify({
        examplesPerSecond: steady.examples / steady.seconds,
        rssBeforeTrainingMiB: rssBeforeTraining,
        peakRssMiB: process.resourceUsage().maxRSS / 1024,
        tableMiB: (spec.vocab * MODEL.bigDim * 4) / 2 ** 20,
        world,
      }),
    );
  }
  group?.dispose();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
