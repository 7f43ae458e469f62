/**
 * Delete, create, modify, no-op, overlap, max gfn, move and flags change
 * (spec/20-set-memory-region.md, after validation), with the selftest shapes of
 * set_memory_region_test.c and memslot_modification_stress_test.c (kernel-memslots.md §11).
 */
import { describe, expect, it } from 'vitest';
import {
  KVM_MEMSLOT_INVALID,
  U64_MAX,
  addressSpace,
  checkInvariants,
  createVm,
  gfnToHva,
  gfnToMemslot,
  idToMemslot,
  observableState,
  setInternalMemslot,
  setUserMemoryRegion,
  type Profile,
  type VmState,
} from '../../model/index.js';
import { IMPLEMENTATIONS } from '../../impl/index.js';
import {
  GPA_LIMIT,
  L510,
  NOSMM,
  PAGE,
  SLOT0,
  SLOT0_UADDR,
  X86,
  applyOk,
  asData,
  at,
  build,
  del,
  exampleVm,
  expectErr,
  expectOk,
  gen,
  memslot,
  region,
  slotNr,
  slotsOf,
} from './helpers.js';

const S0 = memslot(0, 0, 0x100n, 0x200n, SLOT0_UADDR);
const U1 = 0x7f00_1000_0000n;

describe('[MS-DEL-01][MS-DEL-02] delete', () => {
  const vm = exampleVm();
  it('[MS-DEL-02][MS-GEN-03] deleting slot 0 succeeds with DELETE: no slot left, page count 0, generation +2', () => {
    const s = expectOk(vm, del(0), 'DELETE', 'MS-DEL-02');
    expect(slotsOf(s.state)).toEqual([]);
    expect(s.state.nrMemslotPages).toBe(0n);
    expect(gen(s.state)).toBe(gen(vm) + 2n);
    expect(s.published).toHaveLength(2);
    expect(slotsOf(at(s.published, 0))).toEqual([{ ...S0, flags: KVM_MEMSLOT_INVALID }]);
  });
  it('[MS-DEL-02] a delete with flags 2 (READONLY), gpa 0x5000000 and uaddr 0 that match nothing succeeds (measured)', () => {
    const s = expectOk(vm, del(0, 0x500_0000n, 0n, 2), 'DELETE', 'MS-DEL-02');
    expect(slotsOf(s.state)).toEqual([]);
  });
  it('[MS-DEL-02] a delete with flags 1 (LOG_DIRTY_PAGES) of a slot without dirty logging succeeds', () => {
    expectOk(vm, del(0, 0n, 0n, 1), 'DELETE', 'MS-DEL-02');
  });
  it('[MS-DEL-02] a READONLY slot is deleted by a request with flags 0', () => {
    const ro = build(NOSMM, [{ ...SLOT0, flags: 2 }]);
    expectOk(ro, del(0), 'DELETE', 'MS-DEL-02');
  });
  it('[MS-DEL-02] deleting the middle of three slots keeps the others, in gfn order, and subtracts only its pages', () => {
    const three = build(NOSMM, [SLOT0, region(1, 0x40_0000n, 0x1000n, U1), region(2, 0x1000n, 0x2000n, U1)]);
    expect(three.nrMemslotPages).toBe(0x203n);
    const s = expectOk(three, del(0), 'DELETE', 'MS-DEL-02');
    expect(slotsOf(s.state)).toEqual([memslot(0, 2, 1n, 2n, U1), memslot(0, 1, 0x400n, 1n, U1)]);
    expect(s.state.nrMemslotPages).toBe(3n);
    // The untouched slots are the same objects (frame condition).
    expect(at(slotsOf(s.state), 0)).toBe(at(slotsOf(three), 0));
  });
  it('[MS-DEL-01] deleting a slot that does not exist fails with EINVAL; it is not a no-op (measured)', () => {
    expectErr(vm, del(5), 'EINVAL', 'MS-DEL-01');
  });
  it('[MS-DEL-01] a second delete of the same slot fails with EINVAL (chapter 20 example)', () => {
    expectErr(applyOk(vm, del(0)), del(0), 'EINVAL', 'MS-DEL-01');
  });
  it('[MS-DEL-01] x86_64: deleting in address space 1 a slot that exists only in address space 0 fails with EINVAL', () => {
    expectErr(exampleVm(X86), del(slotNr(1, 0)), 'EINVAL', 'MS-DEL-01');
  });
  it('[MS-DEL-01] deleting on a fresh VM fails with EINVAL', () => {
    expectErr(createVm(NOSMM), del(0), 'EINVAL', 'MS-DEL-01');
    expectErr(createVm(L510), del(0), 'EINVAL', 'MS-DEL-01');
  });
});

