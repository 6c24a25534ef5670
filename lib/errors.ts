/**
 * Typed errors. Everything adatt throws is an `AdattError`; the subclass says what went wrong and
 * `code` is a stable string for programs that switch on it.
 */

export type AdattErrorCode =
  | 'ADATT_CONFIG'
  | 'ADATT_INVALID_ARGUMENT'
  | 'ADATT_TORCH'
  | 'ADATT_DISPOSED'
  | 'ADATT_BUSY'
  | 'ADATT_IO'
  | 'ADATT_NATIVE_LOAD'
  | 'ADATT_NON_FINITE'
  | 'ADATT_INTERNAL';

export class AdattError extends Error {
  readonly code: AdattErrorCode;

  constructor(message: string, code: AdattErrorCode = 'ADATT_INTERNAL', options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A model config is invalid; `field` is the path of the offending value, e.g. `tasks[1].classes`. */
export class ConfigError extends AdattError {
  readonly field: string;

  constructor(field: string, message: string, options?: ErrorOptions) {
    super(message, 'ADATT_CONFIG', options);
    this.field = field;
  }
}

/**
 * A runtime input (batch, seeds, state dict, option) is invalid: wrong shape, type or an id out of
 * range. `field` is its path (e.g. `batch.categorical[3][1]`), or '' when the native side reported it.
 */
export class ValidationError extends AdattError {
  readonly field: string;

  constructor(field: string, message: string, options?: ErrorOptions) {
    super(message, 'ADATT_INVALID_ARGUMENT', options);
    this.field = field;
  }
}

/** LibTorch raised an error (a `c10::Error`), e.g. out of memory or a CUDA failure. */
export class TorchError extends AdattError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'ADATT_TORCH', options);
  }
}

/** The object was used after `dispose()`. */
export class DisposedError extends AdattError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'ADATT_DISPOSED', options);
  }
}

/** Another operation is still running on the same object; await it before starting the next. */
export class BusyError extends AdattError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'ADATT_BUSY', options);
  }
}

/** Reading or writing a file failed. */
export class FileError extends AdattError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'ADATT_IO', options);
  }
}

/** The native addon or the LibTorch shared libraries it links could not be loaded. */
export class NativeLoadError extends AdattError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'ADATT_NATIVE_LOAD', options);
  }
}

/** Training met a NaN or infinite loss (the message names epoch, batch and task). */
export class NonFiniteError extends AdattError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'ADATT_NON_FINITE', options);
  }
}

type NativeErrorFactory = (message: string, options: ErrorOptions) => AdattError;

const NATIVE_ERROR_FACTORIES: Readonly<Record<string, NativeErrorFactory>> = {
  ADATT_TORCH: (message, options) => new TorchError(message, options),
  ADATT_INVALID_ARGUMENT: (message, options) => new ValidationError('', message, options),
  ADATT_DISPOSED: (message, options) => new DisposedError(message, options),
  ADATT_BUSY: (message, options) => new BusyError(message, options),
  ADATT_IO: (message, options) => new FileError(message, options),
  ADATT_NON_FINITE: (message, options) => new NonFiniteError(message, options),
  ADATT_INTERNAL: (message, options) => new AdattError(message, 'ADATT_INTERNAL', options),
};

function stackFrames(stack: string | undefined): string {
  if (!stack) return '';
  const firstFrame = stack.indexOf('\n    at ');
  return firstFrame < 0 ? '' : stack.slice(firstFrame);
}

/**
 * Turns an error thrown by the addon (an `Error` with an `ADATT_*` `code`) into the matching typed
 * class, keeping its message and stack frames and linking it as `cause`. Anything else is returned
 * unchanged.
 */
export function fromNative(err: unknown): unknown {
  if (!(err instanceof Error) || err instanceof AdattError) return err;
  const code: unknown = (err as { code?: unknown }).code;
  const factory = typeof code === 'string' && Object.hasOwn(NATIVE_ERROR_FACTORIES, code) ? NATIVE_ERROR_FACTORIES[code] : undefined;
  if (!factory) return err;
  const mapped = factory(err.message, { cause: err });
  mapped.stack = `${mapped.name}: ${mapped.message}${stackFrames(err.stack)}`;
  return mapped;
}

/** Runs a synchronous native call, rethrowing its errors as typed ones. */
export function callNative<T>(call: () => T): T {
  try {
    return call();
  } catch (err) {
    throw fromNative(err);
  }
}

/**
 * Runs an asynchronous native call, rejecting with typed errors. Errors created when a native
 * worker finishes carry no JavaScript frames, so those get the caller's frames to stay traceable.
 */
export async function callNativeAsync<T>(call: () => Promise<T>): Promise<T> {
  const callSite: { stack?: string } = {};
  Error.captureStackTrace(callSite, callNativeAsync);
  try {
    return await call();
  } catch (err) {
    const mapped = fromNative(err);
    if (mapped instanceof AdattError && mapped !== err && !stackFrames(mapped.stack)) {
      mapped.stack = `${mapped.stack ?? ''}${stackFrames(callSite.stack)}`;
    }
    throw mapped;
  }
}
