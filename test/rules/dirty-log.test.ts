/**
 * KVM_GET_DIRTY_LOG (MS-DLG-01 .. MS-DLG-05) and the dirty bitmap across slot changes
 * (MS-DLG-06 .. MS-DLG-08), spec/25-dirty-log.md. Bitmaps are identified by allocation order.
 */
import { describe, expect, it } from 'vitest';
import { getDirtyLog, setInternalMemslot, type VmState } from '../../model/index.js';
import type { RuleId } from '../../spec/rules.js';
import { L510, NOSMM, PAGE, SLOT0, X86, applyOk, at, build, del, expectOk, expectTitleCites, region, slotNr, slotsOf } from './helpers.js';

const U1 = 0x7f00_1000_0000n;

/** KVM_GET_DIRTY_LOG answers `errno` (or success), decided by `rule`, and changes nothing. */
function expectLog(vm: VmState, slot: number, errno: 'EINVAL' | 'ENOENT' | null, rule: RuleId): void {
  const s = getDirtyLog(vm, slot);
  // No guest wrote: a success copies out a clean bitmap ("") and, with nothing to clear, changes nothing.
  expect(s.result).toEqual(errno === null ? { ok: true, rule, bitmap: '' } : { ok: false, errno, rule });
  expectTitleCites(rule);
  expect(s.state).toBe(vm);
  // The coverage gate counts a rule by what a step fired: exactly the rule that decided (and MS-DLB-02 with a bitmap).
  expect(s.fired).toEqual(errno === null ? [rule, 'MS-DLB-02'] : [rule]);
  expect(s.published).toEqual([]);
}

describe('KVM_GET_DIRTY_LOG', () => {
  const vm = build(NOSMM, [{ ...SLOT0, flags: 1 }, region(1, 0x40_0000n, PAGE, U1)]);
  it('[MS-DLG-01] as_id 1 on x86_64-nosmm fails with EINVAL (measured)', () => {
    expectLog(vm, slotNr(1, 0), 'EINVAL', 'MS-DLG-01');
  });
  it('[MS-DLG-01] as_id 2 on x86_64 fails with EINVAL', () => {
    expectLog(build(X86, []), slotNr(2, 0), 'EINVAL', 'MS-DLG-01');
  });
  it('[MS-DLG-01] as_id 1 with internal id 32764 on x86_64-nosmm: the address-space bound decides (same errno)', () => {
    expectLog(vm, slotNr(1, 32764), 'EINVAL', 'MS-DLG-01');
  });
  it('[MS-DLG-02] slot id 32764 fails with EINVAL (measured)', () => {
    expectLog(vm, 32764, 'EINVAL', 'MS-DLG-02');
  });
  it('[MS-DLG-02] an existing internal slot (APIC access page, 32765) has no dirty log to fetch: EINVAL', () => {
    const withApic = setInternalMemslot(vm, 32765, 0xfee0_0000n, PAGE, U1).state;
    expectLog(withApic, 32765, 'EINVAL', 'MS-DLG-02');
    expectLog(withApic, 0xffff, 'EINVAL', 'MS-DLG-02');
  });
  it('[MS-DLG-02][MS-DLG-03] linux-5.10-x86_64: id 509 fails with EINVAL, id 508 (no slot) with ENOENT', () => {
    const v = build(L510, []);
    expectLog(v, 509, 'EINVAL', 'MS-DLG-02');
    expectLog(v, 508, 'ENOENT', 'MS-DLG-03');
  });
  it('[MS-DLG-03] a slot that does not exist fails with ENOENT (measured)', () => {
    expectLog(vm, 5, 'ENOENT', 'MS-DLG-03');
  });
  it('[MS-DLG-03][MS-DLG-05] x86_64: slot 0 with dirty logging exists in address space 0 only: as 0 succeeds, as 1 fails with ENOENT', () => {
    const x = build(X86, [{ ...SLOT0, flags: 1 }]);
    expectLog(x, slotNr(0, 0), null, 'MS-DLG-05');
    expectLog(x, slotNr(1, 0), 'ENOENT', 'MS-DLG-03');
  });
  it('[MS-DLG-03] a deleted slot fails with ENOENT', () => {
    expectLog(applyOk(vm, del(0)), 0, 'ENOENT', 'MS-DLG-03');
  });
  it('[MS-DLG-04] a slot without KVM_MEM_LOG_DIRTY_PAGES fails with ENOENT (measured)', () => {
    expectLog(vm, 1, 'ENOENT', 'MS-DLG-04');
  });
  it('[MS-DLG-04] a READONLY slot without dirty logging fails with ENOENT', () => {
    expectLog(build(NOSMM, [{ ...SLOT0, flags: 2 }]), 0, 'ENOENT', 'MS-DLG-04');
  });
  it('[MS-DLG-05] a slot with KVM_MEM_LOG_DIRTY_PAGES succeeds and changes nothing', () => {
    expectLog(vm, 0, null, 'MS-DLG-05');
  });
  it('[MS-DLG-05] a READONLY | LOG_DIRTY_PAGES slot in address space 1 (x86_64) succeeds', () => {
    expectLog(build(X86, [{ ...SLOT0, slot: slotNr(1, 3), flags: 3 }]), slotNr(1, 3), null, 'MS-DLG-05');
  });
});

