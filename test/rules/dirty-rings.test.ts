/**
 * Chapter 25, dirty rings: KVM_ENABLE_CAP(KVM_CAP_DIRTY_LOG_RING[_ACQ_REL]), the bitmap calls with
 * a ring, the entries guest writes push, the harvest and KVM_RESET_DIRTY_RINGS, one example per
 * rule against the model.
 */
import { describe, expect, it } from 'vitest';
import {
  KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEM_READONLY,
  LINE_PROFILES,
  PROFILES,
  SOURCE_PROFILES,
  clearDirtyLog,
  createVm,
  createVmOfType,
  enableCap,
  getDirtyLog,
  guestWrite,
  harvestDirtyRing,
  inUnknownRingSlot,
  resetDirtyRings,
  ringUsed,
  setUserMemoryRegion,
  type Profile,
  type RingEntry,
  type VmState,
  type WriteOutcome,
} from '../../model/index.js';
import type { RuleId } from '../../spec/rules.js';
import { expectTitleCites } from './helpers.js';

const K73 = LINE_PROFILES['linux-7.3-x86_64']!;
const K61 = LINE_PROFILES['linux-6.1-x86_64']!;
const K510 = PROFILES['linux-5.10-x86_64']!;
const UADDR = 0x7f00_0000_0000n;
const GPA = 0x10_0000n;
const LOG = KVM_MEM_LOG_DIRTY_PAGES;

function ok<T extends { state: VmState; result: { ok: boolean } }>(s: T): VmState {
  expect(s.result.ok, JSON.stringify(s.result)).toBe(true);
  return s.state;
}

/** Slot `id` of `npages` pages at GPA + id MiB. */
function slot(vm: VmState, id: number, flags = LOG, npages = 300n, asId = 0): VmState {
  const base = GPA + BigInt(id) * 0x10_0000n * 4n;
  return ok(
    setUserMemoryRegion(vm, {
      slot: (asId << 16) | id,
      flags,
      guestPhysAddr: base,
      memorySize: npages << 12n,
      userspaceAddr: UADDR + BigInt(id) * 0x1000_0000n,
    }),
  );
}

const gpa = (id: number, page: bigint): bigint => GPA + BigInt(id) * 0x10_0000n * 4n + (page << 12n) + 0x7n;

/** A VM with a ring of `size` bytes. */
function ringVm(size = 4096n, p: Profile = K73, vm: VmState = createVm(p)): VmState {
  return ok(enableCap(vm, 'DIRTY_LOG_RING', size, 0));
}

function write(vm: VmState, id: number, page: bigint, outcome: WriteOutcome, rule: RuleId, asId = 0): VmState {
  const w = guestWrite(vm, asId, gpa(id, page));
  expect(w.result, `write ${id}:${page}`).toEqual({ outcome, rule });
  return w.state;
}

function harvest(vm: VmState, want: [number, bigint][]): VmState {
  const h = harvestDirtyRing(vm);
  expect(h.entries.map((e: RingEntry) => [e.slot, e.offset])).toEqual(want);
  return h.state;
}

function reset(vm: VmState, count: number): VmState {
  const r = resetDirtyRings(vm);
  expect(r.result).toEqual({ ok: true, count, rule: 'MS-RNG-14' });
  return r.state;
}

