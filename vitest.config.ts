import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two cores: run test files two at a time so timing-based tests stay honest.
    maxWorkers: 2,
    // The JSON report is what .ci/run turns into its one-line total.
    reporters: ['default', 'json'],
    outputFile: { json: '.vitest-results.json' },
  },
});
