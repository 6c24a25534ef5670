/**
 * `PredictionServer`: a `Predictor` over HTTP with node:http. JSON in and out; concurrent requests
 * are micro-batched into shared model calls; a full queue answers 503; `close()` drains in-flight
 * requests before it resolves.
 *
 *   POST /predict  {"rows": [{column: value, …}, …]}                 -> {"predictions": [{task: …}, …]}
 *   POST /score    {"user": {column: value, …}, "candidates": [{…}, …]} -> {"predictions": [...]} one per candidate
 *   GET  /health   200 {"status": "ok", …}, 503 {"status": "draining"} once closing
 *   GET  /metrics  Prometheus text format
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EncodedFeatures } from '../data/encode';
import { BusyError, DisposedError, ValidationError } from '../errors';
import { describeValue, isRecord } from '../validation';
import { MicroBatcher, readLimit, type BatcherOptions, type BatchRecord } from './batcher';
import { Counter, exponentialBuckets, Gauge, Histogram, METRICS_CONTENT_TYPE, MetricsRegistry } from './metrics';
import type { FeatureRow, Prediction, Predictor } from './predictor';

export interface ServerOptions extends BatcherOptions {
  /** Largest request body, in bytes (default 1 MiB); larger ones get 413. */
  maxBodyBytes?: number;
  /** Most rows (or candidates) in one request (default 10,000). */
  maxRequestRows?: number;
}

