import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**', '.stryker-tmp/**', 'reports/**'],
    // Load CommonJS packages (sorted-btree) as Node does: the default export is module.exports.
    deps: { interopDefault: false },
    // Worker threads sharing one module graph per worker: the test files are pure functions of
    // their inputs (no module state between files), and this saves a fifth of the CPU time
    // (import and worker start-up) on the two-core CI machine.
    pool: 'threads',
    isolate: false,
    // Vitest's default is one worker fewer than the cores: on CI's two cores, one worker, and the
    // suite ran file after file. Two workers use both cores.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
