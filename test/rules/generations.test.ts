/**
 * Generations and publishing (spec/40-generations.md): MS-GEN-01 .. MS-GEN-05, including the
 * intermediate states a DELETE or MOVE publishes and the reverted MOVE.
 */
import { describe, expect, it } from 'vitest';
import { KVM_MEMSLOT_INVALID, createVm, setInternalMemslot, setUserMemoryRegion, type MemoryRegion, type VmState } from '../../model/index.js';
import type { RuleId } from '../../spec/rules.js';
import { GPA_LIMIT, L510, NOSMM, PAGE, SLOT0, SLOT0_UADDR, X86, applyOk, at, build, del, expectErr, gen, memslot, region, slotNr, slotsOf } from './helpers.js';

const S0 = memslot(0, 0, 0x100n, 0x200n, SLOT0_UADDR);
const U1 = 0x7f00_1000_0000n;

describe('[MS-GEN-01] initial generation', () => {
  it('[MS-GEN-01] x86_64-nosmm starts at generation 0', () => {
    expect(createVm(NOSMM).spaces.map((s) => s.generation)).toEqual([0n]);
  });
  it('[MS-GEN-01] x86_64 and linux-5.10-x86_64 start address spaces 0 and 1 at generations 0 and 1', () => {
    expect(createVm(X86).spaces.map((s) => s.generation)).toEqual([0n, 1n]);
    expect(createVm(L510).spaces.map((s) => s.generation)).toEqual([0n, 1n]);
  });
});

describe('[MS-GEN-02] one publish', () => {
  it('[MS-GEN-02] CREATE on x86_64-nosmm: generation +1, one published state (the final one)', () => {
    const vm = createVm(NOSMM);
    const s = setUserMemoryRegion(vm, SLOT0);
    expect(s.result).toEqual({ ok: true, change: 'CREATE', rule: 'MS-CRT-02' });
    expect(gen(s.state)).toBe(1n);
    expect(s.published).toEqual([s.state]);
    expect(s.fired).toContain('MS-GEN-02');
  });
  it('[MS-GEN-02] FLAGS_ONLY on x86_64-nosmm: generation +1', () => {
    const vm = build(NOSMM, [SLOT0]);
    const s = setUserMemoryRegion(vm, { ...SLOT0, flags: 1 });
    expect(s.result).toEqual({ ok: true, change: 'FLAGS_ONLY', rule: 'MS-FLG-01' });
    expect(gen(s.state)).toBe(gen(vm) + 1n);
    expect(s.published).toHaveLength(1);
  });
  it('[MS-GEN-02] x86_64: CREATE in address space 0 raises it by 2; address space 1 is untouched', () => {
    const s = setUserMemoryRegion(createVm(X86), SLOT0);
    expect([gen(s.state, 0), gen(s.state, 1)]).toEqual([2n, 1n]);
    expect(s.published).toHaveLength(1);
  });
  it('[MS-GEN-02] x86_64: CREATE and FLAGS_ONLY in address space 1 raise it 1 -> 3 -> 5; address space 0 stays 0', () => {
    const a = setUserMemoryRegion(createVm(X86), { ...SLOT0, slot: slotNr(1, 0) });
    const b = setUserMemoryRegion(a.state, { ...SLOT0, slot: slotNr(1, 0), flags: 1 });
    expect(b.result).toEqual({ ok: true, change: 'FLAGS_ONLY', rule: 'MS-FLG-01' });
    expect([gen(a.state, 0), gen(a.state, 1), gen(b.state, 0), gen(b.state, 1)]).toEqual([0n, 3n, 0n, 5n]);
  });
});

