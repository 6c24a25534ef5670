import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Native addons (and LibTorch's thread pools) are safest in child processes, not worker threads.
    pool: 'forks',
    testTimeout: 60_000,
  },
});
