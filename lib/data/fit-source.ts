/**
 * `fitSchemaFrom`: fits a schema on a source the engine reads (files, globs of shards, a SQL
 * query) without holding its rows: DuckDB counts every fitted column's distinct values in one scan
 * (GROUPING SETS), and the same fitting code as `fitSchema` (lib/data/fit.ts) works on those counts.
 * Memory grows with the distinct values of the fitted columns, not with the rows.
 */
import { basename } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { ValidationError } from '../errors';
import { optionsChecker } from '../validation';
import { notANumber, untransformable } from './cells';
import { csvRecordLine } from './csv';
import { engineRead, fileRowOf, firstNonZeroRow, readColumns, sqlString, typedColumns, type EngineColumn } from './engine';
import { countedColumns, DenseStatistics, fitPlanned, planFit, type FitRows, type Resolved, type ValueCounts } from './fit';
import {
  openSource,
  SOURCE_OPTION_KEYS,
  sourceSettings,
  type FileScan,
  type OpenedSource,
  type SourceOptions,
  type SourceSettings,
  type StreamSource,
} from './source';
import { validateSchemaSpec, type DenseEntry } from './spec';
import { invalidDataAt, NULL_CODE, parseNumber, Table, type Column } from './table';
import type { FittedSchema, LabelValue, SchemaSpec } from './types';

/** A column of the source with no rows: what planning reads (names, positions, kinds). */
function catalogColumn({ name, position, kind }: EngineColumn): Column {
  return kind === 'number'
    ? { kind, name, position, values: new Float64Array(0) }
    : { kind, name, position, codes: new Int32Array(0), values: [] };
}

/** The source's rows and each column's distinct values (not NULL or NaN) with their counts, from one scan. */
async function countValues(
  connection: DuckDBConnection,
  relation: string,
  columns: readonly EngineColumn[],
): Promise<{ rows: number; counts: ValueCounts[] }> {
  if (columns.length === 0) {
    const rows = Number((await connection.runAndReadAll(`SELECT count(*) FROM ${relation}`)).getRows()[0]?.[0] ?? 0);
    return { rows, counts: [] };
  }
  const group = (k: number): string => `g${k}`;
  const grouped = (k: number): string => `GROUPING(${group(k)}) = 0`;
  // One CASE over the grouping sets of one kind: the value of the set's own column.
  const groupValue = (kind: EngineColumn['kind'], type: string): string => {
    const branches = columns.flatMap((column, k) => (column.kind === kind ? [`WHEN ${grouped(k)} THEN ${group(k)}`] : []));
    return branches.length === 0 ? `CAST(NULL AS ${type})` : `CASE ${branches.join(' ')} END`;
  };
  const setOf = `CASE ${columns.map((_, k) => `WHEN ${grouped(k)} THEN ${k}`).join(' ')} ELSE -1 END`;
  const source = `SELECT ${columns.map((column, k) => `${column.expression} AS ${group(k)}`).join(', ')} FROM ${relation}`;
  const sets = [...columns.map((_, k) => `(${group(k)})`), '()'].join(', ');
  const query = `(SELECT ${setOf} AS grouping_set, ${groupValue('text', 'VARCHAR')} AS text_value, ${groupValue('number', 'DOUBLE')} AS number_value, count(*) AS value_rows FROM (${source}) GROUP BY GROUPING SETS (${sets}))`;
  const resultColumns: EngineColumn[] = [
    { name: 'grouping_set', position: 0, kind: 'number', expression: 'grouping_set' },
    { name: 'text_value', position: 1, kind: 'text', expression: 'text_value' },
    { name: 'number_value', position: 2, kind: 'number', expression: 'number_value' },
    { name: 'value_rows', position: 3, kind: 'number', expression: 'value_rows' },
  ];
  const [setColumn, texts, numbers, valueRows] = (await readColumns(connection, query, resultColumns)).columns as [
    Column & { kind: 'number' },
    Column & { kind: 'text' },
    Column & { kind: 'number' },
    Column & { kind: 'number' },
  ];
  const values: LabelValue[][] = columns.map(() => []);
  const counts: number[][] = columns.map(() => []);
  let rows = 0;
  for (let i = 0; i < setColumn.values.length; i++) {
    const set = setColumn.values[i] as number;
    const count = valueRows.values[i] as number;
    if (set < 0) {
      rows = count;
      continue;
    }
    // The NULL (and NaN) group of a column is its missing cells, which fitting does not count.
    let value: LabelValue;
    if ((columns[set] as EngineColumn).kind === 'text') {
      const code = texts.codes[i] as number;
      if (code === NULL_CODE) continue;
      value = texts.values[code] as string;
    } else {
      value = numbers.values[i] as number;
      if (Number.isNaN(value)) continue;
    }
    (values[set] as LabelValue[]).push(value);
    (counts[set] as number[]).push(count);
  }
  return { rows, counts: values.map((columnValues, k) => ({ values: columnValues, counts: Float64Array.from(counts[k] as number[]) })) };
}

