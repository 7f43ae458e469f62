/**
 * Legacy memslots: the kernel's design before 5.17, as in Linux 5.10 (virt/kvm/kvm_main.c,
 * include/linux/kvm_host.h). One `struct kvm_memslots` per address space: a header with the
 * generation, `id_to_index[KVM_MEM_SLOTS_NUM]`, `lru_slot` and `used_slots`, followed by
 * the slots by value, sorted by base_gfn DESCENDING. Every change duplicates the whole
 * header and array (kvm_dup_memslots()), edits the copy and installs it.
 *
 * Costs (faithful on purpose: this is the benchmark baseline): every request is O(n)
 * (the dup, the array shifts and the linear overlap scan); id lookup is O(1); gfn lookup is
 * O(log n) behind the LRU index; gfn-range and hva-range walks are O(n).
 *
 * Writer and readers (spec/45-atomicity.md): kvm_set_memslot() is written as steps that stop
 * after each install_new_memslots() publish, where 5.10 calls synchronize_srcu_expedited();
 * the synchronous API drains them at once, a concurrent writer resumes after the grace period.
 * That wait is what makes it safe for a DELETE or MOVE to edit the array the install handed
 * back. The kernel-mirroring steps are protected so that properties/concurrency/planted.fixture.ts can
 * derive broken writers from them.
 */
import type { ConcurrentMemslotImpl, CountOutcome, ImplFactory, MemslotImpl, MemslotsReader, SyncPoint, WriterSteps } from '../interface.js';
import type { Profile } from '../../model/profiles.js';
import {
  InvariantError,
  KVM_MEMSLOT_INVALID,
  PAGE_SHIFT,
  type DirtyLogOutcome,
  type Gfn,
  type Gpa,
  type Hva,
  type HvaRangeHit,
  type HvaResult,
  type MemoryRegion,
  type MemoryRegion2,
  type Memslot,
  type SetOutcome,
} from '../../model/types.js';
import {
  checkAsId,
  generationAfterSwap,
  generationInProgress,
  gfnToHvaMemslot,
  hvaRangeHit,
  isVisibleMemslot,
  makeMemslot,
  vcpuMemslotsId,
} from '../internal/memslot.js';
import {
  chooseDirtyBitmap,
  decideMemoryRegion,
  decideUserMemoryRegion,
  decideUserMemoryRegion2,
  gmemBindConflicts,
  outcomeWithoutChange,
  setInternalMemslotLoop,
  type ActiveMemslotsView,
  type Decision,
  type MemslotChange,
  archPrepareMemoryRegionFails,
} from '../internal/validate.js';
import { drainSteps, Readers, Srcu } from '../internal/srcu.js';
import { MemslotArray } from './memslot-array.js';
import { BindingList } from './binding-list.js';
import { checkCreateGuestMemfd, checkExtensionCommon, setMemoryAttributesCommon, vmTypeSupported, type GmemFile } from '../internal/vm-ioctls.js';
import type { CapFd, CapName } from '../../model/capabilities.js';
import { vmProfile } from '../../model/vm-types.js';
import type { ClearDirtyLog, EnableCapName, WriteOutcome } from '../../model/dirty-log.js';
import type { RingEntry } from '../../model/state.js';
import { DirtyBitmaps, clearDirtyLogCommon, enableCapCommon, getDirtyLogCommon, guestWriteInto } from '../internal/dirty-bitmaps.js';

type ChangeKind = MemslotChange['change'];

/*
 * Invariant of a 5.10 memslot set ([MS-INV-01], [MS-INV-02]):
 *
 *   memslots[0 .. usedSlots-1] are the live slots, strictly DESCENDING by base_gfn ("IMPORTANT:
 *   Slots are sorted from highest GFN to lowest GFN!"), with pairwise disjoint gfn ranges.
 *   idToIndex[id] is the index of the slot of that id, or -1; it is a bijection between the
 *   live ids and 0 .. usedSlots-1 ([MS-INV-01]). lruSlot is an index below usedSlots (or 0).
 *   A record at index >= usedSlots is dead (kvm_memslot_delete() parks the deleted slot
 *   there). Sets are never shared: each install publishes a fresh or recycled array.
 */