/** An HTTP status with a JSON error body. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

const ROUTES: Readonly<Record<string, string>> = { '/predict': 'POST', '/score': 'POST', '/health': 'GET', '/metrics': 'GET' };

function statusOf(err: unknown): number {
  if (err instanceof HttpError) return err.status;
  if (err instanceof ValidationError) return 400;
  if (err instanceof BusyError || err instanceof DisposedError) return 503;
  return 500;
}

async function readBody(request: http.IncomingMessage, limit: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new HttpError(413, `the request body is over ${limit} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch (err) {
    throw new HttpError(400, `the request body is not JSON: ${(err as Error).message}`);
  }
}

export class PredictionServer {
  readonly predictor: Predictor;
  readonly metrics = new MetricsRegistry();
  readonly #server: http.Server;
  readonly #batcher: MicroBatcher<EncodedFeatures, Prediction[]>;
  readonly #maxBodyBytes: number;
  readonly #maxRequestRows: number;
  readonly #requests = this.metrics.add(new Counter('adatt_requests_total', 'HTTP requests by route and status code.'));
  readonly #latency = this.metrics.add(
    new Histogram(
      'adatt_request_duration_seconds',
      'Time from the arrival of a /predict or /score request to its answer.',
      exponentialBuckets(0.0005, 2, 14),
    ),
  );
  readonly #batchRows = this.metrics.add(new Histogram('adatt_batch_rows', 'Rows per model call.', exponentialBuckets(1, 2, 14)));
  readonly #batchRequests = this.metrics.add(
    new Histogram('adatt_batch_requests', 'Requests merged into one model call.', exponentialBuckets(1, 2, 10)),
  );
  readonly #batchSeconds = this.metrics.add(
    new Histogram('adatt_batch_duration_seconds', 'Time of one model call.', exponentialBuckets(0.0001, 2, 16)),
  );
  #inFlight = 0;
  #closing: Promise<void> | undefined;
  #idle: (() => void) | undefined;

  constructor(predictor: Predictor, options: ServerOptions = {}) {
    this.predictor = predictor;
    this.#maxBodyBytes = readLimit(options.maxBodyBytes, 'maxBodyBytes', 1 << 20, 1);
    this.#maxRequestRows = readLimit(options.maxRequestRows, 'maxRequestRows', 10_000, 1);
    const { maxBatchRows, maxWaitMs, maxQueue } = options;
    this.#batcher = new MicroBatcher(
      (parts) => predictor.predictParts(parts),
      { maxBatchRows, maxWaitMs, maxQueue },
      (record) => this.#recordBatch(record),
    );
    this.metrics.add(new Gauge('adatt_queue_requests', 'Requests waiting for the model.', () => this.#batcher.queued));
    this.metrics.add(new Gauge('adatt_in_flight_requests', 'Requests received and not yet answered.', () => this.#inFlight));
    this.#server = http.createServer((request, response) => void this.#handle(request, response));
  }

  /** Starts listening (port 0: any free port); resolves to the address. */
  async listen(port: number, host = '127.0.0.1'): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    return this.#server.address() as AddressInfo;
  }

  /** Whether close() has begun. */
  get closing(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Graceful shutdown: stops accepting connections, answers 503 to requests that arrive on open
   * ones, lets every queued and running request finish and be answered, then closes the sockets.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      this.#server.closeIdleConnections();
      await this.#batcher.close();
      if (this.#inFlight > 0)
        await new Promise<void>((resolve) => {
          this.#idle = resolve;
        });
      this.#server.closeAllConnections();
      await stopped;
    })();
    return this.#closing;
  }

  #recordBatch({ requests, rows, seconds }: BatchRecord): void {
    this.#batchRows.observe(rows);
    this.#batchRequests.observe(requests);
    this.#batchSeconds.observe(seconds);
  }

  async #handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const started = performance.now();
    const route = (request.url ?? '/').split('?')[0] as string;
    const known = Object.hasOwn(ROUTES, route);
    this.#inFlight += 1;
    // Counted until the answer is handed to the socket, so that close() never cuts one short.
    response.once('close', () => {
      this.#inFlight -= 1;
      if (this.#inFlight === 0) this.#idle?.();
    });
    let status = 500;
    try {
      const method = ROUTES[route];
      if (!known)
        throw new HttpError(
          404,
          `no route ${route}: use ${Object.keys(ROUTES)
            .map((r) => `${ROUTES[r]} ${r}`)
            .join(', ')}`,
        );
      if (request.method !== method) throw new HttpError(405, `${route} takes ${method as string}`);
      status = 200;
      if (route === '/metrics') {
        this.#send(response, 200, this.metrics.render(), METRICS_CONTENT_TYPE);
      } else if (route === '/health') {
        status = this.closing ? 503 : 200;
        this.#sendJson(response, status, this.closing ? { status: 'draining' } : this.#health());
      } else {
        this.#batcher.assertAccepting();
        const body = await readBody(request, this.#maxBodyBytes);
        const features = this.#encode(route, body);
        const predictions = await this.#batcher.submit(features, features.size);
        this.#sendJson(response, 200, { predictions });
      }
    } catch (err) {
      status = statusOf(err);
      const field = err instanceof HttpError ? err.field : err instanceof ValidationError && err.field ? err.field : undefined;
      // A 500 is the server's (or the model's) fault, and says so; the others say what to fix.
      const message = status === 500 ? `internal error: ${(err as Error).message}` : (err as Error).message;
      if (status === 503) response.setHeader('retry-after', '1');
      // A client that went away mid-request has no socket left to answer on.
      if (!response.headersSent && !response.destroyed) this.#sendJson(response, status, { error: message, ...(field ? { field } : {}) });
    } finally {
      this.#requests.inc({ route: known ? route : 'other', code: String(status) });
      if (route === '/predict' || route === '/score') this.#latency.observe((performance.now() - started) / 1000);
    }
  }

  #encode(route: string, body: unknown): EncodedFeatures {
    if (!isRecord(body)) throw new HttpError(400, `the body must be a JSON object, got ${describeValue(body)}`);
    const list = route === '/predict' ? 'rows' : 'candidates';
    const count = Array.isArray(body[list]) ? (body[list] as unknown[]).length : 0;
    if (count > this.#maxRequestRows) {
      throw new HttpError(413, `${list} holds ${count} entries; at most ${this.#maxRequestRows} per request`, list);
    }
    return route === '/predict'
      ? this.predictor.encodeRows(body.rows as FeatureRow[])
      : this.predictor.encodeCandidates(body.user as FeatureRow, body.candidates as FeatureRow[]);
  }

  #health(): Record<string, unknown> {
    const { model, schema } = this.predictor;
    return {
      status: 'ok',
      model: model.config.kind,
      tasks: schema.tasks.map((task) => ({
        name: task.name,
        type: task.type,
        ...(task.type === 'multiclass' ? { classes: task.classes } : {}),
      })),
      columns: this.predictor.columns,
      queue: this.#batcher.queued,
    };
  }

  #sendJson(response: http.ServerResponse, status: number, body: unknown): void {
    this.#send(response, status, JSON.stringify(body), 'application/json');
  }

  #send(response: http.ServerResponse, status: number, body: string, type: string): void {
    if (this.closing) response.setHeader('connection', 'close');
    response.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    response.end(body);
  }
}
