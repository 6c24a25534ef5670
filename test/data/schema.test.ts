import { describe, expect, it } from 'vitest';
import { validateModelConfig } from '../../lib/config';
import {
  encode,
  fitSchema,
  modelSections,
  parseCsv,
  schemaColumns,
  tableFromColumns,
  validateFittedSchema,
  type FittedSchema,
  type SchemaSpec,
} from '../../lib/data';
import { ConfigError, ValidationError } from '../../lib/errors';
import { errorOf } from './helpers';

const TRAIN = parseCsv(
  [
    'age,city,tags,income,grade,score',
    '30,Paris,a|b,>50K,B,1.5',
    '40,Lyon,b,<=50K,A,2.5',
    '50,Paris,,>50K,C,?',
    '?,Nice,a | c|a,?,A,0.5',
    '60,?,c,<=50K,B,3',
  ].join('\n'),
  { source: 'train.csv' },
);

const SPEC: SchemaSpec = {
  dense: ['age'],
  categorical: ['city'],
  multiValued: ['tags'],
  tasks: [
    { name: 'rich', type: 'binary', column: 'income', positive: '>50K' },
    { name: 'grade', type: 'multiclass', column: 'grade' },
    { name: 'score', type: 'regression', column: 'score' },
  ],
};

const schema = fitSchema(SPEC, TRAIN);

function round(values: ArrayLike<number>, digits = 4): number[] {
  return Array.from(values, (value) => (Number.isNaN(value) ? NaN : Number(value.toFixed(digits))));
}

describe('fitSchema', () => {
  it('fits a JSON-serialisable schema on the training rows', () => {
    expect(JSON.parse(JSON.stringify(schema))).toEqual(schema);
    expect(schema.columns).toEqual(['age', 'city', 'tags', 'income', 'grade', 'score']);
    expect(schema.fittedRows).toBe(5);
  });

  it('returns a deeply frozen schema, so that encoding can trust it without checking it again', () => {
    const vocabulary = schema.categorical[0]?.vocabulary as string[];
    expect(() => vocabulary.push('Lyon')).toThrow(TypeError);
    expect(() => {
      (schema.dense[0] as { scale: number }).scale = 0;
    }).toThrow(TypeError);
    expect(Object.isFrozen(schema.tasks)).toBe(true);
    // A copy is an ordinary object again, checked when used.
    const copy = JSON.parse(JSON.stringify(schema)) as FittedSchema;
    copy.dense[0]!.scale = 0;
    expect(errorOf(() => encode(copy, TRAIN), ConfigError).field).toBe('dense[0].scale');
  });

  it('standardises dense columns with the mean and population std of the present values', () => {
    const [age] = schema.dense;
    expect(age).toMatchObject({ name: 'age', column: 'age', normalize: 'standard', center: 45 });
    expect(age?.scale).toBeCloseTo(Math.sqrt(125), 10);
    expect(age?.fill).toBeCloseTo(0, 12);
  });

  it('orders vocabularies by frequency, then value, leaving out missing values', () => {
    expect(schema.categorical[0]?.vocabulary).toEqual(['Paris', 'Lyon', 'Nice']);
    // Tokens are trimmed and counted per occurrence: a x3, b x2, c x2.
    expect(schema.multiValued[0]).toMatchObject({ separator: '|', vocabulary: ['a', 'b', 'c'] });
  });

  it('fits classes in sorted order (numerically when all are numbers)', () => {
    expect(schema.tasks[1]).toEqual({ name: 'grade', type: 'multiclass', column: 'grade', classes: ['A', 'B', 'C'] });
    const numeric = fitSchema(
      { dense: ['x'], tasks: [{ name: 'k', type: 'multiclass', column: 'k' }] },
      tableFromColumns({ x: [1, 2, 3], k: [10, 9, 2] }),
    );
    expect(numeric.tasks[0]).toMatchObject({ classes: ['2', '9', '10'] });
  });

  it('cuts values rarer than minFrequency', () => {
    const fitted = fitSchema({ ...SPEC, categorical: [{ column: 'city', minFrequency: 2 }] }, TRAIN);
    expect(fitted.categorical[0]?.vocabulary).toEqual(['Paris']);
  });

  it('takes columns by position and features by new names', () => {
    const fitted = fitSchema(
      { dense: [{ column: 0, name: 'years' }], tasks: [{ name: 'rich', type: 'binary', column: 3, positive: '>50K' }] },
      TRAIN,
    );
    expect(fitted.dense[0]).toMatchObject({ name: 'years', column: 'age' });
    expect(fitted.tasks[0]).toMatchObject({ column: 'income' });
  });
});