describe('[MS-CRT-01][MS-CRT-02] create', () => {
  it('[MS-CRT-02][MS-GEN-02] creating slot 0 inserts it, adds its pages and publishes once', () => {
    const vm = createVm(NOSMM);
    const s = expectOk(vm, SLOT0, 'CREATE', 'MS-CRT-02');
    expect(slotsOf(s.state)).toEqual([S0]);
    expect(s.state.nrMemslotPages).toBe(0x200n);
    expect(gen(s.state)).toBe(1n);
    expect(s.published).toEqual([s.state]);
  });
  it('[MS-CRT-02] slots are kept ascending by base gfn whatever the creation order', () => {
    const vm = build(NOSMM, [region(3, 0x30_0000n, PAGE, U1), region(1, 0x10_0000n, PAGE, U1)]);
    const s = expectOk(vm, region(2, 0x20_0000n, PAGE, U1), 'CREATE', 'MS-CRT-02');
    expect(slotsOf(s.state).map((x) => x.id)).toEqual([1, 2, 3]);
  });
  it('[MS-CRT-02] two adjacent slots (one ends where the other starts) do not overlap: both accepted (measured)', () => {
    const vm = exampleVm();
    // slot 1 ends at gfn 0x100 where slot 0 starts; slot 2 starts at gfn 0x300 where slot 0 ends.
    const a = expectOk(vm, region(1, 0xff000n, PAGE, U1), 'CREATE', 'MS-CRT-02');
    const b = expectOk(a.state, region(2, 0x30_0000n, PAGE, U1), 'CREATE', 'MS-CRT-02');
    expect(slotsOf(b.state).map((x) => [x.id, x.baseGfn])).toEqual([
      [1, 0xffn],
      [0, 0x100n],
      [2, 0x300n],
    ]);
  });

  /** x86_64 with a (crafted) internal slot of 2^64 - 2 pages in address space 1; the page count agrees. */
  function nearlyFull(p = X86): VmState {
    const huge = memslot(1, p.userMemSlots + 1, 0n, (1n << 64n) - 2n, 0n);
    const vm = createVm(p);
    return { ...vm, spaces: vm.spaces.map((s) => (s.asId === 1 ? addressSpace(1, s.generation, [huge]) : s)), nrMemslotPages: huge.npages };
  }
  it('[MS-CRT-01] a crafted VM with 2^64 - 2 pages: a 2-page CREATE wraps the page count and fails with EINVAL', () => {
    expectErr(nearlyFull(), region(0, 0n, 2n * PAGE, 0n), 'EINVAL', 'MS-CRT-01');
  });
  it('[MS-CRT-01][MS-CRT-02] a crafted VM with 2^64 - 2 pages: a 1-page CREATE reaches exactly 2^64 - 1 and succeeds', () => {
    const s = expectOk(nearlyFull(), region(0, 0n, PAGE, 0n), 'CREATE', 'MS-CRT-02');
    expect(s.state.nrMemslotPages).toBe((1n << 64n) - 1n);
  });
  it('[MS-CRT-01] page-count overflow and an overlap at once: the overflow decides before MS-OVL-01', () => {
    const withSlot = setUserMemoryRegion(nearlyFull(), region(0, 0n, PAGE, 0n)).state;
    expect(withSlot.nrMemslotPages).toBe((1n << 64n) - 1n);
    expectErr(withSlot, region(1, 0n, PAGE, 0n), 'EINVAL', 'MS-CRT-01');
  });
  it('[MS-CRT-01][MS-MOV-01] on a crafted full VM a modify is not a CREATE: no page-count check, the MOVE succeeds', () => {
    const withSlot = setUserMemoryRegion(nearlyFull(), region(0, 0n, PAGE, 0n)).state;
    expectOk(withSlot, region(0, 0x1000n, PAGE, 0n), 'MOVE', 'MS-MOV-01');
  });
  it('[MS-CRT-01][MS-CRT-02] linux-5.10-x86_64 has no page-count check: the wrapping CREATE succeeds', () => {
    const s = setUserMemoryRegion(nearlyFull(L510), region(0, 0n, 2n * PAGE, 0n));
    expect(s.result).toEqual({ ok: true, change: 'CREATE', rule: 'MS-CRT-02' });
  });
});

