/**
 * Field checks for the data API's specs and options. Each `FieldChecker` throws one error class
 * (ConfigError for schema specs, ValidationError for options) with messages that name the field.
 */
import { ConfigError, ValidationError } from '../errors';
import { describeValue, findUnknownKey, isRecord, joinField, quoteList } from '../validation';
import type { ColumnRef } from './types';

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