export class LegacyKvmMemslots {
  generation: bigint;
  /** `id_to_index[KVM_MEM_SLOTS_NUM]`: Int16Array as the kernel's `short` (Int32Array for a profile past SHRT_MAX). */
  idToIndex: Int16Array | Int32Array;
  /** `lru_slot` (an index into memslots) */
  lruSlot = 0;
  usedSlots = 0;
  memslots: MemslotArray;

  private constructor(generation: bigint, idToIndex: Int16Array | Int32Array, memslots: MemslotArray) {
    this.generation = generation;
    this.idToIndex = idToIndex;
    this.memslots = memslots;
  }

  /**
   * The header only, every id absent. Mirrors: kvm_alloc_memslots()
   */
  static alloc(memSlotsNum: number, generation: bigint): LegacyKvmMemslots {
    const idToIndex = memSlotsNum <= 0x8000 ? new Int16Array(memSlotsNum) : new Int32Array(memSlotsNum);
    idToIndex.fill(-1);
    return new LegacyKvmMemslots(generation, idToIndex, new MemslotArray(0));
  }

  /**
   * A copy of the whole header (id_to_index included) and of the used slots, with room for
   * one more slot on CREATE. O(KVM_MEM_SLOTS_NUM + used_slots). Mirrors: kvm_dup_memslots()
   */
  dup(change: ChangeKind): LegacyKvmMemslots {
    const capacity = this.usedSlots + (change === 'CREATE' ? 1 : 0);
    const memslots = MemslotArray.copyOf(this.memslots, this.usedSlots, capacity);
    const copy = new LegacyKvmMemslots(this.generation, this.idToIndex.slice(), memslots);
    copy.lruSlot = this.lruSlot;
    copy.usedSlots = this.usedSlots;
    return copy;
  }

  /** Mirrors: id_to_memslot() (5.10) */
  idToMemslot(id: number): Memslot | null {
    if (!Number.isInteger(id) || id < 0 || id >= this.idToIndex.length) return null;
    const index = this.idToIndex[id]!;
    if (index < 0) return null;
    const slot = this.memslots.get(index);
    // [MS-INV-01] The kernel's WARN_ON(slot->id != id).
    if (slot.id !== id) throw new InvariantError('MS-INV-01', `id_to_index[${id}] = ${index} holds slot ${slot.id}`);
    return slot;
  }

  /** Whether memslots[i] contains the gfn `g`. */
  private contains(i: number, g: Gfn): boolean {
    const base = this.memslots.baseGfn(i);
    return g >= base && g < base + this.memslots.npages(i);
  }

  /**
   * The first index whose base_gfn is at or below `g` in the descending array (usedSlots when
   * none is). The binary search of 5.10 search_memslots().
   */
  private binarySearch(g: Gfn): number {
    let start = 0;
    let end = this.usedSlots;
    while (start < end) {
      const slot = start + ((end - start) >> 1);
      if (g >= this.memslots.baseGfn(slot)) end = slot;
      else start = slot + 1;
    }
    return start;
  }

  /**
   * The LRU slot first, then the binary search over the descending array; a hit becomes the
   * LRU slot. Mirrors: search_memslots() (5.10)
   */
  searchMemslots(gfn: Gfn): Memslot | null {
    // Stryker disable next-line ConditionalExpression: a fast path; an empty array's records are all npages 0
    if (this.usedSlots === 0) return null;
    const g = gfn;
    // Stryker disable next-line ConditionalExpression: the LRU only saves a search that finds the same slot
    if (this.contains(this.lruSlot, g)) return this.memslots.get(this.lruSlot);
    const start = this.binarySearch(g);
    // Stryker disable next-line ConditionalExpression,EqualityOperator: the record at used_slots is spare room or an npages-0 placeholder
    if (start < this.usedSlots && this.contains(start, g)) {
      this.lruSlot = start;
      return this.memslots.get(start);
    }
    return null;
  }

