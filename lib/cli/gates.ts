/**
 * Expert utilisation, as in the AdaTT paper's figures: per fusion level, each gate's softmax weight
 * on each expert, averaged over a sample of rows (`model.gateWeights`), and how much of it goes to
 * the task's own experts, to other tasks' experts and to shared experts (`gateShares`, lib/gates.ts).
 */
import type { EncodedFeatures } from '../data/encode';
import { DataStream } from '../data/stream';
import type { EncodedData } from '../data/types';
import type { Model } from '../model';
import { evenlySpacedRows } from '../gates';
import type { SplitData } from './data';
import type { GateRecord } from './run-dir';

/** The features of some rows of encoded data as a model batch. */
export function batchOfRows(data: EncodedData, rows: Int32Array): EncodedFeatures {
  const size = data.size;
  const gather = <T extends Float32Array | Int32Array>(values: T | undefined, make: (n: number) => T): T | undefined => {
    if (values === undefined) return undefined;
    const width = values.length / size;
    const out = make(rows.length * width);
    rows.forEach((row, i) => {
      out.set(values.subarray(row * width, (row + 1) * width), i * width);
    });
    return out;
  };
  const multiValued = data.multiValued?.map(({ indices, offsets }) => {
    const bags = Array.from(rows, (row) => indices.subarray(offsets[row]!, row + 1 < size ? offsets[row + 1]! : indices.length));
    const newOffsets = new Int32Array(rows.length);
    let total = 0;
    bags.forEach((bag, i) => {
      newOffsets[i] = total;
      total += bag.length;
    });
    const newIndices = new Int32Array(total);
    bags.forEach((bag, i) => {
      newIndices.set(bag, newOffsets[i]);
    });
    return { indices: newIndices, offsets: newOffsets };
  });
  const dense = gather(data.dense, (n) => new Float32Array(n));
  const categorical = gather(data.categorical, (n) => new Int32Array(n));
  return {
    size: rows.length,
    ...(dense ? { dense } : {}),
    ...(categorical ? { categorical } : {}),
    ...(multiValued ? { multiValued } : {}),
  };
}

/**
 * A split's rows held in memory: encoded rows as they are, a stream's first chunk in source order
 * (the pass stops there), a sample of a split too big for memory.
 */
export async function rowsInMemory(split: SplitData): Promise<EncodedData> {
  if (!(split instanceof DataStream)) return split;
  for await (const chunk of split.chunks()) return chunk;
  throw new RangeError(`rowsInMemory: ${split.source} gave no rows`);
}

/** Mean gate weights over up to `rows` evenly spaced rows of `split` (a stream's first chunk); undefined for kinds without gates. */
export async function measureGates(model: Model, split: SplitData, rows: number, splitName: string): Promise<GateRecord | undefined> {
  const data = await rowsInMemory(split);
  const sample = evenlySpacedRows(data.size, rows);
  const levels = await model.gateWeights(batchOfRows(data, sample));
  if (levels.length === 0) return undefined;
  return {
    split: splitName,
    rows: sample.length,
    levels: levels.map(({ level, gates, experts, weights }) => ({ level, gates, experts, weights: weights.map((w) => Array.from(w)) })),
  };
}
