/**
 * Parity with the in-repo Python reference (scripts/reference, Meta's mtl_lib.py semantics), run with
 * Debian's python3-torch: same weights give the same outputs (1e-5), gradients (1e-4) and gate
 * distributions, for every model kind in several configurations.
 */
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createModel, setNumThreads } from '../lib';
import { batchOf, generateParityFixtures, maxRelativeError, readCase, runPython, userConfigOf, type ParityCase } from './helpers/reference';

const fixtures = generateParityFixtures();
const cases: ParityCase[] = fixtures.names.map((name) => readCase(fixtures.dir, name));

beforeAll(() => setNumThreads(2));

describe('parity with the Python reference', () => {
  it('covers every model kind with at least three configurations', () => {
    const perKind = new Map<string, number>();
    for (const c of cases) perKind.set(c.config.kind, (perKind.get(c.config.kind) ?? 0) + 1);
    for (const kind of ['adatt-sp', 'adatt', 'mmoe', 'ple', 'cross-stitch', 'shared-bottom', 'single-task']) {
      expect(perKind.get(kind) ?? 0, kind).toBeGreaterThanOrEqual(3);
    }
  });

  describe.each(cases.map((c) => [c.name, c] as const))('%s', (name, c) => {
    it('loads the torch.save weights and reproduces outputs, gradients and gates', async () => {
      using model = createModel(userConfigOf(c.config));
      await model.loadWeights(path.join(fixtures.dir, `${name}.weights.pt`));
      const batch = batchOf(c);

      const outputs = await model.forward(batch);
      c.config.tasks.forEach((task, t) => {
        expect(maxRelativeError(outputs[task.name]!, c.outputs[t]!), `output of ${task.name}`).toBeLessThan(1e-5);
      });

      const seeds = Object.fromEntries(c.config.tasks.map((task, t) => [task.name, new Float32Array(c.seeds[t]!)]));
      const gradients = await model.gradients(batch, seeds);
      expect(Object.keys(gradients).sort()).toEqual(Object.keys(c.gradients).sort());
      for (const [param, expected] of Object.entries(c.gradients)) {
        expect(gradients[param]!.shape, param).toEqual(expected.shape);
        expect(maxRelativeError(gradients[param]!.data, expected.data), `gradient of ${param}`).toBeLessThan(1e-4);
      }

      using fromSafetensors = createModel(userConfigOf(c.config));
      await fromSafetensors.loadWeights(path.join(fixtures.dir, `${name}.weights.safetensors`));
      expect(await fromSafetensors.forward(batch)).toEqual(outputs);

      const levels = await model.gateWeights(batch);
      expect(levels.length).toBe(c.gates.length);
      levels.forEach((level, l) => {
        const expected = c.gates[l]!;
        expect(level.weights.length).toBe(expected.gates);
        const flat = level.weights.flatMap((row) => Array.from(row));
        expect(maxRelativeError(flat, expected.data), `gates of level ${l}`).toBeLessThan(1e-5);
      });
    });
  });

  it.each(['pt', 'safetensors'])(
    'writes .%s weights that PyTorch loads into the reference model with the same predictions',
    async (extension) => {
      const names: string[] = [];
      const ours = new Map<string, Record<string, Float32Array>>();
      for (const c of cases) {
        using model = createModel(userConfigOf(c.config));
        // Fresh seeded weights (not the fixture's), so the check does not depend on the import path.
        await model.saveWeights(path.join(fixtures.dir, `${c.name}.adatt.${extension}`));
        ours.set(c.name, await model.forward(batchOf(c)));
        names.push(c.name);
      }
      runPython('check_exported.py', [fixtures.dir, extension, ...names]);
      for (const c of cases) {
        const reference = readCase(fixtures.dir, `${c.name}.adatt`) as unknown as number[][];
        c.config.tasks.forEach((task, t) => {
          expect(maxRelativeError(ours.get(c.name)![task.name]!, reference[t]!), `${c.name} ${task.name}`).toBeLessThan(1e-5);
        });
      }
    },
  );
});
