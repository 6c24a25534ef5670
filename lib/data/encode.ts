/**
 * `encode`: any split through a fitted schema into `EncodedData`, the flat row-major typed arrays
 * that the native Dataset turns into tensors with one copy. Work per distinct value (vocabulary
 * lookups, label mapping) is done once per value, then rows are filled by code.
 */
import { ValidationError } from '../errors';
import { codedCells, missingFlags, numericCells, splitTokens, transformDense, type CodedCells } from './cells';
import { validateFittedSchema } from './fitted';
import { groupId, hashedId } from './hashing';
import { invalidData, NULL_CODE, requireRows, type Column, type Table } from './table';
import type {
  EncodedData,
  FittedBinaryTask,
  FittedCategorical,
  FittedDense,
  FittedMulticlassTask,
  FittedMultiValued,
  FittedSchema,
  FittedTask,
  LabelPredicate,
  LabelValue,
} from './types';

export const MISSING_ID = 0;
export const OUT_OF_VOCABULARY_ID = 1;
/** Id of `vocabulary[0]`. */
export const FIRST_VALUE_ID = 2;

export interface EncodeOptions {
  /**
   * Predicates of binary tasks fitted with a function, by task name. Needed only for a schema read
   * back from JSON (the object `fitSchema` returns remembers its functions).
   */
  predicates?: Readonly<Record<string, LabelPredicate>>;
}

const idsOfVocabulary = new WeakMap<readonly string[], Map<string, number>>();

/**
 * A vocabulary's ids by value, made once per vocabulary (encoding train, validation and test with
 * one schema builds it once). Safe to keep: a vocabulary that fitSchema made is frozen.
 */
function vocabularyIds(vocabulary: readonly string[]): Map<string, number> {
  const cached = idsOfVocabulary.get(vocabulary);
  if (cached !== undefined) return cached;
  // A loop, not new Map(entries): millions of [value, id] pairs would be garbage.
  const ids = new Map<string, number>();
  for (let k = 0; k < vocabulary.length; k++) ids.set(vocabulary[k] as string, k + FIRST_VALUE_ID);
  if (Object.isFrozen(vocabulary)) idsOfVocabulary.set(vocabulary, ids);
  return ids;
}

/** The id of a (non-missing) value's text. */
type IdOfText = (text: string) => number;

/** Its hash bucket, or its vocabulary id (1 when unknown). */
function idOfText(feature: FittedCategorical): IdOfText {
  const { hashBuckets } = feature;
  if (hashBuckets !== undefined) return (text) => hashedId(text, hashBuckets);
  // Built on first use: a stream's chunks come with ids coded natively (lib/data/vocabulary-coder.ts).
  let ids: Map<string, number> | undefined;
  return (text) => {
    ids ??= vocabularyIds(feature.vocabulary);
    return ids.get(text) ?? OUT_OF_VOCABULARY_ID;
  };
}

/** Per distinct value of `cells`: its id (0 missing, else as idOfText). */
function idsPerCode(cells: CodedCells, idOf: IdOfText, missing: ReadonlySet<string>): Int32Array {
  const isMissing = missingFlags(cells.values, missing);
  return Int32Array.from(cells.values, (value, code) => (isMissing[code] === 1 ? MISSING_ID : idOf(String(value))));
}

function encodeDense(
  features: readonly FittedDense[],
  columns: readonly Column[],
  table: Table,
  missing: ReadonlySet<string>,
): Float32Array {
  const width = features.length;
  const dense = new Float32Array(table.size * width);
  features.forEach(({ normalize, center, scale, fill }, j) => {
    const column = columns[j] as Column;
    const values = numericCells(table, column, missing);
    const log1p = normalize === 'log1p';
    // transformDense per cell, inlined for the cells it takes (one call per cell was most of the loop).
    for (let i = 0, at = j; i < values.length; i++, at += width) {
      const raw = values[i] as number;
      if (Number.isNaN(raw)) dense[at] = fill;
      else if (log1p && raw > -1 && raw < Infinity) dense[at] = (Math.log1p(raw) - center) / scale;
      else if (!log1p && Number.isFinite(raw)) dense[at] = (raw - center) / scale;
      else transformDense(table, i, column, raw, normalize);
    }
  });
  return dense;
}

/** A categorical feature's source: its table column, or its ids already coded (lib/data/vocabulary-coder.ts). */
type CategoricalSource = Column | Int32Array;

