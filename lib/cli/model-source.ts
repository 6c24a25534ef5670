/**
 * The MODEL argument of eval, predict, inspect and export: a checkpoint file, or a run directory
 * (its model.adatt, else its newest checkpoint). A checkpoint inside a run directory also brings
 * the run's data config, so `adatt eval runs/x` needs no --data.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { loadCheckpoint, type Checkpoint } from '../checkpoint';
import type { Device } from '../model';
import { isRecord } from '../validation';
import { UsageError } from './exit';
import { isRunDirectory, RUN_FILES, RunDirectory } from './run-dir';
import type { DataSection } from './run-config';

export interface ModelSource {
  /** The checkpoint file. */
  file: string;
  /** The run it belongs to, if any. */
  run?: RunDirectory;
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

/** The newest checkpoint of a run that has no final model (interrupted or still running). */
async function newestCheckpoint(run: RunDirectory): Promise<string | undefined> {
  const dir = run.path('checkpoints');
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const files = await Promise.all(
    names
      .filter((name) => name.endsWith('.adatt'))
      .map(async (name) => ({ file: path.join(dir, name), time: (await fs.stat(path.join(dir, name))).mtimeMs })),
  );
  return files.sort((a, b) => b.time - a.time)[0]?.file;
}

export async function resolveModelSource(argument: string): Promise<ModelSource> {
  const resolved = path.resolve(argument);
  const stat = await fs.stat(resolved).catch(() => undefined);
  if (!stat) throw new UsageError(`no such file or directory: ${argument}`);
  if (stat.isDirectory()) {
    if (!(await isRunDirectory(resolved))) {
      throw new UsageError(`${argument} is a directory but not a run directory (no ${RUN_FILES.run}); pass a .adatt checkpoint`);
    }
    const run = await RunDirectory.open(resolved);
    const file = (await exists(run.path('model'))) ? run.path('model') : await newestCheckpoint(run);
    if (!file) throw new UsageError(`the run ${argument} has no model.adatt and no checkpoints yet`);
    return { file, run };
  }
  // runs/x/model.adatt or runs/x/checkpoints/epoch-0003.adatt
  for (const dir of [path.dirname(resolved), path.dirname(path.dirname(resolved))]) {
    if (await isRunDirectory(dir)) return { file: resolved, run: await RunDirectory.open(dir) };
  }
  return { file: resolved };
}

export interface OpenedModel extends ModelSource {
  checkpoint: Checkpoint;
}

export async function openModel(argument: string, device?: Device): Promise<OpenedModel> {
  const source = await resolveModelSource(argument);
  const checkpoint = await loadCheckpoint(source.file, device === undefined ? {} : { device });
  return { ...source, checkpoint };
}

/** The data section of the run a model belongs to. */
export async function runDataSection(run: RunDirectory | undefined): Promise<DataSection | undefined> {
  if (!run) return undefined;
  const text = await fs.readFile(run.path('config'), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const config: unknown = JSON.parse(text);
  return isRecord(config) && isRecord(config.data) && (typeof config.data.source === 'string' || isRecord(config.data.source))
    ? (config.data as DataSection)
    : undefined;
}
