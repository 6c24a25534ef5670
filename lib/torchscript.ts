/**
 * TorchScript modules made in PyTorch (`torch.jit.script` / `torch.jit.trace`, then `torch.jit.save`):
 * run their methods, fine-tune them with `fit` like our own models, and save them back for PyTorch.
 */
import * as path from 'node:path';
import { loadAddon, TASK_KINDS, type RawScriptModule } from './addon';
import type { TaskConfig } from './config';
import { callNative, callNativeAsync, ValidationError } from './errors';
import type { Device } from './tensor';
import { TaskModel } from './task-model';
import { prepareAtomicWrite, requireReadableFile } from './files';
import { describeValue, isRecord, readDevice } from './validation';

/** A tensor crossing into or out of TorchScript; `dtype` defaults to the typed array's kind. */
export interface ScriptTensor {
  shape: number[];
  data: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Int16Array;
  dtype?: 'float32' | 'float64' | 'int32' | 'int64' | 'bool' | 'uint8';
}

/** Values TorchScript methods take and return: tensors, lists and tuples (arrays), str-keyed dicts, scalars. */
export type ScriptValue = ScriptTensor | number | boolean | string | null | ScriptValue[] | { [key: string]: ScriptValue };

export interface ScriptTaskOptions {
  /** What forward() receives from a dataset batch, in order (e.g. ['dense', 'categorical']). */
  inputs: ('dense' | 'categorical')[];
  /** The tasks its outputs are, in order (or by name when it returns a dict). */
  tasks: TaskConfig[];
}

/** The typed arrays a ScriptTensor may hold. */
const SCRIPT_ARRAY_KINDS = [Float32Array, Float64Array, Int32Array, BigInt64Array, Uint8Array, Int8Array, Int16Array] as const;

/**
 * `run`'s arguments, checked where the addon would misread them or fail without naming them: holes
 * in arrays (`[, x]`), shapes that are not lists of non-negative integers, a dtype that is not a
 * string, and typed arrays over a SharedArrayBuffer, which N-API cannot read (they are copied).
 */
function scriptArgument(value: unknown, field: string): unknown {
  if (Array.isArray(value)) {
    return Array.from({ length: value.length }, (_, i) => {
      if (!(i in value)) throw new ValidationError(`${field}[${i}]`, `${field}[${i}] is empty (a hole in the array)`);
      return scriptArgument(value[i], `${field}[${i}]`);
    });
  }
  if (!isRecord(value)) return value;
  const { shape, data } = value;
  if (Array.isArray(shape) && ArrayBuffer.isView(data)) {
    for (let d = 0; d < shape.length; d++) {
      const extent: unknown = shape[d];
      if (typeof extent !== 'number' || !Number.isSafeInteger(extent) || extent < 0) {
        throw new ValidationError(
          `${field}.shape[${d}]`,
          `${field}.shape[${d}] must be a non-negative integer, got ${describeValue(extent)}`,
        );
      }
    }
    // The addon reads dtype only when it is a string, and would ignore any other value.
    if (value.dtype !== undefined && typeof value.dtype !== 'string') {
      throw new ValidationError(`${field}.dtype`, `${field}.dtype must be a string such as 'int64', got ${describeValue(value.dtype)}`);
    }
    const Kind = SCRIPT_ARRAY_KINDS.find((kind) => data instanceof kind);
    return data.buffer instanceof SharedArrayBuffer && Kind ? { ...value, data: new Kind(data as never) } : value;
  }
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, scriptArgument(item, `${field}.${key}`)]));
}

export class ScriptModel extends TaskModel<RawScriptModule> {
  #tasks: TaskConfig[] | undefined;

  /** @internal */
  constructor(raw: RawScriptModule) {
    super(raw, 'TorchScript model');
  }

  /** The tasks set by configureTasks (needed by fit, evaluate and predict). */
  get tasks(): readonly TaskConfig[] {
    if (this.#tasks === undefined) {
      throw new ValidationError('tasks', 'call configureTasks({ inputs, tasks }) before training or evaluating a TorchScript model');
    }
    return this.#tasks;
  }

  /** Names of the module's methods (forward and @torch.jit.export ones). */
  methods(): string[] {
    const raw = this._raw();
    return callNative(() => raw.methods());
  }

  /** Runs `method` with `args` converted by the method's TorchScript signature. */
  async run(method: string, ...args: ScriptValue[]): Promise<ScriptValue> {
    const raw = this._raw();
    if (typeof method !== 'string') throw new ValidationError('method', `method must be a string, got ${describeValue(method)}`);
    const checked = args.map((arg, i) => scriptArgument(arg, `args[${i}]`)) as ScriptValue[];
    return callNativeAsync(() => raw.run(method, checked));
  }

  forward(...args: ScriptValue[]): Promise<ScriptValue> {
    return this.run('forward', ...args);
  }

  /** Says how dataset batches feed forward() and which task each output is, for fit / evaluate / predict. */
  configureTasks(options: ScriptTaskOptions): this {
    const raw = this._raw();
    if (!isRecord(options) || !Array.isArray(options.inputs) || !Array.isArray(options.tasks) || options.tasks.length === 0) {
      throw new ValidationError('options', 'configureTasks needs { inputs: [...], tasks: [at least one task] }');
    }
    // Array.from, not map: holes become undefined (and are rejected), and exotic arrays are copied plainly.
    const tasks = Array.from(options.tasks, (task, t) => {
      if (!isRecord(task) || typeof task.name !== 'string' || !(TASK_KINDS as readonly unknown[]).includes(task.type)) {
        throw new ValidationError(
          `tasks[${t}]`,
          `tasks[${t}] must be { name, type: ${TASK_KINDS.map((kind) => `'${kind}'`).join(' | ')} }`,
        );
      }
      if (task.type === 'multiclass' && !(Number.isInteger(task.classes) && task.classes >= 2)) {
        throw new ValidationError(`tasks[${t}].classes`, `tasks[${t}].classes must be an integer >= 2`);
      }
      return { ...task };
    });
    callNative(() =>
      raw.configure({
        inputs: Array.from(options.inputs),
        tasks: tasks.map((task) => ({ name: task.name, outputs: task.type === 'multiclass' ? task.classes : 1 })),
      }),
    );
    this.#tasks = tasks;
    this.calibration = undefined;
    return this;
  }

  /** Writes the module (with its current, e.g. fine-tuned, weights) as TorchScript for torch.jit.load. */
  async save(file: string): Promise<void> {
    const raw = this._raw();
    if (typeof file !== 'string' || file === '') throw new ValidationError('path', 'path must be a non-empty string');
    const resolved = path.resolve(file);
    await prepareAtomicWrite(resolved);
    await callNativeAsync(() => raw.save(resolved));
  }
}

/**
 * Loads a TorchScript file saved by PyTorch onto `device` (default 'cpu'). A file from a newer
 * PyTorch than the linked LibTorch rejects with a FileError naming both versions.
 */
export async function loadTorchScript(file: string, options: { device?: Device } = {}): Promise<ScriptModel> {
  if (typeof file !== 'string' || file === '') throw new ValidationError('path', 'path must be a non-empty string');
  const device = readDevice(options.device ?? 'cpu');
  const resolved = path.resolve(file);
  await requireReadableFile(resolved);
  const addon = loadAddon();
  const raw = await callNativeAsync(() => addon.loadScript(resolved, device));
  return new ScriptModel(raw);
}
