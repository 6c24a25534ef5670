/**
 * adatt's data pipeline: tabular sources -> `Table` -> `fitSchema` (on the training rows) ->
 * `encode` (any split) -> `EncodedData`, plus the model config sections a fitted schema implies.
 * See docs/datasets.md.
 */
export type {
  BinaryTaskSpec,
  CategoricalSpec,
  CellValue,
  ColumnRef,
  DenseSpec,
  EncodedData,
  FittedBinaryTask,
  FittedCategorical,
  FittedDense,
  FittedMulticlassTask,
  FittedMultiValued,
  FittedRegressionTask,
  FittedSchema,
  FittedTask,
  LabelPredicate,
  LabelValue,
  MulticlassTaskSpec,
  MultiValuedSpec,
  Normalization,
  RegressionTaskSpec,
  SchemaSpec,
  TaskSpec,
} from './types';
export { Table, tableFromColumns } from './table';
export type { Column, NumberColumn, TextColumn } from './table';
export { parseCsv, readCsv } from './csv';
export type { CsvEngine, CsvOptions } from './csv';
export { readArrow, readJsonLines, readParquet, readSql } from './columnar';
export type { ColumnarReadOptions, SqlReadOptions } from './columnar';
export { schemaColumns, validateSchemaSpec } from './spec';
export type { SchemaColumns } from './spec';
export { fitSchema } from './fit';
export { fitSchemaFrom } from './fit-source';
export { encode, FIRST_VALUE_ID, MISSING_ID, OUT_OF_VOCABULARY_ID } from './encode';
export type { EncodeOptions } from './encode';
export { validateFittedSchema } from './fitted';
export { defaultEmbeddingDim, modelSections } from './sections';
export type { ModelSections, ModelSectionsOptions } from './sections';
export { splitRandom, splitWhere } from './split';
export type { TableRow } from './split';
export { downloadVerified, uncompressedSha256 } from './download';
export { BUILTIN_DATASETS, loadDataset } from './builtin';
export type { BuiltinDatasetName, BuiltinDatasetOptions } from './builtin';
export type { EncodedDataset, UciOptions } from './builtin/uci';
export { defaultDataDir } from './builtin/uci';
export {
  CENSUS_COLLEGE_DEGREES,
  CENSUS_INCOME_COLUMNS,
  CENSUS_INCOME_TASK_GROUPS,
  censusIncomeSchema,
  loadCensusIncome,
} from './builtin/census-income';
export type { CensusIncomeOptions, CensusIncomeTaskGroup } from './builtin/census-income';
export { ADULT_COLUMNS, ADULT_SCHEMA, loadAdult } from './builtin/adult';
export type { AdultOptions } from './builtin/adult';
export { generateSynthetic, loadSynthetic } from './builtin/synthetic';
export type { SyntheticOptions } from './builtin/synthetic';
export { DataStream, openStream } from './stream';
export type { PassOptions, StreamOptions } from './stream';
export type { SourceOptions, StreamFormat, StreamSource } from './source';