describe('KVM_ENABLE_CAP(KVM_CAP_DIRTY_LOG_RING)', () => {
  it('[MS-RNG-01] a cap the kernel does not offer fails with EINVAL: both on 5.10, the same for ACQ_REL where it is missing', () => {
    for (const cap of ['DIRTY_LOG_RING', 'DIRTY_LOG_RING_ACQ_REL'] as const) {
      expect(enableCap(createVm(K510), cap, 4096n, 0).result).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-RNG-01' });
    }
    const noAcqRel = { ...K73, dirtyRingAcqRel: false };
    expect(enableCap(createVm(noAcqRel), 'DIRTY_LOG_RING_ACQ_REL', 4096n, 0).result).toMatchObject({ errno: 'EINVAL', rule: 'MS-RNG-01' });
    expect(enableCap(createVm(noAcqRel), 'DIRTY_LOG_RING', 4096n, 0).result).toMatchObject({ ok: true });
    expectTitleCites('MS-RNG-01');
  });
  it('[MS-RNG-02] a size of 0 or not a power of two fails with EINVAL, after args0 is cut to its low 32 bits', () => {
    for (const size of [0n, 3n, 4097n, 0x3000n, 0x1_0000_0000n]) {
      expect(enableCap(createVm(K73), 'DIRTY_LOG_RING', size, 0).result, String(size)).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-RNG-02' });
    }
    // 0x1_0000_1000 is 0x1000 as a u32: a valid ring.
    expect(enableCap(createVm(K73), 'DIRTY_LOG_RING', 0x1_0000_1000n, 0).result).toEqual({ ok: true, rule: 'MS-RNG-07' });
    expectTitleCites('MS-RNG-02');
  });
  it('[MS-RNG-03] a size below a page or the reserved entries fails with EINVAL (Intel PML reserves 576: 8 KiB is too small)', () => {
    for (const size of [1n, 1024n, 2048n])
      expect(enableCap(createVm(K73), 'DIRTY_LOG_RING', size, 0).result).toMatchObject({ errno: 'EINVAL', rule: 'MS-RNG-03' });
    const pml = { ...K73, dirtyRingRsvdEntries: 576 };
    expect(enableCap(createVm(pml), 'DIRTY_LOG_RING', 8192n, 0).result).toMatchObject({ errno: 'EINVAL', rule: 'MS-RNG-03' });
    expect(enableCap(createVm(pml), 'DIRTY_LOG_RING', 16384n, 0).result).toMatchObject({ ok: true });
    expectTitleCites('MS-RNG-03');
  });
  it('[MS-RNG-04] a size above 65536 entries fails with E2BIG; 1 MiB is the largest', () => {
    expect(enableCap(createVm(K73), 'DIRTY_LOG_RING', 0x20_0000n, 0).result).toEqual({ ok: false, errno: 'E2BIG', rule: 'MS-RNG-04' });
    expect(enableCap(createVm(K73), 'DIRTY_LOG_RING_ACQ_REL', 0x10_0000n, 0).result).toEqual({ ok: true, rule: 'MS-RNG-07' });
    expectTitleCites('MS-RNG-04');
  });
  it('[MS-RNG-05] a second ring fails with EINVAL, by either cap, whatever its size', () => {
    const vm = ringVm();
    expect(enableCap(vm, 'DIRTY_LOG_RING', 4096n, 0).result).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-RNG-05' });
    expect(enableCap(vm, 'DIRTY_LOG_RING_ACQ_REL', 8192n, 0).result).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-RNG-05' });
    // The size checks come first: a bad size is still MS-RNG-02.
    expect(enableCap(vm, 'DIRTY_LOG_RING', 3n, 0).result).toMatchObject({ rule: 'MS-RNG-02' });
    expectTitleCites('MS-RNG-05');
  });
  it('[MS-RNG-06] after the first write (which creates vCPU 0) a ring fails with EINVAL, even a write that exits as MMIO', () => {
    const vm = guestWrite(createVm(K73), 0, 0x1000n).state;
    expect(vm.vcpuCreated).toBe(true);
    expect(enableCap(vm, 'DIRTY_LOG_RING', 4096n, 0).result).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-RNG-06' });
    expectTitleCites('MS-RNG-06');
  });
  it('[MS-RNG-07] otherwise the ring is set, the flags are not looked at, and slots may exist already', () => {
    const s = enableCap(slot(createVm(K73), 0), 'DIRTY_LOG_RING', 8192n, 0xffff_ffff);
    expect(s.result).toEqual({ ok: true, rule: 'MS-RNG-07' });
    expect(s.state.ring.size).toBe(8192);
    expect(enableCap(createVm(K61), 'DIRTY_LOG_RING_ACQ_REL', 4096n, 0).result).toEqual({ ok: true, rule: 'MS-RNG-07' });
    expectTitleCites('MS-RNG-07');
  });
});

