/** The checks of user input every validator is built from: descriptions of values, option readers, field checkers. */
import type { ColumnRef } from './data/types';
import { ConfigError, ValidationError } from './errors';

/** A short, human-readable description of a value for "…, got X" error messages. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (ArrayBuffer.isView(value)) {
    const length = 'length' in value ? `(${String(value.length)})` : '';
    return `a ${value.constructor.name}${length}`;
  }
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
    case 'number':
    case 'boolean':
      return String(value);
    case 'bigint':
      return `${value}n`;
    case 'undefined':
      return 'undefined';
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
    default:
      return 'an object';
  }
}

/** `describeValue` of `array[index]`, or 'an empty slot' for a hole (`[, 1]`), which forEach and map skip. */
export function describeElement(array: readonly unknown[], index: number): string {
  return index in array ? describeValue(array[index]) : 'an empty slot (a hole in the array)';
}

/** A non-null, non-array object whose keys can be inspected. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

export function quoteList(values: readonly string[]): string {
  return values.map((value) => `'${value}'`).join(', ');
}

/** Joins a parent path and a key: `join('input', 'dense')` is 'input.dense', `join('', 'seed')` is 'seed'. */
export function joinField(parent: string, key: string): string {
  return parent ? `${parent}.${key}` : key;
}

/** The first own key of `record` that is not in `allowed`, if any. */
export function findUnknownKey(record: Record<string, unknown>, allowed: readonly string[]): string | undefined {
  return Object.keys(record).find((key) => !allowed.includes(key));
}

const DEVICE_PATTERN = /^(?:cpu|cuda(?::\d{1,4})?)$/;

/** A device name LibTorch accepts here ('cpu', 'cuda', 'cuda:<index>'), else a ValidationError. */
export function readDevice(value: unknown): string {
  if (typeof value !== 'string' || !DEVICE_PATTERN.test(value)) {
    throw new ValidationError('device', `device must be 'cpu', 'cuda' or 'cuda:<index>', got ${describeValue(value)}`);
  }
  return value;
}

/*
 * Readers of the API's option objects (fit, evaluate, model methods, expert statistics): one wording
 * for every option error, each a ValidationError naming the field.
 */

export function optionError(field: string, message: string): never {
  throw new ValidationError(field, message);
}

/** `value` as an options object with only `keys`; {} when it was omitted. */
export function readOptions(value: unknown, field: string, keys: readonly string[]): Record<string, unknown> {
  if (value === undefined) return {};
  if (!isRecord(value)) optionError(field, `${field} must be an object, got ${describeValue(value)}`);
  const unknown = findUnknownKey(value, keys);
  if (unknown !== undefined) optionError(`${field}.${unknown}`, `unknown option ${field}.${unknown} (allowed: ${quoteList(keys)})`);
  return value;
}

export interface NumberRange {
  min?: number;
  max?: number;
  integer?: boolean;
  exclusiveMin?: boolean;
  exclusiveMax?: boolean;
}

/** A finite number within the range, or `fallback` when omitted. */
export function readNumber(
  value: unknown,
  field: string,
  fallback: number,
  { min = -Infinity, max = Infinity, integer = false, exclusiveMin = false, exclusiveMax = false }: NumberRange = {},
): number {
  if (value === undefined) return fallback;
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (!integer || Number.isInteger(value)) &&
    (exclusiveMin ? value > min : value >= min) &&
    (exclusiveMax ? value < max : value <= max);
  if (!ok) {
    const kind = integer ? 'an integer' : 'a number';
    const range = exclusiveMin ? `> ${min}` : Number.isFinite(min) ? `>= ${min}` : 'finite';
    const upper = Number.isFinite(max) ? ` and ${exclusiveMax ? '<' : '<='} ${max}` : '';
    optionError(field, `${field} must be ${kind} ${range}${upper}, got ${describeValue(value)}`);
  }
  return value as number;
}

/** One of `choices`, or `fallback` when omitted. */
export function readChoice<T extends string>(value: unknown, field: string, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!choices.includes(value as T)) optionError(field, `${field} must be one of ${quoteList(choices)}, got ${describeValue(value)}`);
  return value as T;
}

/** A boolean, or `fallback` when omitted. */
export function readBoolean(value: unknown, field: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') optionError(field, `${field} must be a boolean, got ${describeValue(value)}`);
  return value;
}

/**
 * Field checks for specs and options whose errors start with their subject ('Invalid CSV options:
 * …'): each checker throws one error class (ConfigError for configs and schema specs,
 * ValidationError for options), with messages that name the field.
 */
export class FieldChecker {
  constructor(
    /** What is being checked, e.g. 'CSV options'; starts every message. */
    private readonly subject: string,
    private readonly makeError: (field: string, message: string) => Error,
  ) {}

  fail(field: string, message: string): never {
    throw this.makeError(field, `Invalid ${this.subject}: ${message}`);
  }

  record(value: unknown, field: string, allowedKeys: readonly string[]): Record<string, unknown> {
    const name = field || this.subject;
    if (!isRecord(value)) this.fail(field, `${name} must be an object, got ${describeValue(value)}`);
    const unknownKey = findUnknownKey(value, allowedKeys);
    if (unknownKey !== undefined) {
      this.fail(
        joinField(field, unknownKey),
        `unknown key ${joinField(field, unknownKey)} (allowed in ${name}: ${quoteList(allowedKeys)})`,
      );
    }
    return value;
  }

  string(value: unknown, field: string, allowEmpty = false): string {
    if (typeof value !== 'string' || (!allowEmpty && value === '')) {
      this.fail(field, `${field} must be a ${allowEmpty ? '' : 'non-empty '}string, got ${describeValue(value)}`);
    }
    return value;
  }

  integer(value: unknown, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.fail(field, `${field} must be an integer in [${min}, ${max}], got ${describeValue(value)}`);
    }
    return value;
  }

  finite(value: unknown, field: string): number {
    if (typeof value !== 'number' || !Number.isFinite(value))
      this.fail(field, `${field} must be a finite number, got ${describeValue(value)}`);
    return value;
  }

  boolean(value: unknown, field: string): boolean {
    if (typeof value !== 'boolean') this.fail(field, `${field} must be a boolean, got ${describeValue(value)}`);
    return value;
  }

  oneOf<T extends string>(value: unknown, field: string, allowed: readonly T[]): T {
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
      this.fail(field, `${field} must be one of ${quoteList(allowed)}, got ${describeValue(value)}`);
    }
    return value as T;
  }

  array(value: unknown, field: string, of: string, minLength = 0): readonly unknown[] {
    if (!Array.isArray(value)) this.fail(field, `${field} must be an array of ${of}, got ${describeValue(value)}`);
    if (value.length < minLength) this.fail(field, `${field} must hold at least ${minLength} ${of}, got ${value.length}`);
    return value;
  }

  strings(value: unknown, field: string, allowEmpty = false): string[] {
    return this.array(value, field, 'strings').map((item, i) => this.string(item, `${field}[${i}]`, allowEmpty));
  }

  columnRef(value: unknown, field: string): ColumnRef {
    if (typeof value === 'number') return this.integer(value, field, 0);
    if (typeof value !== 'string' || value === '') {
      this.fail(field, `${field} must be a column name or a 0-based column position, got ${describeValue(value)}`);
    }
    return value;
  }
}

export function configChecker(subject: string): FieldChecker {
  return new FieldChecker(subject, (field, message) => new ConfigError(field, message));
}

export function optionsChecker(subject: string): FieldChecker {
  return new FieldChecker(subject, (field, message) => new ValidationError(field, message));
}
