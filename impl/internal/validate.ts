/**
 * The request checks both implementations share: KVM_SET_USER_MEMORY_REGION validation and
 * classification, the internal-slot front end and KVM_GET_DIRTY_LOG. Written once, in the
 * kernel's check order (the model's order: model/set-memory-region.ts); the first failing
 * check decides the errno.
 *
 * The functions never walk a set themselves: every question about the current slots goes
 * through an `ActiveMemslotsView` that each implementation answers with its own structure
 * (the id hash or id_to_index[] for ids, the gfn tree or the 5.10 linear scan for overlap).
 */
import type { Profile } from '../../model/profiles.js';
import { vmTypeInfo } from '../../model/vm-types.js';
import {
  KVM_MEM_GUEST_MEMFD,
  KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEM_READONLY,
  KVM_SET_USER_MEMORY_REGION_V1_FLAGS,
  PAGE_SHIFT,
  PAGE_SIZE,
  U32_MAX,
  U64_MAX,
  type Errno,
  type Gfn,
  type Gpa,
  type Hva,
  type GmemBinding,
  type GmemRef,
  type MemoryRegion,
  type MemoryRegion2,
  type Memslot,
  type SetOutcome,
} from '../../model/types.js';
import type { SlotFields } from './memslot.js';

/** `unsigned long` on x86-64. */
const ULONG_MAX = U64_MAX;

/** What validation asks of the ACTIVE memslot sets (`__kvm_memslots(kvm, as_id)`). */
export interface ActiveMemslotsView {
  /** Mirrors: id_to_memslot() */
  idToMemslot(asId: number, id: number): Memslot | null;
  /** True when a slot other than `id` intersects `[start, end)`. Mirrors: kvm_check_memslot_overlap() */
  checkMemslotOverlap(asId: number, id: number, start: Gfn, end: Gfn): boolean;
  /** `kvm->nr_memslot_pages` */
  nrMemslotPages(): bigint;
  /** KVM_CREATE_VM's type. */
  vmType(): number;
  /** The size of guest_memfd `handle` of this VM, or null when there is none. */
  gmemSize(handle: number): bigint | null;
  /** True when file pages `[pgoff, pgoff + npages)` of `handle` meet a bound range. */
  gmemBound(handle: number, pgoff: bigint, npages: bigint): boolean;
}

/** A validated change, with `old`/`new` as kvm_set_memslot() takes them (null: add/remove). */
export type MemslotChange =
  | { readonly change: 'CREATE'; readonly asId: number; readonly old: null; readonly new: SlotFields }
  | { readonly change: 'DELETE'; readonly asId: number; readonly old: Memslot; readonly new: null }
  | { readonly change: 'MOVE'; readonly asId: number; readonly old: Memslot; readonly new: SlotFields }
  | { readonly change: 'FLAGS_ONLY'; readonly asId: number; readonly old: Memslot; readonly new: SlotFields };

/** The verdict on a request: an errno, the identical re-issue, or a change to apply. */
export type Decision =
  { readonly kind: 'reject'; readonly errno: Errno } | { readonly kind: 'none' } | { readonly kind: 'change'; readonly change: MemslotChange };

const EINVAL: Decision = { kind: 'reject', errno: 'EINVAL' };
const ENOTTY: Decision = { kind: 'reject', errno: 'ENOTTY' };
/** What a request without the v2 tail passes: the kernel zero-fills it, and reads it only with KVM_MEM_GUEST_MEMFD. */
const NO_TAIL = { guestMemfdOffset: 0n, guestMemfd: 'closed' as GmemRef };
const EEXIST: Decision = { kind: 'reject', errno: 'EEXIST' };
const NONE: Decision = { kind: 'none' };

/**
 * The checks of the ioctl layer, then the common checks.
 * Mirrors: kvm_vm_ioctl() case KVM_SET_USER_MEMORY_REGION, kvm_vm_ioctl_set_memory_region()
 * @returns the decision for a user request.
 */
