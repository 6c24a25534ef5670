/**
 * Grouped AUC: the AUC within each group (user) with both classes, weighted by the group's rows,
 * against an independent pairwise Python reference (ties, single-class groups, missing labels,
 * sample weights), and carried from a schema's group column through encoding, streams,
 * evaluation and early stopping.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  createModel,
  encode,
  evaluate,
  fit,
  fitSchema,
  modelSections,
  openStream,
  parseCsv,
  TensorDataset,
  ValidationError,
  type SchemaSpec,
} from '../lib';
import { loadAddon } from '../lib/addon';
import { seededUniform } from './helpers/random';
import { makeTempDir, runPython } from './helpers/reference';

describe('grouped AUC against an independent reference', () => {
  it.each([false, true])('matches per-group pairwise AUCs (sample weights: %s), skipping single-class groups', async (weighted) => {
    const next = seededUniform(weighted ? 5 : 3);
    const size = 900;
    // Logits on a grid of quarters (ties), 60 groups of uneven size, some all-positive or all-negative.
    const logits = Float32Array.from({ length: size }, () => (Math.floor(next() * 13) - 6) / 4);
    const groups = BigInt64Array.from({ length: size }, () => BigInt(Math.floor(next() ** 2 * 60)) * 7919n - 100n);
    const click = Float32Array.from({ length: size }, (_, r) => {
      const group = Number(groups[r]! % 5n);
      if (r % 29 === 0) return NaN;
      if (group === 0) return 1; // groups whose id is 0 mod 5 hold positives only
      return next() < 0.35 + 0.08 * logits[r]! ? 1 : 0;
    });
    const weights = weighted ? [Float32Array.from({ length: size }, () => 0.2 + next() * 2)] : undefined;
    const [metrics] = await loadAddon().taskMetrics([logits], [click], ['binary'], undefined, weights, groups);
    const dir = makeTempDir('grouped-auc');
    const file = (name: string, data: Float32Array | BigInt64Array): string => {
      fs.writeFileSync(path.join(dir, name), new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      return path.join(dir, name);
    };
    const args = [
      file(
        'p.f32',
        Float32Array.from(logits, (x) => 1 / (1 + Math.exp(-x))),
      ),
      file('y.f32', click),
      weights ? file('w.f32', weights[0]!) : '-',
      file('g.i64', groups),
    ];
    const reference = JSON.parse(runPython('metrics.py', args)) as Record<string, number>;
    expect(metrics!.gaucGroups).toBe(reference.gaucGroups);
    expect(metrics!.gaucGroups).toBeGreaterThan(20);
    expect(metrics!.gaucGroups).toBeLessThan(60);
    expect(metrics!.gauc).toBeCloseTo(reference.gauc!, 9);
    expect(metrics!.gaucMean).toBeCloseTo(reference.gaucMean!, 9);
    expect(metrics!.auc).toBeCloseTo(reference.auc!, 9);
    expect(metrics!.gauc).not.toBeCloseTo(metrics!.gaucMean!, 4);
  });

  it('reports no grouped AUC without groups, and NaN when no group has both classes', async () => {
    const addon = loadAddon();
    const [plain] = await addon.taskMetrics([Float32Array.of(0.1, 0.2, 0.3)], [Float32Array.of(0, 1, 0)], ['binary']);
    expect(plain).not.toHaveProperty('gauc');
    const [single] = await addon.taskMetrics(
      [Float32Array.of(0.1, 0.2, 0.3)],
      [Float32Array.of(0, 1, 0)],
      ['binary'],
      undefined,
      undefined,
      BigInt64Array.of(1n, 2n, 3n),
    );
    expect(single!.gaucGroups).toBe(0);
    expect(single!.gauc).toBeNaN();
    await expect(
      addon.taskMetrics([Float32Array.of(0.1)], [Float32Array.of(0)], ['binary'], undefined, undefined, BigInt64Array.of(1n, 2n)),
    ).rejects.toThrow(/groups needs one group id per row/);
  });
});

describe('grouped AUC from a schema group column', () => {
  const next = seededUniform(9);
  const csv = [
    'x,item,user,click',
    ...Array.from({ length: 1200 }, (_, i) => {
      const x = next() * 2 - 1;
      const user = `u${Math.floor(next() * 80)}`;
      return `${x.toFixed(4)},i${i % 9},${user},${x + 0.8 * next() > 0.3 ? 1 : 0}`;
    }),
  ].join('\n');
  const SPEC: SchemaSpec = {
    dense: ['x'],
    categorical: ['item'],
    tasks: [{ name: 'click', type: 'binary', column: 'click', positive: 1 }],
    group: 'user',
  };

  it('encodes group ids per row, evaluates gauc in memory and streamed alike, and stops early on it', async () => {
    const table = parseCsv(csv);
    const schema = fitSchema(SPEC, table);
    expect(schema.group).toBe('user');
    expect(schema.columns).toContain('user');
    const encoded = encode(schema, table);
    expect(encoded.groups).toBeInstanceOf(BigInt64Array);
    expect(new Set(encoded.groups).size).toBe(
      new Set(
        csv
          .split('\n')
          .slice(1)
          .map((line) => line.split(',')[2]),
      ).size,
    );
    using model = createModel({ kind: 'mmoe', ...modelSections(schema), expertDims: [[8]], towerDims: [4], experts: 2 });
    using data = TensorDataset.fromEncoded(encoded);
    const result = await fit(model, data, { epochs: 3, batchSize: 64, validation: data, earlyStopping: { metric: 'gauc', patience: 5 } });
    expect(result.epochs.map((epoch) => epoch.monitored)).toEqual(result.epochs.map((epoch) => epoch.validation!.click!.gauc));
    expect(result.bestValue).toBe(Math.max(...result.epochs.map((epoch) => epoch.monitored!)));
    const inMemory = await evaluate(model, data);
    expect(inMemory.click!.gaucGroups).toBeGreaterThan(50);
    const dir = makeTempDir('grouped-auc-stream');
    fs.writeFileSync(path.join(dir, 'events.csv'), csv);
    const streamed = await evaluate(model, await openStream(path.join(dir, 'events.csv'), { schema, chunkRows: 100 }));
    for (const name of ['gauc', 'gaucMean', 'gaucGroups', 'auc'])
      expect(streamed.click![name], name).toBeCloseTo(inMemory.click![name]!, 9);
  });

  it('names the row of a missing group and the field of a group column that is not there', () => {
    const schema = fitSchema(SPEC, parseCsv(csv));
    const lines = csv.split('\n');
    lines[7] = lines[7]!.replace(/,u\d+,/, ',,');
    expect(() => encode(schema, parseCsv(lines.join('\n')))).toThrow(
      /line 8 of CSV text, column 'user'.*group \(schema.group\) is missing/,
    );
    expect(() => fitSchema({ ...SPEC, group: 'nobody' }, parseCsv(csv))).toThrow(expect.objectContaining({ field: 'group' }));
    expect(() => TensorDataset.fromEncoded({ ...encode(schema, parseCsv(csv)), groups: new BigInt64Array(3) })).toThrow(ValidationError);
  });
});