describe('[MS-MOD-01][MS-MOD-02][MS-MOD-03] modify rejections', () => {
  const vm = exampleVm();
  it('[MS-MOD-01] changing userspace_addr of a live slot fails with EINVAL (measured)', () => {
    expectErr(vm, { ...SLOT0, userspaceAddr: SLOT0_UADDR + PAGE }, 'EINVAL', 'MS-MOD-01');
  });
  it('[MS-MOD-01] a uaddr change and a resize at once: the uaddr check decides first', () => {
    expectErr(vm, { ...SLOT0, userspaceAddr: U1, memorySize: PAGE }, 'EINVAL', 'MS-MOD-01');
  });
  it('[MS-MOD-01] a uaddr change and a move onto another slot: the uaddr check decides before MS-OVL-01', () => {
    const two = build(NOSMM, [SLOT0, region(1, 0x40_0000n, PAGE, U1)]);
    expectErr(two, region(0, 0x40_0000n, 0x20_0000n, U1), 'EINVAL', 'MS-MOD-01');
  });
  it('[MS-MOD-02] growing a live slot fails with EINVAL (measured)', () => {
    expectErr(vm, { ...SLOT0, memorySize: 0x20_1000n }, 'EINVAL', 'MS-MOD-02');
  });
  it('[MS-MOD-02] shrinking a live slot fails with EINVAL', () => {
    expectErr(vm, { ...SLOT0, memorySize: PAGE }, 'EINVAL', 'MS-MOD-02');
  });
  it('[MS-MOD-02] a resize and a READONLY toggle at once: the resize check decides first', () => {
    expectErr(vm, { ...SLOT0, memorySize: PAGE, flags: 2 }, 'EINVAL', 'MS-MOD-02');
  });
  it('[MS-MOD-03] setting READONLY on a live slot fails with EINVAL (measured; chapter 20 example)', () => {
    expectErr(vm, { ...SLOT0, flags: 2 }, 'EINVAL', 'MS-MOD-03');
  });
  it('[MS-MOD-03] clearing READONLY on a live READONLY slot fails with EINVAL', () => {
    const ro = build(NOSMM, [{ ...SLOT0, flags: 2 }]);
    expectErr(ro, SLOT0, 'EINVAL', 'MS-MOD-03');
    expectErr(ro, { ...SLOT0, flags: 1 }, 'EINVAL', 'MS-MOD-03');
  });
  it('[MS-MOD-03] a READONLY toggle together with a move: the toggle decides, no MOVE happens', () => {
    expectErr(vm, { ...SLOT0, guestPhysAddr: 0x80_0000n, flags: 2 }, 'EINVAL', 'MS-MOD-03');
  });
  it('[MS-MOD-03] a READONLY toggle together with a move beyond the max gfn: the toggle decides, nothing is published', () => {
    expectErr(vm, { ...SLOT0, guestPhysAddr: GPA_LIMIT, flags: 2 }, 'EINVAL', 'MS-MOD-03');
  });
  it('[MS-MOD-03][MS-FLG-01] LOG_DIRTY toggled on a READONLY slot (flags 2 -> 3) is not a READONLY toggle: FLAGS_ONLY', () => {
    const ro = build(NOSMM, [{ ...SLOT0, flags: 2 }]);
    const s = expectOk(ro, { ...SLOT0, flags: 3 }, 'FLAGS_ONLY', 'MS-FLG-01');
    expect(slotsOf(s.state)).toEqual([{ ...S0, flags: 3, dirtyBitmap: 0 }]);
  });
});

describe('[MS-NOP-01] identical re-issue', () => {
  it('[MS-NOP-01][MS-GEN-04] re-issuing slot 0 as it is returns 0 with change NONE: same state, nothing published (measured)', () => {
    const vm = exampleVm();
    const s = expectOk(vm, SLOT0, 'NONE', 'MS-NOP-01');
    expect(gen(s.state)).toBe(gen(vm));
  });
  it('[MS-NOP-01] re-issuing a READONLY | LOG_DIRTY_PAGES slot keeps its bitmap and changes nothing', () => {
    const vm = build(NOSMM, [{ ...SLOT0, flags: 3 }]);
    expect(slotsOf(vm)).toEqual([{ ...S0, flags: 3, dirtyBitmap: 0 }]);
    expectOk(vm, { ...SLOT0, flags: 3 }, 'NONE', 'MS-NOP-01');
  });
  it('[MS-NOP-01] x86_64: an identical re-issue in address space 1 changes nothing', () => {
    const vm = build(X86, [{ ...SLOT0, slot: slotNr(1, 0) }]);
    expectOk(vm, { ...SLOT0, slot: slotNr(1, 0) }, 'NONE', 'MS-NOP-01');
  });
});

