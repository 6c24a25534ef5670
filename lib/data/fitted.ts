/**
 * `validateFittedSchema`: checks a fitted schema that comes back from JSON (a checkpoint) before it
 * encodes anything, with a ConfigError naming the offending field.
 */
import { configChecker } from '../validation';
import { MAX_HASH_BUCKETS } from './hashing';
import { TASK_KINDS } from '../addon';
import { FITTED_SCHEMA_FORMAT, FITTED_SCHEMA_VERSION, NORMALIZATIONS, TASK_TYPE_KEYS, type FittedSchema } from './types';

/** Schemas that fitSchema made: deeply frozen, so valid for good. */
const madeByFitSchema = new WeakSet<object>();

function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return;
  Object.freeze(value);
  // Not Object.values for arrays: a copy of a vocabulary of millions of strings.
  const items: readonly unknown[] = Array.isArray(value) ? value : Object.values(value);
  for (let i = 0; i < items.length; i++) if (typeof items[i] === 'object') deepFreeze(items[i]);
}

/**
 * Freezes a schema that fitSchema just made and marks it valid, so that encoding with it skips
 * validateFittedSchema's checks (a second over millions of vocabulary values).
 */
export function sealFittedSchema(schema: FittedSchema): FittedSchema {
  deepFreeze(schema);
  madeByFitSchema.add(schema);
  return schema;
}

/** Checks every field of a fitted schema and returns it (the same object, now typed). */
export function validateFittedSchema(value: unknown): FittedSchema {
  if (typeof value === 'object' && value !== null && madeByFitSchema.has(value)) return value as FittedSchema;
  const check = configChecker('fitted schema');
  const schema = check.record(value, '', [
    'format',
    'version',
    'columns',
    'missingValues',
    'dense',
    'categorical',
    'multiValued',
    'tasks',
    'group',
    'fittedRows',
  ]);
  if (schema.format !== FITTED_SCHEMA_FORMAT) {
    check.fail('format', `format must be '${FITTED_SCHEMA_FORMAT}', got ${JSON.stringify(schema.format)}`);
  }
  if (schema.version !== FITTED_SCHEMA_VERSION) {
    check.fail(
      'version',
      `version ${JSON.stringify(schema.version)} is not supported (this version of adatt reads version ${FITTED_SCHEMA_VERSION})`,
    );
  }
  const columns = new Set(check.strings(schema.columns, 'columns'));
  check.strings(schema.missingValues, 'missingValues', true);
  check.integer(schema.fittedRows, 'fittedRows', 1);

  /** A column name that `columns` lists. */
  const listedColumn = (value: unknown, field: string): void => {
    const column = check.string(value, field);
    if (!columns.has(column)) check.fail(field, `${field} '${column}' is not listed in columns`);
  };
  const entries = (key: string, keys: readonly string[], minLength = 0): Record<string, unknown>[] =>
    check.array(schema[key], key, 'entries', minLength).map((item, i) => {
      const field = `${key}[${i}]`;
      const entry = check.record(item, field, ['name', 'column', ...keys]);
      check.string(entry.name, `${field}.name`);
      listedColumn(entry.column, `${field}.column`);
      return entry;
    });
  const uniqueStrings = (list: unknown, field: string, minLength: number): void => {
    const seen = new Set<string>();
    check.array(list, field, 'strings', minLength).forEach((item, i) => {
      const text = check.string(item, `${field}[${i}]`, true);
      if (seen.has(text)) check.fail(field, `${field} lists ${JSON.stringify(text)} twice`);
      seen.add(text);
    });
  };

  entries('dense', ['normalize', 'center', 'scale', 'fill']).forEach((entry, i) => {
    check.oneOf(entry.normalize, `dense[${i}].normalize`, NORMALIZATIONS);
    check.finite(entry.center, `dense[${i}].center`);
    if (check.finite(entry.scale, `dense[${i}].scale`) <= 0)
      check.fail(`dense[${i}].scale`, `dense[${i}].scale must be > 0, got ${String(entry.scale)}`);
    check.finite(entry.fill, `dense[${i}].fill`);
  });
  const vocabulary = (entry: Record<string, unknown>, field: string): void => {
    uniqueStrings(entry.vocabulary, `${field}.vocabulary`, 0);
    if (entry.hashBuckets === undefined) return;
    check.integer(entry.hashBuckets, `${field}.hashBuckets`, 1, MAX_HASH_BUCKETS);
    if ((entry.vocabulary as unknown[]).length > 0)
      check.fail(`${field}.vocabulary`, `${field} is hashed, so its vocabulary must be empty`);
  };
  entries('categorical', ['vocabulary', 'hashBuckets']).forEach((entry, i) => {
    vocabulary(entry, `categorical[${i}]`);
  });
  entries('multiValued', ['vocabulary', 'hashBuckets', 'separator']).forEach((entry, i) => {
    vocabulary(entry, `multiValued[${i}]`);
    check.string(entry.separator, `multiValued[${i}].separator`);
  });
  entries('tasks', ['type', 'sampleWeight', ...Object.values(TASK_TYPE_KEYS).flat()], 1).forEach((task, i) => {
    const field = `tasks[${i}]`;
    const type = check.oneOf(task.type, `${field}.type`, TASK_KINDS);
    // Checked again with this type's keys only, to reject another type's key.
    check.record(task, field, ['name', 'column', 'type', 'sampleWeight', ...TASK_TYPE_KEYS[type]]);
    if (task.sampleWeight !== undefined) listedColumn(task.sampleWeight, `${field}.sampleWeight`);
    if (type === 'binary' && task.positive !== 'predicate') uniqueStrings(task.positive, `${field}.positive`, 1);
    if (type === 'multiclass') uniqueStrings(task.classes, `${field}.classes`, 2);
  });
  if (schema.group !== undefined) listedColumn(schema.group, 'group');
  return value as FittedSchema;
}
