#!/usr/bin/env node
'use strict';
// The device half of scripts/gpu-check.sh: parity of every model kind on DEVICE against the CPU
// (outputs 1e-5, gradients 1e-4, same weights), a CPU checkpoint resumed on DEVICE and saved back
// to the CPU, data-parallel training on DEVICE (NCCL where built; one process per GPU, at most two)
// against one CPU process, row-sparse embedding tables trained on DEVICE against the CPU (and
// data-parallel with tables), a training run on DEVICE, and the headline benchmark (AdaTT-sp, T=3, m=2,
// experts [[256],[128]], towers [64], input 128, batch 1024) on DEVICE against the Python reference
// on the same device. Prints a table last; exits 1 if any check fails.
//   node scripts/gpu-check.js DEVICE PYTHON
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const adatt = require('../dist');

const [device = 'cpu', python = '/usr/bin/python3'] = process.argv.slice(2);
const ROOT = path.join(__dirname, '..');
const rows = [];
let failed = false;
const record = (check, result, ok) => {
  rows.push({ check, result, ok: ok ? 'ok' : 'FAIL' });
  if (!ok) failed = true;
};

function worst(a, b) {
  let max = 0;
  for (let i = 0; i < a.length; i += 1) max = Math.max(max, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return max;
}

function userConfig(native) {
  const common = {
    input: {
      dense: native.denseDim,
      categorical: native.categorical.map((f, i) => ({ name: `c${i}`, ...f })),
      multiValued: native.multiValued.map((f, i) => ({ name: `m${i}`, ...f })),
    },
    tasks: native.tasks.map((t) =>
      t.outputs > 1 ? { name: t.name, type: 'multiclass', classes: t.outputs } : { name: t.name, type: 'binary' },
    ),
    expertDims: native.expertDims,
    towerDims: native.towerDims,
  };
  const extra =
    {
      'adatt-sp': { expertsPerTask: native.expertsPerTask[0], nativeResidual: native.nativeResidual },
      adatt: { expertsPerTask: native.expertsPerTask, sharedExperts: native.sharedExperts, nativeResidual: native.nativeResidual },
      mmoe: { experts: native.sharedExperts, gateDims: native.gateDims },
      ple: { expertsPerTask: native.expertsPerTask, sharedExperts: native.sharedExperts },
    }[native.kind] ?? {};
  return { kind: native.kind, ...common, ...extra };
}

async function parity() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adatt-gpu-'));
  execFileSync(python, [path.join(ROOT, 'scripts/reference/make_parity_fixtures.py'), dir], { stdio: 'ignore' });
  let outputs = 0;
  let gradients = 0;
  for (const name of JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'))) {
    const fixture = JSON.parse(fs.readFileSync(path.join(dir, `${name}.json`), 'utf8'));
    const b = fixture.batch;
    const batch = { size: b.size };
    if (fixture.config.denseDim) batch.dense = new Float32Array(b.dense);
    if (fixture.config.categorical.length) batch.categorical = new Int32Array(b.categorical);
    if (fixture.config.multiValued.length)
      batch.multiValued = b.multiValued.map((x) => ({ indices: new Int32Array(x.indices), offsets: new Int32Array(x.offsets) }));
    const seeds = Object.fromEntries(fixture.config.tasks.map((t, i) => [t.name, new Float32Array(fixture.seeds[i])]));
    const [cpu, onDevice] = [adatt.createModel(userConfig(fixture.config)), adatt.createModel(userConfig(fixture.config))];
    for (const model of [cpu, onDevice]) await model.loadWeights(path.join(dir, `${name}.weights.pt`));
    await onDevice.to(device);
    const [a, b2] = [await cpu.forward(batch), await onDevice.forward(batch)];
    for (const task of Object.keys(a)) outputs = Math.max(outputs, worst(b2[task], a[task]));
    const [ga, gb] = [await cpu.gradients(batch, seeds), await onDevice.gradients(batch, seeds)];
    for (const param of Object.keys(ga)) gradients = Math.max(gradients, worst(gb[param].data, ga[param].data));
    cpu.dispose();
    onDevice.dispose();
  }
  record(`parity ${device} vs cpu: outputs (max rel. error)`, outputs.toExponential(2), outputs < 1e-5);
  record(`parity ${device} vs cpu: gradients (max rel. error)`, gradients.toExponential(2), gradients < 1e-4);
}