/** The SQL literal of a value of a column's kind. */
function sqlLiteral(value: LabelValue): string {
  return typeof value === 'number' ? `CAST('${value}' AS DOUBLE)` : sqlString(value);
}

/** How many refused values the error's search looks for: any of them makes a true error. */
const LOCATED_VALUES = 100;

/**
 * Where the first row holding one of `values` in `column` is, as the in-memory readers say it
 * ("row 3 of part-2.parquet", "line 12 of events.csv"), and which value it holds.
 */
async function locateFirst(
  connection: DuckDBConnection,
  settings: SourceSettings,
  opened: OpenedSource,
  column: EngineColumn,
  values: readonly LabelValue[],
): Promise<{ where: string; value: LabelValue }> {
  const list = `[${values.slice(0, LOCATED_VALUES).map(sqlLiteral).join(', ')}]`;
  const found = await firstNonZeroRow(
    connection,
    `(SELECT ${column.expression} AS value FROM ${opened.relation})`,
    `list_position(${list}, value)`,
  );
  if (found === undefined) throw new RangeError(`locateFirst: no row of ${settings.name} holds the values`);
  const value = values[found.value - 1] as LabelValue;
  const { files } = opened;
  let at = { file: 0, row: found.row };
  if (files.length > 1) {
    const scan = settings.scan as FileScan;
    const perFile = new Map(
      (await connection.runAndReadAll(`SELECT filename, count(*) FROM ${scan(files, true)} GROUP BY filename`))
        .getRows()
        .map(([file, rows]) => [String(file), Number(rows)]),
    );
    at = fileRowOf(
      files.map((file) => perFile.get(file) ?? 0),
      found.row,
    );
  }
  const file = files[at.file];
  const name = files.length > 1 ? basename(file as string) : settings.name;
  // A CSV dialect without quotes is not one the JavaScript parser numbers lines for.
  if (settings.format === 'csv' && file !== undefined && settings.csv.quote.length === 1) {
    return { where: `line ${await csvRecordLine(file, settings.csv, at.row)} of ${name}`, value };
  }
  return { where: `row ${at.row + 1} of ${name}`, value };
}

/** A decimal number as text: what DuckDB's cast and JavaScript's `Number` read alike. */
const DECIMAL_TEXT = sqlString('[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?');

/**
 * How the engine reads a dense column: `regular` (SQL) holds for the cells it reads exactly as
 * `fitSchema` would, and `value` is their number (DOUBLE; NULL on every other cell). A NULL
 * `regular` counts as false. Other cells of a text column (missing markers, spaces, hexadecimal,
 * words) are few distinct values in practice, and JavaScript parses them, so that both paths give
 * one reading.
 */
function denseReading(kind: EngineColumn['kind'], cell: string, missing: ReadonlySet<string>): { regular: string; value: string } {
  // NaN is a missing number; NULLIF is much faster than a FILTER on each aggregate.
  if (kind === 'number') return { regular: `NOT isnan(${cell})`, value: `nullif(${cell}, 'NaN'::DOUBLE)` };
  const number = `TRY_CAST(${cell} AS DOUBLE)`;
  const notMissing = missing.size === 0 ? '' : ` AND ${cell} NOT IN (${[...missing].map(sqlString).join(', ')})`;
  const regular = `(regexp_full_match(${cell}, ${DECIMAL_TEXT}) AND isfinite(${number})${notMissing})`;
  return { regular, value: `CASE WHEN ${regular} THEN ${number} END` };
}

/** A dense feature read in the engine, and its text cells left to JavaScript (undefined for a number column). */
interface DenseScan {
  feature: Resolved<DenseEntry>;
  column: EngineColumn;
  irregular: EngineColumn | undefined;
}

