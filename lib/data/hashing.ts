/**
 * Feature hashing: a value's id is 1 + xxHash64(its UTF-8 text, seed 0) mod buckets, so no
 * vocabulary is fitted or stored and unseen values need no out-of-vocabulary id; 0 stays the
 * missing id. In Python: `1 + xxhash.xxh64_intdigest(text.encode()) % buckets` (`pip install xxhash`).
 * xxHash64 comes from @node-rs/xxhash, a maintained native build of the reference implementation.
 */
import { xxh64 } from '@node-rs/xxhash';

/** The id of the first bucket (0 is the missing id). */
export const FIRST_HASHED_ID = 1;
/** Ids travel as Int32Array: the most buckets that keep every id in range. */
export const MAX_HASH_BUCKETS = 2 ** 31 - 2;

export function hashedId(text: string, buckets: number): number {
  return FIRST_HASHED_ID + Number(xxh64(text) % BigInt(buckets));
}

/** A group's id (grouped AUC): xxHash64 of its text, as a signed 64-bit value; groups only need telling apart. */
export function groupId(text: string): bigint {
  return BigInt.asIntN(64, xxh64(text));
}
