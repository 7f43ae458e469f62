import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseU64 } from '../model/index.js';
import { shortHexU64 } from './trace.js';

describe('trace u64 fields', () => {
  it('the short-hex fast path reads what parseU64 reads, and leaves everything else to it', () => {
    const hexish = fc.oneof(
      fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((v) => `0x${v.toString(16)}`),
      fc.bigInt({ min: 0n, max: (1n << 52n) - 1n }).map((v) => `0x${v.toString(16).toUpperCase()}`),
      fc.string({ unit: fc.constantFrom('0', 'x', 'a', 'F', 'g', '9', ' ', '-'), maxLength: 16 }).map((t) => `0x${t}`),
      fc.string({ maxLength: 16 }),
    );
    fc.assert(
      fc.property(hexish, (s) => {
        const fast = shortHexU64(s);
        if (fast !== null) expect(fast).toBe(parseU64(s));
      }),
      { numRuns: 2000 },
    );
    expect(shortHexU64('0x7fffffffff000')).toBe(0x7fffffffff000n);
    expect(shortHexU64('0x')).toBeNull();
    expect(shortHexU64('0x10000000000000')).toBeNull();
  });
});