describe('[MS-GEN-03] two publishes', () => {
  it('[MS-GEN-03] DELETE: first the INVALID copy (generation +1), then the set without the slot (+2)', () => {
    const vm = build(NOSMM, [SLOT0, region(1, 0x40_0000n, PAGE, U1)]);
    const s = setUserMemoryRegion(vm, del(0));
    expect(s.result).toEqual({ ok: true, change: 'DELETE', rule: 'MS-DEL-02' });
    expect(s.published).toHaveLength(2);
    const [invalid, final] = [at(s.published, 0), at(s.published, 1)];
    expect(gen(invalid)).toBe(gen(vm) + 1n);
    expect(slotsOf(invalid)).toEqual([{ ...S0, flags: KVM_MEMSLOT_INVALID }, memslot(0, 1, 0x400n, 1n, U1)]);
    // The page count drops only with the final set.
    expect(invalid.nrMemslotPages).toBe(0x201n);
    expect(final).toBe(s.state);
    expect(gen(final)).toBe(gen(vm) + 2n);
    expect(slotsOf(final)).toEqual([memslot(0, 1, 0x400n, 1n, U1)]);
    expect(final.nrMemslotPages).toBe(1n);
    expect(s.fired).toContain('MS-GEN-03');
  });
  it('[MS-GEN-03] MOVE: first the INVALID copy at the old place, then the slot at the new place', () => {
    const vm = build(NOSMM, [{ ...SLOT0, flags: 1 }]);
    const s = setUserMemoryRegion(vm, { ...SLOT0, flags: 1, guestPhysAddr: 0x80_0000n });
    expect(s.result).toEqual({ ok: true, change: 'MOVE', rule: 'MS-MOV-01' });
    const [invalid, final] = [at(s.published, 0), at(s.published, 1)];
    expect(slotsOf(invalid)).toEqual([{ ...S0, flags: 1 | KVM_MEMSLOT_INVALID, dirtyBitmap: 0 }]);
    expect(gen(invalid)).toBe(gen(vm) + 1n);
    expect(slotsOf(final)).toEqual([{ ...S0, baseGfn: 0x800n, flags: 1, dirtyBitmap: 0 }]);
    expect(gen(final)).toBe(gen(vm) + 2n);
  });
  it('[MS-GEN-03] x86_64: DELETE in address space 1 raises it by 4 (3 -> 5 -> 7); address space 0 is untouched', () => {
    const vm = build(X86, [SLOT0, { ...SLOT0, slot: slotNr(1, 0) }]);
    expect([gen(vm, 0), gen(vm, 1)]).toEqual([2n, 3n]);
    const s = setUserMemoryRegion(vm, del(slotNr(1, 0)));
    expect(s.result).toEqual({ ok: true, change: 'DELETE', rule: 'MS-DEL-02' });
    expect(s.published.map((p) => [gen(p, 0), gen(p, 1)])).toEqual([
      [2n, 5n],
      [2n, 7n],
    ]);
    expect(slotsOf(at(s.published, 0), 1)).toEqual([{ ...memslot(1, 0, 0x100n, 0x200n, SLOT0_UADDR), flags: KVM_MEMSLOT_INVALID }]);
    expect(s.state.spaces[0]).toBe(vm.spaces[0]);
  });
  it('[MS-GEN-02][MS-GEN-03] x86_64: address space 0 uses generations 0, 2, 4, ... and address space 1 uses 1, 3, 5, ...', () => {
    let vm = createVm(X86);
    const seen: [bigint, bigint][] = [[gen(vm, 0), gen(vm, 1)]];
    const steps: MemoryRegion[] = [
      SLOT0, // CREATE as 0: +2
      { ...SLOT0, slot: slotNr(1, 0) }, // CREATE as 1: +2
      { ...SLOT0, flags: 1 }, // FLAGS_ONLY as 0: +2
      { ...SLOT0, slot: slotNr(1, 0), guestPhysAddr: 0x80_0000n }, // MOVE as 1: +4
      del(0), // DELETE as 0: +4
    ];
    for (const r of steps) {
      const s = setUserMemoryRegion(vm, r);
      expect(s.result.ok).toBe(true);
      for (const p of s.published) seen.push([gen(p, 0), gen(p, 1)]);
      vm = s.state;
    }
    expect(seen).toEqual([
      [0n, 1n],
      [2n, 1n],
      [2n, 3n],
      [4n, 3n],
      [4n, 5n],
      [4n, 7n],
      [6n, 7n],
      [8n, 7n],
    ]);
  });
  it('[MS-GEN-02][MS-GEN-03] x86_64: an internal slot publishes in each address space: create +2 each, delete +4 each', () => {
    const made = setInternalMemslot(createVm(X86), 32765, 0xfee0_0000n, PAGE, U1);
    expect([gen(made.state, 0), gen(made.state, 1)]).toEqual([2n, 3n]);
    const gone = setInternalMemslot(made.state, 32765, 0n, 0n, 0n);
    expect(gone.published.map((p) => [gen(p, 0), gen(p, 1)])).toEqual([
      [4n, 3n],
      [6n, 3n],
      [6n, 5n],
      [6n, 7n],
    ]);
  });
});

