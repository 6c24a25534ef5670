/**
 * Validation of a user's `SchemaSpec` into a normalised form with every default filled in, and
 * `schemaColumns`, which tells readers which columns a schema needs and which of them are numbers.
 */
import { TASK_KINDS } from '../addon';
import { configChecker, type FieldChecker } from '../validation';
import { validateFittedSchema } from './fitted';
import { MAX_HASH_BUCKETS } from './hashing';
import { DEFAULT_MISSING_VALUES } from './table';
import {
  NORMALIZATIONS,
  TASK_TYPE_KEYS,
  type ColumnRef,
  type FittedSchema,
  type FittedTask,
  type LabelPredicate,
  type Normalization,
  type SchemaSpec,
} from './types';

const TASK_KEYS = ['name', 'type', 'column', 'sampleWeight'] as const;
export const DEFAULT_SEPARATOR = '|';

/** Every normalised entry keeps `field`, its path in the spec, for error messages. */
export interface FeatureEntry {
  field: string;
  /** Path of the column ref: `dense[0]` for a bare ref, else `dense[0].column`. */
  columnField: string;
  column: ColumnRef;
  name: string | undefined;
}
export interface DenseEntry extends FeatureEntry {
  normalize: Normalization;
}
export interface CategoricalEntry extends FeatureEntry {
  minFrequency: number;
  maxVocabulary: number | undefined;
  hashBuckets: number | undefined;
}
export interface MultiValuedEntry extends CategoricalEntry {
  separator: string;
}

/** sampleWeight: the column of the task's sample weights (its own, else the schema's), with the field that named it. */
export type TaskEntry = {
  field: string;
  name: string;
  column: ColumnRef;
  sampleWeight: { column: ColumnRef; field: string } | undefined;
} & (
  | { type: 'binary'; positive: { values: string[] } | { predicate: LabelPredicate } }
  | { type: 'multiclass'; classes: string[] | undefined }
  | { type: 'regression' }
);

export interface NormalizedSpec {
  dense: DenseEntry[];
  categorical: CategoricalEntry[];
  multiValued: MultiValuedEntry[];
  tasks: TaskEntry[];
  /** The group column (grouped AUC). */
  group: ColumnRef | undefined;
  missingValues: string[];
}

function labelValue(check: FieldChecker, value: unknown, field: string): string {
  if (typeof value === 'number') return String(check.finite(value, field));
  return check.string(value, field, true);
}

/** Checks a column ref or `{ column, name, …keys }` entry and returns its fields. */
function featureEntry(
  check: FieldChecker,
  item: unknown,
  field: string,
  keys: readonly string[],
): { base: FeatureEntry; given: Record<string, unknown> } {
  if (typeof item === 'string' || typeof item === 'number') {
    return { base: { field, columnField: field, column: check.columnRef(item, field), name: undefined }, given: {} };
  }
  const given = check.record(item, field, ['column', 'name', ...keys]);
  return {
    base: {
      field,
      columnField: `${field}.column`,
      column: check.columnRef(given.column, `${field}.column`),
      name: given.name === undefined ? undefined : check.string(given.name, `${field}.name`),
    },
    given,
  };
}

const CATEGORICAL_KEYS = ['minFrequency', 'maxVocabulary', 'hashBuckets'] as const;

/** The vocabulary options of a categorical or multi-valued entry: fitted (minFrequency, maxVocabulary) or hashed. */
function vocabularyOptions(check: FieldChecker, entry: Record<string, unknown>, field: string): Omit<CategoricalEntry, keyof FeatureEntry> {
  const optional = (key: string, max = Number.MAX_SAFE_INTEGER): number | undefined =>
    entry[key] === undefined ? undefined : check.integer(entry[key], `${field}.${key}`, 1, max);
  const hashBuckets = optional('hashBuckets', MAX_HASH_BUCKETS);
  const fitted = ['minFrequency', 'maxVocabulary'].find((key) => entry[key] !== undefined);
  if (hashBuckets !== undefined && fitted !== undefined) {
    check.fail(`${field}.${fitted}`, `${field}: ${fitted} fits a vocabulary and hashBuckets hashes instead; use one of them`);
  }
  return { minFrequency: optional('minFrequency') ?? 1, maxVocabulary: optional('maxVocabulary'), hashBuckets };
}

