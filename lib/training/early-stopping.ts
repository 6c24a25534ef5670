/** Early stopping: which validation value is watched, and whether an epoch improved on the best so far. */
import { optionError, readChoice, readNumber, readOptions } from '../validation';
import type { EarlyStoppingOptions, Metrics } from './types';

/** Metrics where larger is better: early stopping maximises them, reports mark them so. */
export const MAXIMIZED_METRICS: ReadonlySet<string> = new Set(['auc', 'gauc', 'gaucMean', 'accuracy']);

export type StoppingRule = Required<EarlyStoppingOptions>;

/** `earlyStopping` checked against the model's task names, with defaults. */
export function readEarlyStopping(value: unknown, taskNames: readonly string[], hasValidation: boolean): StoppingRule | undefined {
  if (value === undefined) return undefined;
  const spec = readOptions(value, 'earlyStopping', ['metric', 'task', 'patience', 'mode']);
  if (typeof spec.metric !== 'string' || spec.metric === '') optionError('earlyStopping.metric', 'earlyStopping.metric must name a metric');
  if (!hasValidation) optionError('earlyStopping', 'earlyStopping needs a validation dataset');
  return {
    metric: spec.metric,
    task: readChoice(spec.task, 'earlyStopping.task', ['mean', ...taskNames], 'mean'),
    patience: readNumber(spec.patience, 'earlyStopping.patience', 3, { min: 1, integer: true }),
    mode: readChoice(spec.mode, 'earlyStopping.mode', ['max', 'min'] as const, MAXIMIZED_METRICS.has(spec.metric) ? 'max' : 'min'),
  };
}

/** The early-stopping value of one epoch's validation metrics (undefined when no task reports it). */
export function monitoredValue(metrics: Metrics, rule: Pick<StoppingRule, 'metric' | 'task'>): number | undefined {
  if (rule.task !== 'mean') return metrics[rule.task]?.[rule.metric];
  const values = Object.values(metrics)
    .map((m) => m[rule.metric])
    .filter((v): v is number => Number.isFinite(v));
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : undefined;
}

/** The best epoch so far and the epochs since it (a resumed run continues its own). */
export class EarlyStopping {
  bestEpoch: number | undefined;
  bestValue: number | undefined;
  epochsSinceBest: number;

  constructor(
    readonly rule: StoppingRule,
    resumed: { bestEpoch?: number; bestValue?: number; epochsSinceBest?: number } = {},
  ) {
    this.bestEpoch = resumed.bestEpoch;
    this.bestValue = resumed.bestValue;
    this.epochsSinceBest = resumed.epochsSinceBest ?? 0;
  }

  /** Records an epoch's value; true when it is the best so far. */
  observe(epoch: number, value: number | undefined): boolean {
    const improved =
      value !== undefined && (this.bestValue === undefined || (this.rule.mode === 'max' ? value > this.bestValue : value < this.bestValue));
    if (improved) {
      this.bestValue = value;
      this.bestEpoch = epoch;
      this.epochsSinceBest = 0;
    } else {
      this.epochsSinceBest += 1;
    }
    return improved;
  }

  get shouldStop(): boolean {
    return this.epochsSinceBest >= this.rule.patience;
  }
}
