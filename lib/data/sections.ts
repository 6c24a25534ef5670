/**
 * `modelSections`: the `input` and `tasks` sections of a model config that fit a fitted schema, so
 * that vocabulary sizes, class counts and feature order can never drift from the encoded data.
 */
import type { CategoricalFeature, InputConfig, MultiValuedFeature, Pooling, TaskConfig } from '../config';
import { optionsChecker } from '../validation';
import { FIRST_VALUE_ID } from './encode';
import { validateFittedSchema } from './fitted';
import { FIRST_HASHED_ID } from './hashing';
import type { FittedCategorical, FittedSchema } from './types';

export interface ModelSectionsOptions {
  /**
   * Embedding width: a fixed width for every feature, or a rule from the vocabulary size (ids,
   * including the missing and out-of-vocabulary buckets). Default `defaultEmbeddingDim`.
   */
  embeddingDim?: number | ((vocab: number) => number);
  /** Pooling of multi-valued features (default 'mean'). */
  pooling?: Pooling;
  /** ESMM chains: task name -> the binary task it is conditional on (e.g. `{ buy: 'click' }`); checked with the model config. */
  conditionalOn?: Record<string, string>;
}

export interface ModelSections {
  input: InputConfig;
  tasks: TaskConfig[];
}

const MAX_EMBEDDING_DIM = 16;

/** min(16, ceil(1.6 · vocab^0.56)): a common rule of thumb that grows slowly with the vocabulary. */
export function defaultEmbeddingDim(vocab: number): number {
  return Math.min(MAX_EMBEDDING_DIM, Math.ceil(1.6 * vocab ** 0.56));
}

/** Number of ids a fitted categorical feature uses: the two buckets plus the known values, or the missing id plus the hash buckets. */
export function vocabSize(feature: FittedCategorical): number {
  return feature.hashBuckets !== undefined ? FIRST_HASHED_ID + feature.hashBuckets : FIRST_VALUE_ID + feature.vocabulary.length;
}

/** The `input` and `tasks` sections of a model config for data encoded with `schema`. */
export function modelSections(schema: FittedSchema, options: ModelSectionsOptions = {}): ModelSections {
  validateFittedSchema(schema);
  const check = optionsChecker('model sections options');
  const given = check.record(options, '', ['embeddingDim', 'pooling', 'conditionalOn']);
  const taskNames = schema.tasks.map((task) => task.name);
  const conditionalOn = given.conditionalOn === undefined ? {} : check.record(given.conditionalOn, 'conditionalOn', taskNames);
  for (const [name, parent] of Object.entries(conditionalOn)) check.string(parent, `conditionalOn.${name}`);
  const rule = given.embeddingDim ?? defaultEmbeddingDim;
  if (typeof rule !== 'function') check.integer(rule, 'embeddingDim', 1);
  const dimOf = (feature: FittedCategorical, field: string): number => {
    const vocab = vocabSize(feature);
    return typeof rule === 'function'
      ? check.integer((rule as (vocab: number) => number)(vocab), `embeddingDim(${vocab}) for ${field}`, 1)
      : (rule as number);
  };
  const pooling = given.pooling === undefined ? 'mean' : check.oneOf(given.pooling, 'pooling', ['mean', 'sum'] as const);
  const categorical = schema.categorical.map(
    (feature, i): CategoricalFeature => ({ name: feature.name, vocab: vocabSize(feature), dim: dimOf(feature, `categorical[${i}]`) }),
  );
  const multiValued = schema.multiValued.map(
    (feature, i): MultiValuedFeature => ({
      name: feature.name,
      vocab: vocabSize(feature),
      dim: dimOf(feature, `multiValued[${i}]`),
      pooling,
    }),
  );
  return {
    input: {
      dense: schema.dense.length,
      ...(categorical.length > 0 ? { categorical } : {}),
      ...(multiValued.length > 0 ? { multiValued } : {}),
    },
    tasks: schema.tasks.map((task): TaskConfig => {
      if (task.type === 'multiclass') return { name: task.name, type: 'multiclass', classes: task.classes.length };
      const parent = conditionalOn[task.name] as string | undefined;
      // A regression task with a parent is left for the model config's check to name.
      return parent === undefined
        ? { name: task.name, type: task.type }
        : ({ name: task.name, type: task.type, conditionalOn: parent } as TaskConfig);
    }),
  };
}
