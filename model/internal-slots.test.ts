/**
 * Details of model/internal-slots.ts that no rule example pins (found by mutation testing,
 * docs/mutation.md): the rules an internal request reports as fired, and the caller error for a
 * user id.
 */
import { describe, expect, it } from 'vitest';
import { createVm, setInternalMemslot } from './index.js';
import { PAGE, X86 } from '../test/rules/helpers.js';

describe('the rules an internal request reports as fired', () => {
  it('[MS-INT-03][MS-CRT-02][MS-GEN-02] x86_64: an internal create fires MS-INT-03, then one CREATE per address space', () => {
    const s = setInternalMemslot(createVm(X86), 32765, 0xfee0_0000n, PAGE, 0x1000n);
    expect(s.fired).toEqual(['MS-INT-03', 'MS-CRT-02', 'MS-DLG-08', 'MS-GEN-02', 'MS-CRT-02', 'MS-DLG-08', 'MS-GEN-02']);
    expect(s.result).toEqual({ ok: true, change: 'CREATE', rule: 'MS-CRT-02' });
  });

  it('[MS-VAL-09][MS-INT-02][MS-INT-01][MS-GEN-04] internal requests that change nothing fire their rule and MS-GEN-04 and publish nothing', () => {
    const x = createVm(X86);
    const bad = setInternalMemslot(x, 32767, 0xfee0_0000n, PAGE, 0x1000n);
    expect(bad).toEqual({ state: x, result: { ok: false, errno: 'EINVAL', rule: 'MS-VAL-09' }, fired: ['MS-VAL-09', 'MS-GEN-04'], published: [] });
    const none = setInternalMemslot(x, 32765, 0n, 0n, 0n);
    expect(none).toEqual({ state: x, result: { ok: true, change: 'NONE', rule: 'MS-INT-02' }, fired: ['MS-INT-02', 'MS-GEN-04'], published: [] });
    const made = setInternalMemslot(x, 32765, 0xfee0_0000n, PAGE, 0x1000n).state;
    const twice = setInternalMemslot(made, 32765, 0xfee0_0000n, PAGE, 0x1000n);
    expect(twice).toEqual({ state: made, result: { ok: false, errno: 'EEXIST', rule: 'MS-INT-01' }, fired: ['MS-INT-01', 'MS-GEN-04'], published: [] });
  });
});

describe('caller errors', () => {
  it('a user id passed as an internal slot is a caller error that says so', () => {
    expect(() => setInternalMemslot(createVm(X86), 5, 0n, PAGE, 0n)).toThrow(
      new RangeError('internal slot id 5 is a user id (WARN in kvm_set_internal_memslot)'),
    );
  });
});
