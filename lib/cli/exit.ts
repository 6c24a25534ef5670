/** Exit codes of the `adatt` command and the errors that map to them. */
import { AdattError, ConfigError, ValidationError } from '../errors';

export const EXIT = Object.freeze({
  /** Done. */
  ok: 0,
  /** Something failed at run time: a file, LibTorch, a non-finite loss, the native addon. */
  failure: 1,
  /** The command line or the config is wrong; nothing was done. */
  usage: 2,
  /** Stopped by Ctrl-C (128 + SIGINT), as shells report it. */
  interrupted: 130,
});

/** The command line is wrong: unknown option, missing argument, a value of the wrong type. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Ctrl-C stopped the command; what was saved has already been reported. */
export class InterruptedError extends Error {
  constructor(message = 'interrupted') {
    super(message);
    this.name = 'InterruptedError';
  }
}

/**
 * Something the user asked for that cannot be done by design (not a bad value), e.g. TorchScript
 * export of a native model: a usage error, with an explanation.
 */
export class UnsupportedError extends UsageError {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedError';
  }
}

export function exitCodeOf(err: unknown): number {
  if (err instanceof InterruptedError) return EXIT.interrupted;
  if (err instanceof UsageError || err instanceof ConfigError || err instanceof ValidationError) return EXIT.usage;
  return EXIT.failure;
}

/** A config error about a value that a command-line flag set; the message says which flag. */
export class FlaggedConfigError extends ConfigError {
  constructor(
    field: string,
    message: string,
    readonly flag: string,
    options?: ErrorOptions,
  ) {
    super(field, message, options);
  }
}

/** The field a config or validation error names, if any. */
export function fieldOf(err: unknown): string | undefined {
  return err instanceof ConfigError || err instanceof ValidationError ? err.field || undefined : undefined;
}

/**
 * Re-raises a ConfigError / ValidationError thrown while reading one section of the run config
 * with the field placed in that section (`expertsPerTask` -> `model.expertsPerTask`), so the user
 * knows which line of the config file to fix. Other errors pass through.
 */
export async function inSection<T>(section: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw prefixField(err, section);
  }
}

/** `inSection` for synchronous checks. */
export function inSectionSync<T>(section: string, work: () => T): T {
  try {
    return work();
  } catch (err) {
    throw prefixField(err, section);
  }
}

export function prefixField(err: unknown, section: string): unknown {
  if (!(err instanceof ConfigError || err instanceof ValidationError)) return err;
  // A bad cell ("Invalid data in x.csv, line 5, column 'age'") names a column, not a config field.
  if (err.message.startsWith('Invalid data')) return err;
  const field = err.field ? `${section}.${err.field}` : section;
  return new ConfigError(field, err.message, { cause: err });
}

/** One line (or a few) for the terminal: the message, with the field in front when it does not say it. */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const field = fieldOf(err);
  const flagged = err instanceof FlaggedConfigError ? ` (set by ${err.flag})` : '';
  const located = `${field && !err.message.includes(field) ? `${field}: ` : ''}${err.message}${flagged}`;
  if (err instanceof AdattError || err instanceof UsageError || err instanceof InterruptedError) return located;
  // Unexpected errors keep their class name; ADATT_DEBUG=1 shows the stack.
  return process.env.ADATT_DEBUG ? String(err.stack) : `${err.name}: ${located}`;
}