function denseScan(feature: Resolved<DenseEntry>, column: EngineColumn, missing: ReadonlySet<string>): DenseScan {
  const { regular } = denseReading(column.kind, column.expression, missing);
  const irregular =
    column.kind === 'text' ? { ...column, expression: `CASE WHEN ${regular} THEN NULL ELSE ${column.expression} END` } : undefined;
  return { feature, column, irregular };
}

/** `log1p` in SQL, which DuckDB lacks: x ln(1 + x) / ((1 + x) - 1) keeps its precision near 0 (Goldberg, 1991). */
function log1pSql(x: string): string {
  return `CASE WHEN ${x} > -1 THEN (CASE WHEN 1 + ${x} = 1 THEN ${x} ELSE ln(1 + ${x}) * ${x} / ((1 + ${x}) - 1) END) END`;
}

/**
 * Each dense feature's statistics over its regular cells, in one scan (DuckDB's aggregates run in
 * parallel, so the sums' order, and their last bits, vary), and how many regular cells its
 * transform refuses.
 */
async function denseAggregates(
  connection: DuckDBConnection,
  relation: string,
  scans: readonly DenseScan[],
  missing: ReadonlySet<string>,
): Promise<{ statistics: DenseStatistics; refused: number }[]> {
  if (scans.length === 0) return [];
  const cellOf = (k: number): string => `d${k}`;
  const aggregates = scans.flatMap(({ feature, column }, k) => {
    const { value } = denseReading(column.kind, cellOf(k), missing);
    const log1p = feature.entry.normalize === 'log1p';
    // log1pSql is NULL where log1p is undefined: those cells are counted as refused.
    const transformed = log1p ? log1pSql(value) : value;
    return [
      `count(${transformed})`,
      `avg(${transformed})`,
      `var_pop(${transformed})`,
      `min(${transformed})`,
      `max(${transformed})`,
      log1p ? `count_if(${value} <= -1)` : '0',
    ];
  });
  const cells = scans.map(({ column }, k) => `${column.expression} AS ${cellOf(k)}`).join(', ');
  const [row] = (await connection.runAndReadAll(`SELECT ${aggregates.join(', ')} FROM (SELECT ${cells} FROM ${relation})`)).getRows();
  const numbers = (row as unknown[]).map((value) => (value === null ? 0 : Number(value)));
  return scans.map((_, k) => {
    const [count, mean, variance, min, max, refused] = numbers.slice(6 * k, 6 * k + 6) as [number, number, number, number, number, number];
    const statistics = new DenseStatistics();
    statistics.merge({ count, mean, sumOfSquares: variance * count, min, max });
    return { statistics, refused };
  });
}

/** Up to LOCATED_VALUES distinct regular cells of a dense column that log1p refuses. */
async function refusedRegularValues(
  connection: DuckDBConnection,
  relation: string,
  { column }: DenseScan,
  missing: ReadonlySet<string>,
): Promise<LabelValue[]> {
  const { value } = denseReading(column.kind, 'cell', missing);
  const result = await connection.runAndReadAll(
    `SELECT DISTINCT cell FROM (SELECT ${column.expression} AS cell FROM ${relation}) WHERE ${value} <= -1 LIMIT ${LOCATED_VALUES}`,
  );
  return result.getRows().map(([value]) => (column.kind === 'number' ? Number(value) : String(value)));
}

/**
 * A dense feature's statistics: the engine's over its regular cells, joined by its other cells,
 * parsed and transformed in JavaScript once per distinct value and added with their counts in
 * ascending order. A cell that is not a number, or that the transform refuses, is located in the
 * source and reported as `fitSchema` reports it.
 */
