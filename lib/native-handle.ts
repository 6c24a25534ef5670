/** The JS side of a native object: explicit dispose, `using` support, and typed use-after-dispose errors. */
import { callNative, DisposedError } from './errors';

export abstract class NativeHandle<Raw extends { dispose(): void }> implements Disposable {
  #raw: Raw | undefined;
  readonly #what: string;

  /** `what` names the object in errors, e.g. 'model'. */
  protected constructor(raw: Raw, what: string) {
    this.#raw = raw;
    this.#what = what;
  }

  get disposed(): boolean {
    return this.#raw === undefined;
  }

  /**
   * Frees the native object now instead of at garbage collection. Safe to call twice; every other
   * method then throws `DisposedError`. If the addon refuses, the object stays usable.
   */
  dispose(): void {
    const raw = this.#raw;
    if (raw === undefined) return;
    callNative(() => raw.dispose());
    this.#raw = undefined;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** @internal The native object; throws `DisposedError` after dispose. */
  _raw(): Raw {
    if (this.#raw === undefined) throw new DisposedError(`this ${this.#what} has been disposed`);
    return this.#raw;
  }
}
