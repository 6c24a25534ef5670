/**
 * Prediction columns and the files they are written to: CSV (to a file or stdout) or Parquet
 * (hyparquet-writer, loaded on first use). Binary tasks give `<task>` (probability of the positive
 * class), multiclass tasks `<task>_<class>` per class, regression tasks `<task>` (the value).
 */
import type { FittedSchema } from '../data/types';
import { writeFileAtomic } from '../files';

export interface OutputColumn {
  name: string;
  /** Predictions are float32; copied input columns are text or numbers (null = missing). */
  values: Float32Array | readonly (string | number | null)[];
}

export function predictionColumns(schema: FittedSchema, predictions: Record<string, Float32Array>): OutputColumn[] {
  return schema.tasks.flatMap((task): OutputColumn[] => {
    const values = predictions[task.name]!;
    if (task.type !== 'multiclass') return [{ name: task.name, values }];
    const k = task.classes.length;
    return task.classes.map((label, c) => ({
      name: `${task.name}_${label}`,
      values: Float32Array.from({ length: values.length / k }, (_, row) => values[row * k + c]!),
    }));
  });
}

function csvCell(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return '';
  // Float32 predictions: 7 significant digits are all they hold.
  const text = typeof value === 'number' ? (Number.isNaN(value) ? '' : String(Number(value.toPrecision(7)))) : value;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** CSV text in chunks of rows, so that large outputs are not one giant string. */
export function* csvChunks(columns: readonly OutputColumn[], rowsPerChunk = 10_000): Generator<string> {
  yield `${columns.map((column) => csvCell(column.name)).join(',')}\n`;
  const rows = columns[0]?.values.length ?? 0;
  for (let start = 0; start < rows; start += rowsPerChunk) {
    const lines: string[] = [];
    for (let row = start; row < Math.min(rows, start + rowsPerChunk); row += 1) {
      lines.push(columns.map((column) => csvCell(column.values[row])).join(','));
    }
    yield `${lines.join('\n')}\n`;
  }
}

export type PredictionFormat = 'csv' | 'parquet';

export function formatOfOutput(file: string): PredictionFormat | undefined {
  if (/\.csv$/i.test(file)) return 'csv';
  if (/\.parquet$/i.test(file)) return 'parquet';
  return undefined;
}

/** Writes the columns atomically as CSV or Parquet. */
export async function writePredictions(file: string, format: PredictionFormat, columns: readonly OutputColumn[]): Promise<void> {
  if (format === 'csv') {
    await writeFileAtomic(
      file,
      [...csvChunks(columns)].map((chunk) => Buffer.from(chunk)),
    );
    return;
  }
  const { parquetWriteBuffer } = await import('hyparquet-writer');
  const buffer = parquetWriteBuffer({
    columnData: columns.map((column) => {
      if (column.values instanceof Float32Array) return { name: column.name, data: column.values, type: 'FLOAT' as const };
      const isText = column.values.some((value) => typeof value === 'string');
      return isText
        ? { name: column.name, data: column.values.map((v) => (v === null ? null : String(v))), type: 'STRING' as const }
        : { name: column.name, data: column.values as (number | null)[], type: 'DOUBLE' as const };
    }),
  });
  await writeFileAtomic(file, [new Uint8Array(buffer)]);
}
