/**
 * The data pipeline's contracts: what a schema spec looks like (what the user writes), what
 * fitting it yields (`FittedSchema`, plain JSON stored in checkpoints) and what encoding yields
 * (`EncodedData`, the flat typed arrays the native Dataset copies once into tensors).
 */

/** A column by header name, or by 0-based position. */
export type ColumnRef = string | number;

/** One cell as a table holds it: text, a number, or null (missing). */
export type CellValue = string | number | null;

/** A label value as written in a task definition. */
export type LabelValue = string | number;

/**
 * How a dense column is scaled, with parameters fitted on the training rows:
 * - 'standard': (x - mean) / std
 * - 'minmax': (x - min) / (max - min)
 * - 'log1p': log(1 + x), then standard (for heavy-tailed non-negative values such as amounts)
 * - 'none': x unchanged
 */
export type Normalization = 'standard' | 'minmax' | 'log1p' | 'none';

export const NORMALIZATIONS: readonly Normalization[] = ['standard', 'minmax', 'log1p', 'none'];
/** The keys that only one task type has, in specs and fitted schemas alike. */
export const TASK_TYPE_KEYS = { binary: ['positive'], multiclass: ['classes'], regression: [] } as const;

/** What the native Dataset receives (one copy of everything, row-major). */
export interface EncodedData {
  /** N rows. */
  size: number;
  /** [N * denseDim], already normalised. */
  dense?: Float32Array;
  /** [N * C], vocabulary ids (0 = missing bucket, 1 = out-of-vocabulary bucket, 2.. = known values). */
  categorical?: Int32Array;
  /** Per feature; offsets length N (EmbeddingBag style, no final offset). */
  multiValued?: { indices: Int32Array; offsets: Int32Array }[];
  /** Per task [N]: binary 0/1, multiclass class index, regression value; NaN = missing label. */
  labels: Float32Array[];
  /** Per task [N]: the row's weight in the task's loss and metrics (finite, >= 0); absent: all 1. */
  sampleWeights?: Float32Array[];
  /** [N] the row's group (e.g. its user) for grouped AUC: xxHash64 of the group column's text. */
  groups?: BigInt64Array;
}

// ---------------------------------------------------------------------------------------------
// Schema spec: what the user writes.

export interface DenseSpec {
  column: ColumnRef;
  /** Feature name (default: the column's name). */
  name?: string;
  /** Default 'standard'. */
  normalize?: Normalization;
}

export interface CategoricalSpec {
  column: ColumnRef;
  /** Feature name (default: the column's name); unique across categorical and multi-valued features. */
  name?: string;
  /** Values seen fewer times than this in the training rows go to the out-of-vocabulary bucket (default 1). */
  minFrequency?: number;
  /** Keep only this many values, the most frequent (after minFrequency); the rest go to the out-of-vocabulary bucket. */
  maxVocabulary?: number;
  /**
   * Hash values into this many buckets instead of fitting a vocabulary: id = 1 + xxHash64(text) mod
   * hashBuckets (0 = missing), so unseen values need no out-of-vocabulary bucket. Not with
   * minFrequency or maxVocabulary.
   */
  hashBuckets?: number;
}

export interface MultiValuedSpec extends CategoricalSpec {
  /** Separates the values inside one cell (default '|'). */
  separator?: string;
}

/** Decides whether a (non-missing) label value is positive. */
export type LabelPredicate = (value: LabelValue) => boolean;

/** What every task spec may add: a column of per-row weights for its loss and metrics. */
interface TaskSpecBase {
  /**
   * A numeric column of per-row sample weights (finite, >= 0) for this task's loss and metrics;
   * overrides the schema's `sampleWeight`.
   */
  sampleWeight?: ColumnRef;
}

export interface BinaryTaskSpec extends TaskSpecBase {
  name: string;
  type: 'binary';
  column: ColumnRef;
  /** The positive value, a list of positive values, or a predicate; every other value is negative. */
  positive: LabelValue | readonly LabelValue[] | LabelPredicate;
}

