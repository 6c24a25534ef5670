/** `TensorDataset`: encoded rows held natively as tensors (one copy), ready for fit/evaluate/predict. */
import { NativeHandle } from './native-handle';
import { loadAddon, type RawDataset } from './addon';
import type { EncodedData, FittedSchema } from './data/types';
import { callNative, ValidationError } from './errors';
import { describeElement, describeValue, isRecord } from './validation';

export interface TensorDatasetOptions {
  /** Task names in label order; checked against the model's tasks when training or evaluating. */
  taskNames?: readonly string[];
  /** The fitted schema the rows were encoded with; stored in checkpoints made while training on them. */
  schema?: FittedSchema;
}

export class TensorDataset extends NativeHandle<RawDataset> {
  /** Task names in label order, when known. */
  readonly taskNames: readonly string[] | undefined;
  readonly schema: FittedSchema | undefined;

  private constructor(raw: RawDataset, options: TensorDatasetOptions) {
    super(raw, 'dataset');
    this.taskNames = options.taskNames;
    this.schema = options.schema;
  }

  /** Copies `data` into native tensors. Throws `ValidationError` when the arrays disagree in length. */
  static fromEncoded(data: EncodedData, options: TensorDatasetOptions = {}): TensorDataset {
    if (!isRecord(data))
      throw new ValidationError(
        'data',
        `encoded data must be an object { size, dense, categorical, multiValued, labels }, got ${describeValue(data)}`,
      );
    if (!Array.isArray(data.labels)) {
      throw new ValidationError('labels', `labels must be an array of Float32Array (one per task), got ${describeValue(data.labels)}`);
    }
    const size = data.size;
    if (!Number.isInteger(size) || size < 1) {
      throw new ValidationError('size', `a dataset needs a positive integer size, got ${describeValue(size)}`);
    }
    const width = (values: ArrayLike<number> | undefined, field: string): number => {
      if (values === undefined) return 0;
      if (values.length % size !== 0) {
        throw new ValidationError(field, `${field} has ${values.length} values, not a multiple of ${size} rows`);
      }
      return values.length / size;
    };
    const taskNames = options.taskNames;
    if (taskNames !== undefined && taskNames.length !== data.labels.length) {
      throw new ValidationError('taskNames', `taskNames has ${taskNames.length} names for ${data.labels.length} label arrays`);
    }
    const addon = loadAddon();
    const raw = callNative(
      () =>
        new addon.Dataset({
          size,
          denseDim: width(data.dense, 'dense'),
          dense: data.dense,
          categoricalCount: width(data.categorical, 'categorical'),
          categorical: data.categorical,
          multiValued: data.multiValued,
          labels: data.labels,
          ...(data.sampleWeights === undefined ? {} : { sampleWeights: sampleWeightsOf(data.sampleWeights, data.labels.length, size) }),
          ...(data.groups === undefined ? {} : { groups: groupsOf(data.groups, size) }),
        }),
    );
    return new TensorDataset(raw, options);
  }

  get size(): number {
    const raw = this._raw();
    return callNative(() => raw.size());
  }

  /** Native memory held by the tensors, in bytes. */
  get bytes(): number {
    const raw = this._raw();
    return callNative(() => raw.bytes());
  }

  /** One dataset per split of an encoded built-in or custom dataset, carrying its schema and task names. */
  static fromSplits<K extends string>(schema: FittedSchema, splits: Record<K, EncodedData>): Record<K, TensorDataset> {
    const taskNames = schema.tasks.map((task) => task.name);
    const entries = Object.entries(splits) as [K, EncodedData][];
    const created: TensorDataset[] = [];
    try {
      for (const [, data] of entries) created.push(TensorDataset.fromEncoded(data, { schema, taskNames }));
    } catch (err) {
      for (const dataset of created) dataset.dispose();
      throw err;
    }
    return Object.fromEntries(entries.map(([name], i) => [name, created[i]!])) as Record<K, TensorDataset>;
  }

  /** A new dataset of the given rows (a copy), e.g. for a split. */
  subset(rows: Int32Array | readonly number[]): TensorDataset {
    const raw = this._raw();
    const indices = rows instanceof Int32Array ? rows : subsetRows(rows);
    return new TensorDataset(
      callNative(() => raw.subset(indices)),
      { taskNames: this.taskNames, schema: this.schema },
    );
  }
}

/** Checks sample weights in TS (one finite, non-negative weight per row and task) for errors that name the array and row. */
function sampleWeightsOf(weights: unknown, tasks: number, size: number): Float32Array[] {
  if (!Array.isArray(weights) || weights.length !== tasks) {
    throw new ValidationError(
      'sampleWeights',
      `sampleWeights must be an array of ${tasks} Float32Array (one per task), got ${describeValue(weights)}`,
    );
  }
  weights.forEach((array: unknown, t) => {
    const field = `sampleWeights[${t}]`;
    if (!(array instanceof Float32Array) || array.length !== size) {
      throw new ValidationError(field, `${field} must be a Float32Array of ${size} weights, got ${describeValue(array)}`);
    }
    const bad = array.findIndex((w) => !(w >= 0 && w < Infinity));
    if (bad >= 0) throw new ValidationError(field, `${field}[${bad}] is ${array[bad]}; sample weights must be finite and >= 0`);
  });
  return weights as Float32Array[];
}

function groupsOf(groups: unknown, size: number): BigInt64Array {
  if (!(groups instanceof BigInt64Array) || groups.length !== size) {
    throw new ValidationError('groups', `groups must be a BigInt64Array of ${size} group ids, got ${describeValue(groups)}`);
  }
  return groups;
}

/** Row numbers from a plain array; Int32Array.from would read a hole or a non-number as row 0. */
function subsetRows(rows: unknown): Int32Array {
  if (!Array.isArray(rows))
    throw new ValidationError('rows', `rows must be an Int32Array or an array of row numbers, got ${describeValue(rows)}`);
  const indices = new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const row: unknown = rows[i];
    if (!(i in rows) || typeof row !== 'number' || !Number.isInteger(row)) {
      throw new ValidationError(`rows[${i}]`, `rows[${i}] must be a row number, got ${describeElement(rows, i)}`);
    }
    indices[i] = row;
  }
  return indices;
}
