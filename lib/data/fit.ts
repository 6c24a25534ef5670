/**
 * `fitSchema`: learns everything a schema needs from the training rows only (normalisation
 * parameters, vocabularies, class lists), so that validation and test rows never influence it.
 * Fitting reads the rows through `FitRows` (statistics and value counts), so that a table in memory
 * and a source in the engine (lib/data/fit-source.ts) are fitted by the same code.
 */
import { ValidationError } from '../errors';
import { codedCells, countPerCode, missingFlags, numericCells, splitTokens, transformDense } from './cells';
import { configChecker } from '../validation';
import { sealFittedSchema } from './fitted';
import {
  validateSchemaSpec,
  type CategoricalEntry,
  type DenseEntry,
  type FeatureEntry,
  type MultiValuedEntry,
  type NormalizedSpec,
  type TaskEntry,
} from './spec';
import { requireRows, type Column, type Table } from './table';
import {
  FITTED_SCHEMA_FORMAT,
  FITTED_SCHEMA_VERSION,
  type ColumnRef,
  type FittedDense,
  type FittedSchema,
  type FittedTask,
  type LabelValue,
  type SchemaSpec,
} from './types';

/** A spec entry with its column found in the table and its name settled. */
export interface Resolved<T> {
  entry: T;
  column: Column;
  name: string;
  /** Where the name comes from, for error messages. */
  nameField: string;
}

/** Ordering of text that does not depend on the locale. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Running weighted mean and variance (West's update of Welford's): stable for large values such as amounts of money. */
export class DenseStatistics {
  count = 0;
  mean = 0;
  sumOfSquares = 0;
  min = Infinity;
  max = -Infinity;

  /** A value seen on `weight` rows (with weight 1, exactly Welford's update). */
  add(value: number, weight = 1): void {
    this.count += weight;
    const delta = value - this.mean;
    this.mean += (delta * weight) / this.count;
    this.sumOfSquares += delta * weight * (value - this.mean);
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
  }

  /** Statistics of other values joined in (Chan, Golub and LeVeque's pairwise update). */
  merge(other: Readonly<Pick<DenseStatistics, 'count' | 'mean' | 'sumOfSquares' | 'min' | 'max'>>): void {
    if (other.count === 0) return;
    if (this.count === 0) {
      Object.assign(this, { count: other.count, mean: other.mean, sumOfSquares: other.sumOfSquares, min: other.min, max: other.max });
      return;
    }
    const count = this.count + other.count;
    const delta = other.mean - this.mean;
    this.mean += (delta * other.count) / count;
    this.sumOfSquares += other.sumOfSquares + (delta * delta * this.count * other.count) / count;
    this.count = count;
    this.min = Math.min(this.min, other.min);
    this.max = Math.max(this.max, other.max);
  }
}

/** The normalisation of a dense feature from its statistics over the training rows. */
function fitDense({ entry, column, name }: Resolved<DenseEntry>, statistics: DenseStatistics, rows: FitRows): FittedDense {
  const { count, mean, sumOfSquares, min, max } = statistics;
  if (count === 0) {
    throw new ValidationError(
      column.name,
      `Invalid data: dense column '${column.name}' has no values in the ${rows.size} training rows of ${rows.source}`,
    );
  }
  const std = Math.sqrt(sumOfSquares / count);
  // A constant column keeps scale 1, so that it encodes to a constant instead of NaN.
  const scaleOrOne = (scale: number): number => (scale > 0 ? scale : 1);
  const [center, scale] = ((): [number, number] => {
    switch (entry.normalize) {
      case 'standard':
      case 'log1p':
        return [mean, scaleOrOne(std)];
      case 'minmax':
        return [min, scaleOrOne(max - min)];
      case 'none':
        return [0, 1];
    }
  })();
  return { name, column: column.name, normalize: entry.normalize, center, scale, fill: (mean - center) / scale };
}

/**
 * Known values (or, with `tokensOf`, tokens) seen at least `minFrequency` times and not missing,
 * most frequent first (ties by value), so that ids do not depend on the order of the rows; the
 * first `maxVocabulary` of them when that is set.
 */