describe('the bitmap calls with a ring', () => {
  it('[MS-DLG-09] KVM_GET_DIRTY_LOG fails with ENXIO first: a logged slot, a missing one, an as_id out of range', () => {
    const vm = ringVm(4096n, K73, slot(createVm(K73), 0));
    for (const s of [0, 7, 5 << 16, 0xffff]) expect(getDirtyLog(vm, s).result, String(s)).toEqual({ ok: false, errno: 'ENXIO', rule: 'MS-DLG-09' });
    expectTitleCites('MS-DLG-09');
  });
  it('[MS-CLR-06] KVM_CLEAR_DIRTY_LOG fails with ENXIO first, even with first_page not a multiple of 64', () => {
    const vm = ringVm(4096n, K73, slot(createVm(K73), 0));
    for (const c of [
      { slot: 0, firstPage: 0n, numPages: 64, bitmap: 'ff' },
      { slot: 5 << 16, firstPage: 3n, numPages: 1, bitmap: '' },
    ]) {
      expect(clearDirtyLog(vm, c).result).toEqual({ ok: false, errno: 'ENXIO', rule: 'MS-CLR-06' });
    }
    expectTitleCites('MS-CLR-06');
  });
  it('[MS-DLG-10] a logged slot created with a ring gets no bitmap; one from before the ring keeps its bitmap through a MOVE', () => {
    const before = slot(createVm(K73), 0);
    let vm = ringVm(4096n, K73, before);
    const created = setUserMemoryRegion(vm, { slot: 1, flags: LOG, guestPhysAddr: 0x4000_0000n, memorySize: 0x10_000n, userspaceAddr: UADDR + 0x1000_0000n });
    expect(created.fired).toContain('MS-DLG-10');
    vm = created.state;
    expect(vm.spaces[0]!.byId.get(1)!.dirtyBitmap).toBeNull();
    const kept = vm.spaces[0]!.byId.get(0)!.dirtyBitmap;
    expect(kept).not.toBeNull();
    const moved = setUserMemoryRegion(vm, { slot: 0, flags: LOG, guestPhysAddr: 0x8000_0000n, memorySize: 300n << 12n, userspaceAddr: UADDR });
    expect(moved.result).toMatchObject({ ok: true, change: 'MOVE' });
    expect(moved.state.spaces[0]!.byId.get(0)!.dirtyBitmap).toBe(kept);
    expectTitleCites('MS-DLG-10');
  });
});

