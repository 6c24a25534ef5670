/**
 * Training and evaluation over a `DataStream` (lib/data/stream.ts): each chunk becomes a
 * TensorDataset while the reading thread prepares the next ones, trains or predicts natively, and
 * is freed; results of the chunks are combined into those of the whole pass.
 */
import type { RawDatasetOptions, RawEpochResult, RawGradientConflict, RawProgress, RawTaskModel, RawTrainer } from './addon';
import { loadAddon } from './addon';
import type { DataStream } from './data/stream';
import type { ProcessGroup } from './distributed';
import { concatArrays } from './data/encoded';
import type { EncodedData } from './data/types';
import { GrowableArray } from './data/table';
import { TensorDataset } from './dataset';
import { callNativeAsync } from './errors';

/** Shuffle keys of a streamed epoch's chunks: (epoch, chunk), apart from in-memory epochs' keys. */
const CHUNKS_PER_EPOCH_KEY = 2 ** 20;

/** A chunk of `stream` as a TensorDataset of its schema and tasks. */
function chunkDataset(stream: DataStream, encoded: EncodedData): TensorDataset {
  return TensorDataset.fromEncoded(encoded, { schema: stream.schema, taskNames: stream.taskNames });
}

/** A one-row stand-in (missing ids, no labels) for a rank whose stream ended while others' go on; it trains none of it. */
function placeholderRow(stream: DataStream): EncodedData {
  const { dense, categorical, multiValued, tasks } = stream.schema;
  return {
    size: 1,
    ...(dense.length > 0 ? { dense: new Float32Array(dense.length) } : {}),
    ...(categorical.length > 0 ? { categorical: new Int32Array(categorical.length) } : {}),
    ...(multiValued.length > 0 ? { multiValued: multiValued.map(() => ({ indices: Int32Array.of(0), offsets: Int32Array.of(0) })) } : {}),
    labels: tasks.map(() => Float32Array.of(NaN)),
  };
}

/**
 * One training epoch over a stream: the chunks of a seeded shuffled pass, each trained in a shuffle
 * of its own; progress and the result cover the whole epoch (its batches estimated from the rows).
 * Data-parallel, each rank reads its own part; before each chunk the ranks agree on its step count
 * (the most batches any rank's chunk has), and a rank whose part has ended takes part with empty
 * batches until every rank's has.
 */
export async function trainStreamEpoch(
  trainer: RawTrainer,
  stream: DataStream,
  epoch: number,
  batchSize: number,
  onProgress: ((p: RawProgress) => void) | undefined,
  intervalSeconds: number,
  group?: ProcessGroup,
): Promise<RawEpochResult> {
  const started = performance.now();
  const total: RawEpochResult = { steps: 0, examples: 0, skipped: 0, seconds: 0, aborted: false, loss: stream.taskNames.map(() => 0) };
  const worldSize = group?.worldSize ?? 1;
  const batches = Math.ceil(stream.rows / (batchSize * worldSize));
  let batchesDone = 0;
  const chunks = stream.chunks({ shuffle: true, epoch, rank: group?.rank ?? 0, worldSize });
  let placeholder: TensorDataset | undefined;
  try {
    for (let index = 0, ended = false; ; index += 1) {
      const next: IteratorResult<EncodedData> | undefined = ended ? undefined : await chunks.next();
      ended = next === undefined || next.done === true;
      const encoded = ended ? undefined : (next!.value as EncodedData);
      let ownBatches = -1;
      if (group) {
        const sizes = (await group.allGatherNumbers([encoded?.size ?? 0])).map(([size]) => size as number);
        if (sizes.every((size) => size === 0)) break;
        ownBatches = Math.max(...sizes.map((size) => Math.ceil(size / batchSize)));
      } else if (encoded === undefined) {
        break;
      }
      placeholder ??= encoded === undefined ? chunkDataset(stream, placeholderRow(stream)) : undefined;
      const chunk = encoded === undefined ? placeholder! : chunkDataset(stream, encoded);
      try {
        // Reports may arrive after the chunk's result (they come through a thread-safe queue): they use the totals before it.
        const before = { ...total, loss: [...total.loss] };
        const batchesBefore = batchesDone;
        const progress =
          onProgress &&
          ((p: RawProgress): void => {
            const examples = before.examples + p.examples;
            onProgress({
              ...p,
              batch: batchesBefore + p.batch,
              batches: Math.max(batches, batchesBefore + p.batches),
              examples,
              examplesPerSecond: examples / Math.max((performance.now() - started) / 1000, 1e-9),
              loss: p.loss.map((loss, t) =>
                examples > 0 ? ((before.loss[t] as number) * before.examples + loss * p.examples) / examples : 0,
              ),
            });
          });
        const pass = { shuffleKey: epoch * CHUNKS_PER_EPOCH_KEY + index, ownBatches, hasRows: encoded !== undefined };
        const done = await callNativeAsync(() => trainer.trainEpoch(chunk._raw(), epoch, progress, intervalSeconds, pass));
        const examples = total.examples + done.examples;
        total.loss = total.loss.map((loss, t) =>
          examples > 0 ? (loss * total.examples + (done.loss[t] as number) * done.examples) / examples : 0,
        );
        total.examples = examples;
        total.steps += done.steps;
        total.skipped += done.skipped;
        total.conflict = addConflict(total.conflict, done.conflict);
        batchesDone += done.steps + done.skipped;
        total.aborted = done.aborted;
      } finally {
        if (chunk !== placeholder) chunk.dispose();
      }
      if (total.aborted) break;
    }
  } finally {
    placeholder?.dispose();
    await chunks.return(undefined);
  }
  total.seconds = (performance.now() - started) / 1000;
  return total;
}

