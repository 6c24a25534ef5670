/** Streaming datasets: chunks encoded as in memory, seeded shuffles, rank splits, training and evaluation over them, errors. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createModel,
  encode,
  evaluate,
  fit,
  fitSchema,
  modelSections,
  openStream,
  predict,
  predictChunks,
  readParquet,
  setNumThreads,
  TensorDataset,
  type DataStream,
  type EncodedData,
  type FittedSchema,
  type SchemaSpec,
} from '../../lib';
import { concatEncoded } from '../../lib/data/encoded';
import { ConfigError, FileError, ValidationError } from '../../lib/errors';
import { rejectionOf, temporaryFolder } from './helpers';

const folder = temporaryFolder();
const ROWS = 5000;
const parquet = path.join(folder, 'events.parquet');
const csv = path.join(folder, 'events.csv.gz');
const jsonLines = path.join(folder, 'events.jsonl');
const shards = path.join(folder, 'shard-*.parquet');

const SPEC: SchemaSpec = {
  dense: ['id', 'x'],
  categorical: ['city'],
  multiValued: [{ column: 'tags', separator: '|' }],
  tasks: [
    { name: 'click', type: 'binary', column: 'click', positive: [1] },
    { name: 'spend', type: 'regression', column: 'spend' },
  ],
};

let schema: FittedSchema;
let inMemory: EncodedData;

beforeAll(async () => {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  // A learnable click (x > 0 or city 3), missing cells, bags of 0-3 tags; id is unique per row.
  await connection.run(`CREATE TABLE events AS SELECT i AS id,
      CASE WHEN i % 97 = 0 THEN NULL ELSE sin(i * 12.9898) END AS x,
      CASE WHEN i % 50 = 0 THEN NULL ELSE 'city' || (i * 7 % 11)::VARCHAR END AS city,
      CASE i % 4 WHEN 0 THEN '' WHEN 1 THEN 'a' WHEN 2 THEN 'a|b' ELSE 'b|c|d' END AS tags,
      CASE WHEN sin(i * 12.9898) > 0 OR i * 7 % 11 = 3 THEN 1 ELSE 0 END AS click,
      (i % 13)::DOUBLE / 4 AS spend
    FROM range(${ROWS}) t(i) ORDER BY i`);
  await connection.run(`COPY events TO '${parquet}' (FORMAT parquet, ROW_GROUP_SIZE 1000)`);
  await connection.run(`COPY events TO '${csv}' (FORMAT csv, HEADER, COMPRESSION gzip)`);
  await connection.run(`COPY events TO '${jsonLines}' (FORMAT json)`);
  for (let k = 0; k < 5; k++) {
    await connection.run(
      `COPY (SELECT * FROM events WHERE id >= ${k * 1000} AND id < ${(k + 1) * 1000} ORDER BY id) TO '${path.join(folder, `shard-${k}.parquet`)}' (FORMAT parquet)`,
    );
  }
  connection.closeSync();
  const table = await readParquet(parquet);
  schema = fitSchema(SPEC, table);
  inMemory = encode(schema, table);
});

async function collect(stream: DataStream, pass: Parameters<DataStream['chunks']>[0] = {}): Promise<{ sizes: number[]; all: EncodedData }> {
  const chunks: EncodedData[] = [];
  for await (const chunk of stream.chunks(pass)) chunks.push(chunk);
  return { sizes: chunks.map((chunk) => chunk.size), all: concatEncoded(chunks) };
}

/** The `id` column (dense feature 0, normalised) of every row, back as row numbers. */
function ids(data: EncodedData): number[] {
  const width = data.dense!.length / data.size;
  const first = inMemory.dense![0]!;
  const step = inMemory.dense![width]! - first;
  return Array.from({ length: data.size }, (_, r) => Math.round((data.dense![r * width]! - first) / step));
}

/** The in-memory rows `rows` (by id), to compare with a streamed pass. */
function rowsOf(rows: number[]): EncodedData {
  return concatEncoded(
    rows.map((row) => ({
      size: 1,
      dense: inMemory.dense!.slice(row * 2, row * 2 + 2),
      categorical: inMemory.categorical!.slice(row, row + 1),
      multiValued: inMemory.multiValued!.map(({ indices, offsets }) => ({
        indices: indices.slice(offsets[row], row + 1 < ROWS ? offsets[row + 1] : indices.length),
        offsets: Int32Array.of(0),
      })),
      labels: inMemory.labels.map((labels) => labels.slice(row, row + 1)),
    })),
  );
}