  /**
   * The 5.10 approx lookup, which lived in s390 arch code: the same LRU check and binary
   * search, then memslots[start] (the nearest slot at or below gfn) or, past the end, the
   * last slot (the lowest, bordering the hole from above); the LRU moves only on a real hit.
   * Generic 5.10 code has no approx variant. Mirrors: gfn_to_memslot_approx()
   * (arch/s390/kvm/kvm-s390.c, 5.10), with a null answer for an empty set instead of
   * reading memslots[0] (its one caller checked used_slots first).
   */
  gfnToMemslotApprox(gfn: Gfn): Memslot | null {
    if (this.usedSlots === 0) return null;
    const g = gfn;
    // Stryker disable next-line ConditionalExpression: the LRU only saves a search that finds the same slot
    if (this.contains(this.lruSlot, g)) return this.memslots.get(this.lruSlot);
    const start = this.binarySearch(g);
    if (start >= this.usedSlots) return this.memslots.get(this.usedSlots - 1);
    // Stryker disable next-line ConditionalExpression: the LRU is a hint; any index below used_slots is correct
    if (this.contains(start, g)) this.lruSlot = start;
    return this.memslots.get(start);
  }

  /**
   * Whether a slot other than `id` intersects `[start, end)`: the linear 5.10 scan.
   * Mirrors: __kvm_set_memory_region() (5.10) `kvm_for_each_memslot(tmp, ...)` overlap loop
   */
  checkMemslotOverlap(id: number, start: Gfn, end: Gfn): boolean {
    const s = start;
    const e = end;
    const m = this.memslots;
    for (let i = 0; i < this.usedSlots; i++) {
      if (m.id(i) === id) continue;
      const base = m.baseGfn(i);
      if (!(e <= base || s >= base + m.npages(i))) return true;
    }
    return false;
  }

  /** Sets or clears KVM_MEMSLOT_INVALID on the live slot of `id` in this array. */
  setInvalid(id: number, invalid: boolean): void {
    const index = this.idToIndex[id]!;
    if (index < 0) throw new InvariantError('MS-INV-01', `slot ${id} is not in the array`);
    const flags = this.memslots.flags(index);
    this.memslots.setFlags(index, invalid ? flags | KVM_MEMSLOT_INVALID : flags & ~KVM_MEMSLOT_INVALID);
  }

  /** Every live slot, ascending by base_gfn (the array read backwards). */
  ascending(): Memslot[] {
    const out: Memslot[] = [];
    for (let i = this.usedSlots - 1; i >= 0; i--) out.push(this.memslots.get(i));
    return out;
  }

  /** Mirrors: update_memslots() */
  updateMemslots(memslot: Memslot, change: ChangeKind): void {
    if (change === 'DELETE') {
      this.memslotDelete(memslot);
      return;
    }
    let i = change === 'CREATE' ? this.memslotInsertBack() : this.memslotMoveBackward(memslot);
    i = this.memslotMoveForward(memslot, i);
    // Copy the memslot to its new position in memslots and update its index accordingly.
    this.memslots.set(i, memslot);
    this.idToIndex[memslot.id] = i;
  }

  /** Mirrors: kvm_memslot_delete() */
  private memslotDelete(memslot: Memslot): void {
    const mslots = this.memslots;
    const index = this.idToIndex[memslot.id]!;
    // [MS-INV-01] The kernel WARNs and returns.
    if (index === -1) throw new InvariantError('MS-INV-01', `delete of slot ${memslot.id}, which is not in the array`);
    this.usedSlots--;
    // Stryker disable next-line ConditionalExpression: resetting a valid LRU hint to 0 is correct too
    if (this.lruSlot >= this.usedSlots) this.lruSlot = 0;
    let i: number;
    for (i = index; i < this.usedSlots; i++) {
      // mslots[i] = mslots[i + 1] (the records move in one memmove below)
      this.idToIndex[mslots.id(i + 1)] = i;
    }
    // Stryker disable next-line ArithmeticOperator: moving more records only moves dead ones past used_slots
    mslots.moveRecords(index, index + 1, this.usedSlots - index);
    mslots.set(i, memslot);
    this.idToIndex[memslot.id] = -1;
  }

  /** Mirrors: kvm_memslot_insert_back() */
  private memslotInsertBack(): number {
    return this.usedSlots++;
  }