async function denseStatistics(
  feature: Resolved<DenseEntry>,
  aggregated: { statistics: DenseStatistics; refused: number },
  irregular: ValueCounts,
  missing: ReadonlySet<string>,
  refusedRegular: () => Promise<LabelValue[]>,
  locate: (values: readonly LabelValue[]) => Promise<{ where: string; value: LabelValue }>,
): Promise<DenseStatistics> {
  const { values, counts } = irregular;
  const { normalize } = feature.entry;
  const numberOf = (value: LabelValue): number | undefined => (typeof value === 'number' ? value : parseNumber(value, missing));
  /** Why `fitSchema` would refuse a value (undefined: a number, or a missing marker). */
  const problemOf = (value: LabelValue): string | undefined => {
    const number = numberOf(value);
    if (number === undefined) return notANumber(value as string);
    return Number.isNaN(number) ? undefined : untransformable(number, normalize);
  };
  const refused = values.filter((value) => problemOf(value) !== undefined);
  if (aggregated.refused > 0) refused.push(...(await refusedRegular()));
  if (refused.length > 0) {
    const { where, value } = await locate(refused);
    throw invalidDataAt(where, feature.column.name, problemOf(value) as string);
  }
  // NaN: a missing marker, left out.
  const numbers = Float64Array.from(values, (value) => {
    const number = numberOf(value) as number;
    return normalize === 'log1p' ? Math.log1p(number) : number;
  });
  const order = Array.from(numbers.keys()).filter((k) => !Number.isNaN(numbers[k]));
  const text = (k: number): string => String(values[k]);
  order.sort((a, b) => (numbers[a] as number) - (numbers[b] as number) || (text(a) < text(b) ? -1 : text(a) > text(b) ? 1 : 0));
  const { statistics } = aggregated;
  for (const k of order) statistics.add(numbers[k] as number, counts[k] as number);
  return statistics;
}

/**
 * Fits a schema spec on every row of a source (a file, a glob of shards or `{ sql }`) in the engine,
 * for data that does not fit in memory: the result equals `fitSchema` on the same rows read into a
 * table (vocabularies, classes and positive values exactly; dense parameters to rounding, since the
 * sums run over distinct values). Takes `openStream`'s source options.
 */
export async function fitSchemaFrom(spec: SchemaSpec, source: StreamSource, options: SourceOptions = {}): Promise<FittedSchema> {
  const normalized = validateSchemaSpec(spec);
  const check = optionsChecker('source options');
  const settings = sourceSettings(check, source, check.record(options, '', SOURCE_OPTION_KEYS));
  const { name } = settings;
  const missing = new Set(normalized.missingValues);
  return engineRead(name, async (connection) => {
    const opened = await openSource(connection, settings);
    const sourceColumns = await typedColumns(connection, opened.relation, undefined, name);
    const plan = planFit(normalized, new Table(name, sourceColumns.map(catalogColumn)));
    const columnOf = new Map(sourceColumns.map((column) => [column.name, column]));
    const counted = countedColumns(plan).map((column) => columnOf.get(column.name) as EngineColumn);
    const scans = plan.dense.map((feature) => denseScan(feature, columnOf.get(feature.column.name) as EngineColumn, missing));
    // A column's irregular cells are the same for every dense feature that reads it: counted once.
    const irregular = new Map(scans.flatMap(({ irregular }) => (irregular === undefined ? [] : [[irregular.name, irregular] as const])));
    const { rows, counts } = await countValues(connection, opened.relation, [...counted, ...irregular.values()]);
    if (rows === 0) throw new ValidationError('source', `Invalid data: cannot fit a schema on ${name}: it has no rows`);
    const countsByName = new Map(counted.map((column, k) => [column.name, counts[k] as ValueCounts]));
    const irregularCounts = new Map([...irregular.keys()].map((column, k) => [column, counts[counted.length + k] as ValueCounts]));
    const aggregated = await denseAggregates(connection, opened.relation, scans, missing);
    const statistics = new Map<Resolved<DenseEntry>, DenseStatistics>();
    for (const [k, scan] of scans.entries()) {
      const refusedRegular = () => refusedRegularValues(connection, opened.relation, scan, missing);
      const locate = (values: readonly LabelValue[]) => locateFirst(connection, settings, opened, scan.column, values);
      const cells = irregularCounts.get(scan.column.name) ?? { values: [], counts: [] };
      const fitted = await denseStatistics(
        scan.feature,
        aggregated[k] as (typeof aggregated)[number],
        cells,
        missing,
        refusedRegular,
        locate,
      );
      statistics.set(scan.feature, fitted);
    }
    const fitRows: FitRows = {
      source: name,
      size: rows,
      denseStatistics: (feature) => statistics.get(feature) as DenseStatistics,
      valueCounts: (column) => countsByName.get(column.name) as ValueCounts,
    };
    return fitPlanned(plan, fitRows);
  });
}