describe('DataStream chunks', () => {
  it.each([
    ['Parquet', () => parquet],
    ['gzip CSV', () => csv],
    ['JSON lines', () => jsonLines],
    ['a glob of shards', () => shards],
  ])('encode every row of %s exactly as readParquet + encode, in source order', async (_, source) => {
    const stream = await openStream(source(), { schema, chunkRows: 1500 });
    expect(stream.rows).toBe(ROWS);
    const { sizes, all } = await collect(stream);
    expect(sizes.reduce((a, b) => a + b)).toBe(ROWS);
    expect(Math.max(...sizes)).toBeLessThan(1500 + 2048); // DuckDB hands over up to 2048 rows at a time
    expect(all).toEqual(inMemory);
  });

  it('reads a SQL source', async () => {
    const stream = await openStream({ sql: `SELECT * FROM read_parquet('${parquet}') WHERE id % 2 = 0 ORDER BY id` }, { schema });
    const { all } = await collect(stream);
    expect(stream.rows).toBe(ROWS / 2);
    expect(all).toEqual(rowsOf(Array.from({ length: ROWS / 2 }, (_, i) => 2 * i)));
  });

  it('shuffles every row exactly once, reproducibly per (seed, epoch), and differently per epoch', async () => {
    const stream = await openStream(shards, { schema, chunkRows: 700, shuffleBufferRows: 2100, seed: 5 });
    const first = await collect(stream, { shuffle: true, epoch: 0 });
    const again = await collect(stream, { shuffle: true, epoch: 0 });
    const next = await collect(stream, { shuffle: true, epoch: 1 });
    const order = ids(first.all);
    expect([...order].sort((a, b) => a - b)).toEqual(Array.from({ length: ROWS }, (_, i) => i));
    expect(first.all).toEqual(rowsOf(order)); // rows travel whole: features, bags and labels together
    expect(again.all).toEqual(first.all);
    expect(ids(next.all)).not.toEqual(order);
    // Rows move across chunk and file boundaries, not only within them.
    const firstChunk = order.slice(0, first.sizes[0]);
    expect(new Set(firstChunk.map((id) => Math.floor(id / 1000))).size).toBeGreaterThan(1);
    expect(Math.max(...firstChunk) - Math.min(...firstChunk)).toBeGreaterThan(700);
  });

  it('gives data-parallel ranks disjoint parts that cover the data, by file or by chunk', async () => {
    for (const [source, worldSize] of [
      [shards, 2],
      [parquet, 3],
    ] as const) {
      const stream = await openStream(source, { schema, chunkRows: 600 });
      const parts = await Promise.all(
        Array.from({ length: worldSize }, async (_, rank) =>
          ids((await collect(stream, { rank, worldSize, shuffle: true, epoch: 2 })).all),
        ),
      );
      for (const part of parts) expect(part.length).toBeGreaterThan(ROWS / worldSize / 2);
      expect(parts.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: ROWS }, (_, i) => i));
    }
  });

  it('names a missing column, an unreadable source and bad options', async () => {
    const wide = { ...schema, columns: [...schema.columns, 'nowhere'] };
    expect((await rejectionOf(openStream(parquet, { schema: wide }), ValidationError)).message).toMatch(/nowhere/);
    expect((await rejectionOf(openStream(path.join(folder, 'none-*.parquet'), { schema }), FileError)).message).toMatch(/no file matches/);
    expect((await rejectionOf(openStream(parquet, { schema, chunkRows: 0 }), ValidationError)).field).toBe('chunkRows');
    expect((await rejectionOf(openStream(parquet, { schema, shuffle: true } as never), ValidationError)).field).toBe('shuffle');
    expect((await rejectionOf(openStream(path.join(folder, 'events.bin'), { schema }), ValidationError)).field).toBe('format');
    expect((await rejectionOf(openStream({ sql: 'SELEC 1' }, { schema }), ValidationError)).field).toBe('sql');
    const predicate = fitSchema(
      { ...SPEC, tasks: [{ name: 'click', type: 'binary', column: 'click', positive: (v) => v === 1 }] },
      await readParquet(parquet),
    );
    expect((await rejectionOf(openStream(parquet, { schema: predicate }), ValidationError)).message).toMatch(/predicate/);
    expect(await rejectionOf(openStream(parquet, { schema: { ...schema, version: 99 } as never }), ConfigError)).toBeDefined();
  });

  it('names the row and column of a bad cell met while streaming', async () => {
    const bad = path.join(folder, 'bad.csv');
    const lines = ['id,x,city,tags,click,spend', ...Array.from({ length: 3000 }, (_, i) => `${i},${i === 2500 ? 'abc' : '0.5'},c,a,1,0`)];
    writeFileSync(bad, `${lines.join('\n')}\n`);
    const stream = await openStream(bad, { schema, chunkRows: 1000 });
    const error = await rejectionOf(collect(stream), ValidationError);
    expect(error.message).toMatch(/row 2501 of bad\.csv/);
    expect(error.message).toMatch(/'x'|x/);
  });
});

