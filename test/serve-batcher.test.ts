/** MicroBatcher and the metrics text format, alone (no model, no HTTP). */
import { describe, expect, it } from 'vitest';
import { BusyError, DisposedError, ValidationError } from '../lib/errors';
import { MicroBatcher, type BatchRecord } from '../lib/serving/batcher';
import { Counter, exponentialBuckets, Gauge, Histogram, MetricsRegistry } from '../lib/serving/metrics';
import { parseExposition } from './helpers/prometheus';

/** A run function whose calls the test releases one by one. */
function controlledRun(): {
  run: (items: string[]) => Promise<string[]>;
  calls: string[][];
  release: () => void;
  fail: (err: Error) => void;
} {
  const calls: string[][] = [];
  const waiting: { resolve: () => void; reject: (err: Error) => void }[] = [];
  return {
    calls,
    run: (items) => {
      calls.push(items);
      return new Promise((resolve, reject) => {
        waiting.push({ resolve: () => resolve(items.map((item) => `${item}!`)), reject });
      });
    },
    release: () => waiting.shift()!.resolve(),
    fail: (err) => waiting.shift()!.reject(err),
  };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('MicroBatcher', () => {
  it('merges requests that arrive within maxWaitMs into one call, results in order', async () => {
    const records: BatchRecord[] = [];
    const calls: string[][] = [];
    const batcher = new MicroBatcher(
      async (items: string[]) => {
        calls.push(items);
        return items.map((item) => item.toUpperCase());
      },
      { maxWaitMs: 20, maxBatchRows: 100 },
      (record) => records.push(record),
    );
    const results = await Promise.all(['a', 'b', 'c', 'd'].map((item, i) => batcher.submit(item, i + 1)));
    expect(results).toEqual(['A', 'B', 'C', 'D']);
    expect(calls).toEqual([['a', 'b', 'c', 'd']]);
    expect(records).toMatchObject([{ requests: 4, rows: 10 }]);
  });

  it('starts at once when maxBatchRows is reached, and never exceeds it (a larger request runs alone)', async () => {
    const calls: string[][] = [];
    const batcher = new MicroBatcher(
      async (items: string[]) => {
        calls.push(items);
        return items;
      },
      { maxWaitMs: 10_000, maxBatchRows: 5 },
    );
    const started = performance.now();
    await Promise.all([
      batcher.submit('a', 2),
      batcher.submit('b', 2),
      batcher.submit('c', 2),
      batcher.submit('big', 9),
      batcher.submit('d', 1),
    ]);
    expect(performance.now() - started).toBeLessThan(5_000); // the 10 s wait never applied: every batch filled up
    // c does not fit beside a and b (6 rows > 5), big is over the limit alone, d waited through a call.
    expect(calls).toEqual([['a', 'b'], ['c'], ['big'], ['d']]);
  });

  it('queues requests while the model is busy and sends them together as soon as it is free', async () => {
    const control = controlledRun();
    const batcher = new MicroBatcher(control.run, { maxWaitMs: 0, maxBatchRows: 100 });
    const first = batcher.submit('a', 1);
    await tick();
    expect(control.calls).toEqual([['a']]);
    const rest = ['b', 'c', 'd'].map((item) => batcher.submit(item, 1));
    await tick();
    expect(batcher.queued).toBe(3);
    control.release();
    expect(await first).toBe('a!');
    await tick();
    expect(control.calls).toEqual([['a'], ['b', 'c', 'd']]);
    control.release();
    expect(await Promise.all(rest)).toEqual(['b!', 'c!', 'd!']);
  });

  it('with maxBatchRows 1 and maxWaitMs 0 runs every request alone', async () => {
    const calls: string[][] = [];
    const batcher = new MicroBatcher(
      async (items: string[]) => {
        calls.push(items);
        return items;
      },
      { maxWaitMs: 0, maxBatchRows: 1 },
    );
    await Promise.all(['a', 'b', 'c'].map((item) => batcher.submit(item, 1)));
    expect(calls).toEqual([['a'], ['b'], ['c']]);
  });

  it('rejects with BusyError beyond maxQueue waiting requests, without queueing them', async () => {
    const control = controlledRun();
    const batcher = new MicroBatcher(control.run, { maxWaitMs: 0, maxQueue: 2 });
    const running = batcher.submit('a', 1);
    await tick();
    const queued = [batcher.submit('b', 1), batcher.submit('c', 1)];
    await expect(batcher.submit('d', 1)).rejects.toThrow(BusyError);
    await expect(batcher.submit('e', 1)).rejects.toThrow(/queue is full \(2 requests waiting\)/);
    expect(batcher.queued).toBe(2);
    control.release();
    await running;
    await tick();
    control.release();
    expect(await Promise.all(queued)).toEqual(['b!', 'c!']);
    expect(control.calls).toEqual([['a'], ['b', 'c']]);
  });

  it('rejects every request of a failed call; the next call still runs', async () => {
    const control = controlledRun();
    const batcher = new MicroBatcher(control.run, { maxWaitMs: 0 });
    const failing = batcher.submit('a', 1);
    await tick();
    const next = [batcher.submit('b', 1), batcher.submit('c', 1)];
    control.fail(new Error('out of memory'));
    await expect(failing).rejects.toThrow('out of memory');
    await tick();
    control.release();
    expect(await Promise.all(next)).toEqual(['b!', 'c!']);
  });

  it('close() refuses new requests and resolves after the running and queued ones are answered', async () => {
    const control = controlledRun();
    const batcher = new MicroBatcher(control.run, { maxWaitMs: 0 });
    const answers: string[] = [];
    const running = batcher.submit('a', 1).then((answer) => answers.push(answer));
    await tick();
    const queued = batcher.submit('b', 1).then((answer) => answers.push(answer));
    let closed = false;
    const closing = batcher.close().then(() => {
      closed = true;
    });
    await expect(batcher.submit('c', 1)).rejects.toThrow(DisposedError);
    control.release();
    await running;
    await tick();
    expect(closed).toBe(false);
    control.release();
    await Promise.all([queued, closing, batcher.close()]);
    expect(answers).toEqual(['a!', 'b!']);
    expect(closed).toBe(true);
    await batcher.close(); // idempotent
  });

  it('close() sends a batch that is waiting for company at once', async () => {
    const batcher = new MicroBatcher(async (items: string[]) => items, { maxWaitMs: 60_000 });
    const answer = batcher.submit('a', 1);
    const started = performance.now();
    await batcher.close();
    expect(await answer).toBe('a');
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('checks its limits', () => {
    expect(() => new MicroBatcher(async () => [], { maxBatchRows: 0 })).toThrow(ValidationError);
    expect(() => new MicroBatcher(async () => [], { maxWaitMs: -1 })).toThrow(/maxWaitMs must be an integer >= 0/);
    expect(() => new MicroBatcher(async () => [], { maxQueue: 1.5 })).toThrow(/maxQueue/);
  });
});

describe('metrics', () => {
  it('renders counters, gauges and histograms in the Prometheus text format', () => {
    const registry = new MetricsRegistry();
    const requests = registry.add(new Counter('adatt_requests_total', 'Requests by route and code.'));
    requests.inc({ route: '/predict', code: '200' });
    requests.inc({ route: '/predict', code: '200' });
    requests.inc({ route: '/a"b\\c\nd', code: '404' });
    let depth = 3;
    registry.add(new Gauge('adatt_queue_requests', 'Waiting requests.', () => depth));
    const latency = registry.add(new Histogram('adatt_request_duration_seconds', 'Latency.', [0.01, 0.001, 0.1]));
    for (const seconds of [0.0005, 0.002, 0.002, 0.05, 3]) latency.observe(seconds);
    depth = 5;
    const text = registry.render();
    const samples = parseExposition(text);
    expect(samples.get('adatt_requests_total{route="/predict",code="200"}')).toBe(2);
    expect(samples.get('adatt_requests_total{route="/a\\"b\\\\c\\nd",code="404"}')).toBe(1);
    expect(samples.get('adatt_queue_requests')).toBe(5);
    expect([0.001, 0.01, 0.1].map((le) => samples.get(`adatt_request_duration_seconds_bucket{le="${le}"}`))).toEqual([1, 3, 4]);
    expect(samples.get('adatt_request_duration_seconds_bucket{le="+Inf"}')).toBe(5);
    expect(samples.get('adatt_request_duration_seconds_sum')).toBeCloseTo(3.0545, 10);
    expect(text).toContain('# TYPE adatt_request_duration_seconds histogram\n');
    expect(requests.value({ route: '/predict', code: '200' })).toBe(2);
  });

  it('makes exponential buckets', () => {
    expect(exponentialBuckets(0.0005, 2, 4)).toEqual([0.0005, 0.001, 0.002, 0.004]);
  });
});
