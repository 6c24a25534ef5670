/** Checkpoint cadence during fit: when an epoch is saved, where, and which files are kept. */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { optionError, readNumber, readOptions } from '../validation';
import type { CheckpointOptions } from './types';

export function readCheckpointOptions(value: unknown, hasStopping: boolean): Required<CheckpointOptions> | undefined {
  if (value === undefined) return undefined;
  const spec = readOptions(value, 'checkpoint', ['dir', 'every', 'keepLast', 'keepBest']);
  if (typeof spec.dir !== 'string' || spec.dir === '') optionError('checkpoint.dir', 'checkpoint.dir must be a directory path');
  return {
    dir: path.resolve(spec.dir),
    every: readNumber(spec.every, 'checkpoint.every', 1, { min: 1, integer: true }),
    keepLast: readNumber(spec.keepLast, 'checkpoint.keepLast', 1, { min: 1, integer: true }),
    keepBest: readNumber(spec.keepBest, 'checkpoint.keepBest', hasStopping ? 1 : 0, { min: 0, integer: true }),
  };
}

/** The checkpoints of one run: saves every `every` epochs, the last and a stopping epoch, then prunes. */
export class CheckpointCadence {
  private readonly saved: { file: string; epoch: number; value?: number }[] = [];

  constructor(
    private readonly options: Required<CheckpointOptions>,
    private readonly totalEpochs: number,
    private readonly mode: 'max' | 'min',
  ) {}

  isDue(epoch: number, stopping: boolean): boolean {
    return (epoch + 1) % this.options.every === 0 || epoch + 1 === this.totalEpochs || stopping;
  }

  /** Writes epoch `epoch` with `write` (its monitored value ranks it for keepBest), then prunes. */
  async save(epoch: number, value: number | undefined, write: (file: string) => Promise<void>): Promise<void> {
    const file = path.join(this.options.dir, `epoch-${String(epoch).padStart(4, '0')}.adatt`);
    await write(file);
    this.saved.push({ file, epoch, value });
    await this.prune();
  }

  /** Files still on disk, oldest first. */
  get files(): string[] {
    return this.saved.map((entry) => entry.file);
  }

  /** Deletes checkpoints that are neither among the newest `keepLast` nor the best `keepBest`. */
  private async prune(): Promise<void> {
    const keep = new Set(this.saved.slice(-this.options.keepLast).map((entry) => entry.file));
    const ranked = this.saved
      .filter((entry) => entry.value !== undefined)
      .sort((a, b) => (this.mode === 'max' ? b.value! - a.value! : a.value! - b.value!));
    for (const entry of ranked.slice(0, this.options.keepBest)) keep.add(entry.file);
    for (let i = this.saved.length - 1; i >= 0; i -= 1) {
      if (keep.has(this.saved[i]!.file)) continue;
      await fs.rm(this.saved[i]!.file, { force: true });
      this.saved.splice(i, 1);
    }
  }
}