describe('encode', () => {
  const encoded = encode(schema, TRAIN);

  it('gives flat row-major arrays and per-task labels', () => {
    expect(encoded.size).toBe(5);
    expect(round(encoded.dense ?? [])).toEqual(round([-15, -5, 5, 0, 15].map((x) => x / Math.sqrt(125))));
    // 0 = missing, 1 = out of vocabulary, 2.. = vocabulary.
    expect(Array.from(encoded.categorical ?? [])).toEqual([2, 3, 2, 4, 0]);
    expect(encoded.multiValued).toEqual([
      { indices: Int32Array.from([2, 3, 3, 0, 2, 4, 2, 4]), offsets: Int32Array.from([0, 2, 3, 4, 7]) },
    ]);
  });

  it('masks missing labels with NaN, per task only', () => {
    const [rich, grade, score] = encoded.labels;
    expect(Array.from(rich ?? [])).toEqual([1, 0, 1, NaN, 0]);
    expect(Array.from(grade ?? [])).toEqual([1, 0, 2, 0, 1]);
    expect(Array.from(score ?? [])).toEqual([1.5, 2.5, NaN, 0.5, 3]);
  });

  it('encodes new data exactly as the training data: unseen values out of vocabulary, training parameters', () => {
    const test = parseCsv('age,city,tags,income,grade,score\n45,Rome,d|a,>50K,C,1\n', { source: 'test.csv' });
    const result = encode(schema, test);
    expect(round(result.dense ?? [])).toEqual([0]);
    expect(Array.from(result.categorical ?? [])).toEqual([1]);
    expect(Array.from(result.multiValued?.[0]?.indices ?? [])).toEqual([1, 2]);
  });

  it('with a fitted schema read back from JSON', () => {
    const restored = validateFittedSchema(JSON.parse(JSON.stringify(schema)) as unknown);
    expect(encode(restored, TRAIN)).toEqual(encoded);
  });

  it('takes positives from a set of values or a predicate; JSON needs the predicate again', () => {
    const spec: SchemaSpec = {
      dense: ['age'],
      tasks: [
        { name: 'big-city', type: 'binary', column: 'city', positive: ['Paris', 'Lyon'] },
        { name: 'high', type: 'binary', column: 'score', positive: (value) => Number(value) >= 2.5 },
      ],
    };
    const fitted = fitSchema(spec, TRAIN);
    const [bigCity, high] = encode(fitted, TRAIN).labels;
    expect(Array.from(bigCity ?? [])).toEqual([1, 1, 1, 0, NaN]);
    expect(Array.from(high ?? [])).toEqual([0, 1, NaN, 0, 1]);
    expect(fitted.tasks[1]).toMatchObject({ positive: 'predicate' });

    const restored = JSON.parse(JSON.stringify(fitted)) as FittedSchema;
    const err = errorOf(() => encode(restored, TRAIN), ValidationError);
    expect(err.field).toBe('predicates.high');
    expect(err.message).toMatch(/pass it as options.predicates\['high'\]/);
    const again = encode(restored, TRAIN, { predicates: { high: (value) => Number(value) >= 2.5 } });
    expect(Array.from(again.labels[1] ?? [])).toEqual([0, 1, NaN, 0, 1]);
  });

  it('passes numbers to predicates of number columns and compares values as text', () => {
    const table = tableFromColumns({ x: [1, 2, 3], label: Int32Array.from([0, 1, 5]) });
    const fitted = fitSchema(
      {
        dense: ['x'],
        tasks: [
          { name: 'one', type: 'binary', column: 'label', positive: 1 },
          { name: 'big', type: 'binary', column: 'label', positive: (value) => typeof value === 'number' && value > 2 },
        ],
      },
      table,
    );
    expect(encode(fitted, table).labels.map((labels) => Array.from(labels))).toEqual([
      [0, 1, 0],
      [0, 0, 1],
    ]);
  });

  it('uses given classes in the given order and rejects others with the row', () => {
    const fitted = fitSchema({ ...SPEC, tasks: [{ name: 'grade', type: 'multiclass', column: 'grade', classes: ['C', 'B', 'A'] }] }, TRAIN);
    expect(Array.from(encode(fitted, TRAIN).labels[0] ?? [])).toEqual([1, 2, 0, 2, 1]);
    const narrow = fitSchema({ ...SPEC, tasks: [{ name: 'grade', type: 'multiclass', column: 'grade', classes: ['A', 'B'] }] }, TRAIN);
    const err = errorOf(() => encode(narrow, TRAIN), ValidationError);
    expect(err.field).toBe('grade');
    expect(err.message).toBe(
      `Invalid data in line 4 of train.csv, column 'grade': label "C" is not one of the 2 classes of task 'grade' ("A", "B")`,
    );
  });

  it('rejects a non-numeric dense value, naming column and line', () => {
    const bad = parseCsv('age,city,tags,income,grade,score\n30,a,b,>50K,A,1\nabc,a,b,>50K,A,1\n', { source: 'bad.csv' });
    const err = errorOf(() => encode(schema, bad), ValidationError);
    expect(err.field).toBe('age');
    expect(err.message).toBe(`Invalid data in line 3 of bad.csv, column 'age': "abc" is not a number`);
  });

  it('rejects an empty split and a table without a column the schema reads', () => {
    expect(errorOf(() => encode(schema, TRAIN.select(new Int32Array(0))), ValidationError).message).toMatch(
      /cannot encode train.csv: it has no rows/,
    );
    const err = errorOf(() => encode(schema, parseCsv('age\n1', { source: 'narrow.csv' })), ValidationError);
    expect(err.message).toMatch(/narrow.csv has no column 'city' \(it has 1 columns: 0: 'age'\), which the schema reads/);
  });
});

