/**
 * Inline SVG charts for the run report, generated as strings: line charts (training curves) and
 * heatmaps (expert utilisation). No library and no network: the report must open anywhere.
 */

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Distinct colours that stay apart for colour-blind readers (Okabe–Ito, darkened for white paper). */
export const PALETTE = ['#0072b2', '#d55e00', '#009e73', '#cc79a7', '#e69f00', '#56b4e9', '#444444'];

function niceStep(raw: number): number {
  const exponent = Math.floor(Math.log10(raw));
  const fraction = raw / 10 ** exponent;
  const nice = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10;
  return nice * 10 ** exponent;
}

/** Round tick values covering [min, max], about `count` of them; the domain is widened to the outer ticks. */
export function niceTicks(min: number, max: number, count = 5): { ticks: number[]; step: number } {
  if (!(max > min)) {
    const pad = Math.abs(min) * 0.05 || 0.5;
    [min, max] = [min - pad, max + pad];
  }
  const step = niceStep((max - min) / count);
  const first = Math.floor(min / step + 1e-9) * step;
  const last = Math.ceil(max / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let value = first; value <= last + step / 2; value += step) ticks.push(Number(value.toPrecision(12)));
  return { ticks, step };
}

function tickLabel(value: number, step: number): string {
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return value.toFixed(Math.min(decimals, 6));
}

export interface Point {
  x: number;
  y: number;
}

export interface Series {
  name: string;
  points: Point[];
  dashed?: boolean;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Digits in point tooltips (default 4). */
  digits?: number;
  /** Fixed axis ranges with round ticks (default: x from the points with one tick per integer, as epochs; y from the points). */
  xRange?: [number, number];
  yRange?: [number, number];
}

const CHART = { width: 520, height: 300, top: 52, right: 18, bottom: 46, left: 64 };

/** A line chart with markers, grid, axis labels, a clickable legend and a tooltip per point. */
export function lineChart(options: LineChartOptions): string {
  const series = options.series.filter((s) => s.points.some((p) => Number.isFinite(p.y)));
  const points = series.flatMap((s) => s.points.filter((p) => Number.isFinite(p.y)));
  const { width, height, top, right, bottom, left } = CHART;
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  const out: string[] = [
    `<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(options.title)}">`,
    `<text class="chart-title" x="${left}" y="20">${escapeHtml(options.title)}</text>`,
  ];
  if (points.length === 0) {
    out.push(`<text class="empty" x="${width / 2}" y="${height / 2}" text-anchor="middle">no data</text></svg>`);
    return out.join('');
  }
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const [xMin, xMax] = options.xRange ?? [Math.min(...xs), Math.max(...xs)];
  const y = niceTicks(...(options.yRange ?? [Math.min(...ys), Math.max(...ys)]), 5);
  const yLow = y.ticks[0]!;
  const yHigh = y.ticks[y.ticks.length - 1]!;
  const fixedX = options.xRange && niceTicks(xMin, xMax, 5);
  // Epochs are integers: one tick each, or a round step when there are many.
  const xTicks = fixedX
    ? fixedX.ticks.filter((t) => t >= xMin && t <= xMax)
    : xMax - xMin <= 12
      ? Array.from({ length: xMax - xMin + 1 }, (_, i) => xMin + i)
      : niceTicks(xMin, xMax, 8).ticks.filter((t) => t >= xMin && t <= xMax && Number.isInteger(t));
  const xSpan = xMax - xMin || 1;
  const px = (x: number): number => left + (xMax === xMin ? plotWidth / 2 : ((x - xMin) / xSpan) * plotWidth);
  const py = (v: number): number => top + plotHeight - ((v - yLow) / (yHigh - yLow)) * plotHeight;
  const f = (n: number): string => n.toFixed(1);

  for (const tick of y.ticks) {
    out.push(
      `<line class="grid" x1="${left}" x2="${width - right}" y1="${f(py(tick))}" y2="${f(py(tick))}"/>`,
      `<text class="tick" x="${left - 6}" y="${f(py(tick) + 4)}" text-anchor="end">${tickLabel(tick, y.step)}</text>`,
    );
  }
  for (const tick of xTicks) {
    out.push(
      `<text class="tick" x="${f(px(tick))}" y="${height - bottom + 16}" text-anchor="middle">${fixedX ? tickLabel(tick, fixedX.step) : tick}</text>`,
    );
  }
  out.push(
    `<line class="axis" x1="${left}" x2="${width - right}" y1="${top + plotHeight}" y2="${top + plotHeight}"/>`,
    `<text class="axis-label" x="${left + plotWidth / 2}" y="${height - 8}" text-anchor="middle">${escapeHtml(options.xLabel)}</text>`,
    `<text class="axis-label" transform="translate(14 ${top + plotHeight / 2}) rotate(-90)" text-anchor="middle">${escapeHtml(options.yLabel)}</text>`,
  );

  const digits = options.digits ?? 4;
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    const visible = s.points.filter((p) => Number.isFinite(p.y));
    const d = visible.map((p, k) => `${k === 0 ? 'M' : 'L'}${f(px(p.x))} ${f(py(p.y))}`).join(' ');
    out.push(
      `<g class="series" data-series="${i}" style="color:${color}">`,
      `<path d="${d}" fill="none" stroke="currentColor" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      ...visible.map(
        (p) =>
          `<circle cx="${f(px(p.x))}" cy="${f(py(p.y))}" r="3.5" fill="currentColor">` +
          `<title>${escapeHtml(s.name)}, ${escapeHtml(options.xLabel)} ${p.x}: ${p.y.toFixed(digits)}</title></circle>`,
      ),
      '</g>',
    );
    // Legend entries sit in one row above the plot, closer together when there are many.
    const x = left + i * Math.min(150, plotWidth / series.length);
    out.push(
      `<g class="legend-item" data-series="${i}" style="color:${color}" transform="translate(${x} 36)">`,
      `<line x1="0" x2="18" y1="-4" y2="-4" stroke="currentColor" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      `<text x="24" y="0">${escapeHtml(s.name)}</text></g>`,
    );
  });
  out.push('</svg>');
  return out.join('');
}

