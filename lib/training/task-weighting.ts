/** How task losses are weighted: the option, and Dynamic Weight Averaging's per-epoch weights (the others are native). */
import { Model } from '../model';
import { optionError, readChoice, readNumber, readOptions } from '../validation';
import type { EpochSummary, TaskWeightingType, TrainableModel } from './types';

const TASK_WEIGHTINGS: readonly TaskWeightingType[] = ['fixed', 'uncertainty', 'gradnorm', 'dwa'];

export interface TaskWeighting {
  type: TaskWeightingType;
  /** DWA's temperature. */
  temperature: number;
  /** GradNorm's alpha. */
  alpha: number;
}

export function readTaskWeighting(model: TrainableModel, value: unknown): TaskWeighting {
  const spec: Record<string, unknown> =
    typeof value === 'string' || value === undefined
      ? { type: value }
      : readOptions(value, 'taskWeighting', ['type', 'temperature', 'alpha']);
  const type = readChoice(spec.type, typeof value === 'string' ? 'taskWeighting' : 'taskWeighting.type', TASK_WEIGHTINGS, 'fixed');
  const onlyFor: Record<string, TaskWeightingType> = { temperature: 'dwa', alpha: 'gradnorm' };
  for (const [key, owner] of Object.entries(onlyFor)) {
    if (type !== owner && spec[key] !== undefined)
      optionError(`taskWeighting.${key}`, `taskWeighting.${key} is only for '${owner}' (this is '${type}')`);
  }
  if (type === 'gradnorm' && (!(model instanceof Model) || model.config.kind === 'single-task')) {
    optionError('taskWeighting', "taskWeighting 'gradnorm' needs a native Model whose tasks share a layer (any kind but 'single-task')");
  }
  return {
    type,
    temperature: readNumber(spec.temperature, 'taskWeighting.temperature', 2, { min: 0, exclusiveMin: true }),
    alpha: readNumber(spec.alpha, 'taskWeighting.alpha', 1.5, { min: 0, max: 100 }),
  };
}

/**
 * Dynamic Weight Averaging (Liu, Johns and Davison, CVPR 2019): for epoch k >= 2, w_t = T exp(r_t / temperature) /
 * sum_i exp(r_i / temperature) with r_t = L_t(k-1) / L_t(k-2), the mean training losses of the two epochs before; 1 before.
 * A task whose loss of epoch k-2 is 0 (no labelled rows) keeps ratio 1.
 */
export function dwaWeights(history: readonly Pick<EpochSummary, 'loss'>[], taskNames: readonly string[], temperature: number): number[] {
  if (history.length < 2) return taskNames.map(() => 1);
  const [before, last] = [history.at(-2)!.loss, history.at(-1)!.loss];
  const ratios = taskNames.map((name) => ((before[name] ?? 0) > 0 ? (last[name] ?? 0) / before[name]! : 1));
  const exps = ratios.map((ratio) => Math.exp(ratio / temperature));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => (taskNames.length * e) / sum);
}