describe('dense normalisation', () => {
  const table = tableFromColumns({ x: [0, 1, 3, null, 8], label: [0, 1, 0, 1, 0] });
  const encodeWith = (normalize: 'standard' | 'minmax' | 'log1p' | 'none'): { fitted: FittedSchema; values: number[] } => {
    const fitted = fitSchema({ dense: [{ column: 'x', normalize }], tasks: [{ name: 't', type: 'regression', column: 'label' }] }, table);
    return { fitted, values: round(encode(fitted, table).dense ?? []) };
  };

  it("'minmax' maps the training range to [0, 1] and missing values to the mean", () => {
    expect(encodeWith('minmax').values).toEqual([0, 0.125, 0.375, 0.375, 1]);
  });

  it("'log1p' standardises log(1 + x)", () => {
    const logs = [0, 1, 3, 8].map(Math.log1p);
    const mean = logs.reduce((a, b) => a + b) / 4;
    const std = Math.sqrt(logs.reduce((sum, value) => sum + (value - mean) ** 2, 0) / 4);
    const { values } = encodeWith('log1p');
    expect(values).toEqual(round([...logs.slice(0, 3).map((value) => (value - mean) / std), 0, (Math.log1p(8) - mean) / std]));
  });

  it("'none' keeps values, filling missing ones with the mean; 'standard' fills with 0", () => {
    expect(encodeWith('none').values).toEqual([0, 1, 3, 3, 8]);
    expect(encodeWith('standard').values[3]).toBe(0);
  });

  it('keeps a constant column finite', () => {
    const constant = tableFromColumns({ x: [2, 2], label: [1, 0] });
    const fitted = fitSchema({ dense: ['x'], tasks: [{ name: 't', type: 'regression', column: 'label' }] }, constant);
    expect(Array.from(encode(fitted, constant).dense ?? [])).toEqual([0, 0]);
  });

  it("rejects values 'log1p' cannot take, naming the row", () => {
    const negative = tableFromColumns({ x: [1, -3], label: [1, 0] }, { source: 'amounts' });
    const err = errorOf(
      () =>
        fitSchema({ dense: [{ column: 'x', normalize: 'log1p' }], tasks: [{ name: 't', type: 'regression', column: 'label' }] }, negative),
      ValidationError,
    );
    expect(err.message).toBe(`Invalid data in row 2 of amounts, column 'x': -3 is not > -1, which 'log1p' normalisation needs`);
  });

  it('rejects infinite numbers in fitting and in encoding, naming the row', () => {
    const spec: SchemaSpec = { dense: ['x'], tasks: [{ name: 't', type: 'regression', column: 'label' }] };
    const infinite = tableFromColumns({ x: [1, -Infinity], label: [1, 0] }, { source: 'amounts' });
    const message = `Invalid data in row 2 of amounts, column 'x': -Infinity is not a finite number`;
    expect(errorOf(() => fitSchema(spec, infinite), ValidationError).message).toBe(message);
    const fitted = fitSchema(spec, tableFromColumns({ x: [1, 2], label: [1, 0] }));
    expect(errorOf(() => encode(fitted, infinite), ValidationError).message).toBe(message);
  });
});