  /**
   * Shifts the lower-gfn neighbours of the slot toward the front while the slot's new gfn is
   * at or below theirs. Mirrors: kvm_memslot_move_backward()
   */
  private memslotMoveBackward(memslot: Memslot): number {
    const mslots = this.memslots;
    const start = this.idToIndex[memslot.id]!;
    if (start === -1 || this.usedSlots === 0) {
      throw new InvariantError('MS-INV-01', `move of slot ${memslot.id}, which is not in the array`);
    }
    const g = memslot.baseGfn;
    let i: number;
    for (i = start; i < this.usedSlots - 1; i++) {
      const next = mslots.baseGfn(i + 1);
      // Stryker disable next-line ConditionalExpression: without the break, move_forward() puts the slot back in place
      if (g > next) break;
      // [MS-INV-02] The kernel's WARN_ON_ONCE: two slots cannot share a base_gfn.
      if (g === next) throw new InvariantError('MS-INV-02', `two slots at base_gfn ${memslot.baseGfn} (move_backward)`);
      // Shift the next memslot forward one and update its index: mslots[i] = mslots[i + 1].
      this.idToIndex[mslots.id(i + 1)] = i;
    }
    mslots.moveRecords(start, start + 1, i - start);
    return i;
  }

  /**
   * Shifts the higher-gfn neighbours toward the back while the slot's gfn is at or above
   * theirs. Mirrors: kvm_memslot_move_forward()
   */
  private memslotMoveForward(memslot: Memslot, start: number): number {
    const mslots = this.memslots;
    const g = memslot.baseGfn;
    let i: number;
    for (i = start; i > 0; i--) {
      const prev = mslots.baseGfn(i - 1);
      if (g < prev) break;
      // [MS-INV-02]
      if (g === prev) throw new InvariantError('MS-INV-02', `two slots at base_gfn ${memslot.baseGfn} (move_forward)`);
      // Shift the next memslot back one and update its index: mslots[i] = mslots[i - 1].
      this.idToIndex[mslots.id(i - 1)] = i;
    }
    mslots.moveRecords(i + 1, i, start - i);
    return i;
  }
}

/** Legacy (5.10) memslots behind the common interface. */
export class LegacyMemslots implements ConcurrentMemslotImpl {
  readonly name = 'legacy';
  /**
   * `kvm->memslots[as]`: the installed set of each address space, the only one readers use.
   * Written by `publish()` and nothing else.
   */
  // Stryker disable next-line ArrayDeclaration: reset() replaces it in the constructor
  private memslots: LegacyKvmMemslots[] = [];
  /**
   * Pages over all slots. 5.10 keeps no `nr_memslot_pages`; this is kept for the
   * interface's observation only, and 5.10 profiles turn its overflow check off.
   */
  private nrPages = 0n;
  /** Dirty bitmaps allocated so far; the next one gets this number ([MS-DLG-07]). */
  private dirtyBitmapsAllocated = 0;
  /** The bits of every dirty bitmap, and the manual-protect setting. */
  private readonly bitmaps = new DirtyBitmaps();
  private readonly view: ActiveMemslotsView;
  /** `kvm->srcu`: the readers inside a read section, by address space and publish epoch. */
  private srcu: Srcu;
  /** The readers handed out and not yet unlocked, each bound to the set it dereferenced. */
  private readers: Readers<LegacyKvmMemslots>;

  /** The current VM's parameters ([MS-VM-02]). */
  profile: Profile;
  /** KVM_CREATE_VM's type. */
  private vmType = 0;
  /** The VM's guest_memfd files, by handle (5.10 has none: kept as plainly as 5.10 keeps slots). */
  private gmems: GmemFile[] = [];

  constructor(readonly kernel: Profile) {
    this.profile = kernel;
    this.view = {
      vmType: () => this.vmType,
      gmemSize: (h) => this.gmems[h]?.size ?? null,
      gmemBound: (h, pgoff, npages) => this.gmems[h]!.bindings.intersects(pgoff, npages),
      idToMemslot: (asId, id) => this.activeSet(asId).idToMemslot(id),
      checkMemslotOverlap: (asId, id, start, end) => this.activeSet(asId).checkMemslotOverlap(id, start, end),
      nrMemslotPages: () => this.nrPages,
    };
    this.srcu = new Srcu(kernel.addressSpaces);
    this.readers = this.newReaders();
    this.reset();
  }

