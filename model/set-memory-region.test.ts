/**
 * Details of model/set-memory-region.ts that no rule example pins (found by mutation testing,
 * docs/mutation.md): the rules each step reports as fired (the conformance suite's coverage gate
 * counts them), and the INVALID state a reverted MOVE publishes when other slots exist.
 */
import { describe, expect, it } from 'vitest';
import { KVM_MEMSLOT_INVALID, createVm, memslots, setUserMemoryRegion, space } from './index.js';
import { GPA_LIMIT, NOSMM, PAGE, build, del, memslot, region } from '../test/rules/helpers.js';

const UADDR = 0x7f00_0000_0000n;
const SLOT0 = region(0, 0x10_0000n, 2n * PAGE, UADDR);

describe('the rules a step reports as fired', () => {
  const vm = build(NOSMM, [SLOT0]);

  it('[MS-VAL-04][MS-GEN-04] a rejected request fires its rule and MS-GEN-04, nothing else', () => {
    const s = setUserMemoryRegion(vm, { ...SLOT0, memorySize: 2n * PAGE + 1n });
    expect(s.fired).toEqual(['MS-VAL-04', 'MS-GEN-04']);
  });

  it('[MS-NOP-01][MS-GEN-04] an identical re-issue fires MS-NOP-01 and MS-GEN-04', () => {
    expect(setUserMemoryRegion(vm, SLOT0).fired).toEqual(['MS-NOP-01', 'MS-GEN-04']);
  });

  it('[MS-CRT-02][MS-DLG-08][MS-GEN-02] a CREATE without dirty logging fires exactly its three rules', () => {
    expect(setUserMemoryRegion(createVm(NOSMM), SLOT0).fired).toEqual(['MS-CRT-02', 'MS-DLG-08', 'MS-GEN-02']);
  });

  it('[MS-FLG-01][MS-DLG-07][MS-DLB-01][MS-MOV-01][MS-DLG-06][MS-GEN-02][MS-GEN-03] FLAGS_ONLY that starts logging, then a MOVE that keeps the bitmap', () => {
    const flags = setUserMemoryRegion(vm, { ...SLOT0, flags: 1 });
    expect(flags.fired).toEqual(['MS-FLG-01', 'MS-DLG-07', 'MS-DLB-01', 'MS-GEN-02']);
    const move = setUserMemoryRegion(flags.state, { ...SLOT0, flags: 1, guestPhysAddr: 0x20_0000n });
    expect(move.fired).toEqual(['MS-MOV-01', 'MS-DLG-06', 'MS-GEN-03']);
  });

  it('[MS-DEL-02][MS-GEN-03] a DELETE fires MS-DEL-02 and MS-GEN-03', () => {
    expect(setUserMemoryRegion(vm, del(0)).fired).toEqual(['MS-DEL-02', 'MS-GEN-03']);
  });
});

describe('a reverted MOVE among other slots', () => {
  it('[MS-GEN-05][MS-X86-01][MS-ATM-05] only the moved slot becomes INVALID in the first publish; the second restores the set', () => {
    const other = region(1, 0n, PAGE, UADDR);
    const vm = build(NOSMM, [SLOT0, other]);
    const s = setUserMemoryRegion(vm, { ...SLOT0, guestPhysAddr: GPA_LIMIT });
    expect(s.result).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-X86-01' });
    expect(s.fired).toEqual(['MS-X86-01', 'MS-GEN-05']);
    const s1 = memslot(0, 1, 0n, 1n, UADDR);
    const s0 = memslot(0, 0, 0x100n, 2n, UADDR);
    expect(s.published.map((p) => memslots(p, 0))).toEqual([
      [s1, { ...s0, flags: KVM_MEMSLOT_INVALID }],
      [s1, s0],
    ]);
    expect(s.published.map((p) => space(p, 0).generation)).toEqual([space(vm, 0).generation + 1n, space(vm, 0).generation + 2n]);
  });
});
