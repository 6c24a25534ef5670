/** Row operations on `EncodedData` (typed arrays of one fixed layout): the shuffle buffer's copies. */
import type { EncodedData } from './types';

/** Every array of `data`, for a transfer list. */
export function encodedBuffers(data: EncodedData): ArrayBuffer[] {
  const arrays = [
    data.dense,
    data.categorical,
    ...(data.multiValued ?? []).flatMap((bag) => [bag.indices, bag.offsets]),
    ...data.labels,
    ...(data.sampleWeights ?? []),
    data.groups,
  ];
  return arrays.flatMap((array) => (array ? [array.buffer as ArrayBuffer] : []));
}

/** The arrays one after another in one new array. */
export function concatArrays<T extends Float32Array | Int32Array | BigInt64Array>(
  arrays: readonly T[],
  make: new (length: number) => T,
): T {
  const out = new make(arrays.reduce((sum, array) => sum + array.length, 0));
  let at = 0;
  for (const array of arrays) {
    (out as { set(array: T, offset: number): void }).set(array, at);
    at += array.length;
  }
  return out;
}

/** One dataset of all `parts`' rows in order (parts of one schema: the same widths, bags and tasks). */
export function concatEncoded(parts: readonly EncodedData[]): EncodedData {
  const first = parts[0];
  if (first === undefined) throw new RangeError('concatEncoded needs at least one part');
  if (parts.length === 1) return first;
  const size = parts.reduce((sum, part) => sum + part.size, 0);
  return {
    size,
    ...(first.dense
      ? {
          dense: concatArrays(
            parts.map((part) => part.dense as Float32Array),
            Float32Array,
          ),
        }
      : {}),
    ...(first.categorical
      ? {
          categorical: concatArrays(
            parts.map((part) => part.categorical as Int32Array),
            Int32Array,
          ),
        }
      : {}),
    ...(first.multiValued
      ? {
          multiValued: first.multiValued.map((_, j) => {
            const bags = parts.map(
              (part) => (part.multiValued as NonNullable<EncodedData['multiValued']>)[j] as { indices: Int32Array; offsets: Int32Array },
            );
            const offsets = new Int32Array(size);
            let row = 0;
            let base = 0;
            for (const bag of bags) {
              for (let i = 0; i < bag.offsets.length; i++) offsets[row++] = (bag.offsets[i] as number) + base;
              base += bag.indices.length;
            }
            return {
              indices: concatArrays(
                bags.map((bag) => bag.indices),
                Int32Array,
              ),
              offsets,
            };
          }),
        }
      : {}),
    labels: first.labels.map((_, t) =>
      concatArrays(
        parts.map((part) => part.labels[t] as Float32Array),
        Float32Array,
      ),
    ),
    ...(first.sampleWeights
      ? {
          sampleWeights: first.sampleWeights.map((_, t) =>
            concatArrays(
              parts.map((part) => (part.sampleWeights as Float32Array[])[t] as Float32Array),
              Float32Array,
            ),
          ),
        }
      : {}),
    ...(first.groups
      ? {
          groups: concatArrays(
            parts.map((part) => part.groups as BigInt64Array),
            BigInt64Array,
          ),
        }
      : {}),
  };
}

/** The rows `rows` of `data`, in that order (a copy). */
export function takeRows(data: EncodedData, rows: Int32Array): EncodedData {
  const size = rows.length;
  const takeWide = <T extends Float32Array | Int32Array>(array: T, make: new (length: number) => T): T => {
    const width = array.length / data.size;
    const out = new make(size * width);
    if (width === 1) {
      for (let i = 0; i < size; i++) out[i] = array[rows[i] as number] as number;
    } else {
      // Element by element: a subarray per row costs more than the copy itself at these widths.
      for (let i = 0, to = 0; i < size; i++) {
        const from = (rows[i] as number) * width;
        for (let k = 0; k < width; k++) out[to++] = array[from + k] as number;
      }
    }
    return out;
  };
  return {
    size,
    ...(data.dense ? { dense: takeWide(data.dense, Float32Array) } : {}),
    ...(data.categorical ? { categorical: takeWide(data.categorical, Int32Array) } : {}),
    ...(data.multiValued
      ? {
          multiValued: data.multiValued.map(({ indices, offsets }) => {
            const end = (row: number): number => (row + 1 < data.size ? (offsets[row + 1] as number) : indices.length);
            const taken = new Int32Array(size);
            let total = 0;
            for (let i = 0; i < size; i++) {
              const row = rows[i] as number;
              taken[i] = total;
              total += end(row) - (offsets[row] as number);
            }
            const out = new Int32Array(total);
            for (let i = 0; i < size; i++) {
              const row = rows[i] as number;
              out.set(indices.subarray(offsets[row] as number, end(row)), taken[i] as number);
            }
            return { indices: out, offsets: taken };
          }),
        }
      : {}),
    labels: data.labels.map((labels) => takeWide(labels, Float32Array)),
    ...(data.sampleWeights ? { sampleWeights: data.sampleWeights.map((weights) => takeWide(weights, Float32Array)) } : {}),
    ...(data.groups ? { groups: BigInt64Array.from(rows, (row) => (data.groups as BigInt64Array)[row] as bigint) } : {}),
  };
}
