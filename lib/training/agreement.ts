/**
 * What the ranks of a data-parallel job must agree on before they train or evaluate together: the
 * model's architecture, the rows and the settings that shape every step (ProcessGroup.agree).
 */
import { createHash } from 'node:crypto';
import { normalizeModelConfig } from '../config';
import { DataStream } from '../data/stream';
import { ProcessGroup } from '../distributed';
import { ScriptModel } from '../torchscript';
import { describeValue, optionError } from '../validation';
import type { Data, TrainableModel } from './types';

export function readGroup(value: unknown): ProcessGroup | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof ProcessGroup))
    optionError('distributed', `distributed must be a ProcessGroup (initProcessGroup()), got ${describeValue(value)}`);
  return value;
}

/** What must match across ranks about a model: its architecture and shapes (not its seed: rank 0's weights win). */
export function modelPlan(model: TrainableModel): [string, unknown][] {
  if (model instanceof ScriptModel) {
    return [
      ['model', 'TorchScript'],
      ['model.parameters', model.parameterCount()],
      ['model.tasks', model.tasks],
    ];
  }
  const { seed: _, ...config } = normalizeModelConfig(model.config);
  return Object.entries(config).map(([key, value]) => [`model.${key}`, value]);
}

/**
 * What must match across ranks about a dataset: every rank holds the same rows and takes its slice,
 * or streams the same source (each reading its part).
 */
export function datasetPlan(name: string, data: Data): [string, unknown][] {
  const schema: [string, unknown] = [
    `${name}.schema`,
    data.schema === undefined ? null : createHash('sha256').update(JSON.stringify(data.schema)).digest('hex'),
  ];
  if (data instanceof DataStream)
    return [[`${name}.stream`, data.source], [`${name}.rows`, data.rows], [`${name}.chunkRows`, data.chunkRows], schema];
  return [[`${name}.size`, data.size], [`${name}.bytes`, data.bytes], [`${name}.taskNames`, data.taskNames ?? null], schema];
}
