import { describe, expect, it } from 'vitest';
import { batchSchema, toRawBatch } from '../lib/batch';
import { ValidationError } from '../lib/errors';

const schema = batchSchema({
  dense: 2,
  categorical: [
    { name: 'user', vocab: 10, dim: 4 },
    { vocab: 3, dim: 4 },
  ],
  multiValued: [{ name: 'history', vocab: 5, dim: 4 }],
});

const good = {
  dense: [
    [0.5, 1],
    [2, 3],
  ],
  categorical: [
    [9, 0],
    [1, 2],
  ],
  multiValued: [[[1, 4], []]],
};

function validationError(batch: unknown, batchSchemaToUse = schema): ValidationError {
  try {
    toRawBatch(batch, batchSchemaToUse);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return err as ValidationError;
  }
  throw new Error('expected a ValidationError');
}

describe('toRawBatch converts', () => {
  it('rows to row-major typed arrays and bags to EmbeddingBag form', () => {
    const raw = toRawBatch(good, schema);
    expect(raw.size).toBe(2);
    expect(Array.from(raw.dense ?? [])).toEqual([0.5, 1, 2, 3]);
    expect(raw.categorical).toEqual(Int32Array.from([9, 0, 1, 2]));
    expect(raw.multiValued).toEqual([{ indices: Int32Array.from([1, 4]), offsets: Int32Array.from([0, 2]) }]);
  });

  it('typed arrays without copying', () => {
    const dense = new Float32Array(4);
    const categorical = Int32Array.from([9, 0, 1, 2]);
    const bags = { indices: Int32Array.from([4]), offsets: Int32Array.from([0, 1]) };
    const raw = toRawBatch({ dense, categorical, multiValued: [bags], size: 2 }, schema);
    expect(raw.dense).toBe(dense);
    expect(raw.categorical).toBe(categorical);
    expect(raw.multiValued?.[0]?.indices).toBe(bags.indices);
    expect(raw.multiValued?.[0]?.offsets).toBe(bags.offsets);
  });

  it('leaves out feature groups the model does not have', () => {
    const raw = toRawBatch({ categorical: [[1], [2], [0]] }, batchSchema({ categorical: [{ vocab: 3, dim: 2 }] }));
    expect(raw).toEqual({ size: 3, categorical: Int32Array.from([1, 2, 0]) });
  });
});