describe('the dirty bitmap across slot changes', () => {
  const on = build(NOSMM, [{ ...SLOT0, flags: 1 }]);
  it('[MS-DLG-07][MS-CRT-02] CREATE with LOG_DIRTY_PAGES allocates bitmaps 0, 1, ... in order', () => {
    expect(at(slotsOf(on), 0).dirtyBitmap).toBe(0);
    expect(on.bitmapsAllocated).toBe(1);
    const s = expectOk(on, region(1, 0x40_0000n, PAGE, U1, 1), 'CREATE', 'MS-CRT-02');
    expect(slotsOf(s.state).map((x) => x.dirtyBitmap)).toEqual([0, 1]);
    expect(s.fired).toContain('MS-DLG-07');
  });
  it('[MS-DLG-08][MS-CRT-02] CREATE without LOG_DIRTY_PAGES has no bitmap and allocates none', () => {
    const s = expectOk(on, region(1, 0x40_0000n, PAGE, U1), 'CREATE', 'MS-CRT-02');
    expect(at(slotsOf(s.state), 1).dirtyBitmap).toBeNull();
    expect(s.state.bitmapsAllocated).toBe(1);
    expect(s.fired).toContain('MS-DLG-08');
  });
  it('[MS-DLG-06][MS-MOV-01] a MOVE that keeps LOG_DIRTY_PAGES keeps the same bitmap', () => {
    const s = expectOk(on, { ...SLOT0, flags: 1, guestPhysAddr: 0x80_0000n }, 'MOVE', 'MS-MOV-01');
    expect(at(slotsOf(s.state), 0).dirtyBitmap).toBe(0);
    expect(s.state.bitmapsAllocated).toBe(1);
    expect(s.fired).toContain('MS-DLG-06');
    // The INVALID copy published in between carries the same bitmap too.
    expect(at(slotsOf(at(s.published, 0)), 0).dirtyBitmap).toBe(0);
  });
  it('[MS-DLG-07][MS-FLG-01] FLAGS_ONLY switching LOG_DIRTY_PAGES on allocates a fresh bitmap', () => {
    const off = build(NOSMM, [SLOT0]);
    const s = expectOk(off, { ...SLOT0, flags: 1 }, 'FLAGS_ONLY', 'MS-FLG-01');
    expect(at(slotsOf(s.state), 0).dirtyBitmap).toBe(0);
    expect(s.fired).toContain('MS-DLG-07');
  });
  it('[MS-DLG-07][MS-MOV-01] a MOVE switching LOG_DIRTY_PAGES on allocates a fresh bitmap', () => {
    const off = build(NOSMM, [SLOT0]);
    const s = expectOk(off, { ...SLOT0, flags: 1, guestPhysAddr: 0x80_0000n }, 'MOVE', 'MS-MOV-01');
    expect(at(slotsOf(s.state), 0).dirtyBitmap).toBe(0);
  });
  it('[MS-DLG-08][MS-FLG-01] FLAGS_ONLY switching LOG_DIRTY_PAGES off drops the bitmap', () => {
    const s = expectOk(on, SLOT0, 'FLAGS_ONLY', 'MS-FLG-01');
    expect(at(slotsOf(s.state), 0).dirtyBitmap).toBeNull();
    expect(s.fired).toContain('MS-DLG-08');
  });
  it('[MS-DLG-08][MS-MOV-01] a MOVE that clears LOG_DIRTY_PAGES drops the bitmap', () => {
    const s = expectOk(on, { ...SLOT0, guestPhysAddr: 0x80_0000n }, 'MOVE', 'MS-MOV-01');
    expect(at(slotsOf(s.state), 0).dirtyBitmap).toBeNull();
  });
  it('[MS-DLG-07][MS-FLG-01] off and on again: the new bitmap is a fresh one (bitmap 1), not the freed bitmap 0', () => {
    const off = expectOk(on, SLOT0, 'FLAGS_ONLY', 'MS-FLG-01').state;
    const again = expectOk(off, { ...SLOT0, flags: 1 }, 'FLAGS_ONLY', 'MS-FLG-01').state;
    expect(at(slotsOf(again), 0).dirtyBitmap).toBe(1);
  });
  it('[MS-DLG-07][MS-DEL-02][MS-CRT-02] DELETE frees the bitmap with the slot; a re-created slot gets a fresh one', () => {
    const gone = expectOk(on, del(0), 'DELETE', 'MS-DEL-02').state;
    expect(gone.bitmapsAllocated).toBe(1);
    const back = expectOk(gone, { ...SLOT0, flags: 1 }, 'CREATE', 'MS-CRT-02').state;
    expect(at(slotsOf(back), 0).dirtyBitmap).toBe(1);
  });
  it('[MS-DLG-06][MS-MOV-01] x86_64: two slots, a MOVE in address space 1 keeps its bitmap; address space 0 keeps its own', () => {
    const x = build(X86, [
      { ...SLOT0, flags: 1 },
      { ...SLOT0, slot: slotNr(1, 0), flags: 1 },
    ]);
    expect([at(slotsOf(x, 0), 0).dirtyBitmap, at(slotsOf(x, 1), 0).dirtyBitmap]).toEqual([0, 1]);
    const s = expectOk(x, { ...SLOT0, slot: slotNr(1, 0), flags: 1, guestPhysAddr: 0x80_0000n }, 'MOVE', 'MS-MOV-01');
    expect([at(slotsOf(s.state, 0), 0).dirtyBitmap, at(slotsOf(s.state, 1), 0).dirtyBitmap]).toEqual([0, 1]);
  });
});