describe('[MS-OVL-01] overlap', () => {
  const vm = exampleVm();
  it('[MS-OVL-01] slot 1 at gpa 0x2ff000 (the last page of slot 0) fails with EEXIST (chapter 20 example)', () => {
    expectErr(vm, region(1, 0x2f_f000n, PAGE, U1), 'EEXIST', 'MS-OVL-01');
  });
  it('[MS-OVL-01] slot 1 at slot 0 base, inside it, and containing it all fail with EEXIST', () => {
    expectErr(vm, region(1, 0x10_0000n, PAGE, U1), 'EEXIST', 'MS-OVL-01');
    expectErr(vm, region(1, 0x18_0000n, 0x1_0000n, U1), 'EEXIST', 'MS-OVL-01');
    expectErr(vm, region(1, 0n, 0x100_0000n, U1), 'EEXIST', 'MS-OVL-01');
  });
  it('[MS-OVL-01] slot 1 starting one page below slot 0 and ending one page inside it fails with EEXIST', () => {
    expectErr(vm, region(1, 0xff000n, 2n * PAGE, U1), 'EEXIST', 'MS-OVL-01');
  });
  it('[MS-OVL-01][MS-CRT-02] slot 1 at gpa 0x300000, right after slot 0, is created (chapter 20 example)', () => {
    expectOk(vm, region(1, 0x30_0000n, PAGE, U1), 'CREATE', 'MS-CRT-02');
  });
  it('[MS-OVL-01] moving slot 0 onto another slot fails with EEXIST', () => {
    const two = build(NOSMM, [SLOT0, region(1, 0x40_0000n, PAGE, U1)]);
    expectErr(two, { ...SLOT0, guestPhysAddr: 0x30_1000n }, 'EEXIST', 'MS-OVL-01');
  });
  it('[MS-OVL-01][MS-MOV-01] moving slot 0 to end exactly where another slot starts succeeds', () => {
    const two = build(NOSMM, [SLOT0, region(1, 0x40_0000n, PAGE, U1)]);
    expectOk(two, { ...SLOT0, guestPhysAddr: 0x20_0000n }, 'MOVE', 'MS-MOV-01');
  });
  it('[MS-OVL-01] overlap and beyond the max gfn at once gives EEXIST: overlap is checked first (measured)', () => {
    const top = build(NOSMM, [region(2, GPA_LIMIT - 2n * PAGE, 2n * PAGE, U1)]);
    expectErr(top, region(3, GPA_LIMIT - PAGE, 2n * PAGE, U1), 'EEXIST', 'MS-OVL-01');
  });
  it('[MS-OVL-01][MS-CRT-02] x86_64: the same gpa in address space 0 and address space 1 does not conflict', () => {
    const x = exampleVm(X86);
    const s = expectOk(x, { ...SLOT0, slot: slotNr(1, 1) }, 'CREATE', 'MS-CRT-02');
    expect(slotsOf(s.state, 0)).toEqual([S0]);
    expect(slotsOf(s.state, 1)).toEqual([memslot(1, 1, 0x100n, 0x200n, SLOT0_UADDR)]);
    expect(s.state.nrMemslotPages).toBe(0x400n);
    // ... and within address space 1 the overlap is caught.
    expectErr(s.state, { ...SLOT0, slot: slotNr(1, 2) }, 'EEXIST', 'MS-OVL-01');
  });
  it('[MS-OVL-01][MS-CRT-02] x86_64: the same id in address space 0 and 1 are two independent slots', () => {
    const x = exampleVm(X86);
    const s = expectOk(x, region(slotNr(1, 0), 0x80_0000n, PAGE, U1), 'CREATE', 'MS-CRT-02');
    expect(idToMemslot(s.state, 0, 0)).toEqual(S0);
    expect(idToMemslot(s.state, 1, 0)).toEqual(memslot(1, 0, 0x800n, 1n, U1));
  });
  it('[MS-OVL-01][MS-CRT-02] host address ranges are never compared: a second slot aliasing slot 0 hva is created', () => {
    expectOk(vm, region(1, 0x40_0000n, 0x20_0000n, SLOT0_UADDR), 'CREATE', 'MS-CRT-02');
  });
  it('[MS-OVL-01] internal slots take part: a user slot over the APIC access page (0xfee00000) fails with EEXIST', () => {
    const withApic = setInternalMemslot(vm, 32765, 0xfee0_0000n, PAGE, 0x7f10_0000_0000n).state;
    expectErr(withApic, region(1, 0xfe00_0000n, 0x100_0000n, U1), 'EEXIST', 'MS-OVL-01');
  });
});

