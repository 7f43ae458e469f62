import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**', '.stryker-tmp/**', 'reports/**'],
    // Load CommonJS packages (sorted-btree) as Node does: the default export is module.exports.
    deps: { interopDefault: false },
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
