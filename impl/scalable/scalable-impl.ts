/**
 * Scalable memslots: the kernel's design since 5.17 (virt/kvm/kvm_main.c,
 * include/linux/kvm_host.h). Two memslot sets per address space, one active and one
 * inactive; every change is made to the inactive set, published by swapping the two, then
 * replayed on the other set.
 *
 * Costs: every request and every lookup is O(log n) (id lookups are O(1)); no set is ever
 * copied. `slots()` is the only full walk.
 *
 * Writer and readers (spec/45-atomicity.md): kvm_set_memslot() is written as steps that stop
 * after each publish, where the kernel calls synchronize_srcu_expedited(). The synchronous API
 * drains them at once; a concurrent writer (`setUserMemoryRegionSteps()`) resumes only when
 * the grace period is over, so a reader (`srcuReadLock()`) keeps the set it dereferenced
 * intact until it leaves. The kernel-mirroring steps are protected, not private, so that
 * properties/concurrency/planted.fixture.ts can derive broken writers from them.
 */
import type { ConcurrentMemslotImpl, CountOutcome, ImplFactory, MemslotImpl, MemslotsReader, SyncPoint, WriterSteps } from '../interface.js';
import type { Profile } from '../../model/profiles.js';
import {
  InvariantError,
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
  hvaLast,
  hvaRangeHit,
  isVisibleMemslot,
  makeInvalidCopy,
  makeMemslot,
  tryGetMemslot,
  vcpuMemslotsId,
  type SlotFields,
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
import { checkCreateGuestMemfd, checkExtensionCommon, setMemoryAttributesCommon, vmTypeSupported, type GmemFile } from '../internal/vm-ioctls.js';
import type { CapFd, CapName } from '../../model/capabilities.js';
import { vmProfile } from '../../model/vm-types.js';
import type { ClearDirtyLog, EnableCapName, WriteOutcome } from '../../model/dirty-log.js';
import type { RingEntry } from '../../model/state.js';
import { DirtyBitmaps, clearDirtyLogCommon, enableCapCommon, getDirtyLogCommon, guestWriteInto } from '../internal/dirty-bitmaps.js';
import { RangeMap } from './range-map.js';
import { gfnSearchKey, toGfnNum, type GfnNum } from '../internal/gfn-num.js';
import { GfnTree, NO_ENTRY } from './gfn-tree.js';
import { HvaTree, type HvaNode } from './hva-tree.js';
import { ChunkedArray } from './chunked.js';

/*
 * Slot objects and nodes.
 *
 * The kernel embeds two nodes per structure in each `struct kvm_memory_slot` (id_node[2],
 * hva_node[2], gfn_node[2]) and a set uses index `node_idx`, so one slot object can sit in
 * both sets at once. Here a slot is a frozen `Memslot` shared by both sets (and handed out to
 * callers as is), and each set owns its own tree nodes, which point at the shared slot. The
 * set's id hash maps an id to that set's nodes for the slot (`SetNodes`): the same thing the
 * kernel reaches with `container_of(&slot->hva_node[idx])`. The gfn tree is a B+ tree
 * (./gfn-tree.ts), whose entries move when its nodes split or merge, so a slot's entry is
 * found by its baseGfn, in O(log n), where the kernel has `gfn_node[idx]` at hand. We do not hang the node links
 * off the slot object itself because the slot is the value readers get back: it must stay
 * plain, immutable data, comparable to the model's slots, with no tree links leaking out.
 */

/**
 * One set's nodes for one slot: the kernel's `id_node[idx]` and `hva_node[idx]`. The slot's
 * entry in the gfn tree moves when nodes split or merge, so it is found by baseGfn instead.
 */
export interface SetNodes {
  readonly slot: Memslot;
  readonly hvaNode: HvaNode;
}

/**
 * `id_hash`: a set's nodes for each slot, by id. The kernel hashes ids into 128 buckets; ids
 * are below KVM_MEM_SLOTS_NUM (at most 2^16), so here the id indexes a table directly, which
 * costs no hashing and, unlike a V8 Map of 32764 entries, no rehash of a large table while a
 * set fills up. The table is kept in chunks (./chunked.ts), so a fill never copies it.
 */
export class IdHash {
  /** The slot of each id (undefined: none), and its node in this set's hva tree. */
  private readonly slots = new ChunkedArray<Memslot | undefined>(undefined);
  private readonly hvaNodes = new ChunkedArray<HvaNode>(0);
  /** Ids present. */
  size = 0;

  /** The slot of `id`, or undefined. */
  slotOf(id: number): Memslot | undefined {
    return this.slots.get(id);
  }

  /** The nodes of `id` (a fresh object: the table keeps no objects but the slots), or undefined. */
  get(id: number): SetNodes | undefined {
    const slot = this.slots.get(id);
    return slot === undefined ? undefined : { slot, hvaNode: this.hvaNodes.get(id) };
  }

  has(id: number): boolean {
    return this.slots.get(id) !== undefined;
  }

  set(id: number, nodes: SetNodes): void {
    if (this.slots.get(id) === undefined) this.size++;
    this.slots.set(id, nodes.slot);
    this.hvaNodes.set(id, nodes.hvaNode);
  }

  delete(id: number): void {
    if (this.slots.get(id) === undefined) return;
    this.slots.set(id, undefined);
    this.size--;
  }
}

/*
 * Invariant of a memslot set (`struct kvm_memslots`), [MS-INV-01], [MS-INV-02]:
 *
 *   idHash, gfnTree and hvaTree hold exactly the same slots: idHash maps each slot's id to
 *   this set's nodes of that slot (one per id, [MS-INV-01]); the gfn tree holds it by
 *   baseGfn (unique and disjoint, [MS-INV-02]); the hva tree by [userspaceAddr, last].
 *   `lastUsedSlot` is null or a slot of this set (kvm_replace_memslot() retargets it when
 *   its slot is replaced); `lastUsedBase` and `lastUsedEnd` are its baseGfn and end as
 *   GfnNum (0 and 0 for null), so that the cache check adds no bigints. While no request runs, both sets of an address space hold the
 *   same slot objects (kernel-memslots.md §6.10 I1) and only the active one's generation is
 *   current.
 */
export class KvmMemslots {
  generation: bigint;
  private lastUsed: Memslot | null = null;
  private lastUsedBase = 0 as GfnNum;
  private lastUsedEnd = 0 as GfnNum;
  readonly gfnTree = new GfnTree<Memslot>();
  readonly hvaTree = new HvaTree<Memslot>();
  readonly idHash = new IdHash();

  constructor(
    readonly nodeIdx: 0 | 1,
    generation: bigint,
  ) {
    this.generation = generation;
  }

  /** Mirrors: id_to_memslot() */
  idToMemslot(id: number): Memslot | null {
    return this.idHash.slotOf(id) ?? null;
  }

  /**
   * The cached lookup: last_used_slot first, then the tree; a found slot (also an approx
   * neighbour) becomes last_used_slot. Mirrors: ____gfn_to_memslot()
   */
  gfnToMemslot(gfn: Gfn, approx: boolean): Memslot | null {
    // try_get_memslot(last_used_slot, gfn), on the GfnNum keys.
    const g = gfnSearchKey(gfn);
    // Stryker disable next-line ConditionalExpression: last_used_slot only saves a search that finds the same slot
    if (this.lastUsedBase <= g && g < this.lastUsedEnd) return this.lastUsed;
    const tree = this.gfnTree;
    const e = tree.searchKey(g, approx);
    if (e === NO_ENTRY) return null;
    const slot = tree.slotOf(e);
    this.lastUsed = slot;
    this.lastUsedBase = tree.baseOf(e);
    this.lastUsedEnd = tree.endOf(e);
    return slot;
  }

  /** `last_used_slot`. */
  get lastUsedSlot(): Memslot | null {
    return this.lastUsed;
  }

  set lastUsedSlot(slot: Memslot | null) {
    this.lastUsed = slot;
    this.lastUsedBase = slot === null ? (0 as GfnNum) : toGfnNum(slot.baseGfn);
    this.lastUsedEnd = slot === null ? (0 as GfnNum) : toGfnNum(slot.baseGfn + slot.npages);
  }
}

/** `vcpu->last_used_slot` and `vcpu->last_used_slot_gen` ([MS-LKP-07]). */
interface VcpuSlotCache {
  lastUsedSlot: Memslot | null;
  lastUsedSlotGen: bigint;
}

/** Scalable memslots behind the common interface. */
export class ScalableMemslots implements ConcurrentMemslotImpl {
  readonly name = 'scalable';
  /** `kvm->__memslots[as][0..1]`: both sets of each address space. */
  // Stryker disable next-line ArrayDeclaration: reset() replaces it in the constructor
  private __memslots: (readonly [KvmMemslots, KvmMemslots])[] = [];
  /**
   * `kvm->memslots[as]`: the active set of each address space, the only one readers use.
   * Written by `publish()` and nothing else.
   */
  // Stryker disable next-line ArrayDeclaration: reset() replaces it in the constructor
  private memslots: KvmMemslots[] = [];
  /** `kvm->nr_memslot_pages` */
  private nrPages = 0n;
  /** Dirty bitmaps allocated so far; the next one gets this number ([MS-DLG-07]). */
  private dirtyBitmapsAllocated = 0;
  /** The bits of every dirty bitmap, and the manual-protect setting. */
  private readonly bitmaps = new DirtyBitmaps();
  /** Per-vCPU slot caches, by vCPU number. */
  private vcpus = new Map<number, VcpuSlotCache>();
  /** Validation's questions, answered from the active sets in O(1) / O(log n). */
  private readonly view: ActiveMemslotsView;
  /** `kvm->srcu`: the readers inside a read section, by address space and publish epoch. */
  private srcu: Srcu;
  /** The readers handed out and not yet unlocked, each bound to the set it dereferenced. */
  private readers: Readers<KvmMemslots>;

  /** The current VM's parameters ([MS-VM-02]). */
  profile: Profile;
  /** KVM_CREATE_VM's type. */
  private vmType = 0;
  /** `struct kvm_gmem` of each guest_memfd of the VM, by handle. */
  private gmems: GmemFile[] = [];

  constructor(readonly kernel: Profile) {
    this.profile = kernel;
    this.view = {
      idToMemslot: (asId, id) => this.activeSet(asId).idToMemslot(id),
      checkMemslotOverlap: (asId, id, start, end) => this.checkMemslotOverlap(asId, id, start, end),
      nrMemslotPages: () => this.nrPages,
      vmType: () => this.vmType,
      gmemSize: (h) => this.gmems[h]?.size ?? null,
      gmemBound: (h, pgoff, npages) => this.gmems[h]!.bindings.intersects(pgoff, npages),
    };
    this.srcu = new Srcu(kernel.addressSpaces);
    this.readers = this.newReaders();
    this.reset();
  }

  /** Mirrors: kvm_create_vm() (the memslot part) */
  reset(vmType = 0): DirtyLogOutcome {
    // [MS-VM-01] The old VM stays.
    if (!vmTypeSupported(this.kernel, vmType)) return { ok: false, errno: 'EINVAL' };
    // [MS-VM-02]
    this.vmType = vmType;
    this.profile = vmProfile(this.kernel, vmType);
    this.gmems = [];
    this.srcu = new Srcu(this.profile.addressSpaces);
    this.readers = this.newReaders();
    this.__memslots = [];
    this.memslots = [];
    for (let i = 0; i < this.profile.addressSpaces; i++) {
      // [MS-GEN-01] "Generations must be different for each address space."
      const pair = [new KvmMemslots(0, BigInt(i)), new KvmMemslots(1, BigInt(i))] as const;
      this.__memslots.push(pair);
      this.memslots.push(pair[0]);
    }
    this.nrPages = 0n;
    this.dirtyBitmapsAllocated = 0;
    this.bitmaps.reset();
    this.vcpus = new Map();
    return { ok: true };
  }

  // ---------------------------------------------------------------------------------------
  // Requests

  setUserMemoryRegion(mem: MemoryRegion): SetOutcome {
    return drainSteps(this.setUserMemoryRegionSteps(mem), this.srcu);
  }

  *setUserMemoryRegionSteps(mem: MemoryRegion): WriterSteps<SetOutcome> {
    const d = decideUserMemoryRegion(this.profile, mem, this.view);
    if (d.kind !== 'change') return outcomeWithoutChange(d);
    return yield* this.setMemslot(d.change);
  }

  setUserMemoryRegion2(mem: MemoryRegion2): SetOutcome {
    return this.apply(decideUserMemoryRegion2(this.profile, mem, this.view));
  }

  createGuestMemfd(size: bigint, flags: bigint): DirtyLogOutcome {
    const r = checkCreateGuestMemfd(this.profile, this.vmType, size, flags);
    if (r.ok) this.gmems.push({ size, flags, bindings: new RangeMap() });
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
    return setInternalMemslotLoop(this.profile, id, gpa, size, hva, this.view, (mem) => this.apply(decideMemoryRegion(this.profile, mem, this.view)));
  }

  getDirtyLog(slot: number): DirtyLogOutcome {
    return getDirtyLogCommon(this.profile, slot, this.view, this.bitmaps);
  }

  private apply(d: Decision): SetOutcome {
    if (d.kind !== 'change') return outcomeWithoutChange(d);
    return drainSteps(this.setMemslot(d.change), this.srcu);
  }

  /**
   * Applies a validated change with the kernel's sequence of replaces and swaps:
   * CREATE and FLAGS_ONLY publish once, DELETE and MOVE twice (first the INVALID copy).
   * Mirrors: kvm_set_memslot()
   */
  private setMemslot(c: MemslotChange): WriterSteps<SetOutcome> {
    // A switch, not ts-pattern's match(): this runs on every change, and a fill of 32764 slots
    // cost 4.8-5.2 µs per create with match(), 2.6 µs with the switch (its closures and pattern
    // objects, built per call, were garbage to collect).
    switch (c.change) {
      case 'CREATE':
        return this.setCreate(c);
      case 'DELETE':
        return this.setDelete(c);
      case 'MOVE':
        return this.setMove(c);
      case 'FLAGS_ONLY':
        return this.setFlagsOnly(c);
      default:
        return unreachableChange(c);
    }
  }

  private *setCreate(c: MemslotChange & { change: 'CREATE' }): WriterSteps<SetOutcome> {
    // [MS-X86-01] Nothing was published yet.
    if (archPrepareMemoryRegionFails(this.profile, c, this.vmType)) return { ok: false, errno: 'EINVAL' };
    // [MS-GMB-05] 7.3: kvm_gmem_commit_memory_region(), after the arch checks.
    const bound = gmemBindConflicts(this.profile, c, this.view);
    if (bound !== null) return { ok: false, errno: bound };
    const neu = this.prepareMemoryRegion(null, c.new);
    // [MS-GMB-06]
    if (neu.gmem !== null) this.gmems[neu.gmem.file]!.bindings.bind(neu.gmem.pgoff, neu.npages);
    yield* this.createMemslot(neu);
    this.commitMemoryRegion(null, neu, 'CREATE');
    return { ok: true, change: 'CREATE' };
  }

  private *setDelete(c: MemslotChange & { change: 'DELETE' }): WriterSteps<SetOutcome> {
    const invalid = yield* this.invalidateMemslot(c.old);
    // [MS-RNG-11] kvm_invalidate_memslot() → kvm_arch_flush_shadow_memslot()
    this.bitmaps.ring.flushShadowMemslot(c.old, this.vmType);
    yield* this.deleteMemslot(c.old, invalid);
    // [MS-GMB-06] Mirrors: kvm_free_memslot() → kvm_gmem_unbind()
    if (c.old.gmem !== null) this.gmems[c.old.gmem.file]!.bindings.unbind(c.old.gmem.pgoff);
    this.commitMemoryRegion(c.old, null, 'DELETE');
    return { ok: true, change: 'DELETE' };
  }

  private *setMove(c: MemslotChange & { change: 'MOVE' }): WriterSteps<SetOutcome> {
    const invalid = yield* this.invalidateMemslot(c.old);
    // [MS-RNG-11] kvm_invalidate_memslot() → kvm_arch_flush_shadow_memslot()
    this.bitmaps.ring.flushShadowMemslot(c.old, this.vmType);
    if (archPrepareMemoryRegionFails(this.profile, c, this.vmType)) {
      // [MS-GEN-05] Restore the old slot with a second publish.
      yield* this.activateMemslot(invalid, c.old);
      return { ok: false, errno: 'EINVAL' };
    }
    const neu = this.prepareMemoryRegion(c.old, c.new);
    yield* this.moveMemslot(c.old, neu, invalid);
    // Stryker disable next-line StringLiteral: commitMemoryRegion() counts pages only for 'CREATE' and 'DELETE'
    this.commitMemoryRegion(c.old, neu, 'MOVE');
    return { ok: true, change: 'MOVE' };
  }

  private *setFlagsOnly(c: MemslotChange & { change: 'FLAGS_ONLY' }): WriterSteps<SetOutcome> {
    const neu = this.prepareMemoryRegion(c.old, c.new);
    yield* this.updateFlagsMemslot(c.old, neu);
    // [MS-RNG-11] kvm_arch_commit_memory_region() → kvm_mmu_slot_apply_flags()
    this.bitmaps.ring.slotApplyFlags(neu);
    // Stryker disable next-line StringLiteral: commitMemoryRegion() counts pages only for 'CREATE' and 'DELETE'
    this.commitMemoryRegion(c.old, neu, 'FLAGS_ONLY');
    return { ok: true, change: 'FLAGS_ONLY' };
  }

  /**
   * Builds the new slot object, with its dirty bitmap. Mirrors: kvm_prepare_memory_region()
   */
  private prepareMemoryRegion(old: Memslot | null, fields: SlotFields): Memslot {
    return makeMemslot(
      fields,
      chooseDirtyBitmap(
        fields.flags,
        old,
        () => {
          const n = this.dirtyBitmapsAllocated++;
          this.bitmaps.alloc(n, fields.npages);
          return n;
        },
        this.bitmaps.ring.size === 0,
      ),
    );
  }

  /**
   * Page accounting after the publish. Mirrors: kvm_commit_memory_region()
   */
  private commitMemoryRegion(old: Memslot | null, neu: Memslot | null, change: MemslotChange['change']): void {
    // Stryker disable next-line ConditionalExpression: a DELETE always has its old slot
    if (change === 'DELETE' && old !== null) {
      // [MS-INV-05] The kernel WARNs and returns EIO before getting here; it cannot happen.
      if (this.nrPages < old.npages) {
        throw new InvariantError('MS-INV-05', `nr_memslot_pages ${this.nrPages} < ${old.npages}`);
      }
      this.nrPages -= old.npages;
      // Stryker disable next-line ConditionalExpression: a CREATE always has its new slot
    } else if (change === 'CREATE' && neu !== null) {
      this.nrPages += neu.npages;
    }
  }

  /** Mirrors: kvm_create_memslot() */
  protected *createMemslot(neu: Memslot): WriterSteps<void> {
    // Add the new memslot to the inactive set and activate.
    this.replaceMemslot(null, neu);
    yield* this.activateMemslot(null, neu);
  }

  /** Mirrors: kvm_delete_memslot() */
  protected *deleteMemslot(old: Memslot, invalid: Memslot): WriterSteps<void> {
    // Remove old from the inactive set (which still holds it), and the INVALID copy from
    // the other set once it has become inactive.
    this.replaceMemslot(old, null);
    yield* this.activateMemslot(invalid, null);
  }

  /** Mirrors: kvm_move_memslot() */
  protected *moveMemslot(old: Memslot, neu: Memslot, invalid: Memslot): WriterSteps<void> {
    this.replaceMemslot(old, neu);
    yield* this.activateMemslot(invalid, neu);
  }

  /** Mirrors: kvm_update_flags_memslot() */
  protected *updateFlagsMemslot(old: Memslot, neu: Memslot): WriterSteps<void> {
    // No INVALID step: old is replaced by the updated copy in both sets.
    this.replaceMemslot(old, neu);
    yield* this.activateMemslot(old, neu);
  }

  /**
   * Publishes a copy of `old` marked KVM_MEMSLOT_INVALID in place of `old`, and leaves the
   * other (now inactive) set holding `old`. Mirrors: kvm_invalidate_memslot()
   * @returns the INVALID copy, which the caller replaces by the final slot (or nothing).
   */
  protected *invalidateMemslot(old: Memslot): WriterSteps<Memslot> {
    // [MS-GEN-03] The first of the two publishes of a DELETE or MOVE.
    const invalid = makeInvalidCopy(old);
    this.replaceMemslot(old, invalid);
    yield* this.swapActiveMemslots(old.asId);
    return invalid;
  }

  /**
   * Publishes the inactive set, then, once no reader can hold the set that just became
   * inactive, replays the same replace on it. Mirrors: kvm_activate_memslot()
   */
  protected *activateMemslot(old: Memslot | null, neu: Memslot | null): WriterSteps<void> {
    const asId = memslotsAsId(old, neu);
    yield* this.swapActiveMemslots(asId);
    this.replaceMemslot(old, neu);
  }

  /**
   * Makes the inactive set of `asId` the active one. The new active set's generation is
   * `gen | IN_PROGRESS` from the publish until the grace period is over, then `gen + N`.
   * Mirrors: kvm_swap_active_memslots()
   */
  protected *swapActiveMemslots(asId: number): WriterSteps<void> {
    const slots = this.inactiveSet(asId);
    const gen = this.activeSet(asId).generation;
    slots.generation = generationInProgress(gen);
    const epoch = this.publish(asId, slots);
    yield* this.synchronizeSrcu(asId, epoch);
    // [MS-GEN-02] [MS-INV-04]
    slots.generation = generationAfterSwap(slots.generation, this.profile.addressSpaces);
  }

  /**
   * The one publish point: readers switch from the old set to `slots` here, and see either
   * set whole, never a mix. Mirrors: rcu_assign_pointer(kvm->memslots[as_id], slots)
   * @returns the publish epoch, for the grace period that must follow.
   */
  private publish(asId: number, slots: KvmMemslots): number {
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

  /**
   * Replaces `old` by `neu` in the inactive set of their address space. With null `old` this
   * adds `neu`; with null `neu` it removes `old`. Same baseGfn: the gfn entry is switched in
   * place (rb_replace_node()); the hva node is always removed and re-added (there is no O(1)
   * interval-tree replace). Mirrors: kvm_replace_memslot()
   */
  protected replaceMemslot(old: Memslot | null, neu: Memslot | null): void {
    this.replaceMemslotIn(this.inactiveSet(memslotsAsId(old, neu)), old, neu);
  }

  /**
   * kvm_replace_memslot() on a given set of the address space. Only the inactive set is ever
   * correct; the parameter exists so that planted bugs can get it wrong.
   */
  protected replaceMemslotIn(slots: KvmMemslots, old: Memslot | null, neu: Memslot | null): void {
    const asId = memslotsAsId(old, neu);
    let oldNodes: SetNodes | null = null;

    if (old !== null) {
      oldNodes = slots.idHash.get(old.id) ?? null;
      // [MS-INV-01] old must be the slot this set holds for its id.
      if (oldNodes === null || oldNodes.slot !== old) {
        throw new InvariantError('MS-INV-01', `as ${asId}: slot ${old.id} is not in set ${slots.nodeIdx}`);
      }
      // The entry is deleted only when no slot of the same id replaces it: a MOVE or FLAGS_ONLY
      // overwrites it below.
      // Stryker disable next-line ConditionalExpression,EqualityOperator: the entry is overwritten below; deleting it first costs only time (npm run bench)
      if (neu === null || neu.id !== old.id) slots.idHash.delete(old.id);
      slots.hvaTree.remove(oldNodes.hvaNode);
      // Stryker disable next-line ConditionalExpression: last_used_slot is a hint; any slot of the set, or none, is correct
      if (slots.lastUsedSlot === old) slots.lastUsedSlot = neu;
      if (neu === null) {
        slots.gfnTree.erase(old);
        return;
      }
    }
    // Kept for the type narrowing.
    // Stryker disable next-line all: unreachable, memslotsAsId() threw for two nulls first
    if (neu === null) throw new InvariantError('MS-INV-01', 'kvm_replace_memslot() with neither old nor new');
    // [MS-INV-01] One slot per id.
    if ((old === null || old.id !== neu.id) && slots.idHash.has(neu.id)) {
      throw new InvariantError('MS-INV-01', `as ${asId}: id ${neu.id} twice in a set`);
    }

    const hvaNode = slots.hvaTree.insert(neu.userspaceAddr, hvaLast(neu), neu);
    // Stryker disable next-line ConditionalExpression: erasing and re-inserting gives the same tree order, only slower
    if (old !== null && old.baseGfn === neu.baseGfn) {
      slots.gfnTree.replace(old, neu);
    } else {
      if (old !== null) slots.gfnTree.erase(old);
      // [MS-INV-02] Throws on a second node with the same baseGfn (the kernel's BUG()).
      slots.gfnTree.insert(neu);
    }
    slots.idHash.set(neu.id, { slot: neu, hvaNode });
  }

  /**
   * Whether a slot other than `id` intersects `[start, end)`; visits at most two slots.
   * Mirrors: kvm_check_memslot_overlap()
   */
  private checkMemslotOverlap(asId: number, id: number, start: Gfn, end: Gfn): boolean {
    const tree = this.activeSet(asId).gfnTree;
    const e = gfnSearchKey(end);
    for (let it = tree.iterStart(start); it !== NO_ENTRY && tree.baseOf(it) < e; it = tree.nextEntry(it)) {
      if (tree.slotOf(it).id !== id) return true;
    }
    return false;
  }

  /** `__kvm_memslots(kvm, as_id)` */
  protected activeSet(asId: number): KvmMemslots {
    const s = this.memslots[asId];
    if (s === undefined) throw new RangeError(`address space ${asId} does not exist in profile ${this.profile.name}`);
    return s;
  }

  /** Mirrors: kvm_get_inactive_memslots() */
  protected inactiveSet(asId: number): KvmMemslots {
    const active = this.activeSet(asId);
    return this.__memslots[asId]![active.nodeIdx ^ 1]!;
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
    // [MS-LKP-02] Mirrors: __gfn_to_memslot()
    return this.activeSet(asId).gfnToMemslot(gfn, false);
  }

  gfnToMemslotApprox(asId: number, gfn: Gfn): Memslot | null {
    checkAsId(this.profile, asId);
    // [MS-LKP-03] Mirrors: ____gfn_to_memslot(slots, gfn, true), s390's gfn_to_memslot_approx().
    return this.activeSet(asId).gfnToMemslot(gfn, true);
  }

  gfnRangeMemslots(asId: number, start: Gfn, end: Gfn): Memslot[] {
    checkAsId(this.profile, asId);
    // [MS-LKP-04]
    return this.activeSet(asId).gfnTree.rangeSlots(start, end);
  }

  hvaRangeMemslots(start: Hva, end: Hva): HvaRangeHit[] {
    const hits: HvaRangeHit[] = [];
    // [MS-LKP-05] kvm_handle_hva_range() WARNs and returns on an empty range.
    if (end <= start) return hits;
    for (let asId = 0; asId < this.profile.addressSpaces; asId++) {
      const inSpace = this.activeSet(asId).hvaTree.query(start, end - 1n);
      inSpace.sort((a, b) => a.id - b.id);
      for (const s of inSpace) hits.push(hvaRangeHit(s, start, end));
    }
    return hits;
  }

  vcpuGfnToMemslot(vcpu: number, inSmm: boolean, gfn: Gfn): Memslot | null {
    // [MS-LKP-06]
    return this.vcpuGfnToMemslotIn(this.activeSet(vcpuMemslotsId(this.profile, inSmm)), vcpu, gfn);
  }

  /** kvm_vcpu_gfn_to_memslot() on the set the vCPU dereferenced. */
  protected vcpuGfnToMemslotIn(slots: KvmMemslots, vcpu: number, gfn: Gfn): Memslot | null {
    const gen = slots.generation;
    let cache = this.vcpus.get(vcpu);
    // Stryker disable next-line ConditionalExpression: a fresh cache only misses
    if (cache === undefined) {
      // Stryker disable next-line ObjectLiteral: the generation check below resets an empty cache
      cache = { lastUsedSlot: null, lastUsedSlotGen: 0n };
      this.vcpus.set(vcpu, cache);
    }
    // [MS-LKP-07] A cached slot is used only at the generation it was cached at; generations
    // differ between address spaces, so this also drops a slot of the other address space.
    // Stryker disable next-line ConditionalExpression: dropping the cached slot every time only costs a search
    if (gen !== cache.lastUsedSlotGen) {
      cache.lastUsedSlot = null;
      cache.lastUsedSlotGen = gen;
    }
    const cached = tryGetMemslot(cache.lastUsedSlot, gfn);
    // Stryker disable next-line ConditionalExpression: the vCPU cache only saves a search that finds the same slot
    if (cached !== null) return cached;
    // search_memslots() directly, "to avoid thrashing the VM-wide last_used_slot".
    const slot = slots.gfnTree.searchSlot(gfn, false);
    // Stryker disable next-line ConditionalExpression,EqualityOperator: the vCPU cache is a hint; any slot of the set, or none, is correct
    if (slot !== null) cache.lastUsedSlot = slot;
    return slot;
  }

  isVisibleGfn(asId: number, gfn: Gfn): boolean {
    // [MS-LKP-08] Mirrors: kvm_is_visible_gfn()
    return isVisibleMemslot(this.profile, this.gfnToMemslot(asId, gfn));
  }

  gfnToHva(asId: number, gfn: Gfn, write: boolean): HvaResult {
    return gfnToHvaMemslot(this.gfnToMemslot(asId, gfn), gfn, write);
  }

  slots(asId: number): Memslot[] {
    checkAsId(this.profile, asId);
    return this.activeSet(asId).gfnTree.inOrder();
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

  private newReaders(): Readers<KvmMemslots> {
    return new Readers<KvmMemslots>(this.profile, {
      generation: (set) => set.generation,
      idToMemslot: (set, id) => set.idToMemslot(id),
      gfnToMemslot: (set, gfn) => set.gfnToMemslot(gfn, false),
      vcpuGfnToMemslot: (set, vcpu, gfn) => this.vcpuGfnToMemslotIn(set, vcpu, gfn),
    });
  }

  srcuReadLock(asId: number): MemslotsReader {
    checkAsId(this.profile, asId);
    return this.readers.lock(this.srcu, asId, this.activeSet(asId));
  }

  srcuReadUnlock(reader: MemslotsReader): void {
    this.readers.unlock(this.srcu, reader);
  }

  /**
   * Checks the structural invariants of every set (for tests; O(n)): the set invariant
   * above, and that both sets of an address space hold the same slot objects. Throws Error.
   */
  checkStructures(): void {
    for (let asId = 0; asId < this.profile.addressSpaces; asId++) {
      const pair = this.__memslots[asId]!;
      const lists = pair.map((set) => {
        const byGfn = set.gfnTree.check();
        if (byGfn.length !== set.idHash.size || set.hvaTree.size !== set.idHash.size) {
          const counts = `${byGfn.length} gfn nodes, ${set.hvaTree.size} hva nodes, ${set.idHash.size} ids`;
          throw new Error(`as ${asId} set ${set.nodeIdx}: ${counts}`);
        }
        for (const s of byGfn) {
          const nodes = set.idHash.get(s.id);
          if (nodes === undefined || nodes.slot !== s || set.hvaTree.slotAt(nodes.hvaNode) !== s) {
            throw new Error(`as ${asId} set ${set.nodeIdx}: id hash out of step for slot ${s.id}`);
          }
        }
        // As many hva nodes as ids, each id's node holding its slot: no hva node is stray.
        const lu = set.lastUsedSlot;
        if (lu !== null && set.idHash.get(lu.id)?.slot !== lu) {
          throw new Error(`as ${asId} set ${set.nodeIdx}: last_used_slot is not in the set`);
        }
        return byGfn;
      });
      const [a, b] = lists as [Memslot[], Memslot[]];
      if (a.length !== b.length || a.some((s, i) => s !== b[i])) throw new Error(`as ${asId}: the two sets differ`);
    }
  }
}

/** Mirrors: kvm_memslots_get_as_id() */
function memslotsAsId(old: Memslot | null, neu: Memslot | null): number {
  const s = old ?? neu;
  if (s === null) throw new InvariantError('MS-INV-01', 'a memslot operation with neither old nor new');
  return s.asId;
}

/** Scalable memslots for `profile`. */
export const createScalableImpl: ImplFactory = (profile: Profile): MemslotImpl => new ScalableMemslots(profile);

function unreachableChange(c: never): never {
  throw new Error(`unknown change ${JSON.stringify(c)}`);
}