describe('[MS-X86-01] max gfn', () => {
  const vm = createVm(NOSMM);
  it('[MS-X86-01][MS-CRT-02] a slot ending exactly at gpa 2^52 (last gfn = max_gfn) is accepted (measured)', () => {
    const s = expectOk(vm, region(0, GPA_LIMIT - PAGE, PAGE, U1), 'CREATE', 'MS-CRT-02');
    expect(slotsOf(s.state)).toEqual([memslot(0, 0, (1n << 40n) - 1n, 1n, U1)]);
  });
  it('[MS-X86-01] a slot starting at gpa 2^52 fails with EINVAL and publishes nothing (measured)', () => {
    expectErr(vm, region(0, GPA_LIMIT, PAGE, U1), 'EINVAL', 'MS-X86-01');
  });
  it('[MS-X86-01] a slot straddling gpa 2^52 fails with EINVAL', () => {
    expectErr(vm, region(0, GPA_LIMIT - PAGE, 2n * PAGE, U1), 'EINVAL', 'MS-X86-01');
  });
  it('[MS-X86-01][MS-CRT-02] linux-5.10-x86_64 has no max-gfn check: a slot at gpa 2^52 is created', () => {
    expectOk(createVm(L510), region(0, GPA_LIMIT, PAGE, U1), 'CREATE', 'MS-CRT-02');
  });
  it('[MS-X86-01][MS-MOV-01] moving slot 0 so that it ends exactly at 2^52 succeeds', () => {
    expectOk(exampleVm(), { ...SLOT0, guestPhysAddr: GPA_LIMIT - 0x20_0000n }, 'MOVE', 'MS-MOV-01');
  });
  it('[MS-X86-01][MS-GEN-05] moving slot 0 past 2^52 fails with EINVAL, but the slot is re-published (see generations)', () => {
    const v = exampleVm();
    const s = setUserMemoryRegion(v, { ...SLOT0, guestPhysAddr: GPA_LIMIT });
    expect(s.result).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-X86-01' });
    expect(slotsOf(s.state)).toEqual([S0]);
  });
});

describe('[MS-MOV-01] move', () => {
  const vm = exampleVm();
  it('[MS-MOV-01][MS-GEN-03] moving slot 0 by -4096 onto a range overlapping its own old range succeeds with MOVE (measured; chapter 20 example)', () => {
    const s = expectOk(vm, { ...SLOT0, guestPhysAddr: 0xf_f000n }, 'MOVE', 'MS-MOV-01');
    expect(slotsOf(s.state)).toEqual([{ ...S0, baseGfn: 0xffn }]);
    expect(s.state.nrMemslotPages).toBe(0x200n);
    expect(gen(s.state)).toBe(gen(vm) + 2n);
    // The first publish shows the INVALID copy at the old place.
    expect(slotsOf(at(s.published, 0))).toEqual([{ ...S0, flags: KVM_MEMSLOT_INVALID }]);
  });
  it('[MS-MOV-01] moving up by one page, overlapping the old range from above, succeeds', () => {
    const s = expectOk(vm, { ...SLOT0, guestPhysAddr: 0x10_1000n }, 'MOVE', 'MS-MOV-01');
    expect(at(slotsOf(s.state), 0).baseGfn).toBe(0x101n);
  });
  it('[MS-MOV-01][MS-DLG-07] a move that also sets LOG_DIRTY_PAGES is still a MOVE, with a fresh bitmap', () => {
    const s = expectOk(vm, { ...SLOT0, guestPhysAddr: 0x80_0000n, flags: 1 }, 'MOVE', 'MS-MOV-01');
    expect(slotsOf(s.state)).toEqual([{ ...S0, baseGfn: 0x800n, flags: 1, dirtyBitmap: 0 }]);
  });
  it('[MS-MOV-01] a move past another slot reorders the slots by gfn', () => {
    const two = build(NOSMM, [SLOT0, region(1, 0x40_0000n, PAGE, U1)]);
    const s = expectOk(two, { ...SLOT0, guestPhysAddr: 0x100_0000n }, 'MOVE', 'MS-MOV-01');
    expect(slotsOf(s.state).map((x) => x.id)).toEqual([1, 0]);
  });
  it('[MS-MOV-01] x86_64: a move in address space 1 leaves address space 0 alone', () => {
    const x = build(X86, [SLOT0, { ...SLOT0, slot: slotNr(1, 0) }]);
    const s = expectOk(x, { ...SLOT0, slot: slotNr(1, 0), guestPhysAddr: 0x80_0000n }, 'MOVE', 'MS-MOV-01');
    expect(s.state.spaces[0]).toBe(x.spaces[0]);
    expect(slotsOf(s.state, 1)).toEqual([memslot(1, 0, 0x800n, 0x200n, SLOT0_UADDR)]);
  });
});