describe('fitSchema rejects', () => {
  const task = { name: 'rich', type: 'binary', column: 'income', positive: '>50K' };
  const cases: [string, unknown, string, RegExp][] = [
    ['a non-object', 'spec', '', /schema must be an object/],
    ['an unknown key', { ...SPEC, sparse: [] }, 'sparse', /unknown key sparse/],
    ['no features', { tasks: [task] }, '', /at least one feature/],
    ['no tasks', { dense: ['age'], tasks: [] }, 'tasks', /at least 1 tasks/],
    [
      'a bad normalisation',
      { dense: [{ column: 'age', normalize: 'zscore' }], tasks: [task] },
      'dense[0].normalize',
      /one of 'standard', 'minmax', 'log1p', 'none', got "zscore"/,
    ],
    [
      'a bad minFrequency',
      { categorical: [{ column: 'city', minFrequency: 0 }], tasks: [task] },
      'categorical[0].minFrequency',
      /integer in \[1,/,
    ],
    ['a bad column ref', { dense: [-1], tasks: [task] }, 'dense[0]', /integer in \[0,/],
    [
      'an unknown column',
      { dense: [{ column: 'agee' }], tasks: [task] },
      'dense[0].column',
      /train.csv has no column 'agee' \(it has 6 columns: 0: 'age', 1: 'city'/,
    ],
    [
      'an unknown task type',
      { dense: ['age'], tasks: [{ ...task, type: 'ranking' }] },
      'tasks[0].type',
      /one of 'binary', 'multiclass', 'regression'/,
    ],
    [
      'classes on a binary task',
      { dense: ['age'], tasks: [{ ...task, classes: ['a', 'b'] }] },
      'tasks[0].classes',
      /unknown key tasks\[0\].classes/,
    ],
    [
      'duplicate classes',
      { dense: ['age'], tasks: [{ name: 'g', type: 'multiclass', column: 'grade', classes: ['A', 'A'] }] },
      'tasks[0].classes',
      /lists "A" twice/,
    ],
    [
      'a label column used as a feature',
      { categorical: ['income'], tasks: [task] },
      'tasks[0].column',
      /column 'income' is the label of task 'rich' and also an input \(categorical\[0\]\)/,
    ],
    [
      'two features with one name',
      { categorical: ['city', { column: 'grade', name: 'city' }], tasks: [task] },
      'categorical[1].name',
      /categorical\[1\].name and categorical\[0\] are both .* named 'city'/,
    ],
    [
      'two tasks with one name',
      { dense: ['age'], tasks: [task, task] },
      'tasks[1].name',
      /tasks\[1\].name and tasks\[0\].name are both tasks named 'rich'/,
    ],
    [
      'a positive value that never occurs',
      { dense: ['age'], tasks: [{ ...task, positive: ' >50K' }] },
      'tasks[0].positive',
      /no training row of train.csv has a positive value .* \(positive: " >50K"; values seen: "<=50K", ">50K"\)/,
    ],
  ];
  it.each(cases)('%s', (_, spec, field, message) => {
    const err = errorOf(() => fitSchema(spec as SchemaSpec, TRAIN), ConfigError);
    expect(err.field).toBe(field);
    expect(err.message).toMatch(message);
  });

  it('an empty training split and a multiclass task with one class', () => {
    expect(errorOf(() => fitSchema(SPEC, TRAIN.select(new Int32Array(0))), ValidationError).message).toMatch(
      /cannot fit a schema on train.csv: it has no rows/,
    );
    const oneClass = tableFromColumns({ x: [1, 2], k: ['a', 'a'] });
    expect(
      errorOf(() => fitSchema({ dense: ['x'], tasks: [{ name: 'k', type: 'multiclass', column: 'k' }] }, oneClass), ValidationError)
        .message,
    ).toMatch(/multiclass task 'k' needs at least 2 classes/);
  });
});

describe('validateFittedSchema rejects', () => {
  const json = (): Record<string, unknown> => JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
  const cases: [string, (value: Record<string, any>) => void, string, RegExp][] = [
    [
      'another format',
      (value) => {
        value.format = 'x';
      },
      'format',
      /format must be 'adatt-schema'/,
    ],
    [
      'a newer version',
      (value) => {
        value.version = 2;
      },
      'version',
      /version 2 is not supported/,
    ],
    [
      'a zero scale',
      (value) => {
        value.dense[0].scale = 0;
      },
      'dense[0].scale',
      /must be > 0/,
    ],
    [
      'a duplicate vocabulary value',
      (value) => {
        value.categorical[0].vocabulary.push('Paris');
      },
      'categorical[0].vocabulary',
      /lists "Paris" twice/,
    ],
    [
      'a column not listed',
      (value) => {
        value.categorical[0].column = 'town';
      },
      'categorical[0].column',
      /'town' is not listed in columns/,
    ],
    [
      'positive values on a multiclass task',
      (value) => {
        value.tasks[1].positive = ['A'];
      },
      'tasks[1].positive',
      /unknown key tasks\[1\].positive/,
    ],
  ];
  it.each(cases)('%s', (_, corrupt, field, message) => {
    const value = json();
    corrupt(value);
    const err = errorOf(() => validateFittedSchema(value), ConfigError);
    expect(err.field).toBe(field);
    expect(err.message).toMatch(message);
  });
});

describe('modelSections', () => {
  it('derives input and tasks that validate as a model config', () => {
    const { input, tasks } = modelSections(schema);
    expect(input).toEqual({
      dense: 1,
      categorical: [{ name: 'city', vocab: 5, dim: 4 }],
      multiValued: [{ name: 'tags', vocab: 5, dim: 4, pooling: 'mean' }],
    });
    expect(tasks).toEqual([
      { name: 'rich', type: 'binary' },
      { name: 'grade', type: 'multiclass', classes: 3 },
      { name: 'score', type: 'regression' },
    ]);
    expect(() => validateModelConfig({ kind: 'mmoe', input, tasks, expertDims: [[8]], experts: 2 })).not.toThrow();
  });

  it('takes a fixed dim or a rule, and a pooling', () => {
    expect(modelSections(schema, { embeddingDim: 8, pooling: 'sum' }).input.multiValued).toEqual([
      { name: 'tags', vocab: 5, dim: 8, pooling: 'sum' },
    ]);
    expect(modelSections(schema, { embeddingDim: (vocab) => vocab * 2 }).input.categorical?.[0]?.dim).toBe(10);
    expect(errorOf(() => modelSections(schema, { embeddingDim: () => 0 }), ValidationError).field).toBe(
      'embeddingDim(5) for categorical[0]',
    );
  });

  it('caps the default dim at 16', () => {
    const table = tableFromColumns({
      id: Array.from({ length: 2000 }, (_, i) => `u${i}`),
      y: Array.from({ length: 2000 }, (_, i) => i % 2),
    });
    const fitted = fitSchema({ categorical: ['id'], tasks: [{ name: 'y', type: 'binary', column: 'y', positive: 1 }] }, table);
    expect(modelSections(fitted).input.categorical?.[0]).toEqual({ name: 'id', vocab: 2002, dim: 16 });
  });
});

describe('schemaColumns', () => {
  it('lists the columns a reader must keep and which are numbers', () => {
    expect(schemaColumns(SPEC)).toEqual({
      columns: ['age', 'score', 'city', 'tags', 'income', 'grade'],
      numeric: ['age', 'score'],
      missingValues: ['', '?'],
    });
    expect(schemaColumns(schema).numeric).toEqual(['age', 'score']);
    const table = parseCsv('age,city,tags,income,grade,score,unused\n1,a,b,c,d,2,x\n', schemaColumns(SPEC));
    expect(table.columnNames).toEqual(['age', 'city', 'tags', 'income', 'grade', 'score']);
    expect(table.findColumn('score')?.kind).toBe('number');
  });
});
