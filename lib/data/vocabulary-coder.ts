/**
 * Categorical features coded natively from DuckDB's strings, for the chunks of a stream
 * (lib/data/stream-worker.ts): a feature's fitted vocabulary goes once into a sealed native
 * dictionary, and each chunk's cells are looked up there. Coding a chunk as a table first would make
 * each of its distinct values a JS string and look it up in a Map, which on large vocabularies was
 * most of the reading thread's work. The ids are exactly `encode`'s (tested against it).
 */
import { loadAddon, type RawTextDictionary } from '../addon';
import { callNative } from '../errors';
import { MISSING_ID, OUT_OF_VOCABULARY_ID, FIRST_VALUE_ID } from './encode';
import { type TextCoder, UNKNOWN_CODE } from './engine';
import { NULL_CODE } from './table';
import type { FittedCategorical, FittedSchema } from './types';

export class VocabularyCoder implements TextCoder {
  readonly #dictionary: RawTextDictionary;
  /** The feature's id of each dictionary code. */
  readonly #idOfCode: Int32Array;

  /** A coder of `feature`'s column (a vocabulary, not hashed); `missingValues` are the schema's missing markers. */
  constructor(feature: FittedCategorical, missingValues: readonly string[]) {
    if (feature.hashBuckets !== undefined) throw new RangeError(`VocabularyCoder: feature '${feature.name}' is hashed`);
    this.#dictionary = new (loadAddon().TextDictionary)();
    const dictionary = this.#dictionary;
    const valueCodes = callNative(() => dictionary.add(feature.vocabulary));
    const missingCodes = callNative(() => dictionary.add(missingValues));
    dictionary.seal();
    let codes = 0;
    for (const code of [...valueCodes, ...missingCodes]) codes = Math.max(codes, code + 1);
    this.#idOfCode = new Int32Array(codes);
    valueCodes.forEach((code, k) => {
      this.#idOfCode[code] = k + FIRST_VALUE_ID;
    });
    // A missing marker is missing even when the vocabulary holds it, as in encode.
    for (const code of missingCodes) this.#idOfCode[code] = MISSING_ID;
  }

  code(strings: Uint8Array, validity: Uint8Array | null, count: number, out: Int32Array, offset: number): void {
    const dictionary = this.#dictionary;
    callNative(() => dictionary.codeStrings(strings, validity, 0, count, out, offset));
    const idOfCode = this.#idOfCode;
    for (let i = offset; i < offset + count; i++) {
      const code = out[i] as number;
      out[i] = code === UNKNOWN_CODE ? OUT_OF_VOCABULARY_ID : code === NULL_CODE ? MISSING_ID : (idOfCode[code] as number);
    }
  }

  dispose(): void {
    this.#dictionary.dispose();
  }
}

/**
 * Coders for the categorical features of `schema` whose column is text in the source, has a
 * vocabulary and is read by nothing else (a label, a bag or a second feature reads the table's
 * column), by column name.
 */
export function vocabularyCoders(schema: FittedSchema, textColumns: ReadonlySet<string>): Map<string, VocabularyCoder> {
  const readers = new Map<string, number>();
  const reads = (column: string | undefined): void => {
    if (column !== undefined) readers.set(column, (readers.get(column) ?? 0) + 1);
  };
  for (const feature of [...schema.dense, ...schema.categorical, ...schema.multiValued]) reads(feature.column);
  for (const task of schema.tasks) {
    reads(task.column);
    reads(task.sampleWeight);
  }
  reads(schema.group);
  const coders = new Map<string, VocabularyCoder>();
  for (const feature of schema.categorical) {
    if (feature.hashBuckets === undefined && textColumns.has(feature.column) && readers.get(feature.column) === 1) {
      coders.set(feature.column, new VocabularyCoder(feature, schema.missingValues));
    }
  }
  return coders;
}
