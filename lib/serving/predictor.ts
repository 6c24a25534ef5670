/**
 * `Predictor`: a model with the fitted schema it was trained with, predicting from plain objects
 * of raw feature values. The objects are encoded by the training code itself (`FeatureEncoder`
 * over a table of the request's rows), so vocabularies, hashing, missing markers and normalisation
 * are those of training by construction; only the JSON-facing type checks live here.
 */
import { loadCheckpoint, type Checkpoint } from '../checkpoint';
import { FeatureEncoder, type EncodedFeatures } from '../data/encode';
import { tableFromColumns } from '../data/table';
import { vocabSize } from '../data/sections';
import type { FittedCategorical, FittedSchema, FittedTask } from '../data/types';
import { ValidationError } from '../errors';
import type { Device, Model } from '../model';
import { describeElement, describeValue, isRecord } from '../validation';

/** One row of raw feature values by column name, as in the training data (label columns are not needed). */
export type FeatureRow = Readonly<Record<string, unknown>>;

/** Per task: the probability of the positive class (binary), per class its probability (multiclass), or the value (regression). */
export type Prediction = Record<string, number | Record<string, number>>;

/** How one column the schema reads accepts values. */
interface ColumnRule {
  name: string;
  /** A dense feature reads it: numbers only. */
  numeric: boolean;
  /** The separator of the multi-valued feature that reads it, when one does: arrays are joined with it. */
  separator?: string;
  expected: string;
}

const TABLE_SOURCE = 'the rows given';

function columnRules(schema: FittedSchema): ColumnRule[] {
  const dense = new Set(schema.dense.map((feature) => feature.column));
  const separators = new Map(schema.multiValued.map((feature) => [feature.column, feature.separator]));
  const features = [...schema.dense, ...schema.categorical, ...schema.multiValued].map((feature) => feature.column);
  return [...new Set(features)].map((name) => {
    const numeric = dense.has(name);
    const separator = separators.get(name);
    const expected = numeric
      ? 'a finite number or null'
      : separator === undefined
        ? 'a string, a finite number or null'
        : `a string of values separated by ${JSON.stringify(separator)}, an array of strings or null`;
    return { name, numeric, ...(separator === undefined ? {} : { separator }), expected };
  });
}

/** `rows[3].city`, or `rows[3]["unit price"]` for a name that is not an identifier. */
function fieldOf(where: string, column: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(column) ? `${where}.${column}` : `${where}[${JSON.stringify(column)}]`;
}

function notARecord(field: string, described: string): ValidationError {
  return new ValidationError(field, `${field} must be an object of feature values by column name, got ${described}`);
}

function readRecords(value: unknown, field: string): FeatureRow[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new ValidationError(field, `${field} must be a non-empty array of objects (column: value), got ${describeValue(value)}`);
  }
  return Array.from({ length: value.length }, (_, i) => {
    const record: unknown = value[i];
    if (!isRecord(record)) throw notARecord(`${field}[${i}]`, describeElement(value, i));
    return record;
  });
}

function readRecord(value: unknown, field: string): FeatureRow {
  if (!isRecord(value)) throw notARecord(field, describeValue(value));
  return value;
}

