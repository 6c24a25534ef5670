/**
 * Dynamic micro-batching: requests that arrive close together share one model call. A model runs
 * one call at a time, so requests that arrive while it is busy wait and then go together; an idle
 * model starts at once, or waits up to `maxWaitMs` for company. The queue is bounded: beyond
 * `maxQueue` waiting requests `submit` rejects at once (a server answers 503) instead of letting
 * latency and memory grow without limit.
 */
import { BusyError, DisposedError, ValidationError } from '../errors';

export interface BatcherOptions {
  /** Most rows per model call (default 256); a request with more rows runs alone. 1 turns merging off. */
  maxBatchRows?: number;
  /**
   * How long the first request of a batch waits for others while the model is idle, in ms. Default
   * 0: an idle model starts at once, and batches form from the requests that arrive while it is busy,
   * which is when merging pays; a wait adds its length to every request at low load.
   */
  maxWaitMs?: number;
  /** Most requests waiting for the model (default 256); more are rejected with BusyError. */
  maxQueue?: number;
}

/** What one model call was made of, for metrics. */
export interface BatchRecord {
  requests: number;
  rows: number;
  seconds: number;
}

interface Pending<Item, Result> {
  item: Item;
  rows: number;
  resolve: (result: Result) => void;
  reject: (reason: unknown) => void;
}

/** An integer option of at least `min`, or its default. */
export function readLimit(value: number | undefined, field: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min)
    throw new ValidationError(field, `${field} must be an integer >= ${min}, got ${String(value)}`);
  return value;
}

export class MicroBatcher<Item, Result> {
  readonly maxBatchRows: number;
  readonly maxWaitMs: number;
  readonly maxQueue: number;
  readonly #run: (items: Item[]) => Promise<Result[]>;
  readonly #onBatch: (record: BatchRecord) => void;
  readonly #queue: Pending<Item, Result>[] = [];
  #running = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  #drained: (() => void) | undefined;

  /** `run` scores the items of one batch, one result per item in order; it is never called concurrently. */
  constructor(
    run: (items: Item[]) => Promise<Result[]>,
    options: BatcherOptions = {},
    onBatch: (record: BatchRecord) => void = () => undefined,
  ) {
    this.maxBatchRows = readLimit(options.maxBatchRows, 'maxBatchRows', 256, 1);
    this.maxWaitMs = readLimit(options.maxWaitMs, 'maxWaitMs', 0, 0);
    this.maxQueue = readLimit(options.maxQueue, 'maxQueue', 256, 1);
    this.#run = run;
    this.#onBatch = onBatch;
  }

  /** Requests waiting for the model (not counting the batch it is running). */
  get queued(): number {
    return this.#queue.length;
  }

  /**
   * Throws what `submit` would reject with now: DisposedError once closed, BusyError when the queue
   * is full. A server checks it before reading a request, so that overload costs no parsing.
   */
  assertAccepting(): void {
    if (this.#closed) throw new DisposedError('the server is shutting down');
    if (this.#queue.length >= this.maxQueue) {
      throw new BusyError(`the prediction queue is full (${this.maxQueue} requests waiting); retry later`);
    }
  }

  /** Queues an item of `rows` rows; resolves with its result. */
  submit(item: Item, rows: number): Promise<Result> {
    try {
      this.assertAccepting();
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<Result>((resolve, reject) => {
      this.#queue.push({ item, rows, resolve, reject });
      this.#schedule();
    });
  }

  /** Refuses new items and resolves once every queued and running item has its result. */
  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= new Promise((resolve) => {
      this.#drained = resolve;
    });
    if (!this.#running && this.#queue.length === 0) this.#drained?.();
    // Nothing more will join, so waiting for company would only delay the answers.
    if (this.#timer !== undefined) this.#dispatch();
    return this.#closing;
  }

  #queuedRows(): number {
    return this.#queue.reduce((total, pending) => total + pending.rows, 0);
  }

  #schedule(): void {
    if (this.#running || this.#queue.length === 0) return;
    if (this.maxWaitMs === 0 || this.#queuedRows() >= this.maxBatchRows) {
      this.#dispatch();
    } else {
      this.#timer ??= setTimeout(() => this.#dispatch(), this.maxWaitMs);
    }
  }

  /** Takes requests in arrival order while they fit in maxBatchRows (at least one), and runs them. */
  #dispatch(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    let rows = (this.#queue[0] as Pending<Item, Result>).rows;
    let count = 1;
    while (count < this.#queue.length && rows + (this.#queue[count] as Pending<Item, Result>).rows <= this.maxBatchRows) {
      rows += (this.#queue[count] as Pending<Item, Result>).rows;
      count += 1;
    }
    const batch = this.#queue.splice(0, count);
    this.#running = true;
    const started = performance.now();
    const settle = (settleOne: (pending: Pending<Item, Result>, i: number) => void): void => {
      this.#onBatch({ requests: batch.length, rows, seconds: (performance.now() - started) / 1000 });
      batch.forEach(settleOne);
      this.#running = false;
      if (this.#queue.length > 0) {
        // Requests that waited through a model call have waited enough: go at once.
        this.#dispatch();
      } else if (this.#closed) {
        this.#drained?.();
      }
    };
    let results: Promise<Result[]>;
    try {
      results = this.#run(batch.map((pending) => pending.item));
    } catch (err) {
      results = Promise.reject(err);
    }
    results.then(
      (results) => settle((pending, i) => pending.resolve(results[i] as Result)),
      (err: unknown) => settle((pending) => pending.reject(err)),
    );
  }
}
