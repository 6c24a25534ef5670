/** The report page and its pieces, from hand-made run artifacts (no model, no browser). */
import { describe, expect, it } from 'vitest';
import { metricsTable, formatDuration, formatCompact } from '../../lib/cli/format';
import { batchOfRows } from '../../lib/cli/gates';
import { evenlySpacedRows, gateShares } from '../../lib/gates';
import { groupParameters } from '../../lib/cli/parameters';
import { csvChunks, predictionColumns } from '../../lib/cli/prediction-file';
import { buildReport } from '../../lib/cli/report/html';
import { escapeHtml, heatColor, niceTicks } from '../../lib/cli/report/svg';
import type { RunArtifacts } from '../../lib/cli/run-dir';
import type { FittedSchema } from '../../lib/data/types';

function sampleArtifacts(): RunArtifacts {
  const epoch = (e: number, loss: number, auc: number) => ({
    type: 'epoch' as const,
    epoch: e,
    steps: 10,
    examples: 1000,
    skipped: 0,
    seconds: 1.5,
    examplesPerSecond: 666,
    best: e === 1,
    loss: { click: loss, '<b>': loss / 2 },
    taskWeights: { click: 1, '<b>': 1 },
    validation: { click: { auc, logLoss: loss * 1.1, count: 100 }, '<b>': { rmse: 0.5 - e / 10, mae: 0.3, count: 100 } },
  });
  return {
    dir: '/runs/demo',
    config: { model: { kind: 'adatt' }, data: { source: 'synthetic' } },
    run: {
      adatt: '0.1.0',
      libtorch: '1.13.0',
      command: ['adatt', 'train'],
      startedAt: '2025-01-01T10:00:00.000Z',
      status: 'completed',
      dataset: {
        name: 'demo',
        rows: { train: 1000, validation: 100 },
        tasks: [
          { name: 'click', type: 'binary' },
          { name: '<b>', type: 'regression' },
        ],
      },
      model: {
        config: {
          kind: 'adatt',
          input: { dense: 3 },
          tasks: [
            { name: 'click', type: 'binary' },
            { name: '<b>', type: 'regression' },
          ],
          expertDims: [[8], [4]],
          expertsPerTask: 1,
          sharedExperts: 1,
        },
        parameters: 300,
        parts: [
          { part: 'experts, level 0', tensors: 6, parameters: 200 },
          { part: 'tower of click', tensors: 2, parameters: 100 },
        ],
      },
      training: { epochs: 3, completedEpochs: 3, bestEpoch: 1, bestValue: 0.8, monitor: { metric: 'auc', task: 'mean' } },
      files: { model: 'model.adatt', checkpoints: [] },
    },
    metrics: [
      epoch(0, 0.6, 0.7),
      epoch(1, 0.5, 0.8),
      epoch(2, 0.45, 0.79),
      { type: 'test', metrics: { click: { auc: 0.81, ne: 0.9, count: 100 }, '<b>': { rmse: 0.31, mae: 0.2, count: 100 } } },
    ],
    gates: {
      split: 'validation',
      rows: 100,
      levels: [
        {
          level: 0,
          gates: ['click', '<b>', 'shared'],
          experts: ['click/0', '<b>/0', 'shared/0'],
          weights: [
            [0.6, 0.1, 0.3],
            [0.2, 0.5, 0.3],
            [0.3, 0.3, 0.4],
          ],
        },
      ],
    },
  };
}

describe('buildReport', () => {
  const html = buildReport(sampleArtifacts());

  it('is one self-contained page that cannot reach the network', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain("default-src 'none'");
    expect(html).not.toMatch(/\b(?:src|href)=|https?:\/\/|@import|url\(/);
  });

  it('has the curves per task, the test metrics, the utilisation heatmap and the parameters', () => {
    expect(html).toContain('click: loss');
    expect(html).toContain('click: validation auc (higher is better)');
    expect(html).toContain('&lt;b&gt;: validation rmse (lower is better)');
    expect(html).toContain('validation MSE');
    expect(html.match(/<svg class="chart"/g)).toHaveLength(4);
    expect(html).toContain('<h2>Test metrics</h2>');
    expect(html).toContain('0.8100');
    expect(html).toContain('svg class="chart heatmap"');
    expect(html).toContain('click → click/0: 0.6000');
    expect(html).toContain('60.0 %');
    expect(html).toContain('tower of click');
    expect(html).not.toContain('<b>:');
  });

  it('explains what is missing: no gates, no finished epoch, an interrupted run', () => {
    const artifacts = sampleArtifacts();
    delete artifacts.gates;
    artifacts.metrics = [];
    artifacts.run.status = 'interrupted';
    const page = buildReport(artifacts);
    expect(page).toContain('has no softmax gates');
    expect(page).toContain('No epoch finished.');
    expect(page).toContain('class="status interrupted"');
  });
});

