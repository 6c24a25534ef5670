/**
 * report.html of a run: one self-contained page (inline CSS, inline SVG, a few lines of inline
 * script, and a Content-Security-Policy that forbids any network access) built only from the files
 * of the run directory, so `adatt report` can rebuild it at any time.
 */
import type { TaskConfig } from '../../config';
import type { EpochSummary, Metrics } from '../../training';
import { formatInteger, formatSeconds, formatMetric, HEADLINE_METRIC, HIGHER_IS_BETTER, metricNames } from '../format';
import { gateShares } from '../../gates';
import type { ReliabilityCurve } from '../../calibration';
import type { ExpertStats } from '../../expert-health';
import type { CalibrationRecord, GateRecord, MetricsRecord, RunArtifacts } from '../run-dir';
import { escapeHtml as e, heatmap, lineChart, type Series } from './svg';

const STYLE = `
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --card: #fff; --page: #f6f8fa; --accent: #0072b2; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--page); color: var(--ink); font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 0 0 12px; } h3 { font-size: 15px; margin: 16px 0 8px; }
.subtitle { color: var(--muted); margin: 0 0 16px; word-break: break-all; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px; margin: 16px 0; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 8px 24px; margin: 0; }
.facts div { border-left: 3px solid var(--line); padding-left: 8px; } .facts dt { color: var(--muted); font-size: 12px; } .facts dd { margin: 0; font-weight: 600; }
.status { display: inline-block; padding: 1px 10px; border-radius: 12px; font-size: 12px; font-weight: 600; background: #dafbe1; color: #116329; vertical-align: middle; }
.status.interrupted, .status.failed { background: #ffebe9; color: #a40e26; } .status.stopped-early { background: #fff8c5; color: #7d4e00; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 12px; border-bottom: 1px solid var(--line); text-align: right; } th:first-child, td:first-child { text-align: left; }
th { font-weight: 600; color: var(--muted); font-size: 12px; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr)); gap: 12px; }
svg.chart { width: 100%; height: auto; background: #fff; } svg.heatmap { max-width: 100%; }
.chart-title { font-weight: 600; font-size: 14px; fill: var(--ink); } .tick { font-size: 11px; fill: var(--muted); } .axis-label { font-size: 12px; fill: var(--muted); }
.grid { stroke: #eaeef2; } .axis { stroke: #8c959f; } .cell { font-size: 11px; } .empty { fill: var(--muted); }
rect.own { stroke: #d55e00; stroke-width: 2; }
.legend-item { cursor: pointer; font-size: 12px; } .legend-item text { fill: var(--ink); } .legend-item.off { opacity: 0.35; } .series.hidden { display: none; }
.note { color: var(--muted); font-size: 13px; } .levels { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
pre { background: var(--page); padding: 12px; border-radius: 6px; overflow: auto; font-size: 12px; }
footer { color: var(--muted); font-size: 12px; text-align: center; margin: 24px 0; }
`;

/** Legend clicks show and hide a series; the data-rendered mark lets a headless browser confirm the page ran. */
const SCRIPT = `
(function () {
  document.querySelectorAll('.legend-item').forEach(function (item) {
    item.addEventListener('click', function () {
      var series = item.closest('svg').querySelector('.series[data-series="' + item.getAttribute('data-series') + '"]');
      if (series) item.classList.toggle('off', series.classList.toggle('hidden'));
    });
  });
  document.documentElement.setAttribute('data-rendered', String(document.querySelectorAll('svg.chart').length));
})();
`;

const CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:";

function epochsOf(metrics: readonly MetricsRecord[]): EpochSummary[] {
  return metrics.filter((m): m is Extract<MetricsRecord, { type: 'epoch' }> => m.type === 'epoch');
}

function testMetricsOf(metrics: readonly MetricsRecord[]): Metrics | undefined {
  const test = metrics.filter((m): m is Extract<MetricsRecord, { type: 'test' }> => m.type === 'test').at(-1);
  return test?.metrics;
}

/** The validation loss comparable to the training loss: log loss, or MSE (rmse²) for regression. */
function validationLoss(task: TaskConfig, metrics: Metrics | undefined): number | undefined {
  const values = metrics?.[task.name];
  if (!values) return undefined;
  if (task.type === 'regression') return values.rmse === undefined ? undefined : values.rmse ** 2;
  return values.logLoss;
}

