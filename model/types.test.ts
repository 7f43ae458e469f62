/** Small helpers of model/types.ts that reports print (found by mutation testing, docs/mutation.md). */
import { describe, expect, it } from 'vitest';
import { InvariantError, hex } from './index.js';

describe('InvariantError and hex', () => {
  it('an InvariantError is named InvariantError, and its message carries the rule', () => {
    const e = new InvariantError('MS-INV-01', 'as 0: id 1 twice');
    expect(e.name).toBe('InvariantError');
    expect(e.message).toBe('[MS-INV-01] invariant broken: as 0: id 1 twice');
    expect(String(e)).toBe('InvariantError: [MS-INV-01] invariant broken: as 0: id 1 twice');
  });

  it('hex writes lowercase 0x-hex for numbers and bigints', () => {
    expect(hex(255)).toBe('0xff');
    expect(hex(0n)).toBe('0x0');
    expect(hex(0xfee0_0000n)).toBe('0xfee00000');
  });
});