describe('[MS-FLG-01] flags change', () => {
  const vm = exampleVm();
  it('[MS-FLG-01][MS-GEN-02][MS-DLG-07] setting LOG_DIRTY_PAGES succeeds with FLAGS_ONLY: one publish, fresh bitmap', () => {
    const s = expectOk(vm, { ...SLOT0, flags: 1 }, 'FLAGS_ONLY', 'MS-FLG-01');
    expect(slotsOf(s.state)).toEqual([{ ...S0, flags: 1, dirtyBitmap: 0 }]);
    expect(gen(s.state)).toBe(gen(vm) + 1n);
    expect(s.published).toEqual([s.state]);
  });
  it('[MS-FLG-01][MS-DLG-08] clearing LOG_DIRTY_PAGES succeeds with FLAGS_ONLY and drops the bitmap', () => {
    const on = build(NOSMM, [{ ...SLOT0, flags: 1 }]);
    const s = expectOk(on, SLOT0, 'FLAGS_ONLY', 'MS-FLG-01');
    expect(slotsOf(s.state)).toEqual([S0]);
  });
});

describe('chapter 20 Examples table (slot 0 at gfn 0x100, 0x200 pages, uaddr 0x7f0000000000)', () => {
  const vm = exampleVm();
  it('[MS-VAL-01] slot 0, flags 4 -> EINVAL', () => expectErr(vm, { ...SLOT0, flags: 4 }, 'EINVAL', 'MS-VAL-01'));
  it('[MS-VAL-02] slot 32764 -> EINVAL', () => expectErr(vm, { ...SLOT0, slot: 32764 }, 'EINVAL', 'MS-VAL-02'));
  it('[MS-VAL-04] slot 0, size 0x1001 -> EINVAL', () => expectErr(vm, { ...SLOT0, memorySize: 0x1001n }, 'EINVAL', 'MS-VAL-04'));
  it('[MS-OVL-01] slot 1, gpa 0x2ff000, 1 page -> EEXIST', () => expectErr(vm, region(1, 0x2f_f000n, PAGE, U1), 'EEXIST', 'MS-OVL-01'));
  it('[MS-CRT-02] slot 1, gpa 0x300000, 1 page -> 0 (CREATE)', () => expectOk(vm, region(1, 0x30_0000n, PAGE, U1), 'CREATE', 'MS-CRT-02'));
  it('[MS-MOV-01] slot 0, gpa 0x0ff000, same size and uaddr -> 0 (MOVE)', () => expectOk(vm, { ...SLOT0, guestPhysAddr: 0xf_f000n }, 'MOVE', 'MS-MOV-01'));
  it('[MS-MOD-03] slot 0, flags 2 -> EINVAL', () => expectErr(vm, { ...SLOT0, flags: 2 }, 'EINVAL', 'MS-MOD-03'));
  it('[MS-DEL-02][MS-DEL-01] slot 0, size 0 -> 0 (DELETE); again -> EINVAL', () => {
    const s = expectOk(vm, del(0), 'DELETE', 'MS-DEL-02');
    expectErr(s.state, del(0), 'EINVAL', 'MS-DEL-01');
  });
});

