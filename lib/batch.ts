/**
 * The user-facing batch and its conversion to the addon's `RawBatch`. Every id is range-checked
 * here: an out-of-range id would be a LibTorch error on CPU and a device-side assert, which poisons
 * the whole CUDA context, on GPU.
 */
import type { RawBatch } from './addon';
import type { InputConfig } from './config';
import { describeElement, describeValue, type FieldChecker, findUnknownKey, isRecord, optionsChecker, quoteList } from './validation';

/** Rows of numbers, one row per example. */
export type Rows = readonly (readonly number[])[];

/** Bags of ids in EmbeddingBag form: the bag of row r is `indices[offsets[r] … offsets[r+1])`. */
export interface Bags {
  indices: Int32Array;
  offsets: Int32Array;
}

export interface Batch {
  /** [B * denseDim] row-major, or B rows of denseDim values. */
  dense?: Float32Array | Rows;
  /** [B * C] row-major, or B rows of C ids (C = number of categorical features). */
  categorical?: Int32Array | Rows;
  /** Per multi-valued feature: B rows of ids (any length, may be empty), or `Bags`. */
  multiValued?: readonly (Rows | Bags)[];
  /** Number of examples; inferred from the features when omitted. */
  size?: number;
}

/** What a model expects of a batch, with feature labels for error messages. */
export interface BatchSchema {
  denseDim: number;
  categorical: readonly { label: string; vocab: number }[];
  multiValued: readonly { label: string; vocab: number }[];
}

const BATCH_KEYS = ['dense', 'categorical', 'multiValued', 'size'] as const;
const BAGS_KEYS = ['indices', 'offsets'] as const;
const MAX_BATCH_SIZE = 2 ** 31 - 1;

export function batchSchema(input: InputConfig): BatchSchema {
  const label = (kind: string, index: number, name: string | undefined): string =>
    name === undefined ? `${kind} feature ${index}` : `${kind} feature '${name}'`;
  return {
    denseDim: input.dense ?? 0,
    categorical: (input.categorical ?? []).map(({ name, vocab }, i) => ({ label: label('categorical', i, name), vocab })),
    multiValued: (input.multiValued ?? []).map(({ name, vocab }, i) => ({ label: label('multi-valued', i, name), vocab })),
  };
}

/** Errors start 'Invalid batch: ' and name the field. */
const check: FieldChecker = optionsChecker('batch');

/** Settles the batch size from the first source that states it and checks the others agree. */
class BatchSize {
  private value: number | undefined;
  private source = '';

  agree(size: number, source: string): void {
    if (this.value === undefined) {
      this.value = size;
      this.source = source;
    } else if (size !== this.value) {
      check.fail(source, `${source} holds ${size} examples but ${this.source} holds ${this.value}`);
    }
  }

  get(): number {
    if (this.value === undefined || this.value === 0) check.fail('batch', 'the batch must hold at least one example');
    return this.value;
  }
}

/** Checks that a feature group is present exactly when the model has features of that kind. */
function isRequired(value: unknown, field: string, featureCount: number, what: string): boolean {
  if (featureCount === 0) {
    if (value !== undefined) check.fail(field, `the model has no ${what}; omit ${field}`);
    return false;
  }
  if (value === undefined) check.fail(field, `${field} is required: the model has ${featureCount} ${what}`);
  return true;
}

function rowsOf(value: unknown, field: string, expected: string): unknown[] {
  if (!Array.isArray(value)) check.fail(field, `${field} must be ${expected}, got ${describeValue(value)}`);
  return value;
}

function flatRowCount(length: number, width: number, field: string, what: string): number {
  if (length % width !== 0) check.fail(field, `${field} has length ${length}, not a multiple of ${width} (${what})`);
  return length / width;
}

