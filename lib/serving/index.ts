/** Serving: raw rows in (`Predictor`), micro-batched HTTP (`PredictionServer`), Prometheus metrics. See docs/serving.md. */
export { Predictor } from './predictor';
export type { FeatureRow, Prediction } from './predictor';
export { MicroBatcher } from './batcher';
export type { BatcherOptions, BatchRecord } from './batcher';
export { PredictionServer } from './server';
export type { ServerOptions } from './server';
export { Counter, Gauge, Histogram, MetricsRegistry } from './metrics';
export type { EncodedFeatures } from '../data/encode';