function curves(tasks: readonly TaskConfig[], epochs: readonly EpochSummary[]): string {
  if (epochs.length === 0) return '<p class="note">No epoch finished.</p>';
  const x = (summary: EpochSummary): number => summary.epoch + 1;
  const charts = tasks.flatMap((task) => {
    const lossSeries: Series[] = [{ name: 'training loss', points: epochs.map((s) => ({ x: x(s), y: s.loss[task.name] ?? NaN })) }];
    const hasValidation = epochs.some((s) => s.validation);
    if (hasValidation) {
      lossSeries.push({
        name: task.type === 'regression' ? 'validation MSE' : 'validation log loss',
        dashed: true,
        points: epochs.map((s) => ({ x: x(s), y: validationLoss(task, s.validation) ?? NaN })),
      });
    }
    const result = [lineChart({ title: `${task.name}: loss`, xLabel: 'epoch', yLabel: 'loss', series: lossSeries })];
    if (hasValidation) {
      const metric = HEADLINE_METRIC[task.type];
      result.push(
        lineChart({
          title: `${task.name}: validation ${metric} (${HIGHER_IS_BETTER.has(metric) ? 'higher' : 'lower'} is better)`,
          xLabel: 'epoch',
          yLabel: metric,
          series: [
            { name: `validation ${metric}`, points: epochs.map((s) => ({ x: x(s), y: s.validation?.[task.name]?.[metric] ?? NaN })) },
          ],
        }),
      );
    }
    return result;
  });
  // Task weights only when they moved (uncertainty, GradNorm, DWA); runs before they were recorded have none.
  const weighted = epochs.filter((s) => s.taskWeights !== undefined);
  const moved = tasks.some((task) => new Set(weighted.map((s) => s.taskWeights[task.name])).size > 1);
  if (moved) {
    charts.push(
      lineChart({
        title: "task weights (each task's weight on its loss)",
        xLabel: 'epoch',
        yLabel: 'weight',
        series: tasks.map((task) => ({ name: task.name, points: weighted.map((s) => ({ x: x(s), y: s.taskWeights[task.name] ?? NaN })) })),
      }),
    );
  }
  // Task-gradient conflict only when measured (fit's gradientConflict option).
  const measured = epochs.filter((s) => s.gradientConflict !== undefined);
  const first = measured[0]?.gradientConflict;
  if (first) {
    const conflictChart = (
      title: string,
      yLabel: string,
      values: (s: EpochSummary) => Record<string, number | null>,
      keys: string[],
    ): string =>
      lineChart({
        title,
        xLabel: 'epoch',
        yLabel,
        series: keys.map((key) => ({ name: key, points: measured.map((s) => ({ x: x(s), y: values(s)[key] ?? NaN })) })),
      });
    charts.push(
      conflictChart(
        'task-gradient cosine on shared parameters (below 0: the tasks conflict)',
        'cosine',
        (s) => s.gradientConflict!.cosine,
        Object.keys(first.cosine),
      ),
    );
    charts.push(conflictChart('task gradient norm on shared parameters', 'norm', (s) => s.gradientConflict!.norm, Object.keys(first.norm)));
  }
  return `<div class="charts">${charts.join('')}</div>`;
}

function metricsTable(metrics: Metrics): string {
  const names = metricNames(metrics);
  const header = `<tr><th>task</th>${names.map((n) => `<th>${e(n)}</th>`).join('')}</tr>`;
  const rows = Object.entries(metrics).map(
    ([task, values]) => `<tr><td>${e(task)}</td>${names.map((n) => `<td>${formatMetric(n, values[n])}</td>`).join('')}</tr>`,
  );
  return `<table>${header}${rows.join('')}</table>`;
}

function metricsSection(epochs: readonly EpochSummary[], test: Metrics | undefined): string {
  if (test) return `<section><h2>Test metrics</h2>${metricsTable(test)}</section>`;
  const last = [...epochs].reverse().find((s) => s.validation);
  if (last?.validation) {
    return `<section><h2>Validation metrics (epoch ${last.epoch + 1})</h2><p class="note">No test metrics: the run has no test split or did not finish.</p>${metricsTable(last.validation)}</section>`;
  }
  return '<section><h2>Metrics</h2><p class="note">No metrics yet.</p></section>';
}

