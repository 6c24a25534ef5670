/**
 * The synthetic two-task regression data of the MMoE paper (Ma et al., KDD 2018, section 4), whose
 * task relatedness is set by the correlation p of the tasks' weight vectors:
 *   u1, u2 orthogonal unit vectors; w1 = c·u1, w2 = c·(p·u1 + sqrt(1 − p²)·u2); x ~ N(0, I_d);
 *   y_i = w_iᵀx + Σ_j sin(α_j·w_iᵀx + β_j) + ε_i,  ε_i ~ N(0, noiseStd²).
 * The paper does not give α_j and β_j; here they are drawn from N(0, 1), shared by both tasks.
 */
import { optionsChecker } from '../../validation';
import { encode } from '../encode';
import { fitSchema } from '../fit';
import { requireSeed, SeededRandom } from '../random';
import { splitRandom } from '../split';
import { tableFromColumns, type Table } from '../table';
import type { SchemaSpec } from '../types';
import type { EncodedDataset } from './uci';

export interface SyntheticOptions {
  /** Rows in all (default 10,000), split 80/10/10 into train, validation and test by `loadSynthetic`. */
  size?: number;
  /** Input dimension d (default 100). */
  inputDim?: number;
  /** Correlation p of the two tasks' weight vectors, in [-1, 1] (default 0.5). */
  correlation?: number;
  /** Number m of sine terms (default 10). */
  sineTerms?: number;
  /** Scale c of the weight vectors (default 1). */
  scale?: number;
  /** Standard deviation of the label noise (default 0.01). */
  noiseStd?: number;
  /** Seed of everything random: vectors, α, β, inputs, noise and the split (default 0). */
  seed?: number;
}

const MAX_CELLS = 2 ** 28;

function checkOptions(options: unknown): Required<SyntheticOptions> {
  const check = optionsChecker('synthetic options');
  const given = check.record(options, '', ['size', 'inputDim', 'correlation', 'sineTerms', 'scale', 'noiseStd', 'seed']);
  const inputDim = given.inputDim === undefined ? 100 : check.integer(given.inputDim, 'inputDim', 2, 65_536);
  const size = given.size === undefined ? 10_000 : check.integer(given.size, 'size', 1, Math.floor(MAX_CELLS / inputDim));
  const correlation = given.correlation === undefined ? 0.5 : check.finite(given.correlation, 'correlation');
  if (Math.abs(correlation) > 1) check.fail('correlation', `correlation must be in [-1, 1], got ${correlation}`);
  const noiseStd = given.noiseStd === undefined ? 0.01 : check.finite(given.noiseStd, 'noiseStd');
  if (noiseStd < 0) check.fail('noiseStd', `noiseStd must be >= 0, got ${noiseStd}`);
  return {
    size,
    inputDim,
    correlation,
    noiseStd,
    sineTerms: given.sineTerms === undefined ? 10 : check.integer(given.sineTerms, 'sineTerms', 0, 1_000),
    scale: given.scale === undefined ? 1 : check.finite(given.scale, 'scale'),
    seed: given.seed === undefined ? 0 : requireSeed(given.seed, 'seed'),
  };
}

/** Two orthogonal unit vectors (Gram-Schmidt on two Gaussian vectors). */
function orthonormalPair(random: SeededRandom, dim: number): [Float64Array, Float64Array] {
  const normalize = (vector: Float64Array): Float64Array => {
    const norm = Math.sqrt(vector.reduce((sum, value) => sum + value * value, 0));
    return vector.map((value) => value / norm);
  };
  const u1 = normalize(Float64Array.from({ length: dim }, () => random.normal()));
  const v = Float64Array.from({ length: dim }, () => random.normal());
  const projection = v.reduce((sum, value, k) => sum + value * (u1[k] as number), 0);
  return [u1, normalize(v.map((value, k) => value - projection * (u1[k] as number)))];
}

/** The generated rows as a table: columns x0 … x{d−1}, y1, y2. */
export function generateSynthetic(options: SyntheticOptions = {}): Table {
  const { size, inputDim, correlation, sineTerms, scale, noiseStd, seed } = checkOptions(options);
  const random = new SeededRandom(seed);
  const [u1, u2] = orthonormalPair(random, inputDim);
  const w1 = u1.map((value) => scale * value);
  const w2 = u1.map((value, k) => scale * (correlation * value + Math.sqrt(1 - correlation ** 2) * (u2[k] as number)));
  const alphas = Float64Array.from({ length: sineTerms }, () => random.normal());
  const betas = Float64Array.from({ length: sineTerms }, () => random.normal());
  const label = (projection: number): number => {
    let value = projection;
    for (let j = 0; j < sineTerms; j++) value += Math.sin((alphas[j] as number) * projection + (betas[j] as number));
    return value + noiseStd * random.normal();
  };

  const inputs = Array.from({ length: inputDim }, () => new Float64Array(size));
  const y1 = new Float64Array(size);
  const y2 = new Float64Array(size);
  for (let row = 0; row < size; row++) {
    let projection1 = 0;
    let projection2 = 0;
    for (let k = 0; k < inputDim; k++) {
      const x = random.normal();
      (inputs[k] as Float64Array)[row] = x;
      projection1 += (w1[k] as number) * x;
      projection2 += (w2[k] as number) * x;
    }
    y1[row] = label(projection1);
    y2[row] = label(projection2);
  }
  const columns: Record<string, Float64Array> = {};
  inputs.forEach((values, k) => {
    columns[`x${k}`] = values;
  });
  return tableFromColumns({ ...columns, y1, y2 }, { source: 'synthetic data' });
}

/** Generates the data, splits it 80/10/10 (seeded) and encodes it (inputs are not rescaled). */
export async function loadSynthetic(options: SyntheticOptions = {}): Promise<EncodedDataset> {
  const table = generateSynthetic(options);
  const { train, validation, test } = splitRandom(table, { train: 0.8, validation: 0.1, test: 0.1 }, options.seed ?? 0);
  const spec: SchemaSpec = {
    dense: table.columnNames.filter((name) => name.startsWith('x')).map((column) => ({ column, normalize: 'none' })),
    tasks: [
      { name: 'y1', type: 'regression', column: 'y1' },
      { name: 'y2', type: 'regression', column: 'y2' },
    ],
  };
  const schema = fitSchema(spec, train);
  return { name: 'synthetic', schema, train: encode(schema, train), validation: encode(schema, validation), test: encode(schema, test) };
}
