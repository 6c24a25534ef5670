/** Runs the in-repo Python reference (scripts/reference) with Debian's python3-torch. */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { NativeModelConfig } from '../../lib/addon';
import type { Batch } from '../../lib/batch';
import type { ModelConfig } from '../../lib/config';

/** Debian's interpreter: it has python3-torch (the pyenv python3 first on PATH does not). */
export const PYTHON = process.env.ADATT_PYTHON ?? '/usr/bin/python3';
export const REPO_ROOT = path.join(__dirname, '..', '..');

export function runPython(script: string, args: string[]): string {
  return execFileSync(PYTHON, [path.join(REPO_ROOT, 'scripts', 'reference', script), ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export function makeTempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `adatt-${prefix}-`));
}

export interface FixtureTensor {
  shape: number[];
  data: number[];
}

export interface ParityCase {
  name: string;
  config: NativeModelConfig;
  batch: {
    size: number;
    dense: number[];
    categorical: number[];
    multiValued: { indices: number[]; offsets: number[] }[];
  };
  outputs: number[][];
  seeds: number[][];
  gradients: Record<string, FixtureTensor>;
  gates: { gates: number; experts: number; data: number[] }[];
  plainDict?: boolean;
}

/**
 * A directory of fixtures: the one named by the environment variable `override` (fixtures made
 * elsewhere, e.g. by a newer PyTorch in CI: scripts/test-torch2.sh --make-fixtures), else a fresh
 * one that `script` fills.
 */
export function pythonFixtures(script: string, prefix: string, override: string): string {
  const made = process.env[override];
  if (made) return made;
  const dir = makeTempDir(prefix);
  runPython(script, [dir]);
  return dir;
}

/** The parity fixtures (ADATT_PARITY_FIXTURES to use others) and their case names. */
export function generateParityFixtures(): { dir: string; names: string[] } {
  const dir = pythonFixtures('make_parity_fixtures.py', 'parity', 'ADATT_PARITY_FIXTURES');
  const names = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as string[];
  return { dir, names };
}

export function readCase(dir: string, name: string): ParityCase {
  return JSON.parse(fs.readFileSync(path.join(dir, `${name}.json`), 'utf8')) as ParityCase;
}

/** The user-facing config that normalises to `native` (the fixtures carry normalised configs). */
export function userConfigOf(native: NativeModelConfig): ModelConfig {
  const common = {
    input: {
      dense: native.denseDim,
      categorical: native.categorical.map((f, i) => ({ name: `c${i}`, vocab: f.vocab, dim: f.dim })),
      multiValued: native.multiValued.map((f, i) => ({ name: `m${i}`, vocab: f.vocab, dim: f.dim, pooling: f.pooling })),
    },
    tasks: native.tasks.map((t) =>
      t.outputs > 1 ? { name: t.name, type: 'multiclass' as const, classes: t.outputs } : { name: t.name, type: 'binary' as const },
    ),
    expertDims: native.expertDims,
    towerDims: native.towerDims,
    seed: native.seed,
  };
  switch (native.kind) {
    case 'adatt-sp':
      return { ...common, kind: 'adatt-sp', expertsPerTask: native.expertsPerTask[0]!, nativeResidual: native.nativeResidual };
    case 'adatt':
      return {
        ...common,
        kind: 'adatt',
        expertsPerTask: native.expertsPerTask,
        sharedExperts: native.sharedExperts,
        nativeResidual: native.nativeResidual,
      };
    case 'mmoe':
      return { ...common, kind: 'mmoe', experts: native.sharedExperts, gateDims: native.gateDims };
    case 'ple':
      return { ...common, kind: 'ple', expertsPerTask: native.expertsPerTask, sharedExperts: native.sharedExperts };
    default:
      return { ...common, kind: native.kind };
  }
}

export function batchOf(c: ParityCase): Batch {
  const batch: Batch = { size: c.batch.size };
  if (c.config.denseDim > 0) batch.dense = new Float32Array(c.batch.dense);
  if (c.config.categorical.length > 0) batch.categorical = new Int32Array(c.batch.categorical);
  if (c.config.multiValued.length > 0) {
    batch.multiValued = c.batch.multiValued.map((bag) => ({
      indices: new Int32Array(bag.indices),
      offsets: new Int32Array(bag.offsets),
    }));
  }
  return batch;
}

/** Largest |a - b| / max(1, |b|) over two equally long arrays (throws if lengths differ). */
export function maxRelativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != expected ${expected.length}`);
  let worst = 0;
  for (let i = 0; i < actual.length; i += 1) {
    const error = Math.abs(actual[i]! - expected[i]!) / Math.max(1, Math.abs(expected[i]!));
    if (!(error <= worst)) worst = Number.isNaN(error) ? Infinity : error;
  }
  return worst;
}
