/**
 * The run directory `adatt train` writes, and reads back for `report`, `eval`, `predict`,
 * `inspect` and `export`:
 *
 *   config.json     the resolved run config (re-run it: adatt train config.json --out other)
 *   run.json        what happened: versions, data sizes, model config and parameters, status, files
 *   metrics.jsonl   one JSON object per epoch (training loss, validation metrics), then the test metrics
 *   gates.json      per fusion level, each gate's mean weight on each expert over validation rows
 *   model.adatt     the final model with its data schema (the best epoch's weights with early stopping)
 *   checkpoints/    epoch-NNNN.adatt with the full training state (resume), interrupted.adatt on Ctrl-C
 *   report.html     self-contained report: curves, metrics, expert utilisation
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { TaskConfig, ModelConfig } from '../config';
import { FileError } from '../errors';
import { writeFileAtomic } from '../files';
import type { EpochSummary, Metrics } from '../training';
import { isRecord } from '../validation';
import { UsageError } from './exit';
import { jsonReplacer } from './output';
import type { ParameterGroup } from './parameters';

export const RUN_FILES = Object.freeze({
  config: 'config.json',
  run: 'run.json',
  metrics: 'metrics.jsonl',
  gates: 'gates.json',
  model: 'model.adatt',
  checkpoints: 'checkpoints',
  interrupted: path.join('checkpoints', 'interrupted.adatt'),
  report: 'report.html',
});

export type RunFile = keyof typeof RUN_FILES;

export type RunStatus = 'running' | 'completed' | 'stopped-early' | 'interrupted' | 'failed';

export interface RunInfo {
  adatt: string;
  libtorch: string;
  command: string[];
  startedAt: string;
  finishedAt?: string;
  seconds?: number;
  status: RunStatus;
  error?: string;
  resumedFrom?: string;
  dataset: { name: string; rows: Record<string, number>; tasks: TaskConfig[] };
  model: { config: ModelConfig; parameters: number; parts: ParameterGroup[] };
  training: {
    epochs: number;
    completedEpochs: number;
    steps?: number;
    bestEpoch?: number;
    bestValue?: number;
    /** The early-stopping metric, e.g. { metric: 'auc', task: 'mean' }. */
    monitor?: { metric: string; task: string };
  };
  /** Paths relative to the run directory. */
  files: { model?: string; checkpoints: string[]; interrupted?: string };
}

export type MetricsRecord =
  | ({ type: 'epoch'; /** Cut short by an interrupt. */ partial?: boolean } & EpochSummary)
  | { type: 'test'; metrics: Metrics };

export interface GateLevelRecord {
  level: number;
  gates: string[];
  experts: string[];
  /** Per gate, its mean softmax weight on each expert. */
  weights: number[][];
}

export interface GateRecord {
  /** Which rows the means are over, e.g. 'validation'. */
  split: string;
  rows: number;
  levels: GateLevelRecord[];
}

/** Everything a report is made from. */
export interface RunArtifacts {
  dir: string;
  config: Record<string, unknown>;
  run: RunInfo;
  metrics: MetricsRecord[];
  gates?: GateRecord;
}

export class RunDirectory {
  private constructor(readonly dir: string) {}

  /** Opens an existing run directory (one with run.json). */
  static async open(dir: string): Promise<RunDirectory> {
    const resolved = path.resolve(dir);
    if (!(await isRunDirectory(resolved))) {
      throw new UsageError(`${dir} is not a run directory (it has no ${RUN_FILES.run}; adatt train writes one)`);
    }
    return new RunDirectory(resolved);
  }

  /** Creates `dir` for a new run; a directory that already holds a run is kept unless `overwrite`. */
  static async create(dir: string, options: { overwrite: boolean }): Promise<RunDirectory> {
    const resolved = path.resolve(dir);
    if (await isRunDirectory(resolved)) {
      if (!options.overwrite) {
        throw new UsageError(`${dir} already holds a run; choose another --out or pass --overwrite`);
      }
      for (const file of Object.values(RUN_FILES)) await fs.rm(path.join(resolved, file), { recursive: true, force: true });
    }
    await fs.mkdir(path.join(resolved, RUN_FILES.checkpoints), { recursive: true });
    return new RunDirectory(resolved);
  }

  /**
   * Removes what this run wrote (only its own files: --out may be a folder with other things in it),
   * and the folder when that leaves it empty. For runs that failed before doing anything.
   */
  async discard(): Promise<void> {
    for (const file of Object.values(RUN_FILES)) await fs.rm(path.join(this.dir, file), { recursive: true, force: true });
    await fs.rmdir(this.dir).catch(() => undefined);
  }

  path(file: RunFile): string {
    return path.join(this.dir, RUN_FILES[file]);
  }

  /** A path relative to the run directory, as stored in run.json. */
  relative(file: string): string {
    return path.relative(this.dir, file);
  }

  async writeJson(file: 'config' | 'run' | 'gates', value: unknown): Promise<void> {
    await writeFileAtomic(this.path(file), [Buffer.from(`${JSON.stringify(value, jsonReplacer, 2)}\n`)]);
  }

  async appendMetrics(record: MetricsRecord): Promise<void> {
    await fs.appendFile(this.path('metrics'), `${JSON.stringify(record, jsonReplacer)}\n`);
  }

  async writeReport(html: string): Promise<void> {
    await writeFileAtomic(this.path('report'), [Buffer.from(html)]);
  }

  async readArtifacts(): Promise<RunArtifacts> {
    const config = await readJson(this.path('config'));
    const run = await readJson(this.path('run')) as unknown as RunInfo;
    const metricsText = await fs.readFile(this.path('metrics'), 'utf8').catch(() => '');
    const metrics = metricsText.split('\n').filter((line) => line.trim()).map((line, i) => {
      try {
        return JSON.parse(line) as MetricsRecord;
      } catch {
        throw new FileError(`${this.path('metrics')} line ${i + 1} is not JSON`);
      }
    });
    const gates = await readJson(this.path('gates')).catch((err: unknown) => {
      if ((err as { cause?: NodeJS.ErrnoException }).cause?.code === 'ENOENT') return undefined;
      throw err;
    }) as GateRecord | undefined;
    return { dir: this.dir, config, run, metrics, ...(gates ? { gates } : {}) };
  }
}

export async function isRunDirectory(dir: string): Promise<boolean> {
  return fs.access(path.join(dir, RUN_FILES.run)).then(() => true, () => false);
}

async function readJson(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new FileError(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const value: unknown = JSON.parse(text);
    if (!isRecord(value)) throw new Error('not an object');
    return value;
  } catch (err) {
    throw new FileError(`${file} is not a JSON object: ${(err as Error).message}`);
  }
}