// One dataset for the checkpoint check's three runs, and rows to compare their outputs on.
function smallData(size) {
  const dense = Float32Array.from({ length: size * 8 }, () => Math.random() * 2 - 1);
  const labels = [0, 1].map((t) => Float32Array.from({ length: size }, (_, i) => (dense[8 * i + t] > dense[8 * i + 2] ? 1 : 0)));
  return { dataset: adatt.TensorDataset.fromEncoded({ size, dense, labels }), probe: { size: 64, dense: dense.slice(0, 64 * 8) } };
}

function worstOver(a, b) {
  return Math.max(...Object.keys(b).map((key) => worst(a[key].data ?? a[key], b[key].data ?? b[key])));
}

async function checkpointAcrossDevices() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adatt-gpu-ckpt-'));
  const config = {
    kind: 'adatt-sp',
    input: { dense: 8 },
    tasks: [
      { name: 'a', type: 'binary' },
      { name: 'b', type: 'binary' },
    ],
    expertDims: [[16], [8]],
    towerDims: [4],
    expertsPerTask: 2,
    seed: 3,
  };
  const options = { batchSize: 128, seed: 1, optimizer: { type: 'adam', lr: 0.01 }, threads: 1 };
  const { dataset, probe } = smallData(2048);
  const whole = adatt.createModel(config);
  await adatt.fit(whole, dataset, { ...options, epochs: 3 });
  const interrupted = adatt.createModel(config);
  const run = await adatt.fit(interrupted, dataset, { ...options, epochs: 2, checkpoint: { dir } });
  const saved = await adatt.loadCheckpoint(run.checkpoints.at(-1), { device });
  await adatt.fit(saved.model, dataset, { ...options, epochs: 3, resume: saved.training });
  const [expected, resumed] = [await whole.forward(probe), await saved.model.forward(probe)];
  const drift = worstOver(resumed, expected);
  // One thread on the CPU reproduces the run exactly; another device's kernels round differently.
  record(
    `cpu checkpoint resumed on ${device}: outputs vs the uninterrupted cpu run`,
    drift.toExponential(2),
    drift <= (device === 'cpu' ? 0 : 1e-3),
  );
  const back = path.join(dir, 'back.adatt');
  await adatt.saveCheckpoint(back, saved.model);
  const reloaded = await adatt.loadCheckpoint(back, { device: 'cpu' });
  const roundTrip = worstOver(await reloaded.model.forward(probe), resumed);
  record(`${device} checkpoint loaded on cpu: outputs vs ${device}`, roundTrip.toExponential(2), roundTrip < 1e-5);
  for (const model of [whole, interrupted, saved.model, reloaded.model]) model.dispose();
}

async function distributedOnDevice() {
  const info = adatt.info();
  const nproc = device === 'cpu' ? 2 : Math.min(2, info.cudaDeviceCount); // NCCL takes one GPU per process
  const worker = path.join(ROOT, 'test', 'helpers', 'distributed-worker.js');
  const runWorkers = async (count, env) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adatt-gpu-ddp-'));
    const codes = await adatt.launch({
      nproc: count,
      command: process.execPath,
      args: [worker],
      env: { ...process.env, ADATT_DIST: path.join(ROOT, 'dist'), OUT_DIR: dir, TEST_BATCH: String(64 / count), TEST_EPOCHS: '2', ...env },
    });
    if (codes.some((code) => code !== 0)) throw new Error(`distributed workers exited with ${codes.join(', ')}`);
    return JSON.parse(fs.readFileSync(path.join(dir, 'rank-0.json'), 'utf8'));
  };
  const cudaBackend = device === 'cpu' ? 'gloo' : 'nccl';
  if (device !== 'cpu') record('NCCL in the addon (info().ncclBuilt)', String(info.ncclBuilt), info.ncclBuilt);
  if (device !== 'cpu' && !info.ncclBuilt) return;
  for (const tables of ['', 'adam']) {
    const extra = tables ? { TEST_TABLES: tables } : {};
    const reference = await runWorkers(1, { TEST_DEVICE: 'cpu', TEST_CUDA_BACKEND: 'gloo', ...extra });
    const group = await runWorkers(nproc, { TEST_DEVICE: device, TEST_CUDA_BACKEND: cudaBackend, ...extra });
    const drift = worstOver(group.weights, reference.weights);
    record(
      `data-parallel on ${device}${tables ? ' with row-sparse tables' : ''}, ${nproc} process(es) over ${group.backends.join('+')}: weights vs 1 cpu process`,
      drift.toExponential(2),
      drift < (device === 'cpu' ? 1e-5 : 1e-3) && group.backends.includes(cudaBackend),
    );
  }
}

