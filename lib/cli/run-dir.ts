/**
 * The run directory `adatt train` writes, and reads back for `report`, `eval`, `predict`,
 * `inspect` and `export`:
 *
 *   config.json     the resolved run config (re-run it: adatt train config.json --out other)
 *   run.json        what happened: versions, data sizes, model config and parameters, status, files
 *   metrics.jsonl   one JSON object per epoch (training loss, validation metrics), then the test metrics
 *   gates.json      per fusion level, each gate's mean weight on each expert over validation rows
 *   calibration.json  with training.calibration: the calibrators fitted on validation, curves before and after
 *   model.adatt     the final model with its data schema (the best epoch's weights with early stopping)
 *   checkpoints/    epoch-NNNN.adatt with the full training state (resume), interrupted.adatt on Ctrl-C
 *   report.html     self-contained report: curves, metrics, expert utilisation
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { TaskConfig, ModelConfig } from '../config';
import { FileError } from '../errors';
import { ensureDirectory, fileError, writeFileAtomic } from '../files';
import type { Calibration } from '../calibration';
import type { CalibrationResult, EpochSummary, Metrics } from '../training';
import { isRecord } from '../validation';
import { UsageError } from './exit';
import { jsonReplacer } from './output';
import type { ParameterGroup } from './parameters';

export const RUN_FILES = Object.freeze({
  config: 'config.json',
  run: 'run.json',
  metrics: 'metrics.jsonl',
  gates: 'gates.json',
  calibration: 'calibration.json',
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
  | ({ type: 'epoch' /** Cut short by an interrupt. */; partial?: boolean } & EpochSummary)
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

export interface CalibrationRecord {
  /** The rows the calibrators were fitted on, e.g. 'validation'. */
  split: string;
  rows: number;
  calibration: Calibration;
  curves: CalibrationResult['curves'];
}

/** Everything a report is made from. */
export interface RunArtifacts {
  dir: string;
  config: Record<string, unknown>;
  run: RunInfo;
  metrics: MetricsRecord[];
  gates?: GateRecord;
  calibration?: CalibrationRecord;
}

export class RunDirectory {
  /** What this run created, for discard(). */
  readonly #writtenFiles = new Set<string>();
  readonly #createdDirectories: string[] = [];

  private constructor(readonly dir: string) {}

  /** Opens an existing run directory (one with run.json). */
  static async open(dir: string): Promise<RunDirectory> {
    const resolved = path.resolve(dir);
    if (!(await isRunDirectory(resolved))) {
      throw new UsageError(`${dir} is not a run directory (it has no ${RUN_FILES.run}; adatt train writes one)`);
    }
    return new RunDirectory(resolved);
  }

  /**
   * Creates `dir` for a new run. A folder that already holds a run is kept unless `overwrite`, which
   * removes that run's files (and only those). A non-empty folder without a run is refused too
   * unless `overwrite`; then the run goes beside its files, but never over one of them.
   */
  static async create(dir: string, options: { overwrite: boolean }): Promise<RunDirectory> {
    const resolved = path.resolve(dir);
    const entries = await entriesOf(resolved, dir);
    if (await isRunDirectory(resolved)) {
      if (!options.overwrite) {
        throw new UsageError(`${dir} already holds a run; choose another --out or pass --overwrite`);
      }
      await removeRunFiles(resolved);
    } else if (entries.length > 0) {
      if (!options.overwrite) {
        throw new UsageError(
          `${dir} is not empty and holds no run; choose a new or empty --out, or pass --overwrite to write the run beside its files`,
        );
      }
      const clashes = entries.filter((name) => TOP_LEVEL_FILES.includes(name));
      if (clashes.length > 0) {
        throw new UsageError(
          `${dir} holds no run but has its own ${clashes.join(', ')}, which the run would overwrite; move them or choose another --out`,
        );
      }
    }
    const run = new RunDirectory(resolved);
    await run.#createDirectory(run.path('checkpoints'));
    return run;
  }