function fitVocabulary(
  cells: ValueCounts,
  missing: ReadonlySet<string>,
  { minFrequency, maxVocabulary }: Pick<CategoricalEntry, 'minFrequency' | 'maxVocabulary'>,
  tokensOf?: (text: string) => string[],
): string[] {
  const isMissing = missingFlags(cells.values, missing);
  const perCode = cells.counts;
  // A column's distinct values are distinct texts already; only tokens of several cells need merging.
  let texts: string[] = [];
  let counts: ArrayLike<number> = [];
  if (tokensOf === undefined) {
    texts = cells.values.map(String);
    const present = new Float64Array(perCode.length);
    for (let code = 0; code < perCode.length; code++) present[code] = isMissing[code] === 1 ? 0 : (perCode[code] as number);
    counts = present;
  } else {
    const merged = new Map<string, number>();
    for (let code = 0; code < perCode.length; code++) {
      const count = perCode[code] as number;
      if (count === 0 || isMissing[code] === 1) continue;
      for (const token of tokensOf(String(cells.values[code]))) merged.set(token, (merged.get(token) ?? 0) + count);
    }
    texts = [...merged.keys()];
    counts = [...merged.values()];
  }
  // One bucket of texts per count, each sorted by the engine's own string sort (the same order as
  // compareText): a comparator over millions of values is several times slower.
  const byCount = new Map<number, string[]>();
  for (let i = 0; i < texts.length; i++) {
    const count = counts[i] as number;
    if (count === 0 || count < minFrequency) continue;
    const bucket = byCount.get(count);
    if (bucket) bucket.push(texts[i] as string);
    else byCount.set(count, [texts[i] as string]);
  }
  const vocabulary: string[] = [];
  const limit = maxVocabulary ?? Infinity;
  for (const count of [...byCount.keys()].sort((a, b) => b - a)) {
    for (const text of (byCount.get(count) as string[]).sort()) {
      if (vocabulary.length >= limit) return vocabulary;
      vocabulary.push(text);
    }
  }
  return vocabulary;
}

/** Distinct non-missing values as text: numbers in numeric order when all are numbers, else text order. */
function sortedClasses(values: readonly string[]): string[] {
  const numeric = values.every((value) => value.trim() !== '' && Number.isFinite(Number(value)));
  return [...values].sort(numeric ? (a, b) => Number(a) - Number(b) : compareText);
}

function presentValues({ values, counts }: ValueCounts, missing: ReadonlySet<string>): string[] {
  const isMissing = missingFlags(values, missing);
  return values.filter((_, code) => (counts[code] as number) > 0 && isMissing[code] === 0).map(String);
}

/** The distinct present values as text, most frequent first (ties by text): one order whatever read the rows. */
function mostFrequentFirst({ values, counts }: ValueCounts, missing: ReadonlySet<string>): string[] {
  const isMissing = missingFlags(values, missing);
  const present = Array.from(values.keys()).filter((code) => (counts[code] as number) > 0 && isMissing[code] === 0);
  const countOf = (code: number): number => counts[code] as number;
  present.sort((a, b) => countOf(b) - countOf(a) || compareText(String(values[a]), String(values[b])));
  return present.map((code) => String(values[code]));
}

function quoteValues(values: readonly string[], limit = 8): string {
  const shown = values
    .slice(0, limit)
    .map((value) => JSON.stringify(value))
    .join(', ');
  return values.length > limit ? `${shown}, … (${values.length} in all)` : shown;
}

function fitTask(
  task: TaskEntry,
  column: Column,
  weightColumn: string | undefined,
  rows: FitRows,
  missing: ReadonlySet<string>,
): FittedTask {
  const base = { name: task.name, column: column.name, ...(weightColumn === undefined ? {} : { sampleWeight: weightColumn }) };
  switch (task.type) {
    case 'regression':
      return { ...base, type: 'regression' };
    case 'multiclass': {
      if (task.classes) return { ...base, type: 'multiclass', classes: [...task.classes] };
      const classes = sortedClasses(presentValues(rows.valueCounts(column), missing));
      if (classes.length < 2) {
        throw new ValidationError(
          column.name,
          `Invalid data: multiclass task '${task.name}' needs at least 2 classes, but column '${column.name}' has ${classes.length} distinct value(s) in the training rows of ${rows.source}`,
        );
      }
      return { ...base, type: 'multiclass', classes };
    }
    case 'binary': {
      if ('predicate' in task.positive) {
        const fitted = { ...base, type: 'binary' as const, positive: 'predicate' as const };
        // Non-enumerable: kept for `encode`, left out of JSON (functions cannot be stored).
        Object.defineProperty(fitted, 'predicate', { value: task.positive.predicate, enumerable: false });
        return fitted;
      }
      const positive = task.positive.values;
      const counted = rows.valueCounts(column);
      const seen = presentValues(counted, missing);
      if (!seen.some((value) => positive.includes(value))) {
        configChecker('schema').fail(
          `${task.field}.positive`,
          `no training row of ${rows.source} has a positive value for task '${task.name}' in column '${column.name}' (positive: ${quoteValues(positive)}; values seen: ${quoteValues(mostFrequentFirst(counted, missing))})`,
        );
      }
      return { ...base, type: 'binary', positive: [...positive] };
    }
  }
}