/** Two passes' conflict sums together (a stream's chunks make one epoch). */
function addConflict(a: RawGradientConflict | undefined, b: RawGradientConflict | undefined): RawGradientConflict | undefined {
  if (a === undefined || b === undefined) return a ?? b;
  const add = (x: number[], y: number[]): number[] => x.map((value, i) => value + (y[i] as number));
  return {
    steps: a.steps + b.steps,
    normSums: add(a.normSums, b.normSums),
    normCounts: add(a.normCounts, b.normCounts),
    cosineSums: add(a.cosineSums, b.cosineSums),
    cosineCounts: add(a.cosineCounts, b.cosineCounts),
  };
}

/** A pass's outputs or labels of one task, chunk after chunk. */
const floats = (): GrowableArray<Float32Array> => new GrowableArray((n) => new Float32Array(n));

/** Every chunk of one pass in source order with its predictions (or raw outputs); leaving the loop stops the pass. */
export async function* chunkPredictions(
  model: RawTaskModel,
  stream: DataStream,
  options: RawDatasetOptions,
): AsyncGenerator<{ outputs: Float32Array[]; encoded: EncodedData }> {
  for await (const encoded of stream.chunks()) {
    const dataset = chunkDataset(stream, encoded);
    let outputs: Float32Array[];
    try {
      outputs = await callNativeAsync(() => model.predict(dataset._raw(), options));
    } finally {
      dataset.dispose();
    }
    yield { outputs, encoded };
  }
}

/** Per task, the raw outputs, labels and (when the data has them) sample weights of every row; with the rows' groups. */
export interface LabelledOutputs {
  outputs: Float32Array[];
  labels: Float32Array[];
  sampleWeights?: Float32Array[];
  groups?: BigInt64Array;
}

/** The raw outputs and labels of every row of one pass over the stream, in source order. */
export async function streamLabelledOutputs(model: RawTaskModel, stream: DataStream, options: RawDatasetOptions): Promise<LabelledOutputs> {
  const outputs = options.taskTypes.map(() => floats());
  const labels = options.taskTypes.map(() => floats());
  const weights = options.taskTypes.map(() => floats());
  const groups: BigInt64Array[] = [];
  let weighted = false;
  for await (const { outputs: chunkOutputs, encoded } of chunkPredictions(model, stream, { ...options, rawOutputs: true })) {
    chunkOutputs.forEach((values, t) => {
      outputs[t]!.pushAll(values);
    });
    encoded.labels.forEach((values, t) => {
      labels[t]!.pushAll(values);
    });
    // Every chunk of a stream is encoded with one schema: all of them have sample weights or none.
    weighted = encoded.sampleWeights !== undefined;
    encoded.sampleWeights?.forEach((values, t) => {
      weights[t]!.pushAll(values);
    });
    if (encoded.groups) groups.push(encoded.groups);
  }
  return {
    outputs: outputs.map((c) => c.toArray()),
    labels: labels.map((c) => c.toArray()),
    ...(weighted ? { sampleWeights: weights.map((c) => c.toArray()) } : {}),
    ...(groups.length === 0 ? {} : { groups: concatArrays(groups, BigInt64Array) }),
  };
}

/** Per task, evaluate's metrics over the whole stream: raw outputs and labels of all chunks, then exact metrics. */
export async function streamMetrics(
  model: RawTaskModel,
  stream: DataStream,
  options: RawDatasetOptions,
): Promise<Record<string, number>[]> {
  const { outputs, labels, sampleWeights, groups } = await streamLabelledOutputs(model, stream, options);
  const addon = loadAddon();
  return callNativeAsync(() =>
    addon.taskMetrics(outputs, labels, options.taskTypes, options.where, sampleWeights, groups, options.calibrators),
  );
}

/** Per task, predictions of all chunks concatenated in file order. */
export async function streamAllPredictions(model: RawTaskModel, stream: DataStream, options: RawDatasetOptions): Promise<Float32Array[]> {
  const collected = options.taskTypes.map(() => floats());
  for await (const { outputs } of chunkPredictions(model, stream, options)) {
    outputs.forEach((values, t) => {
      collected[t]!.pushAll(values);
    });
  }
  return collected.map((c) => c.toArray());
}