function sharesTable(level: GateRecord['levels'][number]): string {
  const shares = gateShares(level).filter((s) => s.own !== undefined);
  if (shares.length === 0) return '';
  const hasShared = shares.some((s) => s.shared !== undefined);
  const pct = (v: number | undefined): string => (v === undefined ? '–' : `${(v * 100).toFixed(1)} %`);
  const rows = shares.map(
    (s) =>
      `<tr><td>${e(s.gate)}</td><td>${pct(s.own)}</td><td>${pct(s.otherTasks)}</td>` +
      `${hasShared ? `<td>${pct(s.shared)}</td>` : ''}<td>${s.entropy.toFixed(3)}</td></tr>`,
  );
  return `<table><tr><th>gate</th><th>own experts</th><th>other tasks' experts</th>${hasShared ? '<th>shared experts</th>' : ''}<th>normalised entropy</th></tr>${rows.join('')}</table>`;
}

function gatesSection(gates: GateRecord | undefined, kind: string): string {
  if (!gates) {
    return `<section><h2>Expert utilisation</h2><p class="note">A ${e(kind)} model has no softmax gates over experts, so there is no utilisation to show.</p></section>`;
  }
  const levels = gates.levels.map((level) => {
    const modules = level.experts.map((expert) => expert.slice(0, Math.max(0, expert.lastIndexOf('/'))));
    const chart = heatmap({
      title: `Level ${level.level}`,
      rows: level.gates,
      columns: level.experts,
      values: level.weights,
      rowLabel: 'gate',
      columnLabel: 'expert',
      highlight: (r, c) => modules[c] === level.gates[r],
    });
    return `<div>${chart}${sharesTable(level)}</div>`;
  });
  return `<section><h2>Expert utilisation</h2>
<p class="note">Each row is a gate (a task, or the shared module), each column an expert; a cell is the gate's softmax weight on that expert,
averaged over ${formatInteger(gates.rows)} ${e(gates.split)} rows (gate output before AdaTT's native-expert residual).
Outlined cells are the task's own experts. Weights are the model's at the end of the run.</p>
<div class="levels">${levels.join('')}</div></section>`;
}

function expertHealthSection(epochs: readonly EpochSummary[]): string {
  const measured = epochs.filter((s) => s.expertHealth !== undefined);
  const last = measured.at(-1)?.expertHealth;
  if (!last) return '';
  const x = (summary: EpochSummary): number => summary.epoch + 1;
  const levels = [...new Set(last.experts.map((e) => e.level))];
  const charts = levels.flatMap((level) => {
    const names = last.experts.filter((e) => e.level === level).map((e) => e.expert);
    const chart = (title: string, yLabel: string, value: (stats: ExpertStats) => number): string =>
      lineChart({
        title,
        xLabel: 'epoch',
        yLabel,
        series: names.map((name) => ({
          name,
          points: measured.map((s) => {
            const stats = s.expertHealth!.experts.find((candidate) => candidate.level === level && candidate.expert === name);
            return { x: x(s), y: stats ? value(stats) : NaN };
          }),
        })),
      });
    return [
      chart(`level ${level}: share of zero ReLU outputs per expert`, 'share', (stats) => stats.zeroFraction),
      chart(`level ${level}: output norm per expert`, 'norm', (stats) => stats.outputNorm),
    ];
  });
  const pct = (v: number): string => `${(v * 100).toFixed(1)} %`;
  const rows = last.experts.map(
    (stats) =>
      `<tr><td>${stats.level}</td><td>${e(stats.expert)}</td><td>${pct(stats.zeroFraction)}</td>` +
      `<td>${pct(stats.deadUnits)}</td><td>${stats.outputNorm.toPrecision(4)}</td></tr>`,
  );
  const flags =
    last.flags.length === 0
      ? '<p class="note">No flags: no collapsed expert, no shared expert serving one task, no task gate ignoring its own experts.</p>'
      : `<ul class="flags">${last.flags.map((flag) => `<li><b>${e(flag.kind)}</b>: ${e(flag.message)}</li>`).join('')}</ul>`;
  return `<section><h2>Expert health</h2>
<p class="note">Measured on ${formatInteger(last.rows)} validation rows after every epoch: the share of each expert's outputs that its last ReLU sets to zero
(collapse when most are), units that are zero on every row, and the mean norm of its output. The table and flags are the last epoch's.</p>
${flags}<div class="charts">${charts.join('')}</div>
<table><tr><th>level</th><th>expert</th><th>zero outputs</th><th>dead units</th><th>output norm</th></tr>${rows.join('')}</table></section>`;
}

