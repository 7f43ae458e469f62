/**
 * KVM_GET_DIRTY_LOG, KVM_CLEAR_DIRTY_LOG, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 and the guest
 * writes that set the bits, as spec/25-dirty-log.md states them.
 */
import type { RuleId } from '../spec/rules.js';
import { MAX_EXCHANGED_BITS, clearRange, hexBits, isSet, noRuns, runsToHex, setPage, type DirtyRuns } from './dirty-bits.js';
import { dropAllMappings, enableDirtyLogRing, ringPush, ringSoftLimit, ringUsed, type RingCap } from './dirty-ring.js';
import type { Step, VmState } from './state.js';
import { findSlot, space, vmWith } from './state.js';
import {
  KVM_DIRTY_LOG_INITIALLY_SET,
  KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
  KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEM_READONLY,
  KVM_MEMSLOT_INVALID,
  PAGE_SHIFT,
  type DirtyLogResult,
  type Errno,
  type IoctlResult,
} from './types.js';

function answer(vm: VmState, errno: Errno | null, rule: RuleId, state: VmState = vm): Step<IoctlResult> {
  const result: IoctlResult = errno === null ? { ok: true, rule } : { ok: false, errno, rule };
  return { state, result, fired: [rule], published: [] };
}

/** The bits of bitmap `n` (every live bitmap has an entry). */
function bitsOf(vm: VmState, n: number): DirtyRuns {
  return vm.dirtyBits.get(n) ?? noRuns();
}

/**
 * Mirrors: kvm_get_dirty_log_protect() (x86 selects KVM_GENERIC_DIRTYLOG_READ_PROTECT).
 * @returns the bitmap it copied out, or EINVAL / ENOENT with the deciding rule.
 */
export function getDirtyLog(vm: VmState, slot: number): Step<DirtyLogResult> {
  // [MS-DLG-09] `if (!kvm_use_dirty_bitmap(kvm)) return -ENXIO;`
  if (vm.ring.size !== 0) return answer(vm, 'ENXIO', 'MS-DLG-09');
  const asId = slot >>> 16;
  const id = slot & 0xffff;
  // [MS-DLG-01]
  if (asId >= vm.profile.addressSpaces) return answer(vm, 'EINVAL', 'MS-DLG-01');
  // [MS-DLG-02] User ids only: internal slots never have a dirty log to fetch.
  if (id >= vm.profile.userMemSlots) return answer(vm, 'EINVAL', 'MS-DLG-02');
  const memslot = findSlot(vm, asId, id);
  // [MS-DLG-03]
  if (memslot === undefined) return answer(vm, 'ENOENT', 'MS-DLG-03');
  // [MS-DLG-04]
  if (memslot.dirtyBitmap === null) return answer(vm, 'ENOENT', 'MS-DLG-04');
  // [MS-DLG-05] [MS-DLB-02] The bitmap as it was; without manual protect it is cleared as it is read.
  const bits = bitsOf(vm, memslot.dirtyBitmap);
  const bitmap = runsToHex(bits);
  const manual = (vm.manualProtect & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) !== 0;
  const state = manual || bits.size === 0 ? vm : vmWith(vm, { dirtyBits: vm.dirtyBits.with(memslot.dirtyBitmap, noRuns(), true) });
  return { state, result: { ok: true, rule: 'MS-DLG-05', bitmap }, fired: ['MS-DLG-05', 'MS-DLB-02'], published: [] };
}

/** `struct kvm_clear_dirty_log`: `bitmap` is hex of the user buffer (trailing zero bytes may be left out). */
export interface ClearDirtyLog {
  readonly slot: number;
  readonly firstPage: bigint;
  readonly numPages: number;
  readonly bitmap: string;
}