describe('selftest shapes (set_memory_region_test.c, memslot_modification_stress_test.c)', () => {
  const MEM_REGION_SIZE = 0x20_0000n;
  const HOST = 0x1000_0000_0000n;
  /** test_add_max_memory_regions(): slot i is 2 MiB at gpa i * 2 MiB, host address base + i * 2 MiB. */
  const addRegion = (i: number) => region(i, BigInt(i) * MEM_REGION_SIZE, MEM_REGION_SIZE, HOST + BigInt(i) * MEM_REGION_SIZE);
  /** Creates slots `from .. to-1` through the model, one request each. */
  function fill(vm: VmState, from: number, to: number): VmState {
    for (let i = from; i < to; i++) {
      const s = setUserMemoryRegion(vm, addRegion(i));
      // One expect per failure only: tens of thousands of expect() calls would dominate the run time.
      if (!s.result.ok) expect({ i, r: s.result }).toEqual({ i, r: { ok: true, change: 'CREATE', rule: 'MS-CRT-02' } });
      vm = s.state;
    }
    return vm;
  }
  /**
   * The state the model reaches after creating slots `0 .. n-1` on a fresh one-address-space
   * VM, written as plain data (the model's state is data); checked against a model-built
   * prefix below.
   */
  function filled(p: typeof NOSMM, n: number): VmState {
    const slots = Array.from({ length: n }, (_, i) => memslot(0, i, BigInt(i) * 0x200n, 0x200n, HOST + BigInt(i) * MEM_REGION_SIZE));
    return {
      kernel: p,
      profile: p,
      vmType: 0,
      gmems: [],
      spaces: [addressSpace(0, BigInt(n), slots)],
      nrMemslotPages: BigInt(n) * 0x200n,
      bitmapsAllocated: 0,
      dirtyBits: createVm(p).dirtyBits,
      manualProtect: 0,
      vcpuCreated: false,
      ring: createVm(p).ring,
    };
  }

  it('[MS-CRT-02] the crafted filled state equals the state the model builds, request by request (2000 slots)', () => {
    expect(asData(fill(createVm(NOSMM), 0, 2000))).toEqual(asData(filled(NOSMM, 2000)));
  });
  it('[MS-CRT-02][MS-VAL-02] test_add_max_memory_regions on x86_64-nosmm: with 32763 slots live, slot 32763 is created, then slot 32764 fails with EINVAL', () => {
    const max = NOSMM.userMemSlots;
    expect(max).toBe(32764);
    const before = filled(NOSMM, max - 1);
    checkInvariants(NOSMM, observableState(before));
    const last = expectOk(before, addRegion(max - 1), 'CREATE', 'MS-CRT-02').state;
    expect(slotsOf(last)).toHaveLength(max);
    expect(last.nrMemslotPages).toBe(BigInt(max) * 0x200n);
    expect(gen(last)).toBe(BigInt(max));
    expectErr(last, addRegion(max), 'EINVAL', 'MS-VAL-02');
  });
  it('[MS-CRT-02][MS-VAL-02] test_add_max_memory_regions on x86_64-nosmm, every request through the model: 32764 slots are created, slot 32764 fails with EINVAL', () => {
    const vm = fill(createVm(NOSMM), 0, NOSMM.userMemSlots);
    expect(asData(vm)).toEqual(asData(filled(NOSMM, NOSMM.userMemSlots)));
    expectErr(vm, addRegion(NOSMM.userMemSlots), 'EINVAL', 'MS-VAL-02');
  });
  it('[MS-CRT-02][MS-VAL-02] test_add_max_memory_regions on linux-5.10-x86_64, every request through the model: 509 slots are created, slot 509 fails with EINVAL', () => {
    const vm = fill(createVm(L510), 0, 509);
    expect(slotsOf(vm)).toHaveLength(509);
    expect(gen(vm)).toBe(2n * 509n);
    expectErr(vm, addRegion(509), 'EINVAL', 'MS-VAL-02');
  });

  const GPA = 0xc000_0000n;
  const SLOT = 10;
  const R10 = region(SLOT, GPA, MEM_REGION_SIZE, HOST);
  it('[MS-MOV-01][MS-LKP-09] test_move_memory_region: move slot 10 by -4096 (the guest may see the INVALID window), then back', () => {
    const vm = build(NOSMM, [R10]);
    const gfn = GPA >> 12n;
    const there = expectOk(vm, { ...R10, guestPhysAddr: GPA - PAGE }, 'MOVE', 'MS-MOV-01');
    // During the move the slot is INVALID: a guest access is an MMIO exit.
    expect(gfnToHva(at(there.published, 0), 0, gfn, false)).toEqual({ ok: false, error: 'KVM_HVA_ERR_BAD' });
    // After it, gfn 0xc0000 maps one page further into the host buffer.
    expect(gfnToHva(there.state, 0, gfn, false)).toEqual({ ok: true, hva: HOST + PAGE });
    const back = expectOk(there.state, R10, 'MOVE', 'MS-MOV-01');
    expect(slotsOf(back.state)).toEqual(slotsOf(vm));
    expect(gen(back.state)).toBe(gen(vm) + 4n);
    expect(gfnToHva(back.state, 0, gfn, false)).toEqual({ ok: true, hva: HOST });
  });
  it('[MS-DEL-02][MS-CRT-02][MS-LKP-02] test_delete_memory_region: delete slot 10, re-create it, delete it and slot 0', () => {
    const vm = build(NOSMM, [region(0, 0n, MEM_REGION_SIZE, HOST + 0x1000_0000n), R10]);
    const gfn = GPA >> 12n;
    const gone = expectOk(vm, del(SLOT), 'DELETE', 'MS-DEL-02');
    expect(gfnToMemslot(gone.state, 0, gfn)).toBeNull();
    const again = expectOk(gone.state, R10, 'CREATE', 'MS-CRT-02');
    expect(gfnToMemslot(again.state, 0, gfn)?.id).toBe(SLOT);
    const gone2 = expectOk(again.state, del(SLOT), 'DELETE', 'MS-DEL-02');
    const none = expectOk(gone2.state, del(0), 'DELETE', 'MS-DEL-02');
    expect(slotsOf(none.state)).toEqual([]);
    expect(none.state.nrMemslotPages).toBe(0n);
  });
  it('[MS-CRT-02][MS-DEL-02] memslot_modification_stress: creating and deleting slot 7 right below a live slot never touches it', () => {
    const main = region(1, 0x1_0000_0000n, 0x4000_0000n, HOST);
    let vm = build(NOSMM, [main]);
    const live = at(slotsOf(vm), 0);
    for (let i = 0; i < 10; i++) {
      vm = expectOk(vm, region(7, 0x1_0000_0000n - PAGE, PAGE, HOST + 0x8000_0000n), 'CREATE', 'MS-CRT-02').state;
      expect(slotsOf(vm).find((s) => s.id === 1)).toBe(live);
      vm = expectOk(vm, del(7), 'DELETE', 'MS-DEL-02').state;
      expect(slotsOf(vm)).toEqual([live]);
    }
    expect(gen(vm)).toBe(1n + 10n * 3n);
  });
});

