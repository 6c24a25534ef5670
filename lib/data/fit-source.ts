/**
 * `fitSchemaFrom`: fits a schema on a source the engine reads (files, globs of shards, a SQL
 * query) without holding its rows: DuckDB counts every fitted column's distinct values in one scan
 * (GROUPING SETS), and the same fitting code as `fitSchema` (lib/data/fit.ts) works on those counts.
 * Memory grows with the distinct values of the fitted columns, not with the rows.
 */
import { basename } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { optionsChecker } from '../validation';
import { notANumber, untransformable } from './cells';
import { csvRecordLine } from './csv';
import { engineRead, fileRowOf, firstRowWhere, readColumns, sqlString, typedColumns, type EngineColumn } from './engine';
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
import { invalidDataAt, noRowsError, NULL_CODE, parseNumber, Table, type Column } from './table';
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

/** The cells of one column of the source, as `cell`, in the source's order. */
function cellsOf(opened: OpenedSource, column: EngineColumn): string {
  return `(SELECT ${column.expression} AS cell FROM ${opened.relation})`;
}

/**
 * Where the first row of the source whose cell of `column` is `refused` (see `firstRowWhere`) is,
 * as the in-memory readers say it ("row 3 of part-2.parquet", "line 12 of events.csv"), and the
 * cell it holds; undefined when no row does.
 */