export function decideUserMemoryRegion(profile: Profile, mem: MemoryRegion, view: ActiveMemslotsView): Decision {
  // [MS-VAL-01]
  // Stryker disable next-line ConditionalExpression: every flag it rejects MS-VAL-03 rejects too, with the same EINVAL
  if (profile.v1FlagsMask && (mem.flags & ~KVM_SET_USER_MEMORY_REGION_V1_FLAGS) !== 0) return EINVAL;
  // [MS-VAL-02] Only the low 16 bits count.
  if ((mem.slot & 0xffff) >= profile.userMemSlots) return EINVAL;
  return decideMemoryRegion(profile, mem, view);
}

/**
 * Mirrors: kvm_vm_ioctl() case KVM_SET_USER_MEMORY_REGION2: no v1 flag mask.
 */
export function decideUserMemoryRegion2(profile: Profile, mem: MemoryRegion2, view: ActiveMemslotsView): Decision {
  // [MS-V2-01]
  if (!profile.userMemory2) return ENOTTY;
  // [MS-VAL-02] [MS-V2-02]
  if ((mem.slot & 0xffff) >= profile.userMemSlots) return EINVAL;
  return decideMemoryRegion(profile, mem, view);
}

/**
 * The common checks and the classification of the change, in the kernel's order.
 * Mirrors: kvm_set_memory_region()
 * @returns `reject` with the errno of the first failing check, `none` for an identical
 *   re-issue, or the change for kvm_set_memslot().
 */
