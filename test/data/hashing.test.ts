/** Hashed features and capped vocabularies: the ids, their Python reproduction, and the errors. */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { encode, fitSchema, modelSections, parseCsv, validateFittedSchema, type FittedSchema, type SchemaSpec } from '../../lib/data';
import { ConfigError } from '../../lib/errors';
import { PYTHON } from '../helpers/reference';
import { errorOf } from './helpers';

const TRAIN = parseCsv(['city,tags,clicked', 'Paris,a|b,1', 'Lyon,b,0', 'Paris,,1', 'Zürich,a|東京,0', '?,c,1', 'Lyon,b|b,0'].join('\n'), {
  source: 'train.csv',
});
const TEST = parseCsv(['city,tags,clicked', 'Marseille,d|a,1', 'Paris,?,0'].join('\n'), { source: 'test.csv' });

const HASHED: SchemaSpec = {
  categorical: [{ column: 'city', hashBuckets: 1000 }],
  multiValued: [{ column: 'tags', hashBuckets: 7 }],
  tasks: [{ name: 'clicked', type: 'binary', column: 'clicked', positive: 1 }],
};

/** The documented Python one-liner, run by Python's own xxhash package. */
function pythonIds(values: string[], buckets: number): number[] {
  const script =
    'import json, sys, xxhash\n' +
    'values, buckets = json.loads(sys.argv[1]), int(sys.argv[2])\n' +
    'print(json.dumps([1 + xxhash.xxh64_intdigest(v.encode()) % buckets for v in values]))';
  return JSON.parse(execFileSync(PYTHON, ['-c', script, JSON.stringify(values), String(buckets)], { encoding: 'utf8' })) as number[];
}

describe('hashed features', () => {
  const schema = fitSchema(HASHED, TRAIN);

  it('stores bucket counts instead of vocabularies, and sizes the tables from them', () => {
    expect(schema.categorical[0]).toEqual({ name: 'city', column: 'city', vocabulary: [], hashBuckets: 1000 });
    expect(schema.multiValued[0]).toMatchObject({ vocabulary: [], hashBuckets: 7 });
    const { input } = modelSections(schema);
    expect(input.categorical![0]!.vocab).toBe(1001); // the missing id, then the buckets
    expect(input.multiValued![0]!.vocab).toBe(8);
    expect(validateFittedSchema(JSON.parse(JSON.stringify(schema)))).toEqual(schema);
  });

  it('gives every value, seen in training or not, the id Python computes with xxhash; missing stays 0', () => {
    const train = encode(schema, TRAIN);
    const test = encode(schema, TEST);
    const cities = pythonIds(['Paris', 'Lyon', 'Zürich', 'Marseille'], 1000);
    expect([...train.categorical!]).toEqual([cities[0], cities[1], cities[0], cities[2], 0, cities[1]]);
    expect([...test.categorical!]).toEqual([cities[3], cities[0]]);
    const [a, b, c, d, tokyo] = pythonIds(['a', 'b', 'c', 'd', '東京'], 7);
    expect([...train.multiValued![0]!.indices]).toEqual([a, b, b, 0, a, tokyo, c, b, b]); // the empty cell is the missing bag
    expect([...test.multiValued![0]!.indices]).toEqual([d, a, 0]);
    for (const id of [...train.categorical!, ...test.categorical!]) expect(id).toBeLessThanOrEqual(1000);
  });

  it('rejects bad bucket counts and mixed options, naming the field', () => {
    for (const [entry, field] of [
      [{ column: 'city', hashBuckets: 0 }, 'categorical[0].hashBuckets'],
      [{ column: 'city', hashBuckets: 2.5 }, 'categorical[0].hashBuckets'],
      [{ column: 'city', hashBuckets: 2 ** 31 }, 'categorical[0].hashBuckets'],
      [{ column: 'city', hashBuckets: 10, minFrequency: 2 }, 'categorical[0].minFrequency'],
      [{ column: 'city', hashBuckets: 10, maxVocabulary: 2 }, 'categorical[0].maxVocabulary'],
      [{ column: 'city', maxVocabulary: 0 }, 'categorical[0].maxVocabulary'],
    ] as const) {
      const error = errorOf(() => fitSchema({ ...HASHED, categorical: [entry as never] }, TRAIN), ConfigError);
      expect(error.field).toBe(field);
    }
    const stored = JSON.parse(JSON.stringify(schema)) as FittedSchema;
    stored.categorical[0]!.vocabulary = ['Paris'];
    expect(errorOf(() => validateFittedSchema(stored), ConfigError).field).toBe('categorical[0].vocabulary');
  });
});

describe('maxVocabulary', () => {
  it('keeps the most frequent values (ties by value) and sends the rest out of vocabulary', () => {
    const schema = fitSchema(
      {
        categorical: [{ column: 'city', maxVocabulary: 1 }],
        multiValued: [{ column: 'tags', maxVocabulary: 2, minFrequency: 2 }],
        tasks: HASHED.tasks,
      },
      TRAIN,
    );
    expect(schema.categorical[0]!.vocabulary).toEqual(['Lyon']); // Lyon and Paris twice each: Lyon first by text
    expect(schema.multiValued[0]!.vocabulary).toEqual(['b', 'a']);
    expect([...encode(schema, TEST).categorical!]).toEqual([1, 1]);
  });
});
