import { describe, expect, it } from 'vitest';
import {
  ADULT_SCHEMA,
  CENSUS_INCOME_TASK_GROUPS,
  censusIncomeSchema,
  generateSynthetic,
  loadAdult,
  loadCensusIncome,
  loadDataset,
  loadSynthetic,
  schemaColumns,
  type EncodedData,
  type FittedSchema,
} from '../../lib/data';
import { FileError, ValidationError } from '../../lib/errors';
import { cellsOf, rejectionOf, SHARED_DATA_DIR, temporaryFolder } from './helpers';

const emptyFolder = temporaryFolder();

/** Positives per task (labels are 0/1, NaN counts as neither). */
function positives(data: EncodedData): number[] {
  return data.labels.map((labels) => labels.reduce((sum, label) => sum + (label === 1 ? 1 : 0), 0));
}

function featureColumns(schema: FittedSchema): string[] {
  return [...schema.dense, ...schema.categorical, ...schema.multiValued].map((feature) => feature.column);
}

describe('census-income', () => {
  it('loads the real files with the standard protocol and the measured label counts', async () => {
    const dataset = await loadCensusIncome({ dataDir: SHARED_DATA_DIR });
    const { schema, train, validation, test } = dataset;
    expect([train.size, validation.size, test.size]).toEqual([199_523, 49_881, 49_881]);
    expect(schema.tasks.map((task) => task.name)).toEqual(['income', 'marital', 'education']);
    // Counted with awk on the raw files (docs/datasets.md): income 50000+, never married, college degree.
    expect(positives(train)).toEqual([12_382, 86_485, 39_183]);
    const heldOut = positives(validation).map((count, t) => count + (positives(test)[t] as number));
    expect(heldOut).toEqual([6_186, 43_143, 19_456]);
    expect((positives(train)[0] as number) / train.size).toBeCloseTo(0.0621, 4);
    for (const split of [train, validation, test]) {
      expect(split.labels.every((labels) => labels.every((label) => label === 0 || label === 1))).toBe(true);
      expect(split.dense?.length).toBe(split.size * 7);
      expect(split.categorical?.length).toBe(split.size * 31);
    }
    // The 40 attributes minus the two task columns that are attributes (income is the label column).
    const features = featureColumns(schema);
    expect(features).toHaveLength(38);
    for (const notFeature of ['income', 'marital stat', 'education', 'instance weight']) expect(features).not.toContain(notFeature);
    expect(schema.dense.map((feature) => feature.column)).toEqual([
      'age',
      'wage per hour',
      'capital gains',
      'capital losses',
      'dividends from stocks',
      'num persons worked for employer',
      'weeks worked in year',
    ]);
    expect(schema.categorical.map((feature) => feature.column)).toEqual(expect.arrayContaining(['detailed industry recode', 'year']));
    // '?' is the missing bucket, not a value.
    expect(schema.categorical.every((feature) => !feature.vocabulary.includes('?'))).toBe(true);
  });

  it('never uses a task column as a feature, in any task group', () => {
    for (const group of CENSUS_INCOME_TASK_GROUPS) {
      const spec = censusIncomeSchema(group);
      const { columns, numeric } = schemaColumns(spec);
      const taskColumns = spec.tasks.map((task) => task.column);
      const features = columns.filter((column) => !taskColumns.includes(column));
      expect(features, group).toHaveLength(40 - taskColumns.filter((column) => column !== 'income').length);
      expect(features, group).not.toContain('instance weight');
      expect(features, group).not.toContain('income');
      expect(numeric, group).toHaveLength(7);
    }
    expect(censusIncomeSchema('income-marital').tasks.map((task) => task.name)).toEqual(['income', 'marital']);
    expect(censusIncomeSchema('education-marital').tasks.map((task) => task.name)).toEqual(['education', 'marital']);
  });

  it('explains where the files should be when they are missing', async () => {
    const err = await rejectionOf(loadCensusIncome({ dataDir: emptyFolder }), FileError);
    expect(err.message).toMatch(/census-income.data is not in .*census-income\. Pass \{ download: true \}/);
  });

  it('rejects unknown options', async () => {
    const err = await rejectionOf(loadCensusIncome({ tasks: 'income' as never, dataDir: SHARED_DATA_DIR }), ValidationError);
    expect(err.field).toBe('tasks');
  });
});

describe('adult', () => {
  it('loads adult.data and adult.test (header line skipped, trailing periods accepted)', async () => {
    const { schema, train, validation, test } = await loadAdult({ dataDir: SHARED_DATA_DIR, seed: 3 });
    expect([train.size, validation.size, test.size]).toEqual([32_561, 8_141, 8_140]);
    expect(positives(train)).toEqual([7_841, 10_683]);
    const heldOut = positives(validation).map((count, t) => count + (positives(test)[t] as number));
    expect(heldOut).toEqual([3_846, 5_434]);
    expect(featureColumns(schema)).not.toEqual(expect.arrayContaining(['fnlwgt']));
    expect(featureColumns(schema)).toHaveLength(12);
    expect(schemaColumns(ADULT_SCHEMA).columns).not.toContain('fnlwgt');
  });
});

describe('synthetic', () => {
  const correlation = (a: ArrayLike<number | null>, b: ArrayLike<number | null>): number => {
    const n = a.length;
    const mean = (x: ArrayLike<number | null>): number => Array.from(x).reduce((s: number, v) => s + (v as number), 0) / n;
    const [ma, mb] = [mean(a), mean(b)];
    let [sab, saa, sbb] = [0, 0, 0];
    for (let i = 0; i < n; i++) {
      const [da, db] = [(a[i] as number) - ma, (b[i] as number) - mb];
      sab += da * db;
      saa += da * da;
      sbb += db * db;
    }
    return sab / Math.sqrt(saa * sbb);
  };
  const labelCorrelation = (p: number): number => {
    const table = generateSynthetic({ size: 4000, inputDim: 16, correlation: p, seed: 5 });
    return correlation(cellsOf(table, 'y1') as number[], cellsOf(table, 'y2') as number[]);
  };

  it('makes the label correlation track p', () => {
    const measured = [0, 0.5, 0.9, 1].map(labelCorrelation);
    expect(Math.abs(measured[0] as number)).toBeLessThan(0.1);
    expect(measured[1]).toBeGreaterThan(measured[0] as number);
    expect(measured[2]).toBeGreaterThan(measured[1] as number);
    expect(measured[3]).toBeGreaterThan(0.999);
  });

  it('is seeded and splits 80/10/10 with dense inputs and two regression tasks', async () => {
    const options = { size: 1000, inputDim: 8, seed: 11 };
    const first = await loadSynthetic(options);
    const again = await loadDataset('synthetic', options);
    expect(again).toEqual(first);
    expect([first.train.size, first.validation.size, first.test.size]).toEqual([800, 100, 100]);
    expect(first.train.dense?.length).toBe(800 * 8);
    expect(first.schema.tasks).toEqual([
      { name: 'y1', type: 'regression', column: 'y1' },
      { name: 'y2', type: 'regression', column: 'y2' },
    ]);
    expect(cellsOf(generateSynthetic({ ...options, seed: 12 }), 'y1')).not.toEqual(cellsOf(generateSynthetic(options), 'y1'));
  });

  it('rejects bad options and unknown dataset names', async () => {
    expect(() => generateSynthetic({ correlation: 1.5 })).toThrow(/correlation must be in \[-1, 1\], got 1.5/);
    await expect(loadDataset('mnist' as never)).rejects.toThrow(
      /Unknown dataset "mnist" \(built-in datasets: 'census-income', 'adult', 'synthetic'\)/,
    );
  });
});
