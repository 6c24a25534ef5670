/** Serving: raw rows in (`Predictor`). See docs/serving.md. */
export { Predictor } from './predictor';
export type { FeatureRow, Prediction } from './predictor';
export type { EncodedFeatures } from '../data/encode';