describe('writes with a ring', () => {
  it('[MS-RNG-09] a write into a logged page pushes (as_id << 16 | id, offset); SMM writes name address space 1; unlogged and READONLY slots push nothing', () => {
    let vm = ringVm(4096n, PROFILES['x86_64']!, createVm(PROFILES['x86_64']!));
    vm = slot(vm, 0);
    vm = slot(vm, 1, 0);
    vm = slot(vm, 2, LOG | KVM_MEM_READONLY);
    vm = slot(vm, 3, LOG, 16n, 1);
    vm = write(vm, 0, 5n, 'ret', 'MS-RNG-09');
    vm = write(vm, 1, 5n, 'ret', 'MS-WR-04');
    vm = write(vm, 2, 5n, 'mmio', 'MS-WR-02');
    vm = write(vm, 3, 15n, 'ret', 'MS-RNG-09', 1);
    vm = write(vm, 0, 299n, 'ret', 'MS-RNG-09');
    harvest(vm, [
      [0, 5n],
      [(1 << 16) | 3, 15n],
      [0, 299n],
    ]);
    expectTitleCites('MS-RNG-09');
  });
  it('[MS-RNG-10] a second write into a page still mapped writable pushes nothing, harvested or not', () => {
    let vm = slot(ringVm(), 0);
    vm = write(vm, 0, 1n, 'ret', 'MS-RNG-09');
    vm = write(vm, 0, 1n, 'ret', 'MS-RNG-10');
    vm = harvest(vm, [[0, 1n]]);
    vm = write(vm, 0, 1n, 'ret', 'MS-RNG-10');
    harvest(vm, []);
    expectTitleCites('MS-RNG-10');
  });
  it('[MS-RNG-08] at the soft limit (4096-byte ring: 256 - 64 = 192 entries) the push that reaches it and every later write exit dirty_ring_full; a reset lets the vCPU run', () => {
    let vm = slot(ringVm(), 0, LOG, 300n);
    for (let p = 0n; p < 191n; p++) vm = write(vm, 0, p, 'ret', 'MS-RNG-09');
    // The 192nd entry is pushed, then the vCPU exits before it retries the write.
    vm = write(vm, 0, 191n, 'dirty_ring_full', 'MS-RNG-09');
    expect(ringUsed(vm.ring)).toBe(192);
    const stuck = vm;
    vm = write(vm, 0, 250n, 'dirty_ring_full', 'MS-RNG-08');
    vm = write(vm, 7, 0n, 'dirty_ring_full', 'MS-RNG-08');
    expect(vm.ring).toEqual(stuck.ring);
    // Harvested but not reset: still full.
    vm = harvestDirtyRing(vm).state;
    vm = write(vm, 0, 250n, 'dirty_ring_full', 'MS-RNG-08');
    vm = reset(vm, 192);
    vm = write(vm, 0, 250n, 'ret', 'MS-RNG-09');
    expectTitleCites('MS-RNG-08');
  });
  it('[MS-RNG-11] a DELETE or MOVE in a default VM drops every mapping, in another VM type only its own slot; FLAGS_ONLY off and on re-protects', () => {
    let vm = slot(slot(ringVm(), 0), 1);
    vm = write(vm, 0, 1n, 'ret', 'MS-RNG-09');
    vm = write(vm, 1, 1n, 'ret', 'MS-RNG-09');
    // Deleting an unrelated slot zaps everything (KVM_X86_QUIRK_SLOT_ZAP_ALL).
    vm = slot(vm, 9, 0, 1n);
    const del = setUserMemoryRegion(vm, { slot: 9, flags: 0, guestPhysAddr: gpa(9, 0n) & ~0xfffn, memorySize: 0n, userspaceAddr: UADDR + 9n * 0x1000_0000n });
    expect(del.fired).toContain('MS-RNG-11');
    vm = write(del.state, 0, 1n, 'ret', 'MS-RNG-09');
    vm = write(vm, 1, 1n, 'ret', 'MS-RNG-09');
    // FLAGS_ONLY off and on: slot 0's pages are protected again, slot 1's are not.
    vm = ok(setUserMemoryRegion(vm, { slot: 0, flags: 0, guestPhysAddr: gpa(0, 0n) & ~0xfffn, memorySize: 300n << 12n, userspaceAddr: UADDR }));
    vm = write(vm, 0, 1n, 'ret', 'MS-WR-04');
    vm = ok(setUserMemoryRegion(vm, { slot: 0, flags: LOG, guestPhysAddr: gpa(0, 0n) & ~0xfffn, memorySize: 300n << 12n, userspaceAddr: UADDR }));
    vm = write(vm, 0, 1n, 'ret', 'MS-RNG-09');
    vm = write(vm, 1, 1n, 'ret', 'MS-RNG-10');
    // KVM_X86_SW_PROTECTED_VM: a delete zaps only the deleted slot.
    const swp = SOURCE_PROFILES['linux-7.3-x86_64-sw-protected']!;
    const typed = createVmOfType(createVm(swp), 1);
    expect(typed.result.ok).toBe(true);
    let sw = slot(slot(ringVm(4096n, swp, typed.state), 0), 9, 0, 1n);
    sw = write(sw, 0, 1n, 'ret', 'MS-RNG-09');
    sw = ok(setUserMemoryRegion(sw, { slot: 9, flags: 0, guestPhysAddr: gpa(9, 0n) & ~0xfffn, memorySize: 0n, userspaceAddr: UADDR + 9n * 0x1000_0000n }));
    sw = write(sw, 0, 1n, 'ret', 'MS-RNG-10');
    // ... and the changed slot's own: slot 0 deleted and created again faults (and pushes) anew.
    sw = ok(setUserMemoryRegion(sw, { slot: 0, flags: 0, guestPhysAddr: gpa(0, 0n) & ~0xfffn, memorySize: 0n, userspaceAddr: UADDR }));
    write(slot(sw, 0), 0, 1n, 'ret', 'MS-RNG-09');
    expectTitleCites('MS-RNG-11');
  });
  it('[MS-RNG-11] a SUT whose writes drop the mappings (the kvm driver) pushes on every write; INITIALLY_SET then FLAGS_ONLY on leaves the slot unknown until a zap', () => {
    let vm = slot(ringVm(4096n, { ...K73, writeDropsMappings: true }), 0);
    vm = write(vm, 0, 1n, 'ret', 'MS-RNG-09');
    vm = write(vm, 0, 1n, 'ret', 'MS-RNG-09');
    harvest(vm, [
      [0, 1n],
      [0, 1n],
    ]);
    let m = ok(enableCap(slot(ringVm(), 0, 0), 'MANUAL_DIRTY_LOG_PROTECT2', 3n, 0));
    m = write(m, 0, 1n, 'ret', 'MS-WR-04');
    m = ok(setUserMemoryRegion(m, { slot: 0, flags: LOG, guestPhysAddr: gpa(0, 0n) & ~0xfffn, memorySize: 300n << 12n, userspaceAddr: UADDR }));
    expect(inUnknownRingSlot(m, 0, gpa(0, 1n))).toBe(true);
    m = slot(m, 9, 0, 1n);
    m = ok(setUserMemoryRegion(m, { slot: 9, flags: 0, guestPhysAddr: gpa(9, 0n) & ~0xfffn, memorySize: 0n, userspaceAddr: UADDR + 9n * 0x1000_0000n }));
    expect(inUnknownRingSlot(m, 0, gpa(0, 1n))).toBe(false);
  });
});