export function decideMemoryRegion(profile: Profile, mem: MemoryRegion | MemoryRegion2, view: ActiveMemslotsView): Decision {
  // check_memory_region_flags() [MS-VAL-03] [MS-GMS-01] [MS-GMS-02] [MS-GMS-03]
  const gmem = (mem.flags & KVM_MEM_GUEST_MEMFD) !== 0;
  let valid = KVM_MEM_LOG_DIRTY_PAGES;
  if (profile.guestMemfd && (profile.guestMemfdSlots === 'all' || vmTypeInfo(view.vmType()).privateMem)) valid |= KVM_MEM_GUEST_MEMFD;
  if (gmem) valid &= ~KVM_MEM_LOG_DIRTY_PAGES;
  if (profile.readonlyMem && !gmem) valid |= KVM_MEM_READONLY;
  if ((mem.flags & ~valid) !== 0) return EINVAL;
  const tail = gmem && 'guestMemfd' in mem ? mem : NO_TAIL;

  const asId = mem.slot >>> 16;
  const id = mem.slot & 0xffff;

  // [MS-VAL-04]
  if (mem.memorySize % PAGE_SIZE !== 0n) return EINVAL;
  // [MS-VAL-05]
  if (mem.guestPhysAddr % PAGE_SIZE !== 0n) return EINVAL;
  // [MS-VAL-06]
  if (mem.userspaceAddr % PAGE_SIZE !== 0n) return EINVAL;
  // [MS-VAL-07] access_ok()
  const uend = (mem.userspaceAddr + mem.memorySize) & U64_MAX;
  if (uend < mem.userspaceAddr || uend > profile.userAddrMax) return EINVAL;
  // [MS-GMS-04]
  if (gmem && (tail.guestMemfdOffset % PAGE_SIZE !== 0n || tail.guestMemfdOffset + mem.memorySize > U64_MAX)) return EINVAL;
  // [MS-VAL-08]
  if (asId >= profile.addressSpaces) return EINVAL;
  // [MS-VAL-09] The kernel checks twice (here and in __x86_set_memory_region()).
  // Stryker disable next-line ConditionalExpression,EqualityOperator: no id gets here, MS-VAL-02 and the internal loop's own MS-VAL-09 come first
  if (id >= profile.memSlotsNum) return EINVAL;
  // [MS-VAL-10]
  // Stryker disable next-line EqualityOperator: both are page aligned (MS-VAL-04/05), so the sum is never U64_MAX itself
  if (mem.guestPhysAddr + mem.memorySize > U64_MAX) return EINVAL;
  // [MS-VAL-11]
  const npages = mem.memorySize >> PAGE_SHIFT;
  if ((!profile.maxNrPagesUserOnly || id < profile.userMemSlots) && npages > profile.maxNrPages) return EINVAL;

  // [MS-LKP-01] O(1): the id hash (scalable) or id_to_index[] (legacy).
  const old = view.idToMemslot(asId, id);

  if (mem.memorySize === 0n) {
    // [MS-DEL-01]
    if (old === null) return EINVAL;
    // [MS-DEL-02]
    return { kind: 'change', change: { change: 'DELETE', asId, old, new: null } };
  }

  const baseGfn = mem.guestPhysAddr >> PAGE_SHIFT;
  const next: SlotFields = { asId, id, baseGfn, npages, flags: mem.flags, userspaceAddr: mem.userspaceAddr, gmem: null };
  let change: MemslotChange;
  if (old === null) {
    // [MS-CRT-01]
    if (profile.nrMemslotPagesCheck && view.nrMemslotPages() + npages > ULONG_MAX) return EINVAL;
    // [MS-CRT-02]
    change = { change: 'CREATE', asId, old: null, new: next };
  } else {
    // [MS-GMS-05]
    if (gmem) return EINVAL;
    // [MS-MOD-01]
    if (mem.userspaceAddr !== old.userspaceAddr) return EINVAL;
    // [MS-MOD-02]
    if (npages !== old.npages) return EINVAL;
    // [MS-MOD-03]
    // [MS-MOD-03] [MS-GMS-06]
    if (((mem.flags ^ old.flags) & (KVM_MEM_READONLY | KVM_MEM_GUEST_MEMFD)) !== 0) return EINVAL;
    if (baseGfn !== old.baseGfn) {
      // [MS-MOV-01]
      change = { change: 'MOVE', asId, old, new: next };
    } else if (mem.flags !== old.flags) {
      // [MS-FLG-01]
      change = { change: 'FLAGS_ONLY', asId, old, new: next };
    } else {
      // [MS-NOP-01]
      return NONE;
    }
  }

  // Stryker disable next-line ConditionalExpression: FLAGS_ONLY keeps its range, which overlaps no other slot
  if (change.change === 'CREATE' || change.change === 'MOVE') {
    // [MS-OVL-01]
    const end = baseGfn + npages;
    if (view.checkMemslotOverlap(asId, id, baseGfn, end)) return EEXIST;
    // MS-X86-01 is not checked here: it belongs to archPrepareMemoryRegionFails(), which a MOVE
    // reaches only after publishing its INVALID copy (MS-GEN-05).
  }
  if (gmem) {
    // Only a CREATE gets here (MS-GMS-05). Mirrors: kvm_gmem_bind() / kvm_gmem_prepare_memory_region()
    const ref = tail.guestMemfd;
    // [MS-GMB-01]
    if (ref === 'closed') return { kind: 'reject', errno: 'EBADF' };
    // [MS-GMB-02] [MS-GMB-03]
    if (ref === 'memfd' || ref === 'other_vm') return EINVAL;
    const size = view.gmemSize(ref);
    if (size === null) throw new RangeError(`guest_memfd handle ${ref} names no file of this VM`);
    // [MS-GMB-04]
    if (tail.guestMemfdOffset + mem.memorySize > size) return EINVAL;
    const binding: GmemBinding = { file: ref, pgoff: tail.guestMemfdOffset >> PAGE_SHIFT };
    // [MS-GMB-05] Before the arch checks, except on 7.3 (gmemBindConflicts()).
    if (!profile.gmemBindLate && view.gmemBound(ref, binding.pgoff, npages)) return { kind: 'reject', errno: profile.gmemBindErrno };
    return { kind: 'change', change: { ...change, new: { ...next, gmem: binding } } as MemslotChange };
  }
  return { kind: 'change', change };
}

/**
 * [MS-GMB-05] on 7.3: kvm_gmem_commit_memory_region(), after the arch checks (a CREATE only).
 * @returns the errno, or null.
 */
export function gmemBindConflicts(profile: Profile, change: MemslotChange, view: ActiveMemslotsView): Errno | null {
  const b = change.new?.gmem ?? null;
  if (b === null || !profile.gmemBindLate) return null;
  return view.gmemBound(b.file, b.pgoff, change.new!.npages) ? profile.gmemBindErrno : null;
}

