'use strict';
/**
 * One benchmark cell for adatt, run in its own process (so peak RSS is this cell's):
 *   node bench/ours.js '{"config":{…ModelConfig},"batch":1024,"examples":16384,"epochs":2,
 *                        "latencySteps":20,"inferenceRepeats":3,"threads":2}'
 * or `node bench/ours.js info`. Prints one JSON line.
 *
 * Training: one fit() of 1 + epochs epochs over an in-memory TensorDataset (Adam); examples/s from
 * the wall time between the end of the warm-up epoch and the end of the last. Per-step latency: a
 * second fit() over a one-batch dataset, so every epoch is one optimizer step; the median of the
 * natively timed epochs after the first. Inference: predict() over the whole dataset.
 */
const { median, seededUniform } = require('./stats');
const fs = require('node:fs');
const { performance } = require('node:perf_hooks');
const adatt = require('../dist');

/** Synthetic rows: N(0,1) dense features; task t is positive when feature t (plus noise) is > 0. */
function syntheticData(size, width, taskCount, seed = 1) {
  const uniform = seededUniform(seed);
  const dense = new Float32Array(size * width);
  for (let i = 0; i < dense.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const a = 2 * Math.PI * uniform();
    dense[i] = r * Math.cos(a);
    if (i + 1 < dense.length) dense[i + 1] = r * Math.sin(a);
  }
  const labels = Array.from({ length: taskCount }, (_, t) => {
    const y = new Float32Array(size);
    for (let i = 0; i < size; i += 1) y[i] = dense[i * width + (t % width)] + 0.5 * (uniform() - 0.5) > 0 ? 1 : 0;
    return y;
  });
  return { size, dense, labels };
}

/** Shared libraries mapped into this process whose names suggest a BLAS / DNN backend. */
function mappedMathLibraries() {
  const maps = fs.readFileSync('/proc/self/maps', 'utf8');
  const paths = new Set(
    maps
      .split('\n')
      .map((line) => line.slice(line.indexOf('/')))
      .filter((p) => /blas|lapack|mkl|dnnl|gomp|torch_cpu/.test(p)),
  );
  return [...paths]
    .map((p) => {
      try {
        return fs.realpathSync(p);
      } catch {
        return p;
      }
    })
    .sort();
}

async function runCell(spec) {
  const { config, batch, examples, epochs, latencySteps, inferenceRepeats, threads } = spec;
  adatt.setNumThreads(threads);
  const taskNames = config.tasks.map((t) => t.name);
  const data = adatt.TensorDataset.fromEncoded(syntheticData(examples, config.input.dense, taskNames.length), { taskNames });
  const model = adatt.createModel(config);
  const fitOptions = { batchSize: batch, threads, optimizer: { type: 'adam', lr: 1e-3 } };

  // Training throughput over whole epochs.
  const ends = [];
  await adatt.fit(model, data, { ...fitOptions, epochs: 1 + epochs, onEpoch: () => ends.push(performance.now()) });
  const trainSeconds = (ends[ends.length - 1] - ends[0]) / 1000;

  // Per-step latency: a dataset of exactly one batch, one step per epoch.
  const oneBatch = data.subset(Int32Array.from({ length: batch }, (_, i) => i));
  const steps = await adatt.fit(model, oneBatch, { ...fitOptions, epochs: 1 + latencySteps });
  oneBatch.dispose();
  const stepSeconds = steps.epochs.slice(1).map((e) => e.seconds);

  // Inference over the whole dataset (one warm-up pass).
  await adatt.predict(model, data, { batchSize: batch });
  const inferSeconds = [];
  for (let r = 0; r < inferenceRepeats; r += 1) {
    const t0 = performance.now();
    await adatt.predict(model, data, { batchSize: batch });
    inferSeconds.push((performance.now() - t0) / 1000);
  }

  const result = {
    trainExamplesPerSecond: (epochs * examples) / trainSeconds,
    stepMs: 1000 * median(stepSeconds),
    inferExamplesPerSecond: examples / median(inferSeconds),
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    parameters: model.parameterCount(),
  };
  const usage = process.resourceUsage();
  result.cpuSeconds = (usage.userCPUTime + usage.systemCPUTime) / 1e6;
  model.dispose();
  data.dispose();
  return result;
}

async function main() {
  const arg = process.argv[2];
  if (arg === 'info') {
    const { config } = require('./configs').catalogue()[0];
    adatt.createModel(config).dispose(); // make sure LibTorch and its BLAS are loaded
    return { ...adatt.info(), libraries: mappedMathLibraries() };
  }
  if (!arg) throw new Error('usage: node bench/ours.js <cell JSON> | info');
  return runCell(JSON.parse(arg));
}

main().then(
  (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
  (error) => {
    process.stderr.write(`${error.stack ?? error}\n`);
    process.exit(1);
  },
);