  /** Mirrors: kvm_create_vm() (the memslot part) */
  reset(vmType = 0): DirtyLogOutcome {
    // [MS-VM-01]
    if (!vmTypeSupported(this.kernel, vmType)) return { ok: false, errno: 'EINVAL' };
    // [MS-VM-02]
    this.vmType = vmType;
    this.profile = vmProfile(this.kernel, vmType);
    this.gmems = [];
    this.srcu = new Srcu(this.profile.addressSpaces);
    this.readers = this.newReaders();
    this.memslots = [];
    for (let i = 0; i < this.profile.addressSpaces; i++) {
      // [MS-GEN-01]
      this.memslots.push(LegacyKvmMemslots.alloc(this.profile.memSlotsNum, BigInt(i)));
    }
    this.nrPages = 0n;
    this.dirtyBitmapsAllocated = 0;
    this.bitmaps.reset();
    return { ok: true };
  }

  // ---------------------------------------------------------------------------------------
  // Requests

  setUserMemoryRegion(mem: MemoryRegion): SetOutcome {
    return drainSteps(this.setUserMemoryRegionSteps(mem), this.srcu);
  }

  *setUserMemoryRegionSteps(mem: MemoryRegion): WriterSteps<SetOutcome> {
    return yield* this.apply(decideUserMemoryRegion(this.profile, mem, this.view));
  }

  setUserMemoryRegion2(mem: MemoryRegion2): SetOutcome {
    return drainSteps(this.apply(decideUserMemoryRegion2(this.profile, mem, this.view)), this.srcu);
  }

  createGuestMemfd(size: bigint, flags: bigint): DirtyLogOutcome {
    const r = checkCreateGuestMemfd(this.profile, this.vmType, size, flags);
    if (r.ok) this.gmems.push({ size, flags, bindings: new BindingList() });
    return r;
  }

  setMemoryAttributes(address: bigint, size: bigint, attributes: bigint, flags: bigint): DirtyLogOutcome {
    return setMemoryAttributesCommon(this.profile, this.vmType, address, size, attributes, flags);
  }

  checkExtension(cap: CapName, fd: CapFd): number {
    return checkExtensionCommon(this.kernel, this.profile, this.vmType, cap, fd);
  }

  clearDirtyLog(c: ClearDirtyLog): DirtyLogOutcome {
    return clearDirtyLogCommon(this.profile, c, this.view, this.bitmaps);
  }

  enableCap(cap: EnableCapName, args0: bigint, flags: number): DirtyLogOutcome {
    return enableCapCommon(this.kernel, this.profile, this.bitmaps, cap, args0, flags);
  }

  guestWrite(asId: number, gpa: Gpa): WriteOutcome {
    checkAsId(this.profile, asId);
    const gfn = gpa >> PAGE_SHIFT;
    return guestWriteInto(this.bitmaps, this.profile, this.gfnToMemslot(asId, gfn), gfn);
  }

  harvestDirtyRing(): RingEntry[] {
    return this.bitmaps.ring.harvest();
  }

  resetDirtyRings(): CountOutcome {
    return this.bitmaps.ring.resetRings(this.kernel, (asId, id) => this.idToMemslot(asId, id));
  }

  gracePeriod(point: SyncPoint): Promise<void> {
    return this.srcu.gracePeriod(point);
  }

  setInternalMemslot(id: number, gpa: Gpa, size: bigint, hva: Hva): SetOutcome {
    return setInternalMemslotLoop(this.profile, id, gpa, size, hva, this.view, (mem) =>
      drainSteps(this.apply(decideMemoryRegion(this.profile, mem, this.view)), this.srcu),
    );
  }

  getDirtyLog(slot: number): DirtyLogOutcome {
    return getDirtyLogCommon(this.profile, slot, this.view, this.bitmaps);
  }