/** Mirrors: kvm_clear_dirty_log_protect() */
export function clearDirtyLog(vm: VmState, c: ClearDirtyLog): Step<IoctlResult> {
  // [MS-CLR-06] `if (!kvm_use_dirty_bitmap(kvm)) return -ENXIO;`
  if (vm.ring.size !== 0) return answer(vm, 'ENXIO', 'MS-CLR-06');
  const asId = c.slot >>> 16;
  const id = c.slot & 0xffff;
  // [MS-CLR-01]
  if (asId >= vm.profile.addressSpaces || id >= vm.profile.userMemSlots) return answer(vm, 'EINVAL', 'MS-CLR-01');
  // [MS-CLR-02]
  if ((c.firstPage & 63n) !== 0n) return answer(vm, 'EINVAL', 'MS-CLR-02');
  const memslot = findSlot(vm, asId, id);
  // [MS-CLR-03]
  if (memslot === undefined || memslot.dirtyBitmap === null) return answer(vm, 'ENOENT', 'MS-CLR-03');
  // [MS-CLR-04] A count that is not a multiple of 64 only where it reaches the slot's end.
  const n = BigInt(c.numPages);
  const rest = memslot.npages - c.firstPage;
  if (c.firstPage > memslot.npages || n > rest || (n < rest && (n & 63n) !== 0n)) return answer(vm, 'EINVAL', 'MS-CLR-04');
  // [MS-CLR-05] Clears the bits the user buffer has set, a long word at a time, within the range.
  let bits = bitsOf(vm, memslot.dirtyBitmap);
  const words = (n + 63n) >> 6n;
  for (const b of hexBits(c.bitmap)) {
    if (b >= words << 6n) break;
    const page = c.firstPage + b;
    if (isSet(bits, page)) bits = clearRange(bits, page, page + 1n);
  }
  return answer(vm, null, 'MS-CLR-05', vmWith(vm, { dirtyBits: vm.dirtyBits.with(memslot.dirtyBitmap, bits, true) }));
}

/** Mirrors: kvm_vm_ioctl_enable_cap_generic() case KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 */
export function enableManualDirtyLogProtect(vm: VmState, args0: bigint, flags: number): Step<IoctlResult> {
  // [MS-MAN-01]
  if (flags !== 0) return answer(vm, 'EINVAL', 'MS-MAN-01');
  // [MS-MAN-02] INITIALLY_SET only together with PROTECT_ENABLE.
  const allowed =
    (args0 & BigInt(KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE)) !== 0n
      ? BigInt(KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET)
      : BigInt(KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE);
  if ((args0 & ~allowed) !== 0n) return answer(vm, 'EINVAL', 'MS-MAN-02');
  // [MS-MAN-03]
  return answer(vm, null, 'MS-MAN-03', vmWith(vm, { manualProtect: Number(args0) }));
}

/** What a guest write does: `ret` when it lands in a slot, `mmio` when it exits as MMIO, `dirty_ring_full` when the vCPU stops for its ring. */
export type WriteOutcome = 'ret' | 'mmio' | 'dirty_ring_full';
export interface WriteResult {
  readonly outcome: WriteOutcome;
  readonly rule: RuleId;
}

/**
 * vCPU 0, in address space `asId`, writes one byte at `gpa`; the VM's first write creates the vCPU.
 * Mirrors: vcpu_enter_guest() (kvm_dirty_ring_check_request()), kvm_mmu_page_fault() → kvm_faultin_pfn()
 * (__gfn_to_hva_many() with write), make_spte() → mark_page_dirty_in_slot()
 */