function encodeCategorical(
  idsOf: readonly IdOfText[],
  sources: readonly CategoricalSource[],
  table: Table,
  missing: ReadonlySet<string>,
): Int32Array {
  const width = idsOf.length;
  const ids = new Int32Array(table.size * width);
  idsOf.forEach((idOf, j) => {
    const source = sources[j] as CategoricalSource;
    if (source instanceof Int32Array) {
      for (let i = 0; i < source.length; i++) ids[i * width + j] = source[i] as number;
      return;
    }
    const cells = codedCells(table, source);
    const idOfCode = idsPerCode(cells, idOf, missing);
    const { codes } = cells;
    for (let i = 0; i < codes.length; i++) {
      const code = codes[i] as number;
      ids[i * width + j] = code === NULL_CODE ? MISSING_ID : (idOfCode[code] as number);
    }
  });
  return ids;
}

const MISSING_BAG = Int32Array.of(MISSING_ID);

function encodeBags(
  feature: FittedMultiValued,
  idOf: IdOfText,
  column: Column,
  table: Table,
  missing: ReadonlySet<string>,
): { indices: Int32Array; offsets: Int32Array } {
  const cells = codedCells(table, column);
  const isMissing = missingFlags(cells.values, missing);
  // One bag per distinct cell; a missing cell is the bag [0], like a missing categorical value.
  const bagOfCode = cells.values.map((value, code) =>
    isMissing[code] === 1 ? MISSING_BAG : Int32Array.from(splitTokens(String(value), feature.separator), idOf),
  );
  const bagOf = (code: number): Int32Array => (code === NULL_CODE ? MISSING_BAG : (bagOfCode[code] as Int32Array));
  const offsets = new Int32Array(table.size);
  let total = 0;
  cells.codes.forEach((code, i) => {
    offsets[i] = total;
    total += bagOf(code).length;
  });
  const indices = new Int32Array(total);
  cells.codes.forEach((code, i) => {
    indices.set(bagOf(code), offsets[i]);
  });
  return { indices, offsets };
}

/** The label `labelsPerCode` gives a value that is not one of a multiclass task's classes. */
const NOT_A_CLASS = -1;

function predicateOf(task: FittedBinaryTask, options: EncodeOptions): LabelPredicate {
  const predicate = options.predicates?.[task.name] ?? task.predicate;
  if (typeof predicate !== 'function') {
    throw new ValidationError(
      `predicates.${task.name}`,
      `Invalid encode options: binary task '${task.name}' was fitted with a predicate function, which JSON does not store; pass it as options.predicates['${task.name}']`,
    );
  }
  return predicate;
}

/** Per distinct value: its label (NaN when missing, NOT_A_CLASS for an unknown multiclass value). */
function labelsPerCode(
  task: FittedBinaryTask | FittedMulticlassTask,
  cells: CodedCells,
  missing: ReadonlySet<string>,
  options: EncodeOptions,
): Float32Array {
  let labelOf: (value: LabelValue) => number;
  if (task.type === 'multiclass') {
    const indexOf = new Map(task.classes.map((value, k) => [value, k]));
    labelOf = (value) => indexOf.get(String(value)) ?? NOT_A_CLASS;
  } else if (task.positive === 'predicate') {
    const predicate = predicateOf(task, options);
    labelOf = (value) => (predicate(value) ? 1 : 0);
  } else {
    const positive = new Set(task.positive);
    labelOf = (value) => (positive.has(String(value)) ? 1 : 0);
  }
  const isMissing = missingFlags(cells.values, missing);
  return Float32Array.from(cells.values, (value, code) => (isMissing[code] === 1 ? NaN : labelOf(value)));
}

function encodeLabels(task: FittedTask, column: Column, table: Table, missing: ReadonlySet<string>, options: EncodeOptions): Float32Array {
  if (task.type === 'regression') return Float32Array.from(numericCells(table, column, missing));
  const cells = codedCells(table, column);
  const labelOfCode = labelsPerCode(task, cells, missing, options);
  const labels = new Float32Array(table.size);
  cells.codes.forEach((code, i) => {
    const label = code === NULL_CODE ? NaN : (labelOfCode[code] as number);
    if (label === NOT_A_CLASS && task.type === 'multiclass') {
      const classes = task.classes.map((value) => JSON.stringify(value)).join(', ');
      throw invalidData(
        table,
        i,
        column.name,
        `label ${JSON.stringify(String(cells.values[code]))} is not one of the ${task.classes.length} classes of task '${task.name}' (${classes})`,
      );
    }
    labels[i] = label;
  });
  return labels;
}

/** A task's sample weights: finite and >= 0 on every row (a missing weight is an error, not a default). */
function encodeSampleWeights(task: FittedTask, column: Column, table: Table, missing: ReadonlySet<string>): Float32Array {
  const values = numericCells(table, column, missing);
  const weights = Float32Array.from(values);
  for (let i = 0; i < weights.length; i++) {
    const weight = weights[i] as number;
    if (!(weight >= 0 && weight < Infinity)) {
      const given = values[i] as number;
      throw invalidData(
        table,
        i,
        column.name,
        `the sample weight of task '${task.name}' must be a finite number >= 0 (in float32), got ${Number.isNaN(given) ? 'a missing value' : String(given)}`,
      );
    }
  }
  return weights;
}