export interface MulticlassTaskSpec extends TaskSpecBase {
  name: string;
  type: 'multiclass';
  column: ColumnRef;
  /** The classes in label-index order (default: the distinct values of the training rows, sorted). */
  classes?: readonly LabelValue[];
}

export interface RegressionTaskSpec extends TaskSpecBase {
  name: string;
  type: 'regression';
  column: ColumnRef;
}

export type TaskSpec = BinaryTaskSpec | MulticlassTaskSpec | RegressionTaskSpec;

export interface SchemaSpec {
  /** Dense features, as a column or a `DenseSpec`. */
  dense?: readonly (ColumnRef | DenseSpec)[];
  /** Categorical features: one vocabulary id per row. */
  categorical?: readonly (ColumnRef | CategoricalSpec)[];
  /** Multi-valued categorical features: a delimited list of values per row, encoded as a bag of ids. */
  multiValued?: readonly (ColumnRef | MultiValuedSpec)[];
  tasks: readonly TaskSpec[];
  /** A numeric column of per-row sample weights for every task (a task's own `sampleWeight` wins). */
  sampleWeight?: ColumnRef;
  /** The column that groups rows for grouped AUC (`gauc` in evaluate), typically the user id. */
  group?: ColumnRef;
  /** Text cells that mean "missing" in every column (default ['', '?']); null cells always are. */
  missingValues?: readonly string[];
}

// ---------------------------------------------------------------------------------------------
// Fitted schema: plain JSON, everything needed to encode new data exactly as the training data.

/** Encoded value = (t(x) - center) / scale, t = log1p for 'log1p' else identity; missing x -> fill. */
export interface FittedDense {
  name: string;
  column: string;
  normalize: Normalization;
  center: number;
  scale: number;
  /** The encoded value of a missing cell: the mean of the encoded training values. */
  fill: number;
}

export interface FittedCategorical {
  name: string;
  column: string;
  /** Known values; value `vocabulary[k]` has id k + 2 (0 = missing, 1 = out of vocabulary). Empty when hashed. */
  vocabulary: string[];
  /** Set for hashed features: ids are 1 + xxHash64(text) mod hashBuckets (0 = missing); see lib/data/hashing.ts. */
  hashBuckets?: number;
}

export interface FittedMultiValued extends FittedCategorical {
  separator: string;
}

/** The column of a fitted task's sample weights, when it has one. */
interface FittedTaskBase {
  sampleWeight?: string;
}

export interface FittedBinaryTask extends FittedTaskBase {
  name: string;
  type: 'binary';
  column: string;
  /**
   * The positive values (compared as text), or 'predicate' when the spec gave a function. JSON does
   * not store functions: the fitted object keeps it in the non-enumerable `predicate` property, and a
   * schema read back from JSON needs it again in `encode`'s `options.predicates`.
   */
  positive: string[] | 'predicate';
  readonly predicate?: LabelPredicate;
}

export interface FittedMulticlassTask extends FittedTaskBase {
  name: string;
  type: 'multiclass';
  column: string;
  /** Label index k is `classes[k]` (compared as text). */
  classes: string[];
}

export interface FittedRegressionTask extends FittedTaskBase {
  name: string;
  type: 'regression';
  column: string;
}

export type FittedTask = FittedBinaryTask | FittedMulticlassTask | FittedRegressionTask;

export const FITTED_SCHEMA_FORMAT = 'adatt-schema';
export const FITTED_SCHEMA_VERSION = 1;

export interface FittedSchema {
  format: typeof FITTED_SCHEMA_FORMAT;
  version: typeof FITTED_SCHEMA_VERSION;
  /** Every column the schema reads, features and labels, in first-use order. */
  columns: string[];
  missingValues: string[];
  dense: FittedDense[];
  categorical: FittedCategorical[];
  multiValued: FittedMultiValued[];
  tasks: FittedTask[];
  /** The column of the rows' groups (grouped AUC), when the spec names one. */
  group?: string;
  /** Number of rows the schema was fitted on. */
  fittedRows: number;
}