describe('training and evaluation over a stream', () => {
  const model = (): ReturnType<typeof createModel> =>
    createModel({ kind: 'mmoe', ...modelSections(schema), expertDims: [[16]], towerDims: [8], experts: 2, seed: 3 });

  it('evaluate and predict over a stream equal the in-memory ones exactly', async () => {
    setNumThreads(1);
    const net = model();
    const stream = await openStream(shards, { schema, chunkRows: 900 });
    const memory = TensorDataset.fromEncoded(inMemory, { schema, taskNames: ['click', 'spend'] });
    // Equal up to float rounding: the model runs on batches cut at other rows.
    const [streamed, held] = [await evaluate(net, stream), await evaluate(net, memory)];
    for (const task of ['click', 'spend']) {
      for (const [metric, value] of Object.entries(held[task]!)) expect(streamed[task]![metric], `${task} ${metric}`).toBeCloseTo(value, 6);
    }
    // A sample space in evaluate: spend's metrics over clicked rows only, alike both ways.
    const where = { spend: { task: 'click' } };
    const [streamedSpace, heldSpace] = [await evaluate(net, stream, { where }), await evaluate(net, memory, { where })];
    expect(heldSpace.spend!.count).toBeLessThan(held.spend!.count!);
    for (const [metric, value] of Object.entries(heldSpace.spend!))
      expect(streamedSpace.spend![metric], `spend ${metric}`).toBeCloseTo(value, 6);
    const [streamedScores, heldScores] = [await predict(net, stream), await predict(net, memory)];
    for (const task of ['click', 'spend']) {
      expect(streamedScores[task]!.length).toBe(ROWS);
      expect(Math.max(...streamedScores[task]!.map((v, i) => Math.abs(v - heldScores[task]![i]!)))).toBeLessThan(1e-6);
    }
    const chunks = [];
    for await (const chunk of predictChunks(net, stream)) {
      chunks.push(chunk);
      if (chunks.length === 3) break; // leaving early stops the reading thread
    }
    const all = await predict(net, memory);
    expect(chunks.map((chunk) => chunk.offset)).toEqual([0, chunks[0]!.size, chunks[0]!.size + chunks[1]!.size]);
    const scores = all.click!.slice(chunks[1]!.offset, chunks[1]!.offset + chunks[1]!.size);
    expect(Math.max(...chunks[1]!.predictions.click!.map((v, i) => Math.abs(v - scores[i]!)))).toBeLessThan(1e-6);
    expect(chunks[1]!.labels.spend).toEqual(inMemory.labels[1]!.slice(chunks[1]!.offset, chunks[1]!.offset + chunks[1]!.size));
    net.dispose();
    memory.dispose();
  });

  it('fit learns from a stream, reproducibly, with progress over the whole epoch', async () => {
    setNumThreads(1);
    const stream = await openStream(shards, { schema, chunkRows: 1024, shuffleBufferRows: 2048 });
    const runs = [];
    for (let run = 0; run < 2; run++) {
      const net = model();
      const events: { batch: number; batches: number; examples: number }[] = [];
      const result = await fit(net, stream, {
        epochs: 3,
        batchSize: 128,
        optimizer: { lr: 0.01 },
        seed: 9,
        validation: stream,
        progressInterval: 0,
        onProgress: (p) => events.push(p),
      });
      runs.push({ result, weights: await net.stateDict(), events });
      net.dispose();
    }
    const [{ result, events }, second] = runs as [(typeof runs)[0], (typeof runs)[0]];
    expect(result.epochs.map((epoch) => epoch.examples)).toEqual([ROWS, ROWS, ROWS]);
    expect(result.steps).toBeGreaterThanOrEqual(3 * Math.ceil(ROWS / 128));
    expect(result.epochs[2]!.validation!.click!.auc).toBeGreaterThan(0.8);
    expect(result.epochs[2]!.loss.click).toBeLessThan(result.epochs[0]!.loss.click!);
    const last = events.at(-1)!;
    expect(last.examples).toBe(ROWS);
    expect(last.batch).toBe(result.epochs[2]!.steps);
    expect(events.every((e) => e.batch <= e.batches)).toBe(true);
    expect(second.weights).toEqual(runs[0]!.weights);
  });
});