/** Fails when two entries share a name, since names label embeddings and task outputs. */
function requireUniqueNames(entries: readonly { nameField: string; name: string }[], what: string): void {
  const fieldOf = new Map<string, string>();
  for (const { nameField, name } of entries) {
    const previous = fieldOf.get(name);
    if (previous !== undefined) {
      configChecker('schema').fail(
        nameField,
        `${nameField} and ${previous} are both ${what} named '${name}'; give one of them another name`,
      );
    }
    fieldOf.set(name, nameField);
  }
}

/** Fails when a task's label column is also an input: the model would see the answer. */
function requireNoLabelLeak(features: readonly Resolved<FeatureEntry>[], tasks: readonly Resolved<TaskEntry>[]): void {
  const featureFieldOf = new Map(features.map(({ column, entry }) => [column.name, entry.field]));
  for (const { column, entry } of tasks) {
    const feature = featureFieldOf.get(column.name);
    if (feature !== undefined) {
      configChecker('schema').fail(
        `${entry.field}.column`,
        `column '${column.name}' is the label of task '${entry.name}' and also an input (${feature}); a label must never be an input`,
      );
    }
  }
}

/** A spec resolved against the training rows' columns and checked: what is left to fit. */
export interface FitPlan {
  missingValues: string[];
  dense: Resolved<DenseEntry>[];
  categorical: Resolved<CategoricalEntry>[];
  multiValued: Resolved<MultiValuedEntry>[];
  tasks: Resolved<TaskEntry>[];
  weightColumns: (string | undefined)[];
  group: string | undefined;
}

/** Resolves a normalised spec against the columns of `columns` (a table; its rows are not read). */
export function planFit(normalized: NormalizedSpec, columns: Table): FitPlan {
  /** The column `ref` names, or a ConfigError at `field`. */
  const columnAt = (ref: ColumnRef, field: string): Column =>
    columns.findColumn(ref) ?? configChecker('schema').fail(field, `${field}: ${columns.describeMissingColumn(ref)}`);
  const resolve = <T extends { field: string; name: string | undefined; column: ColumnRef }>(
    entry: T,
    columnField: string,
  ): Resolved<T> => {
    const column = columnAt(entry.column, columnField);
    return { entry, column, name: entry.name ?? column.name, nameField: entry.name === undefined ? entry.field : `${entry.field}.name` };
  };
  const resolveFeature = <T extends FeatureEntry>(entry: T): Resolved<T> => resolve(entry, entry.columnField);

  const dense = normalized.dense.map(resolveFeature);
  const categorical = normalized.categorical.map(resolveFeature);
  const multiValued = normalized.multiValued.map(resolveFeature);
  const tasks = normalized.tasks.map((task) => resolve(task, `${task.field}.column`));
  const weightColumns = normalized.tasks.map(({ sampleWeight }) => sampleWeight && columnAt(sampleWeight.column, sampleWeight.field).name);
  requireUniqueNames(dense, 'dense features');
  requireUniqueNames([...categorical, ...multiValued], 'categorical or multi-valued features');
  requireUniqueNames(tasks, 'tasks');
  requireNoLabelLeak([...dense, ...categorical, ...multiValued], tasks);
  const group = normalized.group === undefined ? undefined : columnAt(normalized.group, 'group').name;
  return { missingValues: normalized.missingValues, dense, categorical, multiValued, tasks, weightColumns, group };
}

