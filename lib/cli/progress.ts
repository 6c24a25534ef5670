/**
 * Training progress in three forms: a live bar redrawn in place on a terminal (epoch, batch,
 * examples/s, ETA, running loss per task), plain lines when stderr is a file or pipe (a CI log),
 * and JSON-lines events with --json.
 */
import type { TaskConfig } from '../config';
import type { EpochSummary, ProgressEvent } from '../training';
import { formatCompact, formatDuration, formatMetric, HEADLINE_METRIC } from './format';
import type { Output } from './output';

export interface TrainingPlan {
  epochs: number;
  trainRows: number;
  tasks: readonly TaskConfig[];
}

/** Without a terminal, one progress line this often at most (epoch lines are always written). */
const LINE_INTERVAL_MS = 10_000;
const BAR_WIDTH = 24;

export class TrainingReporter {
  #lastLine = 0;

  constructor(
    private readonly out: Output,
    private readonly plan: TrainingPlan,
  ) {}

  progress(event: ProgressEvent): void {
    if (this.out.json) {
      this.out.event('progress', { ...event });
      return;
    }
    if (this.out.interactive) {
      this.out.status(this.#barLine(event));
      return;
    }
    const now = Date.now();
    if (now - this.#lastLine < LINE_INTERVAL_MS) return;
    this.#lastLine = now;
    this.out.info(
      `${this.#epochLabel(event.epoch)} batch ${event.batch}/${event.batches}  ` +
        `${formatCompact(event.examplesPerSecond)} ex/s  ETA ${formatDuration(this.#eta(event))}  loss ${losses(event.loss)}`,
    );
  }

  epoch(summary: EpochSummary): void {
    if (this.out.json) {
      this.out.event('epoch', { ...summary });
      return;
    }
    const { style } = this.out;
    const parts = [
      style.bold(this.#epochLabel(summary.epoch)),
      `${summary.seconds.toFixed(1)}s`,
      `${formatCompact(summary.examplesPerSecond)} ex/s`,
      `loss ${losses(summary.loss)}`,
    ];
    if (summary.validation) {
      const shown = this.plan.tasks.map((task) => {
        const metric = HEADLINE_METRIC[task.type];
        const value = summary.validation?.[task.name]?.[metric];
        return `${task.name} ${metric} ${formatMetric(metric, value)}`;
      });
      parts.push(`${style.dim('│')} val ${shown.join(', ')}`);
    }
    if (summary.best) parts.push(style.green('★ best'));
    if (summary.skipped > 0) parts.push(style.yellow(`${summary.skipped} batches skipped (non-finite loss)`));
    this.out.info(parts.join('  '));
  }

  #epochLabel(epoch: number): string {
    return `epoch ${epoch + 1}/${this.plan.epochs}`;
  }

  /** Seconds left: the rest of this epoch and the epochs after it at the current rate (validation not counted). */
  #eta(event: ProgressEvent): number {
    const remaining = this.plan.trainRows - event.examples + (this.plan.epochs - event.epoch - 1) * this.plan.trainRows;
    return event.examplesPerSecond > 0 ? remaining / event.examplesPerSecond : NaN;
  }

  #barLine(event: ProgressEvent): string {
    const fraction = event.batches > 0 ? event.batch / event.batches : 0;
    const filled = Math.round(fraction * BAR_WIDTH);
    const bar = `${'█'.repeat(filled)}${this.out.style.dim('░'.repeat(BAR_WIDTH - filled))}`;
    return (
      `${this.#epochLabel(event.epoch)} ${bar} ${event.batch}/${event.batches}  ` +
      `${formatCompact(event.examplesPerSecond)} ex/s  ETA ${formatDuration(this.#eta(event))}  loss ${losses(event.loss)}`
    );
  }
}

function losses(loss: Record<string, number>): string {
  return Object.entries(loss)
    .map(([task, value]) => `${task} ${value.toFixed(4)}`)
    .join(', ');
}