// No request sequence gets nr_memslot_pages near 2^64, so both implementations are checked on
// a crafted page counter, against the model on the same crafted state.
describe.each(Object.entries(IMPLEMENTATIONS))('[MS-CRT-01] the VM-wide page count, %s implementation', (_name, make) => {
  const UADDR = 0x7f00_0000_0000n;
  /** A fresh implementation whose page counter already holds `pages` (as no request can make it). */
  function withPages(p: Profile, pages: bigint) {
    const impl = make(p);
    (impl as unknown as { nrPages: bigint }).nrPages = pages;
    return impl;
  }

  it('[MS-CRT-01] a create that would overflow the u64 nr_memslot_pages fails with EINVAL; one that reaches 2^64 - 1 exactly fits', () => {
    const over = withPages(NOSMM, U64_MAX - 1n);
    expect(over.setUserMemoryRegion(region(0, 0n, 2n * PAGE, UADDR))).toEqual({ ok: false, errno: 'EINVAL' });
    expect(over.slots(0)).toEqual([]);
    const fits = withPages(NOSMM, U64_MAX - 1n);
    expect(fits.setUserMemoryRegion(region(0, 0n, PAGE, UADDR))).toEqual({ ok: true, change: 'CREATE' });
    expect(fits.nrMemslotPages()).toBe(U64_MAX);
    // The model agrees on both.
    const vm = { ...createVm(NOSMM), nrMemslotPages: U64_MAX - 1n };
    expect(setUserMemoryRegion(vm, region(0, 0n, 2n * PAGE, UADDR)).result.ok).toBe(false);
    expect(setUserMemoryRegion(vm, region(0, 0n, PAGE, UADDR)).result.ok).toBe(true);
  });

  it('[MS-CRT-01] 5.10 has no such check: the same create succeeds', () => {
    const impl = withPages(L510, U64_MAX - 1n);
    expect(impl.setUserMemoryRegion(region(0, 0n, 2n * PAGE, UADDR))).toEqual({ ok: true, change: 'CREATE' });
  });
});