/** The columns whose value counts `fitPlanned` reads (dense ones read statistics instead). */
export function countedColumns(plan: FitPlan): Column[] {
  const counted = [
    ...[...plan.categorical, ...plan.multiValued].filter(({ entry }) => entry.hashBuckets === undefined),
    ...plan.tasks.filter(
      ({ entry }) =>
        (entry.type === 'binary' && !('predicate' in entry.positive)) || (entry.type === 'multiclass' && entry.classes === undefined),
    ),
  ].map(({ column }) => column);
  return [...new Map(counted.map((column) => [column.name, column])).values()];
}

/** What fitting reads of the training rows: a table in memory, or the engine over a source (lib/data/fit-source.ts). */
export interface FitRows {
  /** For error messages. */
  readonly source: string;
  readonly size: number;
  /** A dense feature's statistics over the present values, after its transform (log1p). */
  denseStatistics(feature: Resolved<DenseEntry>): DenseStatistics;
  valueCounts(column: Column): ValueCounts;
}

/** Distinct values of a column and how many training rows hold each (missing cells not counted). */
export interface ValueCounts {
  values: readonly LabelValue[];
  counts: ArrayLike<number>;
}

/** The training rows of a table. */
function tableRows(table: Table, missing: ReadonlySet<string>): FitRows {
  return {
    source: table.source,
    size: table.size,
    denseStatistics({ entry, column }) {
      const values = numericCells(table, column, missing);
      const statistics = new DenseStatistics();
      for (let i = 0; i < values.length; i++) {
        const raw = values[i] as number;
        if (!Number.isNaN(raw)) statistics.add(transformDense(table, i, column, raw, entry.normalize));
      }
      return statistics;
    },
    valueCounts(column) {
      const cells = codedCells(table, column);
      return { values: cells.values, counts: countPerCode(cells) };
    },
  };
}

/** Fits a planned schema on training rows. */
export function fitPlanned(plan: FitPlan, rows: FitRows): FittedSchema {
  const missing = new Set(plan.missingValues);
  const { dense, categorical, multiValued, tasks, weightColumns, group } = plan;
  // A hashed feature stores its bucket count instead of a vocabulary.
  const vocabularyOf = ({ entry, column }: Resolved<CategoricalEntry>, tokensOf?: (text: string) => string[]) =>
    entry.hashBuckets !== undefined
      ? { vocabulary: [], hashBuckets: entry.hashBuckets }
      : { vocabulary: fitVocabulary(rows.valueCounts(column), missing, entry, tokensOf) };
  const allColumns = [
    ...[...dense, ...categorical, ...multiValued, ...tasks].map(({ column }) => column.name),
    ...weightColumns.filter((name): name is string => name !== undefined),
    ...(group === undefined ? [] : [group]),
  ];
  return sealFittedSchema({
    format: FITTED_SCHEMA_FORMAT,
    version: FITTED_SCHEMA_VERSION,
    columns: [...new Set(allColumns)],
    missingValues: plan.missingValues,
    dense: dense.map((feature) => fitDense(feature, rows.denseStatistics(feature), rows)),
    categorical: categorical.map((feature) => ({ name: feature.name, column: feature.column.name, ...vocabularyOf(feature) })),
    multiValued: multiValued.map((feature) => ({
      name: feature.name,
      column: feature.column.name,
      separator: feature.entry.separator,
      ...vocabularyOf(feature, (text) => splitTokens(text, feature.entry.separator)),
    })),
    tasks: tasks.map(({ entry, column }, t) => fitTask(entry, column, weightColumns[t], rows, missing)),
    ...(group === undefined ? {} : { group }),
    fittedRows: rows.size,
  });
}

/**
 * Fits a schema spec on the training rows: dense normalisation parameters, vocabularies (with the
 * minFrequency cut), class lists and positive values. Encode every split with the result, which is
 * frozen (deeply): copy it, e.g. through JSON, to make a changed schema. For data that does not fit
 * in memory, `fitSchemaFrom` fits on a source in the engine.
 */
export function fitSchema(spec: SchemaSpec, train: Table): FittedSchema {
  const normalized = validateSchemaSpec(spec);
  const table = requireRows(train, 'train', 'fit a schema on');
  return fitPlanned(planFit(normalized, table), tableRows(table, new Set(normalized.missingValues)));
}
