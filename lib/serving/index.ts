/** Serving: raw rows in (`Predictor`), micro-batching, Prometheus metrics. See docs/serving.md. */
export { Predictor } from './predictor';
export type { FeatureRow, Prediction } from './predictor';
export type { EncodedFeatures } from '../data/encode';
export { MicroBatcher } from './batcher';
export type { BatcherOptions, BatchRecord } from './batcher';
export { Counter, Gauge, Histogram, MetricsRegistry } from './metrics';