describe('report pieces', () => {
  it('picks round ticks that cover the data', () => {
    expect(niceTicks(0.42, 0.61).ticks).toEqual([0.4, 0.45, 0.5, 0.55, 0.6, 0.65]);
    expect(niceTicks(3, 3).ticks.length).toBeGreaterThan(1);
    expect(escapeHtml('<a href="x">&\'')).toBe('&lt;a href=&quot;x&quot;&gt;&amp;&#39;');
    expect(heatColor(0)).toBe('rgb(247,251,255)');
    expect(heatColor(1)).toBe('rgb(8,48,107)');
  });

  it("divides gate weight into own, other tasks' and shared experts", () => {
    const [click, , shared] = gateShares(sampleArtifacts().gates!.levels[0]!);
    expect(click!.own).toBeCloseTo(0.6);
    expect(click!.otherTasks).toBeCloseTo(0.1);
    expect(click!.shared).toBeCloseTo(0.3);
    expect(shared!.own).toBeCloseTo(0.4);
    expect(shared!.shared).toBeUndefined();
    const mmoe = gateShares({ gates: ['a'], experts: ['expert 0', 'expert 1'], weights: [[0.5, 0.5]] });
    expect(mmoe[0]).toEqual({ gate: 'a', entropy: 1 });
  });

  it('groups reference-layout parameter names by part', () => {
    const t = (...shape: number[]) => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
    const groups = groupParameters(
      {
        'embeddings.0.weight': t(5, 2),
        'bag_embeddings.0.weight': t(3, 2),
        'mtl_arch.experts.0.0.mlp_net.0.weight': t(4, 3),
        'mtl_arch.experts.1.0.mlp_net.0.weight': t(2, 4),
        'mtl_arch.gate_weights.0.0.0.weight': t(2, 3),
        'mtl_arch.self_exp_weights.0': t(2, 2),
        'task_modules.1.1.weight': t(1, 2),
        'mtl_arch.stitchs.0.weight': t(2, 2),
      },
      ['a', 'b'],
    );
    expect(groups).toEqual([
      { part: 'embeddings', tensors: 2, parameters: 16 },
      { part: 'experts, level 0', tensors: 1, parameters: 12 },
      { part: 'experts, level 1', tensors: 1, parameters: 8 },
      { part: 'gates, level 0', tensors: 1, parameters: 6 },
      { part: 'native-expert weights', tensors: 1, parameters: 4 },
      { part: 'tower of b', tensors: 1, parameters: 2 },
      { part: 'cross-stitch units, level 0', tensors: 1, parameters: 4 },
    ]);
  });

  it('samples rows of encoded data into a batch, bags included', () => {
    expect(Array.from(evenlySpacedRows(10, 4))).toEqual([0, 2, 5, 7]);
    expect(Array.from(evenlySpacedRows(3, 10))).toEqual([0, 1, 2]);
    const batch = batchOfRows(
      {
        size: 3,
        dense: Float32Array.of(1, 2, 3, 4, 5, 6),
        categorical: Int32Array.of(7, 8, 9),
        multiValued: [{ indices: Int32Array.of(1, 2, 3, 4), offsets: Int32Array.of(0, 2, 2) }],
        labels: [],
      },
      Int32Array.of(2, 0),
    );
    expect(batch).toEqual({
      size: 2,
      dense: Float32Array.of(5, 6, 1, 2),
      categorical: Int32Array.of(9, 7),
      multiValued: [{ indices: Int32Array.of(3, 4, 1, 2), offsets: Int32Array.of(0, 2) }],
    });
  });

  it('writes prediction columns per task and class, quoting CSV cells', () => {
    const schema = {
      tasks: [
        { name: 'click', type: 'binary', column: 'c', positive: ['1'] },
        { name: 'genre', type: 'multiclass', column: 'g', classes: ['rock', 'jazz'] },
      ],
    } as unknown as FittedSchema;
    const columns = predictionColumns(schema, { click: Float32Array.of(0.25, 0.5), genre: Float32Array.of(0.1, 0.9, 0.7, 0.3) });
    expect(columns.map((c) => c.name)).toEqual(['click', 'genre_rock', 'genre_jazz']);
    const csv = [...csvChunks([{ name: 'id', values: ['a,b', null] }, ...columns])].join('');
    expect(csv).toBe('id,click,genre_rock,genre_jazz\n"a,b",0.25,0.1,0.9\n,0.5,0.7,0.3\n');
  });

  it('formats numbers for people', () => {
    expect(formatDuration(3725)).toBe('1:02:05');
    expect(formatDuration(7)).toBe('0:07');
    expect(formatCompact(48_210)).toBe('48.2k');
    expect(metricsTable({ a: { auc: 0.9, count: 1200 } })).toBe('task     auc  count\n────  ──────  ─────\na     0.9000  1,200');
  });
});
