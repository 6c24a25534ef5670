/**
 * PredictionServer on loopback: JSON in and out, micro-batching seen in the batch-size metrics,
 * 503 beyond the queue bound, graceful close, and /metrics in the Prometheus text format.
 */
import * as net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { Predictor, PredictionServer, type ServerOptions } from '../lib';
import type { EncodedFeatures } from '../lib/data/encode';
import { parseExposition } from './helpers/prometheus';
import { createServingModel, ROWS, SCHEMA } from './helpers/serving';

/** A predictor whose model calls wait until the test opens the gate (to hold requests in flight). */
class GatedPredictor extends Predictor {
  #open: Promise<void> = Promise.resolve();
  #release: () => void = () => undefined;

  close(): void {
    this.#open = new Promise((resolve) => {
      this.#release = resolve;
    });
  }

  open(): void {
    this.#release();
  }

  /** The next model call fails with this error. */
  failure: Error | undefined;

  override async predictParts(parts: readonly EncodedFeatures[]): ReturnType<Predictor['predictParts']> {
    await this.#open;
    const failure = this.failure;
    this.failure = undefined;
    if (failure) throw failure;
    return super.predictParts(parts);
  }
}

const predictor = new GatedPredictor(createServingModel(), SCHEMA);
afterAll(() => predictor.dispose());

async function started(options: ServerOptions = {}): Promise<{ server: PredictionServer; base: string }> {
  const server = new PredictionServer(predictor, options);
  const { port } = await server.listen(0);
  return { server, base: `http://127.0.0.1:${port}` };
}

function post(base: string, route: string, body: unknown): Promise<Response> {
  return fetch(`${base}${route}`, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) });
}

async function metricsOf(base: string): Promise<Map<string, number>> {
  const response = await fetch(`${base}/metrics`);
  expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return parseExposition(await response.text());
}

/** Polls /metrics until `series` reaches `value`. */
async function untilMetric(base: string, series: string, value: number): Promise<void> {
  for (let tries = 0; tries < 500; tries++) {
    if ((await metricsOf(base)).get(series) === value) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`${series} never reached ${value}`);
}

