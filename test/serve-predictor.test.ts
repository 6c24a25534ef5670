/**
 * Predictor: raw rows in, with the training encoding (checked against `encode` of the training
 * table and against an independent Python encoder), candidate scoring, and errors that name the field.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createModel,
  encode,
  modelSections,
  predict,
  Predictor,
  saveCheckpoint,
  TensorDataset,
  ValidationError,
  type FeatureRow,
} from '../lib';
import { makeTempDir, PYTHON, REPO_ROOT } from './helpers/reference';
import { createServingModel, ROWS, SCHEMA, TRAIN } from './helpers/serving';

const work = makeTempDir('predictor');
const model = createServingModel();
const predictor = new Predictor(model, SCHEMA);
afterAll(() => {
  predictor.dispose();
  fs.rmSync(work, { recursive: true, force: true });
});

function pythonEncoding(rows: readonly FeatureRow[]): {
  dense: number[];
  categorical: number[];
  multiValued: { indices: number[]; offsets: number[] }[];
} {
  const file = path.join(work, 'case.json');
  fs.writeFileSync(file, JSON.stringify({ schema: SCHEMA, rows }));
  const script = path.join(REPO_ROOT, 'scripts', 'reference', 'encode_rows.py');
  return JSON.parse(execFileSync(PYTHON, [script, file], { encoding: 'utf8' })) as ReturnType<typeof pythonEncoding>;
}

function errorOf(action: () => unknown): ValidationError {
  try {
    action();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return err as ValidationError;
  }
  throw new Error('expected a ValidationError');
}

describe('Predictor.encodeRows', () => {
  it('encodes the training rows exactly as training encoded them', () => {
    const { labels: _labels, ...trained } = encode(SCHEMA, TRAIN);
    expect(predictor.encodeRows(ROWS)).toEqual(trained);
  });

  it('agrees with an independent Python encoder, unseen values included', () => {
    const rows: FeatureRow[] = [
      ...ROWS,
      // Unseen city, item and device, a hashed tag never seen, an array for a multi-valued column, numbers as categories.
      {
        age: 29.5,
        minutes: 100,
        price: 12,
        city: 'Atlantis',
        device: 'tv',
        item: 'i9',
        genres: ['kids', 'horror'],
        tags: 'zz;a',
        extra: 'ignored',
      },
      { age: null, minutes: null, price: null, city: null, device: 7, item: 'i3', genres: ' comedy | | drama ', tags: null },
      { age: 0, minutes: 0.5, price: 3, city: 'Lyon', device: '?', item: 2, genres: '', tags: ['b', 7] },
    ];
    const encoded = predictor.encodeRows(rows);
    const python = pythonEncoding(rows);
    expect([...encoded.categorical!]).toEqual(python.categorical);
    expect(encoded.multiValued!.map((bags) => ({ indices: [...bags.indices], offsets: [...bags.offsets] }))).toEqual(python.multiValued);
    expect(encoded.dense!.length).toBe(python.dense.length);
    encoded.dense!.forEach((value, i) => {
      expect(value).toBeCloseTo(python.dense[i]!, 5);
    });
    // The unseen city and item are out of vocabulary (1); the unseen device still has a hash bucket.
    const width = SCHEMA.categorical.length;
    const unseen = [...encoded.categorical!.subarray(ROWS.length * width, (ROWS.length + 1) * width)];
    expect(unseen[0]).toBe(1);
    expect(unseen[2]).toBe(1);
    expect(unseen[1]).toBeGreaterThanOrEqual(1);
  });

  it('names the missing or mistyped field', () => {
    const row = ROWS[0]!;
    const cases: [unknown, string, RegExp][] = [
      [[{ ...row, age: undefined }], 'rows[0].age', /rows\[0\] has no 'age'.*send null/],
      [[row, { ...row, age: '31' }], 'rows[1].age', /rows\[1\]\.age must be a finite number or null, got "31"/],
      [[row, row, { ...row, city: true }], 'rows[2].city', /must be a string, a finite number or null, got true/],
      [[{ ...row, genres: { a: 1 } }], 'rows[0].genres', /separated by "\|", an array of strings or null/],
      [[{ ...row, tags: ['a', 3, null] }], 'rows[0].tags', /an array of strings/],
      [[row, 'Paris'], 'rows[1]', /rows\[1\] must be an object/],
      [[], 'rows', /non-empty array/],
      [{ age: 3 }, 'rows', /non-empty array/],
    ];
    for (const [rows, field, message] of cases) {
      const error = errorOf(() => predictor.encodeRows(rows as FeatureRow[]));
      expect(error.field).toBe(field);
      expect(error.message).toMatch(message);
    }
    const log = errorOf(() => predictor.encodeRows([{ ...row, minutes: -3 }]));
    expect(log.field).toBe('minutes');
    expect(log.message).toContain("-3 is not > -1, which 'log1p' normalisation needs");
  });
});

describe('Predictor predictions', () => {
  it('equal predict() on the training encoding: probabilities, class probabilities and values per row', async () => {
    using dataset = TensorDataset.fromEncoded(encode(SCHEMA, TRAIN), { taskNames: ['click', 'rating', 'watch'] });
    const expected = await predict(model, dataset);
    const predictions = await predictor.predictRows(ROWS);
    expect(predictions).toHaveLength(ROWS.length);
    predictions.forEach((prediction, i) => {
      expect(prediction.click).toBe(expected.click![i]);
      expect(prediction.rating).toEqual({
        low: expected.rating![3 * i],
        mid: expected.rating![3 * i + 1],
        high: expected.rating![3 * i + 2],
      });
      expect(prediction.watch).toBe(expected.watch![i]);
    });
  });

  it('scores candidates with the user broadcast: the same as repeating the user in every row', async () => {
    const user = { age: 31, minutes: 12.5, city: 'Paris', device: 'ios', genres: 'comedy|drama', tags: 'a;b' };
    const candidates = [
      { item: 'i1', price: 3 },
      { item: 'i2', price: 10 },
      { item: 'unseen', price: null },
    ];
    const repeated = candidates.map((candidate) => ({ ...user, ...candidate }));
    expect(predictor.encodeCandidates(user, candidates)).toEqual(predictor.encodeRows(repeated));
    expect(await predictor.scoreCandidates(user, candidates)).toEqual(await predictor.predictRows(repeated));
  });

  it('names the field of a candidate that is missing, clashes with the user or is mistyped', () => {
    const user = { age: 31, minutes: 12.5, city: 'Paris', device: 'ios', genres: 'comedy', tags: 'a' };
    expect(errorOf(() => predictor.encodeCandidates(user, [{ item: 'i1', price: 3 }, { item: 'i2' }])).field).toBe('candidates[1].price');
    const clash = errorOf(() =>
      predictor.encodeCandidates(user, [
        { item: 'i1', price: 3 },
        { item: 'i2', price: 1, city: 'Lyon' },
      ]),
    );
    expect(clash.field).toBe('candidates[1].city');
    expect(clash.message).toContain("'city' is given both in user and in candidates[1]");
    expect(errorOf(() => predictor.encodeCandidates({ ...user, age: 'x' }, [{ item: 'i1', price: 3 }])).field).toBe('user.age');
    expect(errorOf(() => predictor.encodeCandidates(null as never, [{ item: 'i1', price: 3 }])).field).toBe('user');
  });

  it('predicts several requests in one model call as each would alone', async () => {
    const parts = [predictor.encodeRows(ROWS.slice(0, 2)), predictor.encodeRows(ROWS.slice(2, 3)), predictor.encodeRows(ROWS.slice(3))];
    const together = await predictor.predictParts(parts);
    expect(together.map((part) => part.length)).toEqual([2, 1, 3]);
    expect(together.flat()).toEqual(await predictor.predictRows(ROWS));
  });
});

describe('Predictor.load', () => {
  it('serves a checkpoint with its schema, and refuses one without', async () => {
    const file = path.join(work, 'model.adatt');
    await saveCheckpoint(file, model, { schema: SCHEMA });
    using loaded = await Predictor.load(file);
    expect(await loaded.predictRows(ROWS.slice(0, 2))).toEqual(await predictor.predictRows(ROWS.slice(0, 2)));
    expect(loaded.columns).toEqual(['age', 'minutes', 'price', 'city', 'device', 'item', 'genres', 'tags']);
    const bare = path.join(work, 'bare.adatt');
    await saveCheckpoint(bare, model);
    await expect(Predictor.load(bare)).rejects.toThrow(/holds no data schema/);
  });

  it('serves the calibration stored with the model', async () => {
    using calibratedModel = createServingModel();
    calibratedModel.calibration = { click: { method: 'platt', scale: 0.5, bias: -1 } };
    const file = path.join(work, 'calibrated.adatt');
    await saveCheckpoint(file, calibratedModel, { schema: SCHEMA });
    using loaded = await Predictor.load(file);
    using dataset = TensorDataset.fromEncoded(encode(SCHEMA, TRAIN), { taskNames: ['click', 'rating', 'watch'] });
    const [calibrated, raw] = [await predict(calibratedModel, dataset), await predict(calibratedModel, dataset, { calibrated: false })];
    const served = await loaded.predictRows(ROWS);
    served.forEach((prediction, i) => {
      expect(prediction.click).toBe(calibrated.click![i]);
      const logit = Math.log(raw.click![i]! / (1 - raw.click![i]!));
      expect(prediction.click).toBeCloseTo(1 / (1 + Math.exp(-(0.5 * logit - 1))), 6);
      expect(prediction.watch).toBe(raw.watch![i]);
    });
  });

  it('refuses a schema that does not fit the model: feature counts, table sizes, tasks', () => {
    using other = createModel({
      kind: 'mmoe',
      ...modelSections(SCHEMA, { embeddingDim: 4 }),
      tasks: [{ name: 'click', type: 'binary' }],
      experts: 2,
      expertDims: [[8]],
    });
    const error = errorOf(() => new Predictor(other, SCHEMA));
    expect(error.message).toBe('the schema has 3 tasks but the model has 1');
    using fourClasses = createModel({
      kind: 'mmoe',
      ...modelSections(SCHEMA, { embeddingDim: 4 }),
      experts: 2,
      expertDims: [[8]],
      tasks: [
        { name: 'click', type: 'binary' },
        { name: 'rating', type: 'multiclass', classes: 4 },
        { name: 'watch', type: 'regression' },
      ],
    });
    const classes = errorOf(() => new Predictor(fourClasses, SCHEMA));
    expect(classes.field).toBe('schema.tasks[1]');
    expect(classes.message).toBe("schema task 1 is 'rating' (multiclass, 3 classes) but the model's is 'rating' (multiclass, 4 classes)");
    const sections = modelSections(SCHEMA, { embeddingDim: 4 });
    using smallTable = createModel({
      kind: 'mmoe',
      ...sections,
      experts: 2,
      expertDims: [[8]],
      input: {
        ...sections.input,
        categorical: sections.input.categorical!.map((feature, j) => (j === 0 ? { ...feature, vocab: 2 } : feature)),
      },
    });
    expect(errorOf(() => new Predictor(smallTable, SCHEMA)).message).toMatch(
      /feature 'city' encodes \d+ ids but the model's table 0 of categorical features has 2 rows/,
    );
  });
});