/** Light to dark blue; t in [0, 1]. */
export function heatColor(t: number): string {
  const stops = [
    [247, 251, 255],
    [107, 174, 214],
    [8, 48, 107],
  ] as const;
  const clamped = Math.min(1, Math.max(0, t));
  const scaled = clamped * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(scaled));
  const u = scaled - i;
  const [a, b] = [stops[i]!, stops[i + 1]!];
  const channel = (k: number): number => Math.round(a[k]! + (b[k]! - a[k]!) * u);
  return `rgb(${channel(0)},${channel(1)},${channel(2)})`;
}

export interface HeatmapOptions {
  title: string;
  rows: string[];
  columns: string[];
  /** values[row][column]. */
  values: number[][];
  /** Cells to outline, e.g. a task gate's own experts. */
  highlight?: (row: number, column: number) => boolean;
  rowLabel: string;
  columnLabel: string;
}

const CELL = { width: 50, height: 30 };

/** A labelled heatmap with the value in each cell and a colour legend from 0 to the largest value. */
export function heatmap(options: HeatmapOptions): string {
  const { rows, columns, values } = options;
  const charWidth = 7;
  const left = 24 + charWidth * Math.max(...rows.map((r) => r.length), 4);
  // Column labels are rotated 40°: their height is about 0.65 of their length.
  const top = 56 + Math.ceil(charWidth * 0.65 * Math.max(...columns.map((c) => c.length), 4));
  const plotWidth = columns.length * CELL.width;
  const plotHeight = rows.length * CELL.height;
  const width = Math.max(left + plotWidth + 16, 360);
  const height = top + plotHeight + 64;
  const max = Math.max(1e-9, ...values.flat().filter(Number.isFinite));
  const out: string[] = [
    `<svg class="chart heatmap" viewBox="0 0 ${width} ${height}" width="${width}" role="img" aria-label="${escapeHtml(options.title)}">`,
    `<text class="chart-title" x="8" y="20">${escapeHtml(options.title)}</text>`,
    `<text class="axis-label" x="8" y="40">rows: ${escapeHtml(options.rowLabel)}s · columns: ${escapeHtml(options.columnLabel)}s</text>`,
  ];
  columns.forEach((column, c) => {
    const x = left + c * CELL.width + CELL.width / 2;
    out.push(`<text class="tick" transform="translate(${x} ${top - 6}) rotate(-40)">${escapeHtml(column)}</text>`);
  });
  rows.forEach((row, r) => {
    const y = top + r * CELL.height;
    out.push(`<text class="tick" x="${left - 8}" y="${y + CELL.height / 2 + 4}" text-anchor="end">${escapeHtml(row)}</text>`);
    columns.forEach((column, c) => {
      const value = values[r]?.[c] ?? NaN;
      const t = value / max;
      const x = left + c * CELL.width;
      const outline = options.highlight?.(r, c) ? ' class="own"' : '';
      out.push(
        `<rect${outline} x="${x}" y="${y}" width="${CELL.width}" height="${CELL.height}" fill="${Number.isFinite(value) ? heatColor(t) : '#eee'}">` +
          `<title>${escapeHtml(row)} → ${escapeHtml(column)}: ${Number.isFinite(value) ? value.toFixed(4) : 'n/a'}</title></rect>`,
        `<text class="cell" x="${x + CELL.width / 2}" y="${y + CELL.height / 2 + 4}" text-anchor="middle" fill="${t > 0.55 ? '#fff' : '#111'}">${Number.isFinite(value) ? value.toFixed(2) : ''}</text>`,
      );
    });
  });
  // Legend: a gradient bar from 0 to the largest weight.
  const legendY = top + plotHeight + 24;
  const steps = 24;
  const legendWidth = Math.min(240, width - left - 16);
  for (let i = 0; i < steps; i += 1) {
    out.push(
      `<rect x="${(left + (i * legendWidth) / steps).toFixed(1)}" y="${legendY}" width="${(legendWidth / steps + 0.5).toFixed(1)}" height="10" fill="${heatColor(i / (steps - 1))}"/>`,
    );
  }
  out.push(
    `<text class="tick" x="${left}" y="${legendY + 26}">0</text>`,
    `<text class="tick" x="${left + legendWidth}" y="${legendY + 26}" text-anchor="end">${max.toFixed(2)}</text>`,
    '</svg>',
  );
  return out.join('');
}