  private *apply(d: Decision): WriterSteps<SetOutcome> {
    if (d.kind !== 'change') return outcomeWithoutChange(d);
    const c = d.change;
    if (archPrepareMemoryRegionFails(this.profile, c, this.vmType)) {
      // [MS-GEN-05] A MOVE has published its INVALID copy by the time the arch check runs.
      if (c.change === 'MOVE') yield* this.revertMove(c.asId, c.old);
      return { ok: false, errno: 'EINVAL' };
    }
    // [MS-GMB-05] 7.3's late already-bound check.
    const bound = gmemBindConflicts(this.profile, c, this.view);
    if (bound !== null) return { ok: false, errno: bound };
    // [MS-GMB-06] Bind on CREATE, unbind on DELETE.
    if (c.change === 'CREATE' && c.new.gmem !== null) this.gmems[c.new.gmem.file]!.bindings.bind(c.new.gmem.pgoff, c.new.npages);
    if (c.change === 'DELETE' && c.old.gmem !== null) this.gmems[c.old.gmem.file]!.bindings.unbind(c.old.gmem.pgoff);
    // 5.10 __kvm_set_memory_region(): the dirty bitmap is settled before kvm_set_memslot().
    const allocate = (): number => {
      const n = this.dirtyBitmapsAllocated++;
      // Only a CREATE, MOVE or FLAGS_ONLY allocates, and each has its new slot.
      this.bitmaps.alloc(n, c.new!.npages);
      return n;
    };
    const useBitmap = this.bitmaps.ring.size === 0;
    // A conditional, not ts-pattern's match(): this runs on every change (as in the scalable one).
    const neu = c.change === 'DELETE' ? deletedPlaceholder(c.old) : makeMemslot(c.new, chooseDirtyBitmap(c.new.flags, c.old, allocate, useBitmap));
    yield* this.setMemslot(c.asId, c.old, neu, c.change);
    // [MS-RNG-11] kvm_mmu_slot_apply_flags() (a FLAGS_ONLY can only toggle logging)
    if (c.change === 'FLAGS_ONLY') this.bitmaps.ring.slotApplyFlags(neu);
    if (c.change === 'DELETE') {
      // [MS-INV-05]
      if (this.nrPages < c.old.npages) {
        throw new InvariantError('MS-INV-05', `nr_memslot_pages ${this.nrPages} < ${c.old.npages}`);
      }
      this.nrPages -= c.old.npages;
    } else if (c.change === 'CREATE') {
      this.nrPages += neu.npages;
    }
    return { ok: true, change: c.change };
  }

  /**
   * Duplicates the installed set, and for DELETE and MOVE first installs the duplicate with
   * the slot marked INVALID (then edits the previous array, which that install handed back);
   * then update_memslots() and the final install. Mirrors: kvm_set_memslot() (5.10)
   */
  protected *setMemslot(asId: number, old: Memslot | null, neu: Memslot, change: ChangeKind): WriterSteps<void> {
    let slots = this.activeSet(asId).dup(change);
    if (change === 'DELETE' || change === 'MOVE') {
      if (old === null) throw new InvariantError('MS-INV-01', `${change} without an old slot`);
      // [MS-GEN-03] "the INVALID flag needs to be in the appropriate entry in the freshly
      // allocated memslots, not in @old or @new."
      slots.setInvalid(old.id, true);
      // "We can re-use the old memslots, the only difference from the newly installed
      // memslots is the invalid flag, which will get dropped by update_memslots anyway."
      // Safe only because the install waited for the readers of the array it hands back.
      slots = yield* this.installNewMemslots(asId, slots);
      // [MS-RNG-11] kvm_arch_flush_shadow_memslot()
      this.bitmaps.ring.flushShadowMemslot(old, this.vmType);
    }
    // kvm_arch_prepare_memory_region(): nothing observable can fail here.
    slots.updateMemslots(neu, change);
    yield* this.installNewMemslots(asId, slots);
    // kvfree() of the array just replaced: dropped for the garbage collector.
  }

  /**
   * A MOVE whose kvm_arch_prepare_memory_region() failed: the INVALID copy is installed, then
   * the flag is cleared again and the array re-installed. Mirrors: kvm_set_memslot() (5.10),
   * `out_slots:`
   */
  private *revertMove(asId: number, old: Memslot): WriterSteps<void> {
    // Stryker disable next-line StringLiteral: dup() adds room only for 'CREATE'; any other kind copies the same
    let slots = this.activeSet(asId).dup('MOVE');
    slots.setInvalid(old.id, true);
    slots = yield* this.installNewMemslots(asId, slots);
    // [MS-RNG-11]
    this.bitmaps.ring.flushShadowMemslot(old, this.vmType);
    slots.setInvalid(old.id, false);
    yield* this.installNewMemslots(asId, slots);
  }