/** The record's own value for a column: a column named like an Object method ('constructor') is not inherited. */
function ownValue(record: FeatureRow, column: string): unknown {
  return Object.hasOwn(record, column) ? record[column] : undefined;
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/**
 * A cell as the table of the request holds it. Numbers read by categorical features become their
 * text, which is what encoding does with a number column, so rows may mix numbers and strings.
 */
function readCell(rule: ColumnRule, record: FeatureRow, where: string): number | string | null {
  const value = ownValue(record, rule.name);
  if (value === undefined) {
    throw new ValidationError(
      fieldOf(where, rule.name),
      `${where} has no '${rule.name}', which the model reads (send null for a missing value)`,
    );
  }
  if (value === null) return null;
  if (isFiniteNumber(value)) return rule.numeric ? value : String(value);
  if (!rule.numeric) {
    if (typeof value === 'string') return value;
    if (
      rule.separator !== undefined &&
      Array.isArray(value) &&
      value.every((token) => typeof token === 'string' || isFiniteNumber(token))
    ) {
      return value.join(rule.separator);
    }
  }
  const field = fieldOf(where, rule.name);
  throw new ValidationError(field, `${field} must be ${rule.expected}, got ${describeValue(value)}`);
}

/** The model must read the features the schema encodes, and predict its tasks. */
function checkSchemaFitsModel(schema: FittedSchema, model: Model): void {
  const { input, tasks } = model.config;
  const counts: [string, number, number][] = [
    ['dense features', schema.dense.length, input.dense ?? 0],
    ['categorical features', schema.categorical.length, input.categorical?.length ?? 0],
    ['multi-valued features', schema.multiValued.length, input.multiValued?.length ?? 0],
    ['tasks', schema.tasks.length, tasks.length],
  ];
  for (const [what, inSchema, inModel] of counts) {
    if (inSchema !== inModel) throw new ValidationError('schema', `the schema has ${inSchema} ${what} but the model has ${inModel}`);
  }
  const tables: [string, readonly FittedCategorical[], readonly { vocab: number }[]][] = [
    ['categorical', schema.categorical, input.categorical ?? []],
    ['multiValued', schema.multiValued, input.multiValued ?? []],
  ];
  for (const [kind, features, embeddings] of tables) {
    features.forEach((feature, j) => {
      const needed = vocabSize(feature);
      const vocab = (embeddings[j] as { vocab: number }).vocab;
      if (needed > vocab) {
        throw new ValidationError(
          `schema.${kind}[${j}]`,
          `feature '${feature.name}' encodes ${needed} ids but the model's table ${j} of ${kind} features has ${vocab} rows`,
        );
      }
    });
  }
  schema.tasks.forEach((task, t) => {
    const modelTask = tasks[t] as (typeof tasks)[number];
    const describe = (name: string, type: string, classes: number | undefined): string =>
      `'${name}' (${type}${classes === undefined ? '' : `, ${classes} classes`})`;
    const inSchema = describe(task.name, task.type, task.type === 'multiclass' ? task.classes.length : undefined);
    const inModel = describe(modelTask.name, modelTask.type, modelTask.classes);
    if (inSchema !== inModel)
      throw new ValidationError(`schema.tasks[${t}]`, `schema task ${t} is ${inSchema} but the model's is ${inModel}`);
  });
}

/** Joins the encoded rows of several requests into one batch, in order (bags' offsets shifted). */
function concatFeatures(parts: readonly EncodedFeatures[]): EncodedFeatures {
  if (parts.length === 1) return parts[0] as EncodedFeatures;
  const first = parts[0] as EncodedFeatures;
  const joined = <T extends Float32Array | Int32Array>(arrays: T[], make: (length: number) => T): T => {
    const result = make(arrays.reduce((total, array) => total + array.length, 0));
    let at = 0;
    for (const array of arrays) {
      result.set(array, at);
      at += array.length;
    }
    return result;
  };
  const size = parts.reduce((total, part) => total + part.size, 0);
  const multiValued = first.multiValued?.map((_, j) => {
    const bags = parts.map((part) => part.multiValued![j]!);
    let rowsBefore = 0;
    let idsBefore = 0;
    const offsets = new Int32Array(size);
    for (const bag of bags) {
      for (let r = 0; r < bag.offsets.length; r++) offsets[rowsBefore + r] = (bag.offsets[r] as number) + idsBefore;
      rowsBefore += bag.offsets.length;
      idsBefore += bag.indices.length;
    }
    return {
      indices: joined(
        bags.map((bag) => bag.indices),
        (n) => new Int32Array(n),
      ),
      offsets,
    };
  });
  return {
    size,
    ...(first.dense
      ? {
          dense: joined(
            parts.map((part) => part.dense!),
            (n) => new Float32Array(n),
          ),
        }
      : {}),
    ...(first.categorical
      ? {
          categorical: joined(
            parts.map((part) => part.categorical!),
            (n) => new Int32Array(n),
          ),
        }
      : {}),
    ...(multiValued ? { multiValued } : {}),
  };
}

function predictionOf(task: FittedTask, values: Float32Array, row: number): number | Record<string, number> {
  if (task.type !== 'multiclass') return values[row] as number;
  const k = task.classes.length;
  return Object.fromEntries(task.classes.map((label, c) => [label, values[row * k + c] as number]));
}

export class Predictor implements Disposable {
  readonly model: Model;
  readonly schema: FittedSchema;
  readonly #encoder: FeatureEncoder;
  readonly #columns: readonly ColumnRule[];

  /** Serves `model` with the schema it was trained with; `dispose()` disposes the model. */
  constructor(model: Model, schema: FittedSchema) {
    this.#encoder = new FeatureEncoder(schema);
    checkSchemaFitsModel(schema, model);
    this.model = model;
    this.schema = schema;
    this.#columns = columnRules(schema);
  }

  /** The model and schema of a checkpoint (`adatt train` writes them to RUN_DIR/model.adatt). */
  static fromCheckpoint(checkpoint: Checkpoint): Predictor {
    if (!checkpoint.schema) {
      throw new ValidationError('schema', 'the checkpoint holds no data schema: save it with saveCheckpoint(file, model, { schema })');
    }
    return new Predictor(checkpoint.model, checkpoint.schema);
  }

  static async load(file: string, options: { device?: Device } = {}): Promise<Predictor> {
    const checkpoint = await loadCheckpoint(file, options);
    try {
      return Predictor.fromCheckpoint(checkpoint);
    } catch (err) {
      checkpoint.model.dispose();
      throw err;
    }
  }

  /** The columns a row must have (feature columns; label columns are not read). */
  get columns(): string[] {
    return this.#columns.map((column) => column.name);
  }

  /**
   * Encodes rows of raw values exactly as training encoded its rows. Unseen values get the
   * out-of-vocabulary id (or their hash bucket), null is a missing value; a missing or mistyped
   * field is a ValidationError whose `field` names it (`rows[2].age`). Other keys are ignored.
   */
  encodeRows(rows: readonly FeatureRow[]): EncodedFeatures {
    const records = readRecords(rows, 'rows');
    return this.#encode(
      Object.fromEntries(this.#columns.map((rule) => [rule.name, records.map((record, i) => readCell(rule, record, `rows[${i}]`))])),
    );
  }

  /**
   * Encodes one row per candidate: a column of `user` (the user's and the context's features) is
   * broadcast to every candidate, the other columns come from each candidate. A column given in
   * both is a ValidationError, so that a candidate cannot silently override the user.
   */
  encodeCandidates(user: FeatureRow, candidates: readonly FeatureRow[]): EncodedFeatures {
    const shared = readRecord(user, 'user');
    const items = readRecords(candidates, 'candidates');
    return this.#encode(
      Object.fromEntries(
        this.#columns.map((rule) => {
          if (ownValue(shared, rule.name) === undefined)
            return [rule.name, items.map((item, i) => readCell(rule, item, `candidates[${i}]`))];
          const clash = items.findIndex((item) => ownValue(item, rule.name) !== undefined);
          if (clash >= 0) {
            const field = fieldOf(`candidates[${clash}]`, rule.name);
            throw new ValidationError(field, `'${rule.name}' is given both in user and in candidates[${clash}]; give it in one of them`);
          }
          return [rule.name, new Array<unknown>(items.length).fill(readCell(rule, shared, 'user'))];
        }),
      ),
    );
  }

  /** Per task name, the model's predictions for encoded rows, as `predict` gives them ([N] or [N * classes]). */
  async predictEncoded(features: EncodedFeatures): Promise<Record<string, Float32Array>> {
    const { size, dense, categorical, multiValued } = features;
    return await this.model.predictions({
      size,
      ...(dense ? { dense } : {}),
      ...(categorical ? { categorical } : {}),
      ...(multiValued ? { multiValued } : {}),
    });
  }

  /** Scores several encoded requests in one model call; resolves to each request's predictions. */
  async predictParts(parts: readonly EncodedFeatures[]): Promise<Prediction[][]> {
    const outputs = await this.predictEncoded(concatFeatures(parts));
    let start = 0;
    return parts.map((part) => {
      const predictions = this.#predictionsOf(outputs, start, part.size);
      start += part.size;
      return predictions;
    });
  }

  /** Predictions for rows of raw feature values, one per row. */
  async predictRows(rows: readonly FeatureRow[]): Promise<Prediction[]> {
    return (await this.predictParts([this.encodeRows(rows)]))[0] as Prediction[];
  }

  /** Predictions for each candidate with the user's features (see encodeCandidates). */
  async scoreCandidates(user: FeatureRow, candidates: readonly FeatureRow[]): Promise<Prediction[]> {
    return (await this.predictParts([this.encodeCandidates(user, candidates)]))[0] as Prediction[];
  }

  dispose(): void {
    this.model.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Rows `start … start + count` of per-task outputs as one `Prediction` each. */
  #predictionsOf(outputs: Record<string, Float32Array>, start: number, count: number): Prediction[] {
    return Array.from({ length: count }, (_, i) =>
      Object.fromEntries(this.schema.tasks.map((task) => [task.name, predictionOf(task, outputs[task.name] as Float32Array, start + i)])),
    );
  }

  #encode(columns: Record<string, unknown[]>): EncodedFeatures {
    return this.#encoder.encode(tableFromColumns(columns, { source: TABLE_SOURCE }));
  }
}
