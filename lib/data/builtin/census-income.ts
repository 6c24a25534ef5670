/**
 * UCI Census-Income (KDD): the census data set of the MMoE (Ma et al., 2018) and AdaTT (Li et al.,
 * 2023) papers. 199,523 training and 99,762 test rows of 40 attributes (plus an instance weight,
 * which is a sampling weight and never a feature, and the income label).
 */
import { optionsChecker } from '../../validation';
import type { Normalization, SchemaSpec, TaskSpec } from '../types';
import { checkUciOptions, loadUciDataset, type EncodedDataset, type UciOptions, type UciSource } from './uci';

/** Column names in file order (as in census-income.names). */
export const CENSUS_INCOME_COLUMNS: readonly string[] = Object.freeze([
  'age',
  'class of worker',
  'detailed industry recode',
  'detailed occupation recode',
  'education',
  'wage per hour',
  'enroll in edu inst last wk',
  'marital stat',
  'major industry code',
  'major occupation code',
  'race',
  'hispanic origin',
  'sex',
  'member of a labor union',
  'reason for unemployment',
  'full or part time employment stat',
  'capital gains',
  'capital losses',
  'dividends from stocks',
  'tax filer stat',
  'region of previous residence',
  'state of previous residence',
  'detailed household and family stat',
  'detailed household summary in household',
  'instance weight',
  'migration code-change in msa',
  'migration code-change in reg',
  'migration code-move within reg',
  'live in this house 1 year ago',
  'migration prev res in sunbelt',
  'num persons worked for employer',
  'family members under 18',
  'country of birth father',
  'country of birth mother',
  'country of birth self',
  'citizenship',
  'own business or self employed',
  "fill inc questionnaire for veteran's admin",
  'veterans benefits',
  'weeks worked in year',
  'year',
  'income',
]);

/** Not an attribute of the person: a sampling weight. */
const INSTANCE_WEIGHT = 'instance weight';

/** Continuous attributes; every other attribute (recodes and year included) is categorical. */
const CENSUS_DENSE: Readonly<Record<string, Normalization>> = {
  age: 'standard',
  'wage per hour': 'log1p',
  'capital gains': 'log1p',
  'capital losses': 'log1p',
  'dividends from stocks': 'log1p',
  'num persons worked for employer': 'standard',
  'weeks worked in year': 'standard',
};

/** "At least college": a college degree, from associate degrees up. */
export const CENSUS_COLLEGE_DEGREES: readonly string[] = Object.freeze([
  'Associates degree-occup /vocational',
  'Associates degree-academic program',
  'Bachelors degree(BA AB BS)',
  'Masters degree(MA MS MEng MEd MSW MBA)',
  'Prof school degree (MD DDS DVM LLB JD)',
  'Doctorate degree(PhD EdD)',
]);

export const CENSUS_INCOME_TASKS: Readonly<Record<'income' | 'marital' | 'education', TaskSpec>> = {
  income: { name: 'income', type: 'binary', column: 'income', positive: '50000+.' },
  marital: { name: 'marital', type: 'binary', column: 'marital stat', positive: 'Never married' },
  education: { name: 'education', type: 'binary', column: 'education', positive: CENSUS_COLLEGE_DEGREES },
};

export type CensusIncomeTaskGroup = 'income-marital' | 'education-marital' | 'all';

const TASK_GROUPS: Readonly<Record<CensusIncomeTaskGroup, readonly (keyof typeof CENSUS_INCOME_TASKS)[]>> = {
  /** MMoE paper, census group 1. */
  'income-marital': ['income', 'marital'],
  /** MMoE paper, census group 2. */
  'education-marital': ['education', 'marital'],
  all: ['income', 'marital', 'education'],
};

export const CENSUS_INCOME_TASK_GROUPS = Object.freeze(Object.keys(TASK_GROUPS) as CensusIncomeTaskGroup[]);

/**
 * The schema of a task group: its tasks, and as features the 40 attributes minus the columns that
 * any of its tasks reads (the income label is never a feature).
 */
export function censusIncomeSchema(group: CensusIncomeTaskGroup = 'all', minFrequency = 1): SchemaSpec {
  const tasks = TASK_GROUPS[group].map((task) => CENSUS_INCOME_TASKS[task]);
  const notFeatures = new Set([INSTANCE_WEIGHT, CENSUS_INCOME_TASKS.income.column, ...tasks.map((task) => task.column)]);
  const features = CENSUS_INCOME_COLUMNS.filter((column) => !notFeatures.has(column));
  return {
    dense: features.filter((column) => column in CENSUS_DENSE).map((column) => ({ column, normalize: CENSUS_DENSE[column] })),
    categorical: features.filter((column) => !(column in CENSUS_DENSE)).map((column) => ({ column, minFrequency })),
    tasks,
  };
}

const CENSUS_CSV = { header: false, trim: true, columnNames: CENSUS_INCOME_COLUMNS } as const;

export const CENSUS_INCOME_SOURCE: UciSource = {
  name: 'census-income',
  defaultBaseUrl: 'https://archive.ics.uci.edu/ml/machine-learning-databases/census-income-mld',
  train: {
    name: 'census-income.data',
    remoteName: 'census-income.data.gz',
    sha256: '3676a81db7d3528f3f8b9f3c699d0f0aa28db45e6e994fa0b8ed38327539ee86',
    csv: CENSUS_CSV,
  },
  test: {
    name: 'census-income.test',
    remoteName: 'census-income.test.gz',
    sha256: '98402b1ab879573d0a7f38a699a40258080e25e33d3401e7bf9c96d3fa0fab8c',
    csv: CENSUS_CSV,
  },
};

export interface CensusIncomeOptions extends UciOptions {
  /** Which tasks (default 'all': income, marital, education). */
  tasks?: CensusIncomeTaskGroup;
  /** Categorical values seen fewer times in the training file go to the out-of-vocabulary bucket (default 1). */
  minFrequency?: number;
}

/**
 * Loads Census-Income (KDD) with the standard protocol: train on census-income.data, split
 * census-income.test 1:1 (seeded) into validation and test.
 */
export async function loadCensusIncome(options: CensusIncomeOptions = {}): Promise<EncodedDataset> {
  const checked = checkUciOptions(options, 'census-income options', ['tasks', 'minFrequency']);
  const check = optionsChecker('census-income options');
  const group = checked.given.tasks === undefined ? 'all' : check.oneOf(checked.given.tasks, 'tasks', CENSUS_INCOME_TASK_GROUPS);
  const minFrequency = checked.given.minFrequency === undefined ? 1 : check.integer(checked.given.minFrequency, 'minFrequency', 1);
  return loadUciDataset(CENSUS_INCOME_SOURCE, censusIncomeSchema(group, minFrequency), checked);
}
