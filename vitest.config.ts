import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The engine matrix (Debian 13 and sid trees, ~minutes) runs in `npm run test:engines` only.
    exclude: ['test/engines/**', '**/node_modules/**'],
    // Integration tests start real engines; two cores: keep to two files at once.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
