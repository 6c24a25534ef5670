#!/usr/bin/env node
'use strict';
// The device half of scripts/gpu-check.sh: parity of every model kind on DEVICE against the CPU
// (outputs 1e-5, gradients 1e-4, same weights), a training run on DEVICE, and the headline benchmark
// (AdaTT-sp, T=3, m=2, experts [[256],[128]], towers [64], input 128, batch 1024) on DEVICE against
// the Python reference on the same device. Prints a table last; exits 1 if any check fails.
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
    input: { dense: native.denseDim, categorical: native.categorical.map((f, i) => ({ name: `c${i}`, ...f })),
      multiValued: native.multiValued.map((f, i) => ({ name: `m${i}`, ...f })) },
    tasks: native.tasks.map((t) => (t.outputs > 1 ? { name: t.name, type: 'multiclass', classes: t.outputs } : { name: t.name, type: 'binary' })),
    expertDims: native.expertDims, towerDims: native.towerDims,
  };
  const extra = {
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
    if (fixture.config.multiValued.length) batch.multiValued = b.multiValued.map((x) => ({ indices: new Int32Array(x.indices), offsets: new Int32Array(x.offsets) }));
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

const HEADLINE = {
  kind: 'adatt-sp', input: { dense: 128 }, tasks: [0, 1, 2].map((t) => ({ name: `t${t}`, type: 'binary' })),
  expertDims: [[256], [128]], towerDims: [64], expertsPerTask: 2,
};

async function headline() {
  const size = Number(process.env.ADATT_GPU_CHECK_ROWS || 65536); // the test suite runs a small size
  const dense = Float32Array.from({ length: size * 128 }, () => Math.random() * 2 - 1);
  const labels = [0, 1, 2].map((t) => Float32Array.from({ length: size }, (_, i) => (dense[128 * i + t] > 0 ? 1 : 0)));
  const data = adatt.TensorDataset.fromEncoded({ size, dense, labels });
  const model = adatt.createModel(HEADLINE);
  const result = await adatt.fit(model, data, { epochs: 4, batchSize: 1024, device, threads: 2 });
  const rates = result.epochs.slice(1).map((e) => e.examplesPerSecond).sort((x, y) => x - y);
  const ours = rates[1];
  const auc = (await adatt.evaluate(model, data)).t0.auc;
  record(`training on ${device} learns (AUC of task t0)`, auc.toFixed(3), auc > 0.9);
  const peer = JSON.parse(execFileSync(python, [path.join(ROOT, 'scripts/gpu_peer.py'), JSON.stringify({
    config: adatt.normalizeModelConfig(HEADLINE), device, size, batch: 1024, epochs: 4, threads: 2,
  })], { encoding: 'utf8' })).examplesPerSecond;
  record(`headline training, ours (examples/s, ${device})`, Math.round(ours).toLocaleString(), true);
  record(`headline training, Python reference (examples/s, ${device})`, Math.round(peer).toLocaleString(), true);
  record('headline training, ours / reference', `${(ours / peer).toFixed(2)}x`, true);
}

(async () => {
  adatt.setNumThreads(2);
  record('LibTorch', `${adatt.info().libtorchVersion} (CUDA ${adatt.info().cudaAvailable ? 'available' : 'not available'})`, true);
  await parity();
  await headline();
  console.table(rows);
  process.exit(failed ? 1 : 0);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