  /**
   * Publishes `slots` for `asId`: generation `gen | IN_PROGRESS` from the publish until the
   * grace period is over, then `gen + N`. Mirrors: install_new_memslots() (5.10)
   * @returns the previously installed set, which no reader holds any more.
   */
  protected *installNewMemslots(asId: number, slots: LegacyKvmMemslots): WriterSteps<LegacyKvmMemslots> {
    const old = this.activeSet(asId);
    slots.generation = generationInProgress(old.generation);
    const epoch = this.publish(asId, slots);
    yield* this.synchronizeSrcu(asId, epoch);
    // [MS-GEN-02] [MS-INV-04]
    slots.generation = generationAfterSwap(slots.generation, this.profile.addressSpaces);
    return old;
  }

  /**
   * The one publish point. Mirrors: rcu_assign_pointer(kvm->memslots[as_id], slots)
   * @returns the publish epoch, for the grace period that must follow.
   */
  private publish(asId: number, slots: LegacyKvmMemslots): number {
    this.memslots[asId] = slots;
    return this.srcu.publish(asId);
  }

  /**
   * Stops the writer until every reader that entered before the publish `epoch` has left.
   * Mirrors: synchronize_srcu_expedited(&kvm->srcu)
   */
  protected *synchronizeSrcu(asId: number, epoch: number): WriterSteps<void> {
    yield { asId, epoch };
  }

  /** `__kvm_memslots(kvm, as_id)` */
  protected activeSet(asId: number): LegacyKvmMemslots {
    const s = this.memslots[asId];
    if (s === undefined) throw new RangeError(`address space ${asId} does not exist in profile ${this.profile.name}`);
    return s;
  }

  // ---------------------------------------------------------------------------------------
  // Lookups

  idToMemslot(asId: number, id: number): Memslot | null {
    checkAsId(this.profile, asId);
    // [MS-LKP-01]
    return this.activeSet(asId).idToMemslot(id);
  }

  gfnToMemslot(asId: number, gfn: Gfn): Memslot | null {
    checkAsId(this.profile, asId);
    // [MS-LKP-02] Mirrors: __gfn_to_memslot() = search_memslots() (5.10)
    return this.activeSet(asId).searchMemslots(gfn);
  }

  gfnToMemslotApprox(asId: number, gfn: Gfn): Memslot | null {
    checkAsId(this.profile, asId);
    // [MS-LKP-03]
    return this.activeSet(asId).gfnToMemslotApprox(gfn);
  }

  gfnRangeMemslots(asId: number, start: Gfn, end: Gfn): Memslot[] {
    checkAsId(this.profile, asId);
    // [MS-LKP-04] 5.10 has no range iterator; its callers (e.g. kvm_zap_gfn_range()) walked
    // every slot with kvm_for_each_memslot and clamped. Walked backwards for ascending gfn.
    const set = this.activeSet(asId);
    const s = start;
    const e = end;
    const out: Memslot[] = [];
    // Stryker disable next-line ArithmeticOperator: records past used_slots are empty or npages 0, so none intersects
    for (let i = set.usedSlots - 1; i >= 0; i--) {
      const base = set.memslots.baseGfn(i);
      if (base < e && s < base + set.memslots.npages(i)) out.push(set.memslots.get(i));
    }
    return out;
  }

  hvaRangeMemslots(start: Hva, end: Hva): HvaRangeHit[] {
    const hits: HvaRangeHit[] = [];
    // [MS-LKP-05]
    if (end <= start) return hits;
    for (let asId = 0; asId < this.profile.addressSpaces; asId++) {
      // 5.10 arch code (e.g. handle_hva_to_gpa()) looped over every slot with kvm_for_each_memslot.
      const set = this.activeSet(asId);
      const inSpace: Memslot[] = [];
      for (let i = 0; i < set.usedSlots; i++) {
        const uaddr = set.memslots.userspaceAddr(i);
        const uend = uaddr + (set.memslots.npages(i) << PAGE_SHIFT);
        if (uaddr < end && start < uend) inSpace.push(set.memslots.get(i));
      }
      inSpace.sort((a, b) => a.id - b.id);
      for (const s of inSpace) hits.push(hvaRangeHit(s, start, end));
    }
    return hits;
  }