/**
 * The x86 check of kvm_arch_prepare_memory_region(). It runs inside kvm_set_memslot(): for a
 * MOVE after the INVALID copy was published, so the caller must then restore the old slot.
 * @returns whether it fails the change (the kernel's only errno here is EINVAL).
 */
export function archPrepareMemoryRegionFails(profile: Profile, change: MemslotChange, vmType: number): boolean {
  if (change.change !== 'CREATE' && change.change !== 'MOVE') return false;
  const last = change.new.baseGfn + change.new.npages - 1n;
  // [MS-X86-01] [MS-X86-02]
  return (profile.maxGfn !== null && last > profile.maxGfn) || (last & vmTypeInfo(vmType).gfnDirectBits) !== 0n;
}

/**
 * The dirty bitmap a changed slot gets: none without LOG_DIRTY_PAGES, the old one when the
 * old slot had one, else a fresh one from the per-VM counter.
 * Mirrors: kvm_prepare_memory_region() (dirty bitmap part)
 */
export function chooseDirtyBitmap(flags: number, old: Memslot | null, allocate: () => number, useBitmap: boolean): number | null {
  // [MS-DLG-08]
  if ((flags & KVM_MEM_LOG_DIRTY_PAGES) === 0) return null;
  // [MS-DLG-06]
  if (old !== null && old.dirtyBitmap !== null) return old.dirtyBitmap;
  // [MS-DLG-10] kvm_use_dirty_bitmap(): not with a dirty ring.
  if (!useBitmap) return null;
  // [MS-DLG-07]
  return allocate();
}

/**
 * Creates (size > 0) or deletes (size 0) an internal slot in every address space, calling
 * `setMemoryRegion` (the implementation's kvm_set_memory_region()) once per address space.
 * Mirrors: __x86_set_memory_region()
 * Throws RangeError for a user id or a size that is not a u32 (no kernel caller passes either).
 * @returns the outcome of the last call made, EEXIST / EINVAL / NONE from the front checks.
 */
export function setInternalMemslotLoop(
  profile: Profile,
  id: number,
  gpa: Gpa,
  size: bigint,
  hva: Hva,
  view: ActiveMemslotsView,
  setMemoryRegion: (mem: MemoryRegion) => SetOutcome,
): SetOutcome {
  if (id < profile.userMemSlots) {
    throw new RangeError(`internal slot id ${id} is a user id (WARN in kvm_set_internal_memslot)`);
  }
  // Bad input, as the model says: __x86_set_memory_region() takes `u32 size`.
  if (size < 0n || size > BigInt(U32_MAX)) {
    throw new RangeError(`internal slot size ${size} is not a u32 (__x86_set_memory_region() takes u32 size)`);
  }
  // [MS-VAL-09]
  if (id >= profile.memSlotsNum) return { ok: false, errno: 'EINVAL' };
  const existing = view.idToMemslot(0, id);
  const present = existing !== null;
  // [MS-INT-01]
  if (size > 0n && present) return { ok: false, errno: 'EEXIST' };
  // [MS-INT-02]
  if (size === 0n && !present) return { ok: true, change: 'NONE' };
  // [MS-INT-03]
  // Only a delete gets here with a slot: it passes the slot's own host address, not the caller's.
  const uaddr = existing !== null ? existing.userspaceAddr : hva;
  const inSpace = (asId: number): MemoryRegion => ({ slot: (asId << 16) | id, flags: 0, guestPhysAddr: gpa, memorySize: size, userspaceAddr: uaddr });
  // Address space 0 always exists; the others follow until one fails.
  let result = setMemoryRegion(inSpace(0));
  for (let asId = 1; asId < profile.addressSpaces && result.ok; asId++) result = setMemoryRegion(inSpace(asId));
  return result;
}

/** The outcome of a decision that changes nothing. */
export function outcomeWithoutChange(d: Exclude<Decision, { kind: 'change' }>): SetOutcome {
  return d.kind === 'reject' ? { ok: false, errno: d.errno } : { ok: true, change: 'NONE' };
}