function toDense(value: unknown, denseDim: number, size: BatchSize): Float32Array {
  const field = 'batch.dense';
  if (value instanceof Float32Array) {
    size.agree(flatRowCount(value.length, denseDim, field, 'dense features'), field);
    return value;
  }
  const rows = rowsOf(value, field, 'a Float32Array or an array of rows of numbers');
  size.agree(rows.length, field);
  const dense = new Float32Array(rows.length * denseDim);
  for (let r = 0; r < rows.length; r++) {
    const rowField = `${field}[${r}]`;
    const row = rowAt(rows, r, rowField, `an array of ${denseDim} numbers`, denseDim);
    for (let j = 0; j < denseDim; j++) {
      const x: unknown = row[j];
      if (typeof x !== 'number') check.fail(`${rowField}[${j}]`, `${rowField}[${j}] must be a number, got ${describeValue(x)}`);
      dense[r * denseDim + j] = x;
    }
  }
  return dense;
}

function checkId(id: unknown, vocab: number, field: string, feature: string, row: number): void {
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= vocab) {
    check.fail(field, `${field} must be an id in [0, ${vocab}) for ${feature} (row ${row}), got ${describeValue(id)}`);
  }
}

/**
 * `rows[r]` as an array (of `width` items, when given). Indexed loops, not forEach, read the rows:
 * forEach skips holes (`[, [1, 2]]`), which would leave that example all zeros.
 */
function rowAt(rows: readonly unknown[], r: number, field: string, expected: string, width?: number): readonly unknown[] {
  const row = rows[r];
  if (!Array.isArray(row) || (width !== undefined && row.length !== width)) {
    check.fail(field, `${field} must be ${expected}, got ${describeElement(rows, r)}`);
  }
  return row;
}

function toCategorical(value: unknown, features: BatchSchema['categorical'], size: BatchSize): Int32Array {
  const field = 'batch.categorical';
  const width = features.length;
  if (value instanceof Int32Array) {
    const rowCount = flatRowCount(value.length, width, field, 'categorical features');
    size.agree(rowCount, field);
    // Hot path for large batches: a plain loop, with checkId only to report a bad id.
    const vocabs = features.map((feature) => feature.vocab);
    for (let r = 0, index = 0; r < rowCount; r++) {
      for (let j = 0; j < width; j++, index++) {
        const id = value[index] as number;
        if (id < 0 || id >= (vocabs[j] as number)) {
          const { label, vocab } = features[j] as BatchSchema['categorical'][number];
          checkId(id, vocab, `${field}[${index}]`, label, r);
        }
      }
    }
    return value;
  }
  const rows = rowsOf(value, field, 'an Int32Array or an array of rows of ids');
  size.agree(rows.length, field);
  const ids = new Int32Array(rows.length * width);
  for (let r = 0; r < rows.length; r++) {
    const rowField = `${field}[${r}]`;
    const row = rowAt(rows, r, rowField, `an array of ${width} ids (one per categorical feature)`, width);
    features.forEach(({ label, vocab }, j) => {
      const id: unknown = row[j];
      checkId(id, vocab, `${rowField}[${j}]`, label, r);
      ids[r * width + j] = id as number;
    });
  }
  return ids;
}

function bagsFromRows(rows: unknown[], field: string, feature: BatchSchema['multiValued'][number]): Bags {
  const offsets = new Int32Array(rows.length);
  const bags = Array.from({ length: rows.length }, (_, r) => rowAt(rows, r, `${field}[${r}]`, 'an array of ids'));
  let total = 0;
  bags.forEach((bag, r) => {
    offsets[r] = total;
    total += bag.length;
  });
  const indices = new Int32Array(total);
  bags.forEach((bag, r) => {
    for (let k = 0; k < bag.length; k++) {
      const id: unknown = bag[k];
      checkId(id, feature.vocab, `${field}[${r}][${k}]`, feature.label, r);
      indices[(offsets[r] as number) + k] = id as number;
    }
  });
  return { indices, offsets };
}

