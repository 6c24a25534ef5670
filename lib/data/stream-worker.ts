/**
 * One pass of a `DataStream` (lib/data/stream.ts), on a worker thread so that reading, encoding and
 * shuffling never run on the event loop or the training thread. DuckDB streams the source's rows;
 * every `chunkRows` of them become a table exactly as `readParquet` would build it (`ColumnsBuilder`)
 * and are encoded with the fitted schema, so a streamed row gets the same ids and values as an
 * in-memory one. Encoded chunks go through the seeded shuffle buffer and
 * are posted (transferred, not copied) when the main thread has room: at most `prefetch` ahead.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { DuckDBConnection } from '@duckdb/node-api';
import { AdattError } from '../errors';
import { DataEncoder } from './encode';
import { sealFittedSchema } from './fitted';
import { concatEncoded, encodedBuffers, takeRows } from './encoded';
import { aliasedRelation, ColumnsBuilder, type EngineColumn, selectList, type TextCoder, typedColumns, withConnection } from './engine';
import { SeededRandom } from './random';
import { Table } from './table';
import { vocabularyCoders } from './vocabulary-coder';
import type { PassPlan, WorkerMessage } from './stream';
import type { EncodedData } from './types';

const plan = workerData as PassPlan;
const port = parentPort!;
let credits = plan.prefetch;
let stopped = false;
let wake: (() => void) | undefined;
port.on('message', (message: 'more' | 'stop') => {
  if (message === 'more') credits += 1;
  else stopped = true;
  wake?.();
});

const post = (message: WorkerMessage, transfer: ArrayBuffer[] = []): void => port.postMessage(message, transfer);

class Stopped extends Error {}

async function emit(data: EncodedData): Promise<void> {
  while (credits === 0 && !stopped)
    await new Promise<void>((resolve) => {
      wake = resolve;
    });
  if (stopped) throw new Stopped();
  credits -= 1;
  post({ type: 'chunk', data }, encodedBuffers(data));
}

/**
 * A bounded, seeded shuffle buffer: rows collect until `capacity`, then a random half of them (in
 * whole chunks) leaves; at the end of the pass the rest leaves shuffled. Every row is copied about
 * twice, and a row can move anywhere within about `capacity` rows of where it was read.
 */
class ShuffleBuffer {
  private parts: EncodedData[] = [];
  private rows = 0;

  constructor(
    private readonly capacity: number,
    private readonly chunkRows: number,
    private readonly random: SeededRandom,
  ) {}

  async add(data: EncodedData): Promise<void> {
    this.parts.push(data);
    this.rows += data.size;
    if (this.rows >= this.capacity) await this.release(Math.max(1, Math.floor(this.rows / 2 / this.chunkRows)) * this.chunkRows);
  }

  async finish(): Promise<void> {
    if (this.rows > 0) await this.release(this.rows);
  }

  private async release(count: number): Promise<void> {
    const all = concatEncoded(this.parts);
    const order = Int32Array.from({ length: all.size }, (_, i) => i);
    this.random.shuffle(order);
    const leaving = Math.min(count, all.size);
    this.parts = leaving < all.size ? [takeRows(all, order.subarray(leaving))] : [];
    this.rows = all.size - leaving;
    for (let start = 0; start < leaving; start += this.chunkRows) {
      await emit(takeRows(all, order.subarray(start, Math.min(leaving, start + this.chunkRows))));
    }
  }
}

/** The schema was checked by openStream; its copy here is trusted rather than checked again per pass. */
const encoder = new DataEncoder(sealFittedSchema(plan.schema));

async function run(reader: DuckDBConnection): Promise<void> {
  const columns = await typedColumns(reader, plan.relation, plan.schema.columns, plan.source);
  // Categorical columns go from DuckDB's strings to ids natively; the others become a table.
  const coders = vocabularyCoders(plan.schema, new Set(columns.filter((column) => column.kind === 'text').map((column) => column.name)));
  try {
    await readPass(reader, columns, coders);
  } finally {
    for (const coder of coders.values()) coder.dispose();
  }
}

async function readPass(reader: DuckDBConnection, columns: EngineColumn[], coders: ReadonlyMap<string, TextCoder>): Promise<void> {
  const builder = await ColumnsBuilder.create(reader, columns, coders);
  const result = await reader.stream(`SELECT ${selectList(columns)} FROM ${aliasedRelation(plan.relation, columns)}`);
  const buffer =
    plan.shuffleSeed === undefined
      ? undefined
      : new ShuffleBuffer(plan.shuffleBufferRows, plan.chunkRows, new SeededRandom(plan.shuffleSeed));
  let pending = 0; // rows of the current chunk
  let read = 0; // rows of the pass read so far
  let chunk = 0; // chunks of the pass so far, this rank's or not
  // Ends the current chunk: encodes it when it is this rank's (only this rank's rows were appended).
  const flush = async (): Promise<void> => {
    const firstRow = read - pending;
    chunk += 1;
    pending = 0;
    if (builder.rowCount === 0) return;
    const built = builder.finishWithIds();
    const table = new Table(plan.source, built.columns, {
      locateRow: (row) => `row ${firstRow + row + 1} of ${plan.source} (in this pass's order)`,
    });
    const encoded = encoder.encodeRows(table, built.ids);
    if (buffer) await buffer.add(encoded);
    else await emit(encoded);
  };
  for (let rows = await result.fetchChunk(); rows !== null && rows.rowCount > 0; rows = await result.fetchChunk()) {
    if (stopped) throw new Stopped();
    if (chunk % plan.chunkStride === plan.chunkOffset) builder.append(rows);
    pending += rows.rowCount;
    read += rows.rowCount;
    if (pending >= plan.chunkRows) await flush();
  }
  if (pending > 0) await flush();
  await buffer?.finish();
}

withConnection(run)
  .then(
    () => post({ type: 'end' }),
    (err: unknown) => {
      if (err instanceof Stopped) return;
      const error = err as Error & { field?: unknown };
      post({
        type: 'error',
        name: err instanceof AdattError ? error.name : 'FileError',
        message: err instanceof AdattError ? error.message : `Cannot read ${plan.source}: ${error.message}`,
        ...(typeof error.field === 'string' ? { field: error.field } : {}),
      });
    },
  )
  .finally(() => port.close()); // the thread then ends with nothing left to do
