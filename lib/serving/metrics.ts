/**
 * Counters, gauges and histograms in the Prometheus text exposition format (version 0.0.4), which
 * Prometheus, VictoriaMetrics, Grafana Agent and OpenTelemetry collectors scrape. Small on purpose:
 * a server needs a handful of series, not a client library.
 */

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels = Readonly<Record<string, string>>;

interface Metric {
  /** The metric's lines: HELP, TYPE, then one line per series. */
  render(): string[];
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatLabels(labels: Labels): string {
  const pairs = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabel(value)}"`);
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`;
}

function formatNumber(value: number): string {
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function header(name: string, help: string, type: string): string[] {
  return [`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${name} ${type}`];
}

export class Counter implements Metric {
  readonly #series = new Map<string, number>();

  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    const key = formatLabels(labels);
    this.#series.set(key, (this.#series.get(key) ?? 0) + by);
  }

  /** The count of one series (0 before its first increment). */
  value(labels: Labels = {}): number {
    return this.#series.get(formatLabels(labels)) ?? 0;
  }

  render(): string[] {
    return [
      ...header(this.name, this.help, 'counter'),
      ...[...this.#series].map(([labels, value]) => `${this.name}${labels} ${formatNumber(value)}`),
    ];
  }
}

/** A value read when scraped (queue length, requests in flight). */
export class Gauge implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly read: () => number,
  ) {}

  render(): string[] {
    return [...header(this.name, this.help, 'gauge'), `${this.name} ${formatNumber(this.read())}`];
  }
}

export class Histogram implements Metric {
  /** Upper bounds, ascending; +Inf is implied. */
  readonly buckets: readonly number[];
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    buckets: readonly number[],
  ) {
    this.buckets = [...buckets].sort((a, b) => a - b);
    this.#counts = this.buckets.map(() => 0);
  }

  observe(value: number): void {
    this.#sum += value;
    this.#count += 1;
    const bucket = this.buckets.findIndex((bound) => value <= bound);
    if (bucket >= 0) this.#counts[bucket] = (this.#counts[bucket] as number) + 1;
  }

  get count(): number {
    return this.#count;
  }

  get sum(): number {
    return this.#sum;
  }

  render(): string[] {
    let cumulative = 0;
    const bucketLines = this.buckets.map((bound, i) => {
      cumulative += this.#counts[i] as number;
      return `${this.name}_bucket{le="${formatNumber(bound)}"} ${cumulative}`;
    });
    return [
      ...header(this.name, this.help, 'histogram'),
      ...bucketLines,
      `${this.name}_bucket{le="+Inf"} ${this.#count}`,
      `${this.name}_sum ${formatNumber(this.#sum)}`,
      `${this.name}_count ${this.#count}`,
    ];
  }
}

/** Bounds start, start·factor, … (count of them), as Prometheus clients' exponential buckets. */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => Number((start * factor ** i).toPrecision(6)));
}

export class MetricsRegistry {
  readonly #metrics: Metric[] = [];

  add<M extends Metric>(metric: M): M {
    this.#metrics.push(metric);
    return metric;
  }

  /** Every metric in the text exposition format. */
  render(): string {
    return `${this.#metrics.flatMap((metric) => metric.render()).join('\n')}\n`;
  }
}
