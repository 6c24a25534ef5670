/**
 * UCI Adult (1994 census extract): a small two-task benchmark. 32,561 training and 16,281 test rows.
 * Tasks: income > 50K and never married, as in the MMoE paper's census group 1.
 */
import type { SchemaSpec } from '../types';
import { checkUciOptions, loadUciDataset, type EncodedDataset, type UciOptions, type UciSource } from './uci';

/** Column names in file order (as in adult.names). */
export const ADULT_COLUMNS: readonly string[] = Object.freeze([
  'age',
  'workclass',
  'fnlwgt',
  'education',
  'education-num',
  'marital-status',
  'occupation',
  'relationship',
  'race',
  'sex',
  'capital-gain',
  'capital-loss',
  'hours-per-week',
  'native-country',
  'income',
]);

/**
 * Features: every attribute except the task columns and fnlwgt, which is a sampling weight like
 * census-income's instance weight, not an attribute of the person.
 */
export const ADULT_SCHEMA: SchemaSpec = {
  dense: [
    { column: 'age' },
    { column: 'education-num' },
    { column: 'capital-gain', normalize: 'log1p' },
    { column: 'capital-loss', normalize: 'log1p' },
    { column: 'hours-per-week' },
  ],
  categorical: ['workclass', 'education', 'occupation', 'relationship', 'race', 'sex', 'native-country'],
  tasks: [
    // adult.test writes its labels with a trailing period.
    { name: 'income', type: 'binary', column: 'income', positive: ['>50K', '>50K.'] },
    { name: 'marital', type: 'binary', column: 'marital-status', positive: 'Never-married' },
  ],
};

const ADULT_CSV = { header: false, trim: true, columnNames: ADULT_COLUMNS } as const;

export const ADULT_SOURCE: UciSource = {
  name: 'adult',
  defaultBaseUrl: 'https://archive.ics.uci.edu/ml/machine-learning-databases/adult',
  train: {
    name: 'adult.data',
    remoteName: 'adult.data',
    sha256: '5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d',
    csv: ADULT_CSV,
  },
  test: {
    name: 'adult.test',
    remoteName: 'adult.test',
    sha256: 'a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05',
    // The first line is '|1x3 Cross validator', not data.
    csv: { ...ADULT_CSV, skipLines: 1 },
  },
};

export type AdultOptions = UciOptions;

/** Loads Adult: train on adult.data, split adult.test 1:1 (seeded) into validation and test. */
export async function loadAdult(options: AdultOptions = {}): Promise<EncodedDataset> {
  return loadUciDataset(ADULT_SOURCE, ADULT_SCHEMA, checkUciOptions(options, 'adult options', []));
}
