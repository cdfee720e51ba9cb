import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * `npm run test:engines`: the engine x layout x store kind matrix (test/engines/), which the
 * main config leaves out. (Not mergeConfig: it would concatenate include/exclude.)
 */
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: ['test/engines/**/*.test.ts'],
    exclude: ['**/node_modules/**'],
    testTimeout: 300_000,
    hookTimeout: 600_000,
  },
});
