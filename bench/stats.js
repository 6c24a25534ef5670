'use strict';
/** Helpers every benchmark script shares: medians, seeded uniform numbers, integer flags. */

/** The median of the finite values (NaN when there are none). */
function median(values) {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** A seeded xorshift32 generator of numbers in (0, 1): the same data in every process. */
function seededUniform(seed) {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return (state + 0.5) / 4294967296;
  };
}

/** `value` as a positive integer, or an Error naming `flag` and the usage line. */
function positiveInteger(value, flag, usage) {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer, got ${value}\n${usage}`);
  return n;
}

module.exports = { median, positiveInteger, seededUniform };