function taskEntry(check: FieldChecker, item: unknown, field: string, sharedWeight: TaskEntry['sampleWeight']): TaskEntry {
  const anyTask = check.record(item, field, [...TASK_KEYS, ...Object.values(TASK_TYPE_KEYS).flat()]);
  const type = check.oneOf(anyTask.type, `${field}.type`, TASK_KINDS);
  // Checked again with this type's keys only, to reject another type's key (classes on a binary task).
  const given = check.record(anyTask, field, [...TASK_KEYS, ...TASK_TYPE_KEYS[type]]);
  const common = {
    field,
    name: check.string(given.name, `${field}.name`),
    column: check.columnRef(given.column, `${field}.column`),
    sampleWeight:
      given.sampleWeight === undefined
        ? sharedWeight
        : { column: check.columnRef(given.sampleWeight, `${field}.sampleWeight`), field: `${field}.sampleWeight` },
  };
  switch (type) {
    case 'binary': {
      const positive = given.positive;
      if (typeof positive === 'function') return { ...common, type, positive: { predicate: positive as LabelPredicate } };
      const values = Array.isArray(positive)
        ? check.array(positive, `${field}.positive`, 'values', 1).map((value, i) => labelValue(check, value, `${field}.positive[${i}]`))
        : [labelValue(check, positive, `${field}.positive`)];
      return { ...common, type, positive: { values } };
    }
    case 'multiclass': {
      if (given.classes === undefined) return { ...common, type, classes: undefined };
      const classes = check
        .array(given.classes, `${field}.classes`, 'class values', 2)
        .map((value, i) => labelValue(check, value, `${field}.classes[${i}]`));
      const duplicate = classes.find((value, i) => classes.indexOf(value) !== i);
      if (duplicate !== undefined) check.fail(`${field}.classes`, `${field}.classes lists ${JSON.stringify(duplicate)} twice`);
      return { ...common, type, classes };
    }
    case 'regression':
      return { ...common, type };
  }
}

/** Checks every field of a schema spec (ConfigError naming the field) and fills in the defaults. */
export function validateSchemaSpec(spec: unknown): NormalizedSpec {
  const check = configChecker('schema');
  const given = check.record(spec, '', ['dense', 'categorical', 'multiValued', 'tasks', 'sampleWeight', 'group', 'missingValues']);
  const list = (key: string): readonly unknown[] => (given[key] === undefined ? [] : check.array(given[key], key, 'features'));
  const dense = list('dense').map((item, i): DenseEntry => {
    const { base, given: entry } = featureEntry(check, item, `dense[${i}]`, ['normalize']);
    return {
      ...base,
      normalize: entry.normalize === undefined ? 'standard' : check.oneOf(entry.normalize, `${base.field}.normalize`, NORMALIZATIONS),
    };
  });
  const categorical = list('categorical').map((item, i): CategoricalEntry => {
    const { base, given: entry } = featureEntry(check, item, `categorical[${i}]`, CATEGORICAL_KEYS);
    return { ...base, ...vocabularyOptions(check, entry, base.field) };
  });
  const multiValued = list('multiValued').map((item, i): MultiValuedEntry => {
    const { base, given: entry } = featureEntry(check, item, `multiValued[${i}]`, [...CATEGORICAL_KEYS, 'separator']);
    return {
      ...base,
      ...vocabularyOptions(check, entry, base.field),
      separator: entry.separator === undefined ? DEFAULT_SEPARATOR : check.string(entry.separator, `${base.field}.separator`),
    };
  });
  if (dense.length + categorical.length + multiValued.length === 0) {
    check.fail('', 'the schema needs at least one feature (dense, categorical or multiValued)');
  }
  const sharedWeight =
    given.sampleWeight === undefined ? undefined : { column: check.columnRef(given.sampleWeight, 'sampleWeight'), field: 'sampleWeight' };
  const tasks = check.array(given.tasks, 'tasks', 'tasks', 1).map((item, i) => taskEntry(check, item, `tasks[${i}]`, sharedWeight));
  const missingValues =
    given.missingValues === undefined ? [...DEFAULT_MISSING_VALUES] : check.strings(given.missingValues, 'missingValues', true);
  const group = given.group === undefined ? undefined : check.columnRef(given.group, 'group');
  return { dense, categorical, multiValued, tasks, group, missingValues };
}

/** What a reader needs to know to read only a schema's columns, with numbers parsed as numbers. */
export interface SchemaColumns {
  /** Every column the schema reads. */
  columns: ColumnRef[];
  /** Columns read as numbers: dense features, regression labels and sample weights. */
  numeric: ColumnRef[];
  missingValues: string[];
}

function isFittedSchema(schema: SchemaSpec | FittedSchema): schema is FittedSchema {
  return (schema as Partial<FittedSchema>).format !== undefined;
}

/**
 * The columns a schema (spec or fitted) reads, for a reader's `columns`, `numeric` and
 * `missingValues` options: `readCsv(path, { ...schemaColumns(spec), header: false })`.
 */
export function schemaColumns(schema: SchemaSpec | FittedSchema): SchemaColumns {
  const spec = isFittedSchema(schema) ? validateFittedSchema(schema) : validateSchemaSpec(schema);
  // A fitted task names its weight column; a spec's entry carries it with its field.
  const weights = (spec.tasks as readonly (TaskEntry | FittedTask)[]).flatMap(({ sampleWeight }) =>
    sampleWeight === undefined ? [] : [typeof sampleWeight === 'object' ? sampleWeight.column : sampleWeight],
  );
  const unique = (refs: ColumnRef[]): ColumnRef[] => [...new Set(refs)];
  const numeric = unique([
    ...spec.dense.map((feature) => feature.column),
    ...spec.tasks.filter((task) => task.type === 'regression').map((task) => task.column),
    ...weights,
  ]);
  const columns = unique([
    ...numeric,
    ...spec.categorical.map((feature) => feature.column),
    ...spec.multiValued.map((feature) => feature.column),
    ...spec.tasks.map((task) => task.column),
    ...(spec.group === undefined ? [] : [spec.group]),
  ]);
  return { columns, numeric, missingValues: [...spec.missingValues] };
}