  /**
   * [MS-LKP-06] 5.10 has no per-vCPU slot cache (it came with 5.14); a vCPU lookup is
   * search_memslots() on the vCPU's address space, LRU included, so `vcpu` is unused.
   * Mirrors: kvm_vcpu_gfn_to_memslot() (5.10)
   */
  vcpuGfnToMemslot(_vcpu: number, inSmm: boolean, gfn: Gfn): Memslot | null {
    return this.activeSet(vcpuMemslotsId(this.profile, inSmm)).searchMemslots(gfn);
  }

  isVisibleGfn(asId: number, gfn: Gfn): boolean {
    // [MS-LKP-08]
    return isVisibleMemslot(this.profile, this.gfnToMemslot(asId, gfn));
  }

  gfnToHva(asId: number, gfn: Gfn, write: boolean): HvaResult {
    return gfnToHvaMemslot(this.gfnToMemslot(asId, gfn), gfn, write);
  }

  slots(asId: number): Memslot[] {
    checkAsId(this.profile, asId);
    return this.activeSet(asId).ascending();
  }

  generation(asId: number): bigint {
    checkAsId(this.profile, asId);
    return this.activeSet(asId).generation;
  }

  nrMemslotPages(): bigint {
    return this.nrPages;
  }

  // ---------------------------------------------------------------------------------------
  // Readers

  private newReaders(): Readers<LegacyKvmMemslots> {
    return new Readers<LegacyKvmMemslots>(this.profile, {
      generation: (set) => set.generation,
      idToMemslot: (set, id) => set.idToMemslot(id),
      gfnToMemslot: (set, gfn) => set.searchMemslots(gfn),
      // 5.10 has no per-vCPU slot cache: search_memslots() with the array's LRU.
      vcpuGfnToMemslot: (set, _vcpu, gfn) => set.searchMemslots(gfn),
    });
  }

  srcuReadLock(asId: number): MemslotsReader {
    checkAsId(this.profile, asId);
    return this.readers.lock(this.srcu, asId, this.activeSet(asId));
  }

  srcuReadUnlock(reader: MemslotsReader): void {
    this.readers.unlock(this.srcu, reader);
  }

  /** Checks the set invariant above for every address space (for tests; O(n)). Throws Error. */
  checkStructures(): void {
    for (let asId = 0; asId < this.profile.addressSpaces; asId++) {
      const set = this.activeSet(asId);
      let live = 0;
      const idToIndex = set.idToIndex;
      for (let id = 0; id < idToIndex.length; id++) {
        const index = idToIndex[id]!;
        if (index < 0) continue;
        live++;
        if (index >= set.usedSlots || set.memslots.id(index) !== id) {
          throw new Error(`as ${asId}: id_to_index[${id}] = ${index} is stale`);
        }
      }
      if (live !== set.usedSlots) throw new Error(`as ${asId}: ${live} ids for ${set.usedSlots} used slots`);
      for (let i = 1; i < set.usedSlots; i++) {
        if (!(set.memslots.baseGfn(i) + set.memslots.npages(i) <= set.memslots.baseGfn(i - 1))) {
          throw new Error(`as ${asId}: memslots[${i}] is not strictly below memslots[${i - 1}]`);
        }
      }
      if (set.usedSlots > 0 && set.lruSlot >= set.usedSlots) {
        throw new Error(`as ${asId}: lru_slot ${set.lruSlot} past used_slots`);
      }
    }
  }
}

/**
 * The `new` slot of a 5.10 DELETE: zeroed but for id and as_id, parked past the end of the
 * array by kvm_memslot_delete(). Mirrors: kvm_delete_memslot() (5.10)
 */
function deletedPlaceholder(old: Memslot): Memslot {
  return makeMemslot({ asId: old.asId, id: old.id, baseGfn: 0n, npages: 0n, flags: 0, userspaceAddr: 0n, gmem: null }, null);
}

/** Legacy (5.10) memslots for `profile`. */
export const createLegacyImpl: ImplFactory = (profile: Profile): MemslotImpl => new LegacyMemslots(profile);