export function guestWrite(vm: VmState, asId: number, gpa: bigint): Step<WriteResult> {
  // KVM_CREATE_VCPU (with its ring, when the VM has one: kvm_dirty_ring_alloc()).
  const v: VmState = vm.vcpuCreated ? vm : vmWith(vm, { vcpuCreated: true });
  const step = (outcome: WriteOutcome, rule: RuleId, state: VmState, more: readonly RuleId[] = []): Step<WriteResult> => {
    // [MS-RNG-11] A SUT whose write drops the VM's mappings afterwards (the kvm driver's code slot).
    const after = state.ring.size !== 0 && state.profile.writeDropsMappings ? dropAllMappings(state) : state;
    return { state: after, result: { outcome, rule }, fired: [rule, ...more], published: [] };
  };
  const ring = v.ring.size !== 0;
  // [MS-RNG-08] A soft-full ring keeps the vCPU out of the guest: KVM_EXIT_DIRTY_RING_FULL before it runs.
  if (ring && ringUsed(v.ring) >= ringSoftLimit(v)) return step('dirty_ring_full', 'MS-RNG-08', v);
  const gfn = gpa >> PAGE_SHIFT;
  const sp = space(v, asId);
  const s = sp.byGfn.getPairOrNextLower(gfn)?.[1];
  const slot = s !== undefined && gfn < s.baseGfn + s.npages && (s.flags & KVM_MEMSLOT_INVALID) === 0 ? s : undefined;
  // [MS-WR-01] No slot: emulated MMIO.
  if (slot === undefined) return step('mmio', 'MS-WR-01', v);
  // [MS-WR-02] A read-only slot: the write exits as MMIO (KVM_HVA_ERR_RO_BAD).
  if ((slot.flags & KVM_MEM_READONLY) !== 0) return step('mmio', 'MS-WR-02', v);
  const offset = gfn - slot.baseGfn;
  // kvm_slot_dirty_track_enabled(): with a ring, a logged slot's pages go to the ring, never to a bitmap.
  if (ring && (slot.flags & KVM_MEM_LOG_DIRTY_PAGES) !== 0) {
    const p = ringPush(v, slot, offset);
    // [MS-RNG-09] [MS-RNG-10]
    return step(p.full ? 'dirty_ring_full' : 'ret', p.rule, p.state);
  }
  // [MS-WR-03] With a bitmap: mark_page_dirty_in_slot() sets the page's bit.
  if (slot.dirtyBitmap !== null) {
    const bits = setPage(bitsOf(v, slot.dirtyBitmap), offset);
    return step('ret', 'MS-WR-03', { ...v, dirtyBits: v.dirtyBits.with(slot.dirtyBitmap, bits, true) });
  }
  // [MS-WR-04]
  return step('ret', 'MS-WR-04', v);
}

/** Whether a write at `gpa` of `asId` lands where the model cannot tell what the ring gets ([MS-RNG-11], INITIALLY_SET). */
export function inUnknownRingSlot(vm: VmState, asId: number, gpa: bigint): boolean {
  if (vm.ring.unknown.size === 0) return false;
  const gfn = gpa >> PAGE_SHIFT;
  const s = space(vm, asId).byGfn.getPairOrNextLower(gfn)?.[1];
  return s !== undefined && gfn < s.baseGfn + s.npages && vm.ring.unknown.has((s.asId << 16) | s.id);
}

/** The capabilities KVM_ENABLE_CAP takes in the protocol. */
export type EnableCapName = 'MANUAL_DIRTY_LOG_PROTECT2' | RingCap;

/** Mirrors: kvm_vm_ioctl_enable_cap_generic() */
export function enableCap(vm: VmState, cap: EnableCapName, args0: bigint, flags: number): Step<IoctlResult> {
  return cap === 'MANUAL_DIRTY_LOG_PROTECT2' ? enableManualDirtyLogProtect(vm, args0, flags) : enableDirtyLogRing(vm, cap, args0);
}

/**
 * Whether the answer to KVM_GET_DIRTY_LOG of `slot` can be exchanged: false when it would carry
 * a set bit at or beyond MAX_EXCHANGED_BITS (spec/25: such a request is not sent, never judged).
 */
export function dirtyLogExchangeable(vm: VmState, slot: number): boolean {
  const asId = slot >>> 16;
  const id = slot & 0xffff;
  if (vm.ring.size !== 0 || asId >= vm.profile.addressSpaces || id >= vm.profile.userMemSlots) return true;
  const s = findSlot(vm, asId, id);
  if (s === undefined || s.dirtyBitmap === null) return true;
  const last = bitsOf(vm, s.dirtyBitmap).getPairOrNextLower(1n << 64n);
  return last === undefined || last[1] <= MAX_EXCHANGED_BITS;
}

/** Whether `gpa` lies in an internal slot of `asId` (a write there is outside the spec). */
export function inInternalSlot(vm: VmState, asId: number, gpa: bigint): boolean {
  const gfn = gpa >> PAGE_SHIFT;
  const s = space(vm, asId).byGfn.getPairOrNextLower(gfn)?.[1];
  return s !== undefined && gfn < s.baseGfn + s.npages && s.id >= vm.profile.userMemSlots;
}