function checkBags(bags: Record<string, unknown>, field: string, feature: BatchSchema['multiValued'][number]): Bags {
  const unknownKey = findUnknownKey(bags, BAGS_KEYS);
  if (unknownKey !== undefined) {
    check.fail(`${field}.${unknownKey}`, `unknown key ${field}.${unknownKey} (allowed in ${field}: ${quoteList(BAGS_KEYS)})`);
  }
  const { indices, offsets } = bags;
  if (!(indices instanceof Int32Array))
    check.fail(`${field}.indices`, `${field}.indices must be an Int32Array, got ${describeValue(indices)}`);
  if (!(offsets instanceof Int32Array))
    check.fail(`${field}.offsets`, `${field}.offsets must be an Int32Array, got ${describeValue(offsets)}`);
  for (let r = 0; r < offsets.length; r++) {
    const start = offsets[r] as number;
    const end = r + 1 < offsets.length ? (offsets[r + 1] as number) : indices.length;
    const offsetField = `${field}.offsets[${r}]`;
    if (r === 0 && start !== 0) check.fail(offsetField, `${offsetField} must be 0, got ${start}`);
    if (end < start)
      check.fail(
        offsetField,
        `${field}.offsets must be non-decreasing and at most indices.length (${indices.length}); row ${r} spans [${start}, ${end})`,
      );
    for (let k = start; k < end; k++) {
      const id = indices[k] as number;
      if (id < 0 || id >= feature.vocab) checkId(id, feature.vocab, `${field}.indices[${k}]`, feature.label, r);
    }
  }
  return { indices, offsets };
}

function toMultiValued(value: unknown, features: BatchSchema['multiValued'], size: BatchSize): Bags[] {
  const field = 'batch.multiValued';
  const perFeature = rowsOf(value, field, `an array with one entry per multi-valued feature (${features.length})`);
  if (perFeature.length !== features.length) {
    check.fail(field, `${field} must have one entry per multi-valued feature (${features.length}), got ${perFeature.length}`);
  }
  return features.map((feature, j) => {
    const featureField = `${field}[${j}]`;
    const entry: unknown = perFeature[j];
    if (Array.isArray(entry)) {
      size.agree(entry.length, featureField);
      return bagsFromRows(entry, featureField, feature);
    }
    if (!isRecord(entry)) {
      check.fail(featureField, `${featureField} must be an array of rows of ids or { indices, offsets }, got ${describeValue(entry)}`);
    }
    const bags = checkBags(entry, featureField, feature);
    size.agree(bags.offsets.length, `${featureField}.offsets`);
    return bags;
  });
}

/**
 * Validates a batch against a model's schema and converts it to the addon's form. Typed arrays of
 * the right type are passed through without copying.
 */
export function toRawBatch(batch: unknown, schema: BatchSchema): RawBatch {
  if (!isRecord(batch)) check.fail('batch', `the batch must be an object, got ${describeValue(batch)}`);
  const unknownKey = findUnknownKey(batch, BATCH_KEYS);
  if (unknownKey !== undefined) {
    check.fail(`batch.${unknownKey}`, `unknown key batch.${unknownKey} (allowed in batch: ${quoteList(BATCH_KEYS)})`);
  }
  const size = new BatchSize();
  if (batch.size !== undefined) {
    const declared = batch.size;
    if (typeof declared !== 'number' || !Number.isInteger(declared) || declared < 1 || declared > MAX_BATCH_SIZE) {
      check.fail('batch.size', `batch.size must be an integer in [1, ${MAX_BATCH_SIZE}], got ${describeValue(declared)}`);
    }
    size.agree(declared, 'batch.size');
  }
  const raw: Omit<RawBatch, 'size'> = {};
  if (isRequired(batch.dense, 'batch.dense', schema.denseDim, 'dense features')) {
    raw.dense = toDense(batch.dense, schema.denseDim, size);
  }
  if (isRequired(batch.categorical, 'batch.categorical', schema.categorical.length, 'categorical features')) {
    raw.categorical = toCategorical(batch.categorical, schema.categorical, size);
  }
  if (isRequired(batch.multiValued, 'batch.multiValued', schema.multiValued.length, 'multi-valued features')) {
    raw.multiValued = toMultiValued(batch.multiValued, schema.multiValued, size);
  }
  return { size: size.get(), ...raw };
}