describe('[MS-GEN-04] no publish', () => {
  const vm = build(X86, [SLOT0, { ...SLOT0, slot: slotNr(1, 0) }, region(1, 0x40_0000n, PAGE, U1)]);
  const cases: [string, MemoryRegion, RuleId][] = [
    ['v1 flags', { ...SLOT0, flags: 4 }, 'MS-VAL-01'],
    ['user id', { ...SLOT0, slot: 32764 }, 'MS-VAL-02'],
    ['size alignment', { ...SLOT0, memorySize: 0x1001n }, 'MS-VAL-04'],
    ['gpa alignment', { ...SLOT0, guestPhysAddr: 0x1001n }, 'MS-VAL-05'],
    ['uaddr alignment', { ...SLOT0, userspaceAddr: 1n }, 'MS-VAL-06'],
    ['uaddr limit', { ...SLOT0, userspaceAddr: 0x7fff_ffff_f000n }, 'MS-VAL-07'],
    ['address space', { ...SLOT0, slot: slotNr(2, 0) }, 'MS-VAL-08'],
    ['gpa wrap', { ...SLOT0, slot: 5, guestPhysAddr: 0xffff_ffff_ffff_f000n }, 'MS-VAL-10'],
    ['size limit', region(5, 0n, 1n << 43n, 0n), 'MS-VAL-11'],
    ['delete missing', del(5), 'MS-DEL-01'],
    ['uaddr change', { ...SLOT0, userspaceAddr: U1 }, 'MS-MOD-01'],
    ['resize', { ...SLOT0, memorySize: PAGE }, 'MS-MOD-02'],
    ['readonly toggle', { ...SLOT0, flags: 2 }, 'MS-MOD-03'],
    ['overlap (create)', region(5, 0x10_0000n, PAGE, U1), 'MS-OVL-01'],
    ['overlap (move)', { ...SLOT0, guestPhysAddr: 0x30_0000n }, 'MS-OVL-01'],
    ['max gfn (create)', region(5, GPA_LIMIT, PAGE, U1), 'MS-X86-01'],
  ];
  it('[MS-GEN-04][MS-VAL-01][MS-VAL-02][MS-VAL-04][MS-VAL-05][MS-VAL-06][MS-VAL-07][MS-VAL-08][MS-VAL-10][MS-VAL-11][MS-DEL-01][MS-MOD-01][MS-MOD-02][MS-MOD-03][MS-OVL-01][MS-X86-01] every rejected request (x86_64) leaves both generations unchanged and publishes nothing', () => {
    for (const [what, r, rule] of cases) {
      const s = setUserMemoryRegion(vm, r);
      expect({ what, result: s.result }).toEqual({ what, result: { ok: false, errno: rule === 'MS-OVL-01' ? 'EEXIST' : 'EINVAL', rule } });
      expect(s.state, what).toBe(vm);
      expect(s.published, what).toEqual([]);
      expect(s.fired, what).toContain('MS-GEN-04');
    }
  });
  it('[MS-GEN-04][MS-NOP-01] the identical re-issue leaves the generation unchanged and publishes nothing', () => {
    const s = setUserMemoryRegion(vm, SLOT0);
    expect(s.result).toEqual({ ok: true, change: 'NONE', rule: 'MS-NOP-01' });
    expect(s.state).toBe(vm);
    expect(s.published).toEqual([]);
  });
  it('[MS-GEN-04][MS-X86-01] a CREATE rejected by the max gfn publishes nothing: it has no INVALID copy', () => {
    expectErr(build(NOSMM, []), region(0, GPA_LIMIT, PAGE, U1), 'EINVAL', 'MS-X86-01');
  });
  it('[MS-GEN-04][MS-INT-01][MS-INT-02] rejected and no-op internal-slot calls publish nothing', () => {
    const withApic = setInternalMemslot(vm, 32765, 0xfee0_0000n, PAGE, U1).state;
    for (const s of [setInternalMemslot(withApic, 32765, 0xfee0_0000n, PAGE, U1), setInternalMemslot(vm, 32766, 0n, 0n, 0n)]) {
      expect(s.published).toEqual([]);
      expect(s.fired).toContain('MS-GEN-04');
    }
  });
});

