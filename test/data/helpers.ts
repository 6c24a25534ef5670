import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect } from 'vitest';
import type { Column, Table } from '../../lib/data';

/** The shared UCI files, beside the repository (see ../shared/data/*\/SOURCE.md). */
export const SHARED_DATA_DIR = path.join(__dirname, '..', '..', '..', 'shared', 'data');

/** A fresh temporary folder, removed after the test file. */
export function temporaryFolder(): string {
  const folder = mkdtempSync(path.join(tmpdir(), 'adatt-data-'));
  afterAll(() => rmSync(folder, { recursive: true, force: true }));
  return folder;
}

/** A column's cells over the table's rows, as plain values. */
export function cellsOf(table: Table, name: string): (string | number | null)[] {
  const column = table.findColumn(name) as Column;
  expect(column, `column ${name}`).toBeDefined();
  return Array.from({ length: table.size }, (_, row) => table.value(column, row));
}

/** Runs `action` and returns the error it throws, checking its class. */
export function errorOf<T extends Error>(action: () => unknown, errorClass: new (...args: never[]) => T): T {
  try {
    action();
  } catch (err) {
    expect(err).toBeInstanceOf(errorClass);
    return err as T;
  }
  throw new Error(`expected a ${errorClass.name}`);
}

/** Awaits `promise` and returns the error it rejects with, checking its class. */
export async function rejectionOf<T extends Error>(promise: Promise<unknown>, errorClass: new (...args: never[]) => T): Promise<T> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(errorClass);
    return err as T;
  }
  throw new Error(`expected a ${errorClass.name}`);
}