describe('toRawBatch rejects', () => {
  const cases: [string, unknown, string, RegExp][] = [
    ['a non-object', [good], 'batch', /must be an object/],
    [
      'an unknown key',
      { ...good, labels: [] },
      'batch.labels',
      /unknown key batch.labels \(allowed in batch: 'dense', 'categorical', 'multiValued', 'size'\)/,
    ],
    ['a bad size', { ...good, size: 0 }, 'batch.size', /integer in \[1, 2147483647\], got 0/],
    ['a size that disagrees', { ...good, size: 3 }, 'batch.dense', /batch.dense holds 2 examples but batch.size holds 3/],
    [
      'a missing feature group',
      { dense: good.dense, multiValued: good.multiValued },
      'batch.categorical',
      /required: the model has 2 categorical features/,
    ],
    [
      'dense of another type',
      { ...good, dense: new Float64Array(4) },
      'batch.dense',
      /Float32Array or an array of rows.*Float64Array\(4\)/,
    ],
    ['a short dense row', { ...good, dense: [[1, 2], [3]] }, 'batch.dense[1]', /array of 2 numbers, got an array of length 1/],
    [
      'a non-number dense value',
      {
        ...good,
        dense: [
          [1, 2],
          [3, '4'],
        ],
      },
      'batch.dense[1][1]',
      /must be a number, got "4"/,
    ],
    ['a dense length that is not a multiple', { ...good, dense: new Float32Array(5) }, 'batch.dense', /length 5, not a multiple of 2/],
    ['disagreeing row counts', { ...good, categorical: [[1, 1]] }, 'batch.categorical', /holds 1 examples but batch.dense holds 2/],
    [
      'an out-of-range id in rows',
      {
        ...good,
        categorical: [
          [9, 0],
          [10, 2],
        ],
      },
      'batch.categorical[1][0]',
      /id in \[0, 10\) for categorical feature 'user' \(row 1\), got 10/,
    ],
    [
      'a negative id in rows',
      {
        ...good,
        categorical: [
          [9, -1],
          [1, 2],
        ],
      },
      'batch.categorical[0][1]',
      /\[0, 3\) for categorical feature 1 \(row 0\), got -1/,
    ],
    [
      'a fractional id',
      {
        ...good,
        categorical: [
          [9, 0.5],
          [1, 2],
        ],
      },
      'batch.categorical[0][1]',
      /got 0.5/,
    ],
    [
      'an out-of-range id in an Int32Array',
      { ...good, categorical: Int32Array.from([9, 0, 1, 3]) },
      'batch.categorical[3]',
      /\[0, 3\) for categorical feature 1 \(row 1\), got 3/,
    ],
    [
      'categorical as Uint32Array',
      { ...good, categorical: new Uint32Array(4) },
      'batch.categorical',
      /Int32Array or an array of rows of ids/,
    ],
    [
      'the wrong number of multi-valued features',
      { ...good, multiValued: [] },
      'batch.multiValued',
      /one entry per multi-valued feature \(1\), got 0/,
    ],
    [
      'a bag id out of range',
      { ...good, multiValued: [[[1], [5]]] },
      'batch.multiValued[0][1][0]',
      /\[0, 5\) for multi-valued feature 'history' \(row 1\), got 5/,
    ],
    ['a bag that is not an array', { ...good, multiValued: [[[1], 2]] }, 'batch.multiValued[0][1]', /array of ids, got 2/],
    [
      'bags with a non-zero first offset',
      { ...good, multiValued: [{ indices: Int32Array.from([1, 2]), offsets: Int32Array.from([1, 2]) }] },
      'batch.multiValued[0].offsets[0]',
      /must be 0, got 1/,
    ],
    [
      'offsets past the indices',
      { ...good, multiValued: [{ indices: Int32Array.from([1]), offsets: Int32Array.from([0, 2]) }] },
      'batch.multiValued[0].offsets[1]',
      /non-decreasing and at most indices.length \(1\); row 1 spans \[2, 1\)/,
    ],
    [
      'a bag index out of range',
      { ...good, multiValued: [{ indices: Int32Array.from([1, 7]), offsets: Int32Array.from([0, 1]) }] },
      'batch.multiValued[0].indices[1]',
      /multi-valued feature 'history' \(row 1\), got 7/,
    ],
    [
      'offsets of the wrong type',
      { ...good, multiValued: [{ indices: Int32Array.from([1]), offsets: [0, 1] }] },
      'batch.multiValued[0].offsets',
      /must be an Int32Array, got an array of length 2/,
    ],
    [
      'an unknown bags key',
      { ...good, multiValued: [{ indices: Int32Array.from([1]), offsets: Int32Array.from([0, 1]), weights: [] }] },
      'batch.multiValued[0].weights',
      /unknown key/,
    ],
    [
      'bags of another batch size',
      { ...good, multiValued: [{ indices: Int32Array.from([1]), offsets: Int32Array.from([0]) }] },
      'batch.multiValued[0].offsets',
      /holds 1 examples but batch.dense holds 2/,
    ],
    [
      'an empty batch',
      {
        dense: new Float32Array(0),
        categorical: new Int32Array(0),
        multiValued: [{ indices: new Int32Array(0), offsets: new Int32Array(0) }],
      },
      'batch',
      /at least one example/,
    ],
  ];

  it.each(cases)('%s', (_, batch, field, message) => {
    const error = validationError(batch);
    expect(error.field).toBe(field);
    expect(error.code).toBe('ADATT_INVALID_ARGUMENT');
    expect(error.message).toMatch(message);
  });

  it('a feature group the model lacks', () => {
    const categoricalOnly = batchSchema({ categorical: [{ vocab: 3, dim: 2 }] });
    const error = validationError({ categorical: [[1]], dense: [[1]] }, categoricalOnly);
    expect(error.field).toBe('batch.dense');
    expect(error.message).toMatch(/the model has no dense features; omit batch.dense/);
  });

  it('decreasing offsets', () => {
    const bagsOnly = batchSchema({ multiValued: [{ vocab: 5, dim: 2 }] });
    const error = validationError({ multiValued: [{ indices: Int32Array.from([1, 2]), offsets: Int32Array.from([0, 2, 1]) }] }, bagsOnly);
    expect(error.field).toBe('batch.multiValued[0].offsets[1]');
    expect(error.message).toMatch(/row 1 spans \[2, 1\)/);
  });
});
