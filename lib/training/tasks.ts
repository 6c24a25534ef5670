/** What training and evaluation read off a model and its data: tasks, their kinds and indices, rows. */
import type { TaskKind } from '../addon';
import type { TaskConfig } from '../config';
import { DataStream } from '../data/stream';
import type { TensorDataset } from '../dataset';
import { Model } from '../model';
import { TaskModel } from '../task-model';
import { describeValue, optionError, quoteList, readChoice, readOptions } from '../validation';
import type { Data, TrainableModel } from './types';

export function tasksOf(model: TrainableModel): readonly TaskConfig[] {
  if (!(model instanceof TaskModel)) optionError('model', `model must be a Model or a ScriptModel, got ${describeValue(model)}`);
  return model.tasks;
}

export function taskKinds(model: TrainableModel): TaskKind[] {
  return tasksOf(model).map((task) => task.type);
}

/** Values in task order, by task name. */
export function byTask<T>(model: TrainableModel, values: readonly T[]): Record<string, T> {
  return Object.fromEntries(tasksOf(model).map((task, t) => [task.name, values[t] as T]));
}

export function checkDatasetTasks(model: TrainableModel, data: Data, field: string): void {
  if (data === null || typeof data !== 'object' || (!(data instanceof DataStream) && typeof (data as TensorDataset)._raw !== 'function')) {
    optionError(field, `${field} must be a TensorDataset or a DataStream, got ${describeValue(data)}`);
  }
  const names = tasksOf(model).map((task) => task.name);
  if (data.taskNames !== undefined && data.taskNames.join('\0') !== names.join('\0')) {
    optionError(field, `${field} has tasks [${data.taskNames.join(', ')}] but the model has [${names.join(', ')}]`);
  }
}

export function rowsOf(data: Data): number {
  return data instanceof DataStream ? data.rows : data.size;
}

/** Whether `model` has embedding tables that can train row-sparse. */
export function hasEmbeddingTables(model: TrainableModel): boolean {
  if (!(model instanceof Model)) return false;
  const { categorical = [], multiValued = [] } = model.config.input;
  return categorical.length + multiValued.length > 0;
}

/** A task's sample space: the index of the binary task whose label decides, and the value it must have. */
export function readSampleSpace(
  model: TrainableModel,
  taskName: string,
  value: unknown,
  field: string,
): { task: number; equals: 0 | 1; metrics: boolean } | undefined {
  if (value === undefined) return undefined;
  const spec = readOptions(value, field, ['task', 'equals', 'metrics']);
  const tasks = tasksOf(model);
  const others = tasks.filter((task) => task.name !== taskName && task.type === 'binary').map((task) => task.name);
  if (others.length === 0) optionError(`${field}.task`, `${field}.task must name another binary task, and the model has none`);
  if (spec.task === undefined) optionError(`${field}.task`, `${field}.task must name another binary task (${quoteList(others)})`);
  const condition = readChoice(spec.task, `${field}.task`, others, others[0]!);
  const equals = readChoice(spec.equals === undefined ? undefined : String(spec.equals), `${field}.equals`, ['0', '1'] as const, '1');
  if (spec.metrics !== undefined && typeof spec.metrics !== 'boolean')
    optionError(`${field}.metrics`, `${field}.metrics must be a boolean`);
  return { task: tasks.findIndex((task) => task.name === condition), equals: equals === '1' ? 1 : 0, metrics: spec.metrics === true };
}

/** The binary tasks `names` selects (default all), with their indices in model order. */
export function binaryTasks(model: TrainableModel, names: unknown, field: string, purpose: string): { name: string; index: number }[] {
  const tasks = tasksOf(model).map((task, index) => ({ name: task.name, type: task.type, index }));
  const binary = tasks.filter((task) => task.type === 'binary');
  if (names === undefined) {
    if (binary.length === 0) optionError(field, `the model has no binary task ${purpose}`);
    return binary;
  }
  if (!Array.isArray(names) || names.length === 0) optionError(field, `${field} must be a non-empty array of binary task names`);
  return Array.from(names, (name: unknown, i) => {
    const task = binary.find((candidate) => candidate.name === name);
    if (task === undefined) {
      optionError(
        `${field}[${i}]`,
        `${field}[${i}] must be one of the binary tasks ${quoteList(binary.map((b) => b.name))}, got ${describeValue(name)}`,
      );
    }
    return task;
  });
}