function calibrationSection(record: CalibrationRecord | undefined): string {
  if (!record) return '';
  const charts = Object.entries(record.curves).map(([task, { before, after }]) => {
    const points = (curve: ReliabilityCurve): { x: number; y: number }[] =>
      curve.bins
        .filter((bin) => bin.meanPrediction !== null && bin.positiveRate !== null)
        .map((bin) => ({ x: bin.meanPrediction!, y: bin.positiveRate! }));
    return lineChart({
      title: `${task}: reliability (ECE ${formatMetric('ece', before.ece)} → ${formatMetric('ece', after.ece)})`,
      xLabel: 'mean predicted probability',
      yLabel: 'positive rate',
      xRange: [0, 1],
      yRange: [0, 1],
      series: [
        {
          name: 'perfectly calibrated',
          dashed: true,
          points: [
            { x: 0, y: 0 },
            { x: 1, y: 1 },
          ],
        },
        { name: 'before', points: points(before) },
        { name: `after (${record.calibration[task]?.method ?? 'calibrated'})`, points: points(after) },
      ],
    });
  });
  return `<section><h2>Calibration</h2>
<p class="note">Calibrators fitted on ${formatInteger(record.rows)} ${e(record.split)} rows after training; the model applies them to its predictions
(test metrics above are calibrated). Each point is one of 15 equal-width bins of the predicted probability: its mean prediction against its positive rate.</p>
<div class="charts">${charts.join('')}</div></section>`;
}

function parametersSection(run: RunArtifacts['run']): string {
  const total = run.model.parameters;
  const rows = run.model.parts.map(
    (p) =>
      `<tr><td>${e(p.part)}</td><td>${p.tensors}</td><td>${formatInteger(p.parameters)}</td>` +
      `<td>${total > 0 ? ((p.parameters / total) * 100).toFixed(1) : '0'} %</td></tr>`,
  );
  return (
    `<section><h2>Parameters</h2><table><tr><th>part</th><th>tensors</th><th>parameters</th><th>share</th></tr>${rows.join('')}` +
    `<tr><td><b>total</b></td><td></td><td><b>${formatInteger(total)}</b></td><td></td></tr></table></section>`
  );
}

function facts(run: RunArtifacts['run'], epochs: readonly EpochSummary[]): string {
  const config = run.model.config;
  const rows = Object.entries(run.dataset.rows)
    .map(([split, n]) => `${split} ${formatInteger(n)}`)
    .join(' · ');
  const items: [string, string][] = [
    ['model', config.kind],
    ['parameters', formatInteger(run.model.parameters)],
    ['dataset', run.dataset.name],
    ['rows', rows],
    ['tasks', run.dataset.tasks.map((t) => `${t.name} (${t.type})`).join(', ')],
    ['experts per level', config.expertDims.map((dims) => `[${dims.join(', ')}]`).join(' → ')],
    ['epochs', `${run.training.completedEpochs} of ${run.training.epochs}`],
    [
      'best epoch',
      run.training.bestEpoch === undefined
        ? '–'
        : `${run.training.bestEpoch + 1}${run.training.monitor ? ` (${run.training.monitor.task} ${run.training.monitor.metric} ${run.training.bestValue?.toFixed(4) ?? ''})` : ''}`,
    ],
    ['training time', formatSeconds(epochs.reduce((sum, s) => sum + s.seconds, 0))],
    ['started', run.startedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')],
    ['adatt / LibTorch', `${run.adatt} / ${run.libtorch}`],
  ];
  return `<dl class="facts">${items.map(([k, v]) => `<div><dt>${e(k)}</dt><dd>${e(v)}</dd></div>`).join('')}</dl>`;
}

export function buildReport(artifacts: RunArtifacts): string {
  const { run, metrics, config } = artifacts;
  const epochs = epochsOf(metrics);
  const title = `${run.model.config.kind} on ${run.dataset.name}`;
  const status = run.status.replace('-', ' ');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>adatt report: ${e(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>${e(title)} <span class="status ${e(run.status)}">${e(status)}</span></h1>
<p class="subtitle">${e(artifacts.dir)}</p>
<section>${facts(run, epochs)}${run.error ? `<p class="note">Error: ${e(run.error)}</p>` : ''}</section>
${metricsSection(epochs, testMetricsOf(metrics))}
<section><h2>Training curves</h2>${curves(run.dataset.tasks, epochs)}</section>
${expertHealthSection(epochs)}
${calibrationSection(artifacts.calibration)}
${gatesSection(artifacts.gates, run.model.config.kind)}
${parametersSection(run)}
<section><details><summary><b>Resolved config</b> (config.json)</summary><pre>${e(JSON.stringify(config, null, 2))}</pre></details></section>
<footer>Generated by adatt ${e(run.adatt)} · ${e(run.command.join(' '))}</footer>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
