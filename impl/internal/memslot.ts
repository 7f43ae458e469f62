/**
 * Small slot-level helpers that both implementations share: pure functions of one slot (or
 * one generation), O(1) each. Nothing here walks a set.
 */
import type { Profile } from '../../model/profiles.js';
import {
  InvariantError,
  KVM_MEM_READONLY,
  KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS,
  KVM_MEMSLOT_INVALID,
  PAGE_SHIFT,
  PAGE_SIZE,
  type Gfn,
  type Hva,
  type HvaRangeHit,
  type HvaResult,
  type Memslot,
} from '../../model/types.js';

/** The fields of a slot that a request decides; the dirty bitmap is chosen at commit. */
export type SlotFields = Omit<Memslot, 'dirtyBitmap'>;

/**
 * A slot as both implementations hand it out: a frozen plain object, so that a caller can
 * neither corrupt a set through it nor tell an implementation from the model by its shape.
 */
export function makeMemslot(f: SlotFields, dirtyBitmap: number | null): Memslot {
  return Object.freeze({
    asId: f.asId,
    id: f.id,
    baseGfn: f.baseGfn,
    npages: f.npages,
    flags: f.flags,
    userspaceAddr: f.userspaceAddr,
    dirtyBitmap,
    gmem: f.gmem,
  });
}

/**
 * The temporary copy that DELETE and MOVE publish first ([MS-GEN-03]).
 * Mirrors: kvm_copy_memslot() + `invalid_slot->flags |= KVM_MEMSLOT_INVALID`
 */
export function makeInvalidCopy(old: Memslot): Memslot {
  return makeMemslot({ ...old, flags: old.flags | KVM_MEMSLOT_INVALID }, old.dirtyBitmap);
}

/** Mirrors: try_get_memslot() */
export function tryGetMemslot(slot: Memslot | null, gfn: Gfn): Memslot | null {
  return slot !== null && slot.baseGfn <= gfn && gfn < slot.baseGfn + slot.npages ? slot : null;
}

/** [MS-LKP-08] Mirrors: kvm_is_visible_memslot() */
export function isVisibleMemslot(profile: Profile, slot: Memslot | null): boolean {
  return slot !== null && slot.id < profile.userMemSlots && (slot.flags & KVM_MEMSLOT_INVALID) === 0;
}

/** Mirrors: __gfn_to_hva_many(slot, gfn, NULL, write) */
export function gfnToHvaMemslot(slot: Memslot | null, gfn: Gfn, write: boolean): HvaResult {
  // [MS-LKP-09]
  if (slot === null || (slot.flags & KVM_MEMSLOT_INVALID) !== 0) return { ok: false, error: 'KVM_HVA_ERR_BAD' };
  // [MS-LKP-10]
  if (write && (slot.flags & KVM_MEM_READONLY) !== 0) return { ok: false, error: 'KVM_HVA_ERR_RO_BAD' };
  // [MS-LKP-11] __gfn_to_hva_memslot()
  return { ok: true, hva: slot.userspaceAddr + ((gfn - slot.baseGfn) << PAGE_SHIFT) };
}

/** The inclusive last host address of a slot: `hva_node.last`. */
export function hvaLast(slot: Memslot): Hva {
  return slot.userspaceAddr + (slot.npages << PAGE_SHIFT) - 1n;
}

/**
 * [MS-LKP-05] The gfn range of `slot` that the half-open hva range `[start, end)` touches;
 * the slot is known to intersect it.
 * Mirrors: kvm_handle_hva_range() (hva_start/hva_end clamping, hva_to_gfn_memslot())
 */
export function hvaRangeHit(slot: Memslot, start: Hva, end: Hva): HvaRangeHit {
  const slotEnd = slot.userspaceAddr + (slot.npages << PAGE_SHIFT);
  // Stryker disable next-line EqualityOperator: at equality both arms are the same value
  const hvaStart = start > slot.userspaceAddr ? start : slot.userspaceAddr;
  // Stryker disable next-line EqualityOperator: at equality both arms are the same value
  const hvaEnd = end < slotEnd ? end : slotEnd;
  return {
    asId: slot.asId,
    id: slot.id,
    gfnStart: slot.baseGfn + ((hvaStart - slot.userspaceAddr) >> PAGE_SHIFT),
    gfnEnd: slot.baseGfn + ((hvaEnd + PAGE_SIZE - 1n - slot.userspaceAddr) >> PAGE_SHIFT),
  };
}

/** [MS-LKP-06] Mirrors: kvm_arch_vcpu_memslots_id() (x86: HF_SMM_MASK selects address space 1). */
export function vcpuMemslotsId(profile: Profile, inSmm: boolean): number {
  return inSmm && profile.addressSpaces > 1 ? 1 : 0;
}

/** Throws RangeError for an address space the profile does not have (as the model does). */
export function checkAsId(profile: Profile, asId: number): void {
  if (!Number.isInteger(asId) || asId < 0 || asId >= profile.addressSpaces) {
    throw new RangeError(`address space ${asId} does not exist in profile ${profile.name}`);
  }
}

/**
 * Step 1 of a swap: the generation the set about to be published carries while readers may
 * still see the old one. Mirrors: kvm_swap_active_memslots() (`gen | IN_PROGRESS`)
 */
export function generationInProgress(activeGeneration: bigint): bigint {
  // [MS-INV-04] A swap never starts while another is in flight (the kernel's WARN_ON).
  if ((activeGeneration & KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS) !== 0n) {
    throw new InvariantError('MS-INV-04', `generation ${activeGeneration} already has UPDATE_IN_PROGRESS`);
  }
  return activeGeneration | KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS;
}

/**
 * Step 2 of a swap, after the publish: drop IN_PROGRESS and advance by the number of address
 * spaces, so generation mod N stays the as_id ([MS-GEN-02], [MS-INV-04]).
 * Mirrors: kvm_swap_active_memslots() / install_new_memslots()
 */
export function generationAfterSwap(publishedGeneration: bigint, addressSpaces: number): bigint {
  return (publishedGeneration & ~KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS) + BigInt(addressSpaces);
}
