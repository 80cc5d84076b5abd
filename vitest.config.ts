import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'workers/**/*.test.ts', 'hsm-sim/**/*.test.ts', 'switch/**/*.test.ts', 'sdk/test/**/*.test.ts', 'spec/**/*.test.ts'],
    // Integration tests start real servers with several worker threads each; on a 2-core machine
    // running two files at once is the most that stays stable.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
