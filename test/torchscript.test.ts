/** TorchScript interop: PyTorch-made modules run, fine-tune and go back to PyTorch unchanged in meaning. */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { evaluate, FileError, fit, loadTorchScript, predict, TensorDataset, ValidationError, type ScriptTensor } from '../lib';
import { maxRelativeError, PYTHON, pythonFixtures, REPO_ROOT } from './helpers/reference';

interface Expected {
  dense: number[];
  categorical: number[];
  scripted: { click: number[]; genre: number[] };
  probabilities: { click: number[]; genre: number[] };
  traced: number[];
}

// ADATT_TORCHSCRIPT_FIXTURES: modules made by another PyTorch (in CI, 2.6) must load and run here too.
const dir = pythonFixtures('make_torchscript_fixtures.py', 'torchscript', 'ADATT_TORCHSCRIPT_FIXTURES');
const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')) as Expected;
const dense: ScriptTensor = { shape: [5, 4], data: new Float32Array(expected.dense) };
const categorical: ScriptTensor = { shape: [5, 1], data: new Int32Array(expected.categorical), dtype: 'int64' };

describe('TorchScript', () => {
  it('runs forward and exported methods of a scripted module like PyTorch', async () => {
    using model = await loadTorchScript(path.join(dir, 'scripted.pt'));
    expect(model.methods().sort()).toEqual(['forward', 'probabilities']);
    const [click, genre] = (await model.forward(dense, categorical)) as ScriptTensor[];
    expect(click!.shape).toEqual([5]);
    expect(genre!.shape).toEqual([5, 3]);
    expect(maxRelativeError(click!.data as Float32Array, expected.scripted.click)).toBeLessThan(1e-5);
    expect(maxRelativeError(genre!.data as Float32Array, expected.scripted.genre)).toBeLessThan(1e-5);
    const named = (await model.run('probabilities', dense, categorical)) as Record<string, ScriptTensor>;
    expect(maxRelativeError(named.genre!.data as Float32Array, expected.probabilities.genre)).toBeLessThan(1e-5);
    expect(model.parameterCount()).toBe(6 * 3 + 7 * 8 + 8 + 8 + 1 + 8 * 3 + 3);
  });

  it('runs a traced module', async () => {
    using model = await loadTorchScript(path.join(dir, 'traced.pt'));
    const out = (await model.forward(dense)) as ScriptTensor;
    expect(out.shape).toEqual([5, 3]);
    expect(maxRelativeError(out.data as Float32Array, expected.traced)).toBeLessThan(1e-5);
  });

  it.each([
    ['training', 'scripted.pt', true],
    ['eval', 'scripted-eval.pt', false],
  ] as const)(
    'fine-tunes with fit, evaluates, and saves TorchScript that PyTorch runs identically, in the mode it was loaded in (%s)',
    async (_, file, training) => {
      using model = await loadTorchScript(path.join(dir, file));
      model.configureTasks({
        inputs: ['dense', 'categorical'],
        tasks: [
          { name: 'click', type: 'binary' },
          { name: 'genre', type: 'multiclass', classes: 3 },
        ],
      });
      const size = 400;
      const x = Float32Array.from({ length: size * 4 }, (_, i) => Math.sin(i * 12.9898) * 2);
      const ids = Int32Array.from({ length: size }, (_, i) => i % 6);
      const click = Float32Array.from({ length: size }, (_, i) => (x[4 * i]! + x[4 * i + 1]! > 0 ? 1 : 0));
      const genre = Float32Array.from({ length: size }, (_, i) => ids[i]! % 3);
      using data = TensorDataset.fromEncoded({ size, dense: x, categorical: ids, labels: [click, genre] });
      const before = await evaluate(model, data);
      const result = await fit(model, data, { epochs: 15, batchSize: 32, optimizer: { lr: 0.02 } });
      expect(result.epochs.at(-1)!.loss.click!).toBeLessThan(result.epochs[0]!.loss.click!);
      const after = await evaluate(model, data);
      expect(after.click!.logLoss).toBeLessThan(before.click!.logLoss!);
      expect(after.genre!.accuracy).toBeGreaterThan(0.9);

      const saved = path.join(dir, `fine-tuned-${file}`);
      await model.save(saved);
      const ours = (await model.forward(dense, categorical)) as ScriptTensor[];
      const inputs = path.join(dir, 'inputs.json');
      fs.writeFileSync(inputs, JSON.stringify({ rows: 5, dense: expected.dense, categorical: expected.categorical }));
      const pytorch = JSON.parse(
        execFileSync(PYTHON, [path.join(REPO_ROOT, 'scripts/reference/check_torchscript.py'), saved, inputs], { encoding: 'utf8' }),
      ) as { outputs: number[][]; training: boolean };
      expect(maxRelativeError(ours[0]!.data as Float32Array, pytorch.outputs[0]!)).toBeLessThan(1e-5);
      expect(maxRelativeError(ours[1]!.data as Float32Array, pytorch.outputs[1]!)).toBeLessThan(1e-5);
      expect(pytorch.training).toBe(training);
      const probabilities = await predict(model, data);
      expect(probabilities.genre).toHaveLength(size * 3);
    },
  );

  it('fine-tunes a model whose one output tensor holds every task', async () => {
    using model = await loadTorchScript(path.join(dir, 'traced.pt'));
    model.configureTasks({
      inputs: ['dense'],
      tasks: [
        { name: 'a', type: 'binary' },
        { name: 'b', type: 'binary' },
        { name: 'y', type: 'regression' },
      ],
    });
    const size = 64;
    const x = Float32Array.from({ length: size * 4 }, (_, i) => Math.cos(i));
    const labels = [0, 1, 2].map((t) =>
      Float32Array.from({ length: size }, (_, i) => (t < 2 ? (x[4 * i + t]! > 0 ? 1 : 0) : x[4 * i + 3]!)),
    );
    using data = TensorDataset.fromEncoded({ size, dense: x, labels });
    const result = await fit(model, data, {
      epochs: 2,
      batchSize: 16,
      validation: data,
      calibration: { method: 'temperature', tasks: ['b'] },
    });
    expect(result.steps).toBe(8);
    // Calibrated like a native model: the one task asked for, applied by predict unless calibrated: false.
    expect(Object.keys(model.calibration!)).toEqual(['b']);
    const [calibrated, raw] = [await predict(model, data), await predict(model, data, { calibrated: false })];
    expect(calibrated.a).toEqual(raw.a);
    const temperature = (model.calibration!.b as { temperature: number }).temperature;
    calibrated.b!.forEach((p, i) => {
      const logit = Math.log(raw.b![i]! / (1 - raw.b![i]!));
      expect(p).toBeCloseTo(1 / (1 + Math.exp(-logit / temperature)), 5);
    });
    model.configureTasks({
      inputs: ['dense'],
      tasks: [
        { name: 'a', type: 'binary' },
        { name: 'b', type: 'binary' },
        { name: 'y', type: 'regression' },
      ],
    });
    expect(model.calibration).toBeUndefined();
  });

  it('explains unusable files and calls', async () => {
    await expect(loadTorchScript(path.join(dir, 'newer.pt'))).rejects.toThrow(/newer PyTorch.*version 99.*LibTorch \d+\.\d+/);
    await expect(loadTorchScript(path.join(dir, 'absent.pt'))).rejects.toThrow(FileError);
    fs.writeFileSync(path.join(dir, 'junk.pt'), 'junk');
    await expect(loadTorchScript(path.join(dir, 'junk.pt'))).rejects.toThrow(FileError);
    using model = await loadTorchScript(path.join(dir, 'scripted.pt'));
    await expect(model.run('nope')).rejects.toThrow(/no method 'nope'/);
    await expect(model.forward(dense)).rejects.toThrow(/categorical.*missing/);
    await expect(model.forward(dense, 3)).rejects.toThrow(ValidationError);
    await expect(model.forward({ shape: [5, 5], data: new Float32Array(20) }, categorical)).rejects.toThrow(/20 values/);
    await expect(model.forward({ shape: [5, 3], data: new Float32Array(15) }, categorical)).rejects.toThrow(/size|shape|mat/i);
    using data = TensorDataset.fromEncoded({ size: 2, dense: new Float32Array(8), labels: [new Float32Array(2)] });
    await expect(fit(model, data)).rejects.toThrow(/configureTasks/);
    await expect(loadTorchScript(path.join(dir, 'scripted.pt'), { device: 'gpu' as never })).rejects.toThrow(ValidationError);
    await expect(loadTorchScript(dir)).rejects.toThrow(`cannot read ${dir}: it is a directory, expected a file`);
  });

  it('reads tensors over a SharedArrayBuffer, and rejects holes and fractional shapes with the argument named', async () => {
    using model = await loadTorchScript(path.join(dir, 'scripted.pt'));
    const shared = new Float32Array(new SharedArrayBuffer(dense.data.byteLength));
    shared.set(dense.data as Float32Array);
    expect(await model.forward({ shape: dense.shape, data: shared }, categorical)).toEqual(await model.forward(dense, categorical));
    await expect(model.run('forward', [dense, , categorical] as never)).rejects.toThrow('args[0][1] is empty (a hole in the array)');
    await expect(model.forward({ shape: [5, 4.5], data: new Float32Array(20) }, categorical)).rejects.toThrow(
      'args[0].shape[1] must be a non-negative integer, got 4.5',
    );
    await expect(model.forward(dense, { ...categorical, dtype: 4 as never })).rejects.toThrow(
      "args[1].dtype must be a string such as 'int64', got 4",
    );
    const exotic = Object.assign(
      [
        { name: 'click', type: 'binary' as const },
        { name: 'genre', type: 'multiclass' as const, classes: 3 },
      ],
      { constructor: { [Symbol.species]: 1 } },
    );
    expect(model.configureTasks({ inputs: ['dense', 'categorical'], tasks: exotic }).tasks).toHaveLength(2);
    expect(() => model.configureTasks({ inputs: ['dense'], tasks: [, { name: 'click', type: 'binary' }] as never })).toThrow(
      /tasks\[0\] must be/,
    );
  });

  it('saves atomically, sweeping temporaries of dead writers and refusing a directory', async () => {
    using model = await loadTorchScript(path.join(dir, 'scripted.pt'));
    const out = fs.mkdtempSync(path.join(dir, 'save-'));
    const stale = `model.pt.tmp-${2 ** 31 - 2}-2718281828`;
    fs.writeFileSync(path.join(out, stale), 'partial');
    await model.save(path.join(out, 'model.pt'));
    expect(fs.readdirSync(out)).toEqual(['model.pt']);
    await expect(model.save(out)).rejects.toThrow(`cannot write ${out}: it is a directory, expected a file`);
  });
});