describe('[MS-GEN-05] reverted MOVE', () => {
  function expectReverted(vm: VmState, r: MemoryRegion, asId: number): void {
    const n = BigInt(vm.profile.addressSpaces);
    const s = setUserMemoryRegion(vm, r);
    expect(s.result).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-X86-01' });
    expect(s.fired).toEqual(['MS-X86-01', 'MS-GEN-05']);
    // The slots are exactly as before; only the generation moved on, by 2N.
    expect(s.state.spaces.map((sp) => slotsOf(s.state, sp.asId))).toEqual(vm.spaces.map((sp) => slotsOf(vm, sp.asId)));
    expect(s.state.nrMemslotPages).toBe(vm.nrMemslotPages);
    expect(s.state.bitmapsAllocated).toBe(vm.bitmapsAllocated);
    expect(gen(s.state, asId)).toBe(gen(vm, asId) + 2n * n);
    for (const sp of s.state.spaces) if (sp.asId !== asId) expect(sp).toBe(vm.spaces[sp.asId]);
    // Two publishes: the INVALID copy at the old place, then the old slot again.
    expect(s.published).toHaveLength(2);
    const [invalid, restored] = [at(s.published, 0), at(s.published, 1)];
    const old = slotsOf(vm, asId);
    expect(gen(invalid, asId)).toBe(gen(vm, asId) + n);
    expect(slotsOf(invalid, asId)).toEqual(old.map((x) => (x.id === (r.slot & 0xffff) ? { ...x, flags: x.flags | KVM_MEMSLOT_INVALID } : x)));
    expect(restored).toBe(s.state);
  }
  it('[MS-GEN-05][MS-X86-01] x86_64-nosmm: moving slot 0 to gpa 2^52 fails with EINVAL, slot unchanged, generation +2', () => {
    expectReverted(build(NOSMM, [SLOT0]), { ...SLOT0, guestPhysAddr: GPA_LIMIT }, 0);
  });
  it('[MS-GEN-05][MS-X86-01] a move that straddles 2^52 by one page is reverted the same way', () => {
    expectReverted(build(NOSMM, [SLOT0]), { ...SLOT0, guestPhysAddr: GPA_LIMIT - 0x1f_f000n }, 0);
  });
  it('[MS-GEN-05][MS-X86-01] x86_64: a reverted MOVE in address space 1 raises it by 4; address space 0 is untouched', () => {
    expectReverted(build(X86, [SLOT0, { ...SLOT0, slot: slotNr(1, 0) }]), { ...SLOT0, slot: slotNr(1, 0), guestPhysAddr: GPA_LIMIT }, 1);
  });
  it('[MS-GEN-05][MS-X86-01][MS-DLG-06] a reverted MOVE that also toggled dirty logging keeps the old flags and bitmap', () => {
    expectReverted(build(NOSMM, [{ ...SLOT0, flags: 1 }]), { ...SLOT0, guestPhysAddr: GPA_LIMIT }, 0);
    expectReverted(build(NOSMM, [SLOT0]), { ...SLOT0, flags: 1, guestPhysAddr: GPA_LIMIT }, 0);
  });
  it('[MS-GEN-05][MS-MOV-01] linux-5.10-x86_64 has no max gfn: the same move succeeds', () => {
    const vm = build(L510, [SLOT0]);
    const s = setUserMemoryRegion(vm, { ...SLOT0, guestPhysAddr: GPA_LIMIT });
    expect(s.result).toEqual({ ok: true, change: 'MOVE', rule: 'MS-MOV-01' });
    expect(gen(s.state)).toBe(gen(vm) + 4n);
  });
  it('[MS-GEN-05][MS-OVL-01] a MOVE rejected by the overlap check is not reverted: it never published', () => {
    const vm = build(NOSMM, [SLOT0, region(1, GPA_LIMIT - PAGE, PAGE, U1)]);
    expectErr(vm, { ...SLOT0, guestPhysAddr: GPA_LIMIT - 2n * PAGE }, 'EEXIST', 'MS-OVL-01');
  });
  it('[MS-GEN-05] after a reverted MOVE the slot can still be moved within range', () => {
    const vm = build(NOSMM, [SLOT0]);
    const after = setUserMemoryRegion(vm, { ...SLOT0, guestPhysAddr: GPA_LIMIT }).state;
    const moved = applyOk(after, { ...SLOT0, guestPhysAddr: 0x80_0000n });
    expect(slotsOf(moved)).toEqual([{ ...S0, baseGfn: 0x800n }]);
    expect(gen(moved)).toBe(gen(vm) + 4n);
  });
});
