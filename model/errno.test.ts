import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRNO_ALIASES, ERRNO_NUMBERS, ERRNOS, isErrno } from './errno.js';

const HEADERS = ['/usr/include/asm-generic/errno-base.h', '/usr/include/asm-generic/errno.h'];
const haveHeaders = HEADERS.every((h) => existsSync(h));

describe('errno names', () => {
  // linux-libc-dev installs the kernel's uapi headers; without them the table is checked below by spot values only.
  it.skipIf(!haveHeaders)('the table is exactly the #defines of the kernel uapi headers (asm-generic/errno-base.h, errno.h)', () => {
    const defined = new Map<string, number>();
    for (const h of HEADERS) {
      for (const [, name, value] of readFileSync(h, 'utf8').matchAll(/^#define\s+(E[A-Z0-9]+)\s+(\w+)/gm)) {
        defined.set(name!, /^\d+$/.test(value!) ? Number(value) : defined.get(value!)!);
      }
    }
    expect(Object.fromEntries(defined)).toEqual(ERRNO_NUMBERS);
  });

  it('knows the numbers the C reproducers compare against, and its aliases', () => {
    expect([ERRNO_NUMBERS.EPERM, ERRNO_NUMBERS.ENOENT, ERRNO_NUMBERS.ENOMEM, ERRNO_NUMBERS.EEXIST, ERRNO_NUMBERS.EINVAL, ERRNO_NUMBERS.ENOSPC]).toEqual([
      1, 2, 12, 17, 22, 28,
    ]);
    expect(ERRNOS.length).toBe(133);
    for (const a of ERRNO_ALIASES) expect(ERRNOS.filter((e) => ERRNO_NUMBERS[e] === ERRNO_NUMBERS[a]).length).toBe(2);
    expect(isErrno('ENOSPC')).toBe(true);
    expect(isErrno('toString')).toBe(false);
  });
});