describe('PredictionServer', () => {
  it('answers /predict, /score and /health in JSON, as the Predictor would', async () => {
    const { server, base } = await started();
    try {
      const predicted = await post(base, '/predict', { rows: ROWS.slice(0, 3) });
      expect(predicted.status).toBe(200);
      expect(predicted.headers.get('content-type')).toBe('application/json');
      expect(await predicted.json()).toEqual({ predictions: await predictor.predictRows(ROWS.slice(0, 3)) });
      const user = { age: 31, minutes: 12.5, city: 'Paris', device: 'ios', genres: 'comedy|drama', tags: 'a;b' };
      const candidates = [
        { item: 'i1', price: 3 },
        { item: 'i2', price: 10 },
      ];
      const scored = await post(base, '/score', { user, candidates });
      expect(await scored.json()).toEqual({ predictions: await predictor.scoreCandidates(user, candidates) });
      const health = await fetch(`${base}/health`);
      expect(await health.json()).toMatchObject({
        status: 'ok',
        model: 'mmoe',
        queue: 0,
        tasks: [
          { name: 'click', type: 'binary' },
          { name: 'rating', type: 'multiclass', classes: ['low', 'mid', 'high'] },
          { name: 'watch', type: 'regression' },
        ],
      });
    } finally {
      await server.close();
    }
  });

  it('answers bad requests with 400, 404, 405 or 413 and an error that names the field', async () => {
    const { server, base } = await started({ maxRequestRows: 5 });
    try {
      const mistyped = await post(base, '/predict', { rows: [ROWS[0], { ...ROWS[1], age: 'old' }] });
      expect(mistyped.status).toBe(400);
      expect(await mistyped.json()).toEqual({ field: 'rows[1].age', error: 'rows[1].age must be a finite number or null, got "old"' });
      const missing = await post(base, '/score', { user: { age: 3 }, candidates: [{ item: 'i1' }] });
      expect(await missing.json()).toMatchObject({ field: 'candidates[0].minutes' });
      expect((await post(base, '/predict', '{"rows": [')).status).toBe(400);
      expect((await post(base, '/predict', '[1]')).status).toBe(400);
      const tooMany = await post(base, '/predict', { rows: Array.from({ length: 6 }, () => ROWS[0]) });
      expect(tooMany.status).toBe(413);
      expect(((await tooMany.json()) as { error: string }).error).toBe('rows holds 6 entries; at most 5 per request');
      expect((await fetch(`${base}/nowhere`)).status).toBe(404);
      expect((await fetch(`${base}/predict`)).status).toBe(405);
      const counts = await metricsOf(base);
      expect(counts.get('adatt_requests_total{route="/predict",code="400"}')).toBe(3);
      expect(counts.get('adatt_requests_total{route="/predict",code="413"}')).toBe(1);
      expect(counts.get('adatt_requests_total{route="other",code="404"}')).toBe(1);
    } finally {
      await server.close();
    }
  });

  it('merges concurrent requests into shared model calls (batch-size metrics), and not when batching is off', async () => {
    for (const [options, merged] of [
      [{ maxWaitMs: 50, maxBatchRows: 256 }, true],
      [{ maxWaitMs: 0, maxBatchRows: 1 }, false],
    ] as const) {
      const { server, base } = await started(options);
      try {
        const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => post(base, '/predict', { rows: [ROWS[i % ROWS.length]] })));
        expect(answers.map((answer) => answer.status)).toEqual(Array(8).fill(200));
        const samples = await metricsOf(base);
        expect(samples.get('adatt_batch_requests_sum')).toBe(8);
        expect(samples.get('adatt_batch_rows_sum')).toBe(8);
        const calls = samples.get('adatt_batch_requests_count')!;
        if (merged) {
          expect(calls).toBeLessThan(8);
          expect(samples.get('adatt_batch_requests_bucket{le="1"}')).toBeLessThan(calls);
        } else {
          expect(calls).toBe(8);
          expect(samples.get('adatt_batch_requests_bucket{le="1"}')).toBe(8);
        }
        expect(samples.get('adatt_request_duration_seconds_count')).toBe(8);
        expect(samples.get('adatt_requests_total{route="/predict",code="200"}')).toBe(8);
      } finally {
        await server.close();
      }
    }
  });

  it('answers 503 with Retry-After beyond the queue bound, and serves the queued requests', async () => {
    const { server, base } = await started({ maxWaitMs: 0, maxQueue: 2 });
    predictor.close();
    try {
      const admitted = [post(base, '/predict', { rows: [ROWS[0]] })];
      await untilMetric(base, 'adatt_in_flight_requests', 2); // the one running (and this /metrics request)
      admitted.push(post(base, '/predict', { rows: [ROWS[1]] }), post(base, '/predict', { rows: [ROWS[2]] }));
      await untilMetric(base, 'adatt_queue_requests', 2);
      const rejected = await post(base, '/predict', { rows: [ROWS[3]] });
      expect(rejected.status).toBe(503);
      expect(rejected.headers.get('retry-after')).toBe('1');
      expect(((await rejected.json()) as { error: string }).error).toBe('the prediction queue is full (2 requests waiting); retry later');
      expect((await post(base, '/predict', '{"rows": [')).status).toBe(503); // refused before its body is even parsed
      predictor.open();
      expect((await Promise.all(admitted)).map((answer) => answer.status)).toEqual([200, 200, 200]);
      const samples = await metricsOf(base);
      expect(samples.get('adatt_requests_total{route="/predict",code="503"}')).toBe(2);
      expect(samples.get('adatt_batch_requests_count')).toBe(2); // the first alone, the two queued together
    } finally {
      predictor.open();
      await server.close();
    }
  });

  it('close() answers the requests in flight, turns /health to 503 and then stops listening', async () => {
    const { server, base } = await started({ maxWaitMs: 0 });
    predictor.close();
    const inFlight = Array.from({ length: 3 }, (_, i) => post(base, '/predict', { rows: [ROWS[i]] }));
    await untilMetric(base, 'adatt_in_flight_requests', 4);
    const closing = server.close();
    expect(server.closing).toBe(true);
    predictor.open();
    const answers = await Promise.all(inFlight);
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200]);
    expect(((await answers[0]!.json()) as { predictions: unknown[] }).predictions).toHaveLength(1);
    await closing;
    await expect(fetch(`${base}/health`)).rejects.toThrow();
  });

  it('survives a client that leaves mid-request and a failing model call (500), and keeps serving', async () => {
    const { server, base } = await started();
    try {
      const { port } = new URL(base);
      const socket = net.connect(Number(port), '127.0.0.1');
      await new Promise((resolve) => socket.once('connect', resolve));
      socket.write('POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"rows": [');
      await untilMetric(base, 'adatt_in_flight_requests', 2);
      socket.destroy();
      await untilMetric(base, 'adatt_in_flight_requests', 1); // only this /metrics request
      predictor.failure = new Error('CUDA error: out of memory');
      const failed = await post(base, '/predict', { rows: [ROWS[0]] });
      expect(failed.status).toBe(500);
      expect(await failed.json()).toEqual({ error: 'internal error: CUDA error: out of memory' });
      expect((await post(base, '/predict', { rows: [ROWS[0]] })).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('exposes every series in the Prometheus text format', async () => {
    const { server, base } = await started();
    try {
      await post(base, '/predict', { rows: ROWS });
      const text = await (await fetch(`${base}/metrics`)).text();
      const samples = parseExposition(text);
      for (const name of ['adatt_request_duration_seconds', 'adatt_batch_rows', 'adatt_batch_requests', 'adatt_batch_duration_seconds']) {
        expect(text).toContain(`# TYPE ${name} histogram`);
      }
      expect(text).toContain('# TYPE adatt_requests_total counter');
      expect(text).toContain('# TYPE adatt_queue_requests gauge');
      expect(samples.get('adatt_batch_rows_sum')).toBe(ROWS.length);
      expect(samples.get(`adatt_batch_rows_bucket{le="${ROWS.length <= 8 ? 8 : 16}"}`)).toBe(1);
    } finally {
      await server.close();
    }
  });
});
