/**
 * Ctrl-C handling. The first SIGINT asks the running work to stop at a safe point (training: before
 * the next batch, then a checkpoint is saved); a second one exits at once with code 130.
 */
import { EXIT } from './exit';
import type { Output } from './output';

export class Interrupts implements Disposable {
  readonly #controller = new AbortController();
  readonly #listener: () => void;

  /** `onFirst` says what happens now (e.g. "finishing the current batch…"). */
  constructor(out: Output, onFirst: () => string) {
    this.#listener = (): void => {
      if (this.#controller.signal.aborted) {
        out.info('interrupted again: exiting without saving');
        process.exit(EXIT.interrupted);
      }
      this.#controller.abort();
      out.info(onFirst());
    };
    process.on('SIGINT', this.#listener);
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get interrupted(): boolean {
    return this.#controller.signal.aborted;
  }

  [Symbol.dispose](): void {
    process.off('SIGINT', this.#listener);
  }
}

/** For commands with nothing to save: Ctrl-C exits with 130 and a word instead of a bare signal death. */
export function exitOnInterrupt(out: Output): () => void {
  const listener = (): void => {
    out.info('interrupted');
    process.exit(EXIT.interrupted);
  };
  process.on('SIGINT', listener);
  return () => process.off('SIGINT', listener);
}
