/** Number, duration and table formatting shared by the terminal output and the HTML report. */
import type { TaskType } from '../config';
import { MAXIMIZED_METRICS, type Metrics } from '../training';

/** The metric that sums up a task in one number: shown per epoch and charted in the report. */
export const HEADLINE_METRIC: Readonly<Record<TaskType, string>> = { binary: 'auc', multiclass: 'accuracy', regression: 'rmse' };

/** The order metrics are shown in; others follow alphabetically. */
export const METRIC_ORDER = [
  'auc',
  'gauc',
  'gaucMean',
  'ne',
  'logLoss',
  'accuracy',
  'calibration',
  'ece',
  'positiveRate',
  'rmse',
  'mae',
  'count',
  'gaucGroups',
  'weight',
] as const;

/** Metrics where larger is better (for arrows and highlighting). */
export const HIGHER_IS_BETTER = MAXIMIZED_METRICS;

/** Metrics that count things. */
const COUNTS = new Set(['count', 'gaucGroups']);

export function metricNames(metrics: Metrics): string[] {
  const present = new Set(Object.values(metrics).flatMap((task) => Object.keys(task)));
  const ordered: string[] = METRIC_ORDER.filter((name) => present.has(name));
  return [...ordered, ...[...present].filter((name) => !ordered.includes(name)).sort()];
}

/** `value` may be null: metrics read back from metrics.jsonl hold null where they were NaN (e.g. the AUC of one class). */
export function formatMetric(name: string, value: number | null | undefined): string {
  if (typeof value !== 'number' || Number.isNaN(value)) return '–';
  if (COUNTS.has(name)) return formatInteger(value);
  return value.toFixed(4);
}

export function formatInteger(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

/** 48210 -> '48.2k', 1.2e6 -> '1.2M'. */
export function formatCompact(value: number): string {
  if (!Number.isFinite(value)) return '–';
  const abs = Math.abs(value);
  if (abs >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
  if (abs >= 1e4) return `${(value / 1e3).toFixed(1)}k`;
  return formatInteger(value);
}

/** Seconds for a person: '0.4 s', '12.3 s', then '1:05', '12:05', '1:02:03'. */
export function formatSeconds(seconds: number): string {
  return seconds < 60 ? `${seconds.toFixed(1)} s` : formatDuration(seconds);
}

/** Seconds as '0:07', '12:05' or '1:02:03'. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '–:––';
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1 << 30) return `${(bytes / (1 << 30)).toFixed(1)} GiB`;
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
  if (bytes >= 1 << 10) return `${(bytes / (1 << 10)).toFixed(1)} KiB`;
  return `${bytes} B`;
}

/** A plain-text table with a header rule; numeric-looking cells are right-aligned. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, c) => Math.max(title.length, ...rows.map((row) => (row[c] ?? '').length)));
  const numeric = header.map((_, c) => rows.length > 0 && rows.every((row) => /^[-+]?[\d.,]+[%kMGi B]*$|^–$/.test(row[c] ?? '')));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, c) => (numeric[c] ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Per task one row of every metric present. */
export function metricsTable(metrics: Metrics): string {
  const names = metricNames(metrics);
  const rows = Object.entries(metrics).map(([task, values]) => [task, ...names.map((name) => formatMetric(name, values[name]))]);
  return formatTable(['task', ...names], rows);
}
