/** The built-in datasets by name. */
import { ValidationError } from '../../errors';
import { describeValue } from '../../validation';
import { loadAdult, type AdultOptions } from './adult';
import { loadCensusIncome, type CensusIncomeOptions } from './census-income';
import { loadSynthetic, type SyntheticOptions } from './synthetic';
import type { EncodedDataset } from './uci';

export interface BuiltinDatasetOptions {
  'census-income': CensusIncomeOptions;
  adult: AdultOptions;
  synthetic: SyntheticOptions;
}

export type BuiltinDatasetName = keyof BuiltinDatasetOptions;

const LOADERS: { readonly [N in BuiltinDatasetName]: (options: BuiltinDatasetOptions[N]) => Promise<EncodedDataset> } = {
  'census-income': loadCensusIncome,
  adult: loadAdult,
  synthetic: loadSynthetic,
};

export const BUILTIN_DATASETS = Object.freeze(Object.keys(LOADERS) as BuiltinDatasetName[]);

/** Loads a built-in dataset by name: fitted schema plus encoded train, validation and test splits. */
export async function loadDataset<N extends BuiltinDatasetName>(name: N, options?: BuiltinDatasetOptions[N]): Promise<EncodedDataset> {
  if (!Object.hasOwn(LOADERS, name)) {
    throw new ValidationError(
      'name',
      `Unknown dataset ${describeValue(name)} (built-in datasets: ${BUILTIN_DATASETS.map((known) => `'${known}'`).join(', ')})`,
    );
  }
  const load = LOADERS[name] as (options: BuiltinDatasetOptions[N] | undefined) => Promise<EncodedDataset>;
  return load(options);
}