async function sparseTablesOnDevice() {
  const size = 2048;
  let state = 9;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state + 0.5) / 2 ** 32;
  };
  const dense = Float32Array.from({ length: size * 4 }, () => next() * 2 - 1);
  const categorical = Int32Array.from({ length: size }, () => Math.floor(next() * 100000));
  const indices = Int32Array.from({ length: size * 2 }, () => Math.floor(next() * 50));
  const offsets = Int32Array.from({ length: size }, (_, i) => 2 * i);
  const labels = [0, 1].map((t) =>
    Float32Array.from({ length: size }, (_, i) => (dense[4 * i + t] + (categorical[i] % 3) / 3 > 0.5 ? 1 : 0)),
  );
  const dataset = adatt.TensorDataset.fromEncoded({ size, dense, categorical, multiValued: [{ indices, offsets }], labels });
  const config = {
    kind: 'adatt-sp',
    input: { dense: 4, categorical: [{ name: 'id', vocab: 100000, dim: 8 }], multiValued: [{ name: 'bag', vocab: 50, dim: 4 }] },
    tasks: [
      { name: 'a', type: 'binary' },
      { name: 'b', type: 'binary' },
    ],
    expertDims: [[16], [8]],
    towerDims: [4],
    expertsPerTask: 2,
    seed: 5,
  };
  for (const type of ['adam', 'rowwise-adagrad']) {
    const trained = async (where) => {
      const model = adatt.createModel(config);
      await adatt.fit(model, dataset, {
        epochs: 2,
        batchSize: 256,
        seed: 2,
        threads: 1,
        device: where,
        embeddingOptimizer: { type, lr: 0.05 },
      });
      await model.to('cpu');
      const weights = await model.stateDict();
      model.dispose();
      return weights;
    };
    const drift = worstOver(await trained(device), await trained('cpu'));
    record(
      `row-sparse tables (${type}) trained on ${device}: weights vs cpu`,
      drift.toExponential(2),
      drift < (device === 'cpu' ? 1e-6 : 1e-3),
    );
  }
  dataset.dispose();
}

const HEADLINE = {
  kind: 'adatt-sp',
  input: { dense: 128 },
  tasks: [0, 1, 2].map((t) => ({ name: `t${t}`, type: 'binary' })),
  expertDims: [[256], [128]],
  towerDims: [64],
  expertsPerTask: 2,
};

async function headline() {
  const size = Number(process.env.ADATT_GPU_CHECK_ROWS || 65536); // the test suite runs a small size
  const dense = Float32Array.from({ length: size * 128 }, () => Math.random() * 2 - 1);
  const labels = [0, 1, 2].map((t) => Float32Array.from({ length: size }, (_, i) => (dense[128 * i + t] > 0 ? 1 : 0)));
  const data = adatt.TensorDataset.fromEncoded({ size, dense, labels });
  const model = adatt.createModel(HEADLINE);
  const result = await adatt.fit(model, data, { epochs: 4, batchSize: 1024, device, threads: 2 });
  const rates = result.epochs
    .slice(1)
    .map((e) => e.examplesPerSecond)
    .sort((x, y) => x - y);
  const ours = rates[1];
  const auc = (await adatt.evaluate(model, data)).t0.auc;
  record(`training on ${device} learns (AUC of task t0)`, auc.toFixed(3), auc > 0.9);
  const peer = JSON.parse(
    execFileSync(
      python,
      [
        path.join(ROOT, 'scripts/gpu_peer.py'),
        JSON.stringify({
          config: adatt.normalizeModelConfig(HEADLINE),
          device,
          size,
          batch: 1024,
          epochs: 4,
          threads: 2,
        }),
      ],
      { encoding: 'utf8' },
    ),
  ).examplesPerSecond;
  record(`headline training, ours (examples/s, ${device})`, Math.round(ours).toLocaleString(), true);
  record(`headline training, Python reference (examples/s, ${device})`, Math.round(peer).toLocaleString(), true);
  record('headline training, ours / reference', `${(ours / peer).toFixed(2)}x`, true);
}

(async () => {
  adatt.setNumThreads(2);
  record('LibTorch', `${adatt.info().libtorchVersion} (CUDA ${adatt.info().cudaAvailable ? 'available' : 'not available'})`, true);
  await parity();
  await checkpointAcrossDevices();
  await distributedOnDevice();
  await sparseTablesOnDevice();
  await headline();
  console.table(rows);
  process.exit(failed ? 1 : 0);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