describe('harvest and KVM_RESET_DIRTY_RINGS', () => {
  it('[MS-RNG-12] a harvest returns the entries since the last one, in push order; none without a ring or before the vCPU', () => {
    expect(harvestDirtyRing(createVm(K73)).entries).toEqual([]);
    expect(harvestDirtyRing(ringVm()).entries).toEqual([]);
    let vm = slot(ringVm(), 0);
    for (const p of [9n, 3n, 200n]) vm = write(vm, 0, p, 'ret', 'MS-RNG-09');
    vm = harvest(vm, [
      [0, 9n],
      [0, 3n],
      [0, 200n],
    ]);
    vm = harvest(vm, []);
    vm = write(vm, 0, 4n, 'ret', 'MS-RNG-09');
    harvest(vm, [[0, 4n]]);
    expectTitleCites('MS-RNG-12');
  });
  it('[MS-RNG-13] without a ring KVM_RESET_DIRTY_RINGS fails with EINVAL; on 5.10 the ioctl does not exist (ENOTTY)', () => {
    expect(resetDirtyRings(createVm(K73)).result).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-RNG-13' });
    expect(resetDirtyRings(createVm(K510)).result).toEqual({ ok: false, errno: 'ENOTTY', rule: 'MS-RNG-13' });
    expectTitleCites('MS-RNG-13');
  });
  it('[MS-RNG-14] a reset counts the harvested entries only and write-protects their pages; a batch whose slot is gone or too small is skipped whole', () => {
    let vm = slot(ringVm(), 0);
    vm = reset(vm, 0);
    vm = write(vm, 0, 1n, 'ret', 'MS-RNG-09');
    vm = write(vm, 0, 2n, 'ret', 'MS-RNG-09');
    vm = harvest(vm, [
      [0, 1n],
      [0, 2n],
    ]);
    vm = write(vm, 0, 3n, 'ret', 'MS-RNG-09');
    // Only the two harvested entries are reset; page 3's entry stays, so page 3 stays mapped.
    vm = reset(vm, 2);
    expect(ringUsed(vm.ring)).toBe(1);
    vm = write(vm, 0, 1n, 'ret', 'MS-RNG-09');
    vm = write(vm, 0, 3n, 'ret', 'MS-RNG-10');
    vm = harvest(vm, [
      [0, 3n],
      [0, 1n],
    ]);
    vm = reset(vm, 2);
    // Slot 0 (of `before` pages) writes two pages, they are harvested, the slot is deleted and
    // created again with `after` pages, and `page` is written in it; then the two old entries
    // are reset. Their batch is skipped whole when its last page is past the new slot (`page`
    // stays mapped: MS-RNG-10), else re-protected (`page` faults again: MS-RNG-09).
    const cases: readonly { pushed: readonly [bigint, bigint]; before: bigint; after: bigint; page: bigint; rule: RuleId; why: string }[] = [
      { pushed: [0n, 5n], before: 8n, after: 2n, page: 0n, rule: 'MS-RNG-10', why: 'a batch reaching page 5' },
      // Backwards too: 100 then 40 make one batch at 40 whose last page is 100 (as two, 40's would be re-protected).
      { pushed: [100n, 40n], before: 300n, after: 90n, page: 40n, rule: 'MS-RNG-10', why: 'a batch grown backwards' },
      // At the slot's very end: last page 2 is past 2 pages, inside 3.
      { pushed: [0n, 2n], before: 8n, after: 2n, page: 0n, rule: 'MS-RNG-10', why: 'last page at npages' },
      { pushed: [0n, 2n], before: 8n, after: 3n, page: 0n, rule: 'MS-RNG-09', why: 'last page at npages - 1' },
    ];
    for (const c of cases) {
      let v = slot(ringVm(4096n, { ...K73, writeDropsMappings: false }), 0, LOG, c.before);
      for (const p of c.pushed) v = write(v, 0, p, 'ret', 'MS-RNG-09');
      v = harvestDirtyRing(v).state;
      v = ok(setUserMemoryRegion(v, { slot: 0, flags: 0, guestPhysAddr: gpa(0, 0n) & ~0xfffn, memorySize: 0n, userspaceAddr: UADDR }));
      v = write(slot(v, 0, LOG, c.after), 0, c.page, 'ret', 'MS-RNG-09');
      expect(guestWrite(reset(v, 2), 0, gpa(0, c.page)).result, c.why).toEqual({ outcome: 'ret', rule: c.rule });
    }
    // Only the batch's own pages: page 6, mapped after the harvest, stays mapped across the reset of 5 and 7.
    let v4 = slot(ringVm(4096n, { ...K73, writeDropsMappings: false }), 0);
    v4 = write(v4, 0, 5n, 'ret', 'MS-RNG-09');
    v4 = write(v4, 0, 7n, 'ret', 'MS-RNG-09');
    v4 = harvestDirtyRing(v4).state;
    v4 = write(v4, 0, 6n, 'ret', 'MS-RNG-09');
    v4 = reset(v4, 2);
    v4 = write(v4, 0, 6n, 'ret', 'MS-RNG-10');
    write(v4, 0, 7n, 'ret', 'MS-RNG-09');
    expectTitleCites('MS-RNG-14');
  });
});
