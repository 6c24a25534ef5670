#!/usr/bin/env node
// Fine-tuning a TorchScript model made in PyTorch: load it, say what its inputs and outputs are,
// train it with fit() on your data like a native model, and save it back for torch.jit.load.
//
//   node examples/torchscript-finetune.js [model.pt]
//
// Without a file it makes one with PyTorch (Debian's /usr/bin/python3 with python3-torch, or
// $ADATT_PYTHON): scripts/reference/make_torchscript_fixtures.py writes a scripted two-task model,
// forward(dense [B, 4], categorical [B, 1]) -> (click logit [B], genre logits [B, 3]).
// ADATT_EXAMPLE_ROWS (default 2000) and ADATT_EPOCHS (default 8) set the size of the run.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const adatt = require('..');

function makeTorchScript(dir) {
  const python = process.env.ADATT_PYTHON ?? '/usr/bin/python3';
  const script = path.join(__dirname, '..', 'scripts', 'reference', 'make_torchscript_fixtures.py');
  execFileSync(python, [script, dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  return path.join(dir, 'scripted.pt');
}

/** Data the model's signature fits: 4 dense features, one categorical id in [0, 6), two tasks. */
function makeData(rows, seed) {
  let state = seed;
  const u = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state + 0.5) / 2 ** 32;
  };
  const dense = Float32Array.from({ length: rows * 4 }, () => 2 * u() - 1);
  const categorical = Int32Array.from({ length: rows }, () => Math.floor(u() * 6));
  const click = Float32Array.from({ length: rows }, (_, i) => (dense[4 * i] + 0.5 * dense[4 * i + 1] + 0.2 * (u() - 0.5) > 0 ? 1 : 0));
  const genre = Float32Array.from({ length: rows }, (_, i) => (categorical[i] + (dense[4 * i + 2] > 0.5 ? 1 : 0)) % 3);
  return adatt.TensorDataset.fromEncoded({ size: rows, dense, categorical, labels: [click, genre] }, { taskNames: ['click', 'genre'] });
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adatt-torchscript-'));
  const file = process.argv[2] ?? makeTorchScript(dir);
  const rows = Number(process.env.ADATT_EXAMPLE_ROWS ?? 2000);

  const model = await adatt.loadTorchScript(file);
  const train = makeData(rows, 1);
  const validation = makeData(Math.max(200, rows / 4), 2);
  try {
    console.log(`${path.basename(file)}: methods ${model.methods().join(', ')}; ${model.parameterCount()} parameters`);
    // What a dataset batch feeds forward(), in order, and which task each output is.
    model.configureTasks({
      inputs: ['dense', 'categorical'],
      tasks: [
        { name: 'click', type: 'binary' },
        { name: 'genre', type: 'multiclass', classes: 3 },
      ],
    });
    const before = await adatt.evaluate(model, validation);
    await adatt.fit(model, train, {
      epochs: Number(process.env.ADATT_EPOCHS ?? 8),
      batchSize: 64,
      optimizer: { type: 'adam', lr: 0.02 },
      validation,
      onEpoch: (e) => console.log(`epoch ${e.epoch + 1}: loss click ${e.loss.click.toFixed(4)}, genre ${e.loss.genre.toFixed(4)}`),
    });
    const after = await adatt.evaluate(model, validation);
    console.log(
      `click AUC ${before.click.auc.toFixed(3)} -> ${after.click.auc.toFixed(3)}; ` +
        `genre accuracy ${before.genre.accuracy.toFixed(3)} -> ${after.genre.accuracy.toFixed(3)}`,
    );

    // The fine-tuned module, loadable in PyTorch with torch.jit.load (its methods and signature unchanged).
    const saved = path.join(dir, 'fine-tuned.pt');
    await model.save(saved);
    console.log(`saved ${saved}`);
    if (!(after.click.auc > before.click.auc)) throw new Error('fine-tuning did not improve the click AUC');
  } finally {
    model.dispose();
    train.dispose();
    validation.dispose();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
