/**
 * A seeded uniform generator on (0, 1) for test data: a 32-bit linear congruential generator
 * (Numerical Recipes' constants), simple enough that a test's Python reference could regenerate it.
 */
export function seededUniform(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state + 0.5) / 2 ** 32;
  };
}