/** Each row's group id (hashed once per distinct value); every row needs a group. */
function encodeGroups(column: Column, table: Table, missing: ReadonlySet<string>): BigInt64Array {
  const cells = codedCells(table, column);
  const isMissing = missingFlags(cells.values, missing);
  const idOfCode = cells.values.map((value) => groupId(String(value)));
  const groups = new BigInt64Array(table.size);
  cells.codes.forEach((code, i) => {
    if (code === NULL_CODE || isMissing[code] === 1) {
      throw invalidData(table, i, column.name, 'the group (schema.group) is missing; give such rows a group value of their own');
    }
    groups[i] = idOfCode[code] as bigint;
  });
  return groups;
}

function columnOf(table: Table, { column }: { column: string }): Column {
  const found = table.findColumn(column);
  if (!found) throw new ValidationError(column, `Invalid data: ${table.describeMissingColumn(column)}, which the schema reads`);
  return found;
}

/** What `encode` yields without the labels: the model's input. */
export type EncodedFeatures = Omit<EncodedData, 'labels'>;

/**
 * Encodes the feature columns of tables with one fitted schema. The vocabulary lookups are built
 * once, so that serving many small tables (requests) does not rebuild them per table.
 */
export class FeatureEncoder {
  readonly schema: FittedSchema;
  readonly #missing: ReadonlySet<string>;
  readonly #categoricalIds: readonly IdOfText[];
  readonly #multiValuedIds: readonly IdOfText[];

  constructor(schema: FittedSchema) {
    this.schema = validateFittedSchema(schema);
    this.#missing = new Set(schema.missingValues);
    this.#categoricalIds = schema.categorical.map(idOfText);
    this.#multiValuedIds = schema.multiValued.map(idOfText);
  }

  /**
   * The features of every row of `table` (label columns are not read). `coded`: the ids of
   * categorical features coded already, by column name, for a whole table whose rows they follow
   * (the chunks of a stream).
   */
  encode(table: Table, coded: ReadonlyMap<string, Int32Array> = new Map()): EncodedFeatures {
    requireRows(table, 'table', 'encode');
    const { dense, categorical, multiValued } = this.schema;
    const missing = this.#missing;
    const columnsOf = (features: readonly { column: string }[]): Column[] => features.map((feature) => columnOf(table, feature));
    const categoricalSources = categorical.map((feature) => coded.get(feature.column) ?? columnOf(table, feature));
    if (coded.size > 0 && (!table.isWhole || [...coded.values()].some((ids) => ids.length !== table.size))) {
      throw new RangeError('FeatureEncoder.encode: coded ids must have one id per row of a whole table');
    }
    return {
      size: table.size,
      ...(dense.length > 0 ? { dense: encodeDense(dense, columnsOf(dense), table, missing) } : {}),
      ...(categorical.length > 0 ? { categorical: encodeCategorical(this.#categoricalIds, categoricalSources, table, missing) } : {}),
      ...(multiValued.length > 0
        ? {
            multiValued: multiValued.map((feature, j) =>
              encodeBags(feature, this.#multiValuedIds[j] as IdOfText, columnOf(table, feature), table, missing),
            ),
          }
        : {}),
    };
  }
}

/** A FeatureEncoder that encodes the labels too: for many tables of one schema (the chunks of a stream). */
export class DataEncoder extends FeatureEncoder {
  readonly #options: EncodeOptions;

  constructor(schema: FittedSchema, options: EncodeOptions = {}) {
    super(schema);
    this.#options = options;
  }

  /** Every row of `table`: features and labels (`coded` as in `encode`). */
  encodeRows(table: Table, coded: ReadonlyMap<string, Int32Array> = new Map()): EncodedData {
    const features = this.encode(table, coded);
    const missing = new Set(this.schema.missingValues);
    const { tasks } = this.schema;
    const labels = tasks.map((task) => encodeLabels(task, columnOf(table, task), table, missing, this.#options));
    const { group } = this.schema;
    const groups = group === undefined ? {} : { groups: encodeGroups(columnOf(table, { column: group }), table, missing) };
    if (tasks.every((task) => task.sampleWeight === undefined)) return { ...features, labels, ...groups };
    const sampleWeights = tasks.map((task) =>
      task.sampleWeight === undefined
        ? new Float32Array(table.size).fill(1)
        : encodeSampleWeights(task, columnOf(table, { column: task.sampleWeight }), table, missing),
    );
    return { ...features, labels, sampleWeights, ...groups };
  }
}

/** Encodes the rows of `table` with a fitted schema (from `fitSchema`, or checked JSON). */
export function encode(schema: FittedSchema, table: Table, options: EncodeOptions = {}): EncodedData {
  return new DataEncoder(schema, options).encodeRows(table);
}
