/**
 * Memslot lookups, as spec/30-lookup.md states them, over the sorted maps of the state; the
 * implementations must give the same answers with their own indexes.
 */
import type { VmState } from './state.js';
import { findSlot, space } from './state.js';
import { KVM_MEM_READONLY, KVM_MEMSLOT_INVALID, PAGE_SHIFT, PAGE_SIZE, type Gfn, type HvaRangeHit, type HvaResult, type Hva, type Memslot } from './types.js';

/**
 * [MS-LKP-01] The slot of `id` in address space `asId`, or null.
 * Mirrors: id_to_memslot()
 */
export function idToMemslot(vm: VmState, asId: number, id: number): Memslot | null {
  return findSlot(vm, asId, id) ?? null;
}

function contains(s: Memslot, gfn: Gfn): boolean {
  return s.baseGfn <= gfn && gfn < s.baseGfn + s.npages;
}

/**
 * [MS-LKP-02] The slot whose range contains `gfn`, or null.
 * Mirrors: __gfn_to_memslot()
 */
export function gfnToMemslot(vm: VmState, asId: number, gfn: Gfn): Memslot | null {
  // Slots are disjoint (MS-INV-02): only the one starting nearest at or below gfn can contain it.
  const s = space(vm, asId).byGfn.getPairOrNextLower(gfn)?.[1];
  return s !== undefined && contains(s, gfn) ? s : null;
}

/**
 * [MS-LKP-03] The answers the approx lookup may give: the containing slot alone; else the
 * slots bordering the hole (the nearest below and the nearest above, either is right);
 * none for an empty address space.
 * Mirrors: search_memslots(slots, gfn, approx = true)
 */
export function gfnToMemslotApproxCandidates(vm: VmState, asId: number, gfn: Gfn): readonly Memslot[] {
  const hit = gfnToMemslot(vm, asId, gfn);
  if (hit !== null) return [hit];
  const byGfn = space(vm, asId).byGfn;
  const below = byGfn.nextLowerPair(gfn)?.[1];
  const above = byGfn.nextHigherPair(gfn)?.[1];
  return [below, above].filter((s): s is Memslot => s !== undefined);
}

/**
 * [MS-LKP-04] Every slot intersecting the half-open `[start, end)`, ascending by baseGfn.
 * Mirrors: kvm_for_each_memslot_in_gfn_range()
 */
export function gfnRangeMemslots(vm: VmState, asId: number, start: Gfn, end: Gfn): readonly Memslot[] {
  const byGfn = space(vm, asId).byGfn;
  const out: Memslot[] = [];
  // Slots are disjoint (MS-INV-02): of those starting below start, only the nearest can reach past it.
  const below = byGfn.nextLowerPair(start)?.[1];
  if (below !== undefined && below.baseGfn < end && start < below.baseGfn + below.npages) out.push(below);
  if (start < end) for (const [, s] of byGfn.getRange(start, end, false)) out.push(s);
  return out;
}

/**
 * [MS-LKP-05] Every slot of every address space whose hva range intersects the half-open
 * `[start, end)`, with the gfn range it covers there; ordered by (asId, id). hva ranges may
 * overlap between slots, so one hva can hit several. An empty range hits nothing.
 * Mirrors: kvm_handle_hva_range()
 */
export function hvaRangeMemslots(vm: VmState, start: Hva, end: Hva): readonly HvaRangeHit[] {
  const hits: HvaRangeHit[] = [];
  if (end <= start) return hits;
  for (const sp of vm.spaces) {
    // hva ranges may overlap, so every slot is tested; the id map gives them in id order.
    for (const s of sp.byId.valuesArray()) {
      const slotEnd = s.userspaceAddr + (s.npages << PAGE_SHIFT);
      if (!(s.userspaceAddr < end && start < slotEnd)) continue;
      // Stryker disable next-line EqualityOperator: at equality both arms are the same value
      const hvaStart = start > s.userspaceAddr ? start : s.userspaceAddr;
      // Stryker disable next-line EqualityOperator: at equality both arms are the same value
      const hvaEnd = end < slotEnd ? end : slotEnd;
      hits.push({
        asId: s.asId,
        id: s.id,
        gfnStart: s.baseGfn + ((hvaStart - s.userspaceAddr) >> PAGE_SHIFT),
        gfnEnd: s.baseGfn + ((hvaEnd + PAGE_SIZE - 1n - s.userspaceAddr) >> PAGE_SHIFT),
      });
    }
  }
  return hits;
}

/**
 * [MS-LKP-06] The address space a vCPU looks up: 1 while it is in SMM (where the profile
 * has two), else 0.
 * Mirrors: kvm_arch_vcpu_memslots_id()
 */
export function vcpuAsId(vm: VmState, inSmm: boolean): number {
  return inSmm && vm.profile.addressSpaces > 1 ? 1 : 0;
}

/**
 * [MS-LKP-06] [MS-LKP-07] What a vCPU's gfn lookup answers. The per-vCPU cache is keyed by
 * the generation, so it never changes the answer: the model has no cache at all.
 * Mirrors: kvm_vcpu_gfn_to_memslot()
 */
export function vcpuGfnToMemslot(vm: VmState, inSmm: boolean, gfn: Gfn): Memslot | null {
  return gfnToMemslot(vm, vcpuAsId(vm, inSmm), gfn);
}

/**
 * [MS-LKP-08] Whether `gfn` is backed by a slot the guest may see.
 * Mirrors: kvm_is_visible_gfn(), kvm_is_visible_memslot()
 */
export function isVisibleGfn(vm: VmState, asId: number, gfn: Gfn): boolean {
  const s = gfnToMemslot(vm, asId, gfn);
  return s !== null && s.id < vm.profile.userMemSlots && (s.flags & KVM_MEMSLOT_INVALID) === 0;
}

/**
 * The host address of `gfn`, or why there is none.
 * Mirrors: __gfn_to_hva_many(slot, gfn, NULL, write)
 */
export function gfnToHva(vm: VmState, asId: number, gfn: Gfn, write: boolean): HvaResult {
  const s = gfnToMemslot(vm, asId, gfn);
  // [MS-LKP-09]
  if (s === null || (s.flags & KVM_MEMSLOT_INVALID) !== 0) return { ok: false, error: 'KVM_HVA_ERR_BAD' };
  // [MS-LKP-10]
  if (write && (s.flags & KVM_MEM_READONLY) !== 0) return { ok: false, error: 'KVM_HVA_ERR_RO_BAD' };
  // [MS-LKP-11]
  return { ok: true, hva: s.userspaceAddr + ((gfn - s.baseGfn) << PAGE_SHIFT) };
}