async function locateFirst(
  connection: DuckDBConnection,
  settings: SourceSettings,
  opened: OpenedSource,
  column: EngineColumn,
  refused: Refused,
): Promise<{ where: string; value: LabelValue } | undefined> {
  const cells = cellsOf(opened, column);
  const found = await firstRowWhere(connection, cells, refused);
  if (found === undefined) return undefined;
  // A plain scan keeps the source's order (DuckDB preserves insertion order), so OFFSET finds the row again.
  const [[cell] = []] = (await connection.runAndReadAll(`SELECT cell FROM ${cells} LIMIT 1 OFFSET ${found}`)).getRows();
  const value = column.kind === 'number' ? Number(cell) : String(cell);
  const { files } = opened;
  let at = { file: 0, row: found };
  if (files.length > 1) {
    const scan = settings.scan as FileScan;
    const perFile = new Map(
      (await connection.runAndReadAll(`SELECT filename, count(*) FROM ${scan(files, true)} GROUP BY filename`))
        .getRows()
        .map(([file, rows]) => [String(file), Number(rows)]),
    );
    at = fileRowOf(
      files.map((file) => perFile.get(file) ?? 0),
      found,
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

/** A decimal number as text, spaces and tabs around it allowed: what DuckDB's cast and JavaScript's `Number` read alike. */
const DECIMAL_TEXT = sqlString('[ \t]*[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?[ \t]*');

/**
 * Whether the engine reads a text cell exactly as `fitSchema` would: a finite decimal that is no
 * missing marker (a NULL result counts as false). Other cells (missing markers, `0x10`, words)
 * are few distinct values in practice; JavaScript parses them, so both paths give one reading.
 */
function regularText(cell: string, missing: ReadonlySet<string>): string {
  const notMissing = missing.size === 0 ? '' : ` AND ${cell} NOT IN (${[...missing].map(sqlString).join(', ')})`;
  return `(regexp_full_match(${cell}, ${DECIMAL_TEXT}) AND isfinite(TRY_CAST(${cell} AS DOUBLE))${notMissing})`;
}

/**
 * A dense cell's number as the engine sums it (DOUBLE), NULL for every cell it leaves out: missing
 * ones, a text cell that is not regular, an infinite number (refused: see `refusedCells`).
 */
function engineValue(kind: EngineColumn['kind'], cell: string, missing: ReadonlySet<string>): string {
  if (kind === 'number') return `CASE WHEN isfinite(${cell}) THEN ${cell} END`;
  return `CASE WHEN ${regularText(cell, missing)} THEN TRY_CAST(${cell} AS DOUBLE) END`;
}

/** SQL for the cells of a dense feature that the engine reads and `untransformable` refuses, if any can be. */
function refusedCells(
  feature: Resolved<DenseEntry>,
  kind: EngineColumn['kind'],
  cell: string,
  missing: ReadonlySet<string>,
): string | undefined {
  const refused = [
    ...(kind === 'number' ? [`isinf(${cell})`] : []),
    ...(feature.entry.normalize === 'log1p' ? [`${engineValue(kind, cell, missing)} <= -1`] : []),
  ];
  return refused.length === 0 ? undefined : refused.join(' OR ');
}

/** The cells of a text column that the engine leaves to JavaScript (NULL elsewhere), as a column to count. */
function irregularCells(column: EngineColumn, missing: ReadonlySet<string>): EngineColumn {
  return { ...column, expression: `CASE WHEN ${regularText(column.expression, missing)} THEN NULL ELSE ${column.expression} END` };
}

/** `log1p` in SQL, which DuckDB lacks: x ln(1 + x) / ((1 + x) - 1) keeps its precision near 0 (Goldberg, 1991). */
function log1pSql(x: string): string {
  return `CASE WHEN ${x} > -1 THEN (CASE WHEN 1 + ${x} = 1 THEN ${x} ELSE ln(1 + ${x}) * ${x} / ((1 + ${x}) - 1) END) END`;
}

/** A dense feature and the engine column it reads. */
interface DenseScan {
  feature: Resolved<DenseEntry>;
  column: EngineColumn;
}

/**
 * Each dense feature's statistics over the cells the engine reads, in one scan (`favg`: a
 * compensated sum; DuckDB's threads still vary the order, and so the last bits), and how many of
 * those cells it refuses.
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
    const value = engineValue(column.kind, cellOf(k), missing);
    // NULL where log1p is undefined: those cells are among the refused.
    const transformed = feature.entry.normalize === 'log1p' ? log1pSql(value) : value;
    const refused = refusedCells(feature, column.kind, cellOf(k), missing);
    return [
      `count(${transformed})`,
      `favg(${transformed})`,
      `var_pop(${transformed})`,
      `min(${transformed})`,
      `max(${transformed})`,
      refused === undefined ? '0' : `count_if(${refused})`,
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

/** Cells a check refuses: text cells equal to one of `among`, or where SQL `condition` over `cell` holds. */
type Refused = { among?: readonly string[]; condition?: string };

/** Finds the first row a check refuses and throws `fitSchema`'s error for it. */
type RefuseFirst = (refused: Refused, problemOf: (value: LabelValue) => string | undefined) => Promise<never>;

/**
 * A dense feature's statistics: the engine's over the cells it reads, joined by the text cells it
 * leaves to JavaScript, parsed and transformed once per distinct value and added with their
 * counts in ascending order. Refused cells are reported as `fitSchema` reports them, in its order:
 * the first cell that is not a number, else the first that the transform refuses.
 */
async function denseStatistics(
  { feature, column }: DenseScan,
  aggregated: { statistics: DenseStatistics; refused: number },
  irregular: ValueCounts,
  missing: ReadonlySet<string>,
  refuseFirst: RefuseFirst,
): Promise<DenseStatistics> {
  const { values, counts } = irregular;
  const { normalize } = feature.entry;
  const numberOf = (value: LabelValue): number | undefined => (typeof value === 'number' ? value : parseNumber(value, missing));
  const notNumbers = values.filter((value) => numberOf(value) === undefined) as string[];
  if (notNumbers.length > 0) await refuseFirst({ among: notNumbers }, (value) => notANumber(String(value)));
  const transformProblem = (value: LabelValue): string | undefined => {
    const number = numberOf(value) as number;
    return Number.isNaN(number) ? undefined : untransformable(number, normalize);
  };
  const untransformed = values.filter((value) => transformProblem(value) !== undefined) as string[];
  if (untransformed.length > 0 || aggregated.refused > 0) {
    const condition = aggregated.refused > 0 ? refusedCells(feature, column.kind, 'cell', missing) : undefined;
    await refuseFirst({ among: untransformed, condition }, transformProblem);
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
    const scans = plan.dense.map((feature) => ({ feature, column: columnOf.get(feature.column.name) as EngineColumn }));
    // A text column's irregular cells are the same for every dense feature that reads it: counted once.
    const irregular = new Map(
      scans.flatMap(({ column }) => (column.kind === 'text' ? [[column.name, irregularCells(column, missing)] as const] : [])),
    );
    const { rows, counts } = await countValues(connection, opened.relation, [...counted, ...irregular.values()]);
    if (rows === 0) throw noRowsError('source', 'fit a schema on', name);
    const countsByName = new Map(counted.map((column, k) => [column.name, counts[k] as ValueCounts]));
    const irregularCounts = new Map([...irregular.keys()].map((column, k) => [column, counts[counted.length + k] as ValueCounts]));
    const aggregated = await denseAggregates(connection, opened.relation, scans, missing);
    const statistics = new Map<Resolved<DenseEntry>, DenseStatistics>();
    for (const [k, scan] of scans.entries()) {
      const refuseFirst: RefuseFirst = async (refused, problemOf) => {
        const found = await locateFirst(connection, settings, opened, scan.column, refused);
        if (found === undefined) throw new RangeError(`fitSchemaFrom: no row of ${name} holds the refused cells of ${scan.column.name}`);
        throw invalidDataAt(found.where, scan.column.name, problemOf(found.value) as string);
      };
      const cells = irregularCounts.get(scan.column.name) ?? { values: [], counts: [] };
      const fitted = await denseStatistics(scan, aggregated[k] as (typeof aggregated)[number], cells, missing, refuseFirst);
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
