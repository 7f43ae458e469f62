import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseU64 } from '../model/index.js';
import { InputError, parseTraceLine, shortHexU64 } from './trace.js';

const SET = '"op":"set_user_memory_region","slot":0,"flags":0,"guest_phys_addr":"0x0","memory_size":"0x1000","userspace_addr":"0x7f0000000000"';

function expectOf(errno: string): unknown {
  const t = parseTraceLine(`{${SET},"expect":{"errno":${JSON.stringify(errno)}}}`, 7);
  return t?.kind === 'request' ? t.expect : t;
}

describe('trace answers: errno names', () => {
  it('takes every errno name of Linux uapi, aliases too, as an answer', () => {
    for (const e of ['ENOSPC', 'ENOMEM', 'EINVAL', 'E2BIG', 'ENOTTY', 'EHWPOISON', 'EWOULDBLOCK', 'EDEADLOCK']) {
      expect(expectOf(e)).toEqual({ kind: 'errno', errno: e });
    }
  });

  it('refuses a name that is not an errno, naming the line and the field', () => {
    for (const bad of ['EBOGUS', 'einval', 'ENOMEM ', '']) {
      let err: unknown;
      try {
        expectOf(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InputError);
      expect((err as InputError).message).toContain('line 7, field "expect.errno"');
      expect((err as InputError).message).toContain('is not an errno name');
    }
  });
});

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