  /**
   * Removes what this run created: the files it wrote, then the folders it made where that leaves
   * them empty. For runs that failed before doing anything; whatever else --out holds stays.
   */
  async discard(): Promise<void> {
    for (const file of this.#writtenFiles) await fs.rm(file, { force: true });
    for (const directory of [...this.#createdDirectories].reverse()) await fs.rmdir(directory).catch(() => undefined);
  }

  path(file: RunFile): string {
    return path.join(this.dir, RUN_FILES[file]);
  }

  /** A path relative to the run directory, as stored in run.json. */
  relative(file: string): string {
    return path.relative(this.dir, file);
  }

  async writeJson(file: 'config' | 'run' | 'gates' | 'calibration', value: unknown): Promise<void> {
    this.#writtenFiles.add(this.path(file));
    await writeFileAtomic(this.path(file), [Buffer.from(`${JSON.stringify(value, jsonReplacer, 2)}\n`)]);
  }

  async appendMetrics(record: MetricsRecord): Promise<void> {
    this.#writtenFiles.add(this.path('metrics'));
    await fs.appendFile(this.path('metrics'), `${JSON.stringify(record, jsonReplacer)}\n`);
  }

  async writeReport(html: string): Promise<void> {
    this.#writtenFiles.add(this.path('report'));
    await writeFileAtomic(this.path('report'), [Buffer.from(html)]);
  }

  /** mkdir -p, noting each folder it made. */
  async #createDirectory(directory: string): Promise<void> {
    const first = await ensureDirectory(directory);
    if (first === undefined) return;
    const below = path.relative(first, directory).split(path.sep).filter(Boolean);
    this.#createdDirectories.push(first, ...below.map((_, i) => path.join(first, ...below.slice(0, i + 1))));
  }

  async readArtifacts(): Promise<RunArtifacts> {
    const config = await readJson(this.path('config'));
    const run = (await readJson(this.path('run'))) as unknown as RunInfo;
    const metricsText = await fs.readFile(this.path('metrics'), 'utf8').catch(() => '');
    const metrics = metricsText
      .split('\n')
      .filter((line) => line.trim())
      .map((line, i) => {
        try {
          return JSON.parse(line) as MetricsRecord;
        } catch {
          throw new FileError(`${this.path('metrics')} line ${i + 1} is not JSON`);
        }
      });
    const gates = (await readOptionalJson(this.path('gates'))) as GateRecord | undefined;
    const calibration = (await readOptionalJson(this.path('calibration'))) as CalibrationRecord | undefined;
    return { dir: this.dir, config, run, metrics, ...(gates ? { gates } : {}), ...(calibration ? { calibration } : {}) };
  }
}

/** The run's files and folders directly in its directory (checkpoints/ holds the rest). */
const TOP_LEVEL_FILES: readonly string[] = Object.values(RUN_FILES).filter((file) => !file.includes(path.sep));

/** What fit and train write into checkpoints/. */
const CHECKPOINT_NAME = /^(?:epoch-\d{4,}|interrupted)\.adatt$/;

/** The names in `dir` ([] when it does not exist yet); a UsageError when it is a file. */
async function entriesOf(dir: string, given: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    if (code === 'ENOTDIR') throw new UsageError(`--out ${given} is a file, expected a directory`);
    throw fileError('read', dir, err);
  }
}

/** Removes an earlier run's files from `dir`: its own names only, so files the user added stay. */
async function removeRunFiles(dir: string): Promise<void> {
  const checkpoints = path.join(dir, RUN_FILES.checkpoints);
  const saved = await fs.readdir(checkpoints).catch(() => [] as string[]);
  for (const name of saved.filter((entry) => CHECKPOINT_NAME.test(entry))) await fs.rm(path.join(checkpoints, name), { force: true });
  await fs.rmdir(checkpoints).catch(() => undefined);
  for (const file of TOP_LEVEL_FILES.filter((name) => name !== RUN_FILES.checkpoints)) await fs.rm(path.join(dir, file), { force: true });
}

export async function isRunDirectory(dir: string): Promise<boolean> {
  return fs.access(path.join(dir, RUN_FILES.run)).then(
    () => true,
    () => false,
  );
}

/** A run file that runs may lack (older runs, or runs without that step): undefined when absent. */
async function readOptionalJson(file: string): Promise<Record<string, unknown> | undefined> {
  return readJson(file).catch((err: unknown) => {
    if ((err as { cause?: NodeJS.ErrnoException }).cause?.code === 'ENOENT') return undefined;
    throw err;
  });
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
