/**
 * Training and evaluation: `fit` (fit.ts: the epoch loop; options.ts: its options and defaults;
 * checkpoints.ts, early-stopping.ts, task-weighting.ts: what happens between epochs), and
 * `evaluate`, `predict`, `calibrate` (evaluation.ts). Public types are in types.ts.
 */
export { fit } from './fit';
export { calibrate, evaluate, predict, predictChunks, reliabilityCurves } from './evaluation';
export { MAXIMIZED_METRICS } from './early-stopping';
export { dwaWeights } from './task-weighting';
export type * from './types';
