/** What every subcommand is, and the options and helpers several of them share. */
import * as path from 'node:path';
import type { Device } from '../model';
import { setThreadCount } from '../threads';
import type { CommandSpec, OptionSpec, ParsedArgs } from './args';
import { SPLITS, type SplitName } from './data';
import { UsageError } from './exit';
import { runDataSection, type ModelSource } from './model-source';
import type { Output } from './output';
import { isBuiltinDataset, streamReadingOf, type DataSection } from './run-config';

export interface Command {
  spec: CommandSpec;
  /** Resolves to the exit code; errors are reported (and mapped to exit codes) by the caller. */
  run(args: ParsedArgs, out: Output): Promise<number>;
  /** The command reacts to Ctrl-C itself; otherwise Ctrl-C exits at once with 130. */
  handlesInterrupts?: boolean;
}

export const JSON_OPTION: OptionSpec = { name: 'json', type: 'boolean', description: 'machine-readable JSON on stdout' };
export const DEVICE_OPTION: OptionSpec = { name: 'device', type: 'string', value: 'DEVICE', description: 'cpu (default), cuda or cuda:N' };
export const UNCALIBRATED_OPTION: OptionSpec = {
  name: 'uncalibrated',
  type: 'boolean',
  description: "the model's raw probabilities, without the calibration stored with it",
};
export const THREADS_OPTION: OptionSpec = {
  name: 'threads',
  type: 'integer',
  value: 'N',
  description: "LibTorch threads (default: LibTorch's)",
};

/** Where eval, predict and inspect read rows from (default: the data of the model's run). */
export const DATA_OPTIONS: OptionSpec[] = [
  {
    name: 'data',
    type: 'string',
    value: 'SOURCE',
    description:
      "census-income, adult, synthetic, a .csv/.parquet/.jsonl/.arrow file or a quoted glob of shards ('shards/*.parquet'; default: the run's data)",
  },
  {
    name: 'split',
    type: 'string',
    value: 'SPLIT',
    description: 'train, validation, test or all (all rows of a file); default test, or all for a --data file',
  },
  { name: 'tasks', type: 'string', value: 'GROUP', description: 'census-income task group the model was trained on' },
  {
    name: 'data-dir',
    type: 'string',
    value: 'DIR',
    description: 'folder of the built-in datasets (default $ADATT_DATA_DIR, else ~/.cache/adatt)',
  },
];

export function applyThreads(options: Record<string, unknown>): void {
  if (options.threads !== undefined) setThreadCount(options.threads as number);
}

export function deviceOf(options: Record<string, unknown>): Device | undefined {
  return options.device as Device | undefined;
}

/**
 * The data section and split that --data/--split/--tasks/--data-dir and the model's run select.
 * Without --split: `runSplit` of the run's data, every row of another file.
 */
export async function selectData(
  options: Record<string, unknown>,
  source: ModelSource,
  runSplit: SplitName = 'test',
): Promise<{ data: DataSection; split: SplitName | 'all' }> {
  const runData = await runDataSection(source.run);
  const requested = options.data as string | undefined;
  let data: DataSection;
  let defaultSplit: SplitName | 'all' = runSplit;
  let otherFileOfStreamedRun = false;
  if (requested === undefined) {
    if (!runData) throw new UsageError('--data is needed: this checkpoint is not inside a run directory, so its data is unknown');
    data = { ...runData };
  } else if (isBuiltinDataset(requested)) {
    // The same built-in dataset as the run keeps the run's loader options (task group, seed, …).
    data = runData?.source === requested ? { ...runData } : { source: requested };
  } else {
    const file = path.resolve(requested);
    const sameFile = runData?.source === file;
    // A file read like the run's data (CSV dialect, split) when it is the run's file, or with the run's CSV options otherwise.
    data = sameFile ? { ...runData } : { source: file, ...(runData?.csv ? { csv: runData.csv } : {}) };
    if (!sameFile && runData?.stream) {
      // Another file of a streamed run is streamed too: every row of it, with the run's reading options.
      data.stream = streamReadingOf(runData.stream);
      otherFileOfStreamedRun = true;
    }
    if (!sameFile) defaultSplit = 'all';
  }
  if (options.tasks !== undefined) data.tasks = options.tasks;
  if (options.dataDir !== undefined) data.dataDir = path.resolve(options.dataDir as string);
  const split = (options.split as string | undefined) ?? defaultSplit;
  if (split !== 'all' && !(SPLITS as readonly string[]).includes(split)) {
    throw new UsageError(`--split must be one of ${[...SPLITS, 'all'].join(', ')}, got '${split}'`);
  }
  if (otherFileOfStreamedRun && split !== 'all') {
    throw new UsageError(
      `--split ${split}: the splits of a streamed run are sources of their own (data.source, data.stream.validation, data.stream.test), so ${path.basename(requested!)} is read whole; leave --split out or give --split all`,
    );
  }
  return { data, split: split as SplitName | 'all' };
}
