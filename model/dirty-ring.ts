/**
 * Dirty rings (spec/25-dirty-log.md, "Dirty rings"): KVM_ENABLE_CAP(KVM_CAP_DIRTY_LOG_RING[_ACQ_REL]),
 * the entries a guest write pushes, user space's harvest and KVM_RESET_DIRTY_RINGS.
 *
 * The protocol has one vCPU (vCPU 0, created by the VM's first write), so the VM has at most one
 * ring. The entries are kept by ring index in a persistent sorted map, so that a push or a reset
 * of a full 65536-entry ring costs O(log n) per entry.
 */
import type { RuleId } from '../spec/rules.js';
import { clearRange, isSet, noRuns, setPage, type DirtyRuns } from './dirty-bits.js';
import { emptyNumberMap, type SortedMap } from './internal/sorted-map.js';
import { checkExtension } from './capabilities.js';
import type { DirtyRing, RingEntry, Step, VmState } from './state.js';
import { findSlot, vmWith } from './state.js';
import { KVM_X86_DEFAULT_VM } from './vm-types.js';
import type { Errno, IoctlResult, Memslot } from './types.js';

/** sizeof(struct kvm_dirty_gfn) */
export const KVM_DIRTY_GFN_SIZE = 16;
/** KVM_DIRTY_RING_MAX_ENTRIES */
export const KVM_DIRTY_RING_MAX_ENTRIES = 65536;

export type RingCap = 'DIRTY_LOG_RING' | 'DIRTY_LOG_RING_ACQ_REL';

function answer(vm: VmState, errno: Errno | null, rule: RuleId, state: VmState = vm): Step<IoctlResult> {
  const result: IoctlResult = errno === null ? { ok: true, rule } : { ok: false, errno, rule };
  return { state, result, fired: [rule], published: [] };
}

/** `kvm_dirty_ring_used()` */
export function ringUsed(r: DirtyRing): number {
  return r.dirtyIndex - r.resetIndex;
}

/** `ring->soft_limit`: entries minus the reserved ones. */
export function ringSoftLimit(vm: VmState): number {
  return vm.ring.size / KVM_DIRTY_GFN_SIZE - vm.profile.dirtyRingRsvdEntries;
}

/**
 * Mirrors: kvm_vm_ioctl_enable_cap_generic() case KVM_CAP_DIRTY_LOG_RING[_ACQ_REL] and
 * kvm_vm_ioctl_enable_dirty_log_ring(). The flags are not looked at.
 */
export function enableDirtyLogRing(vm: VmState, cap: RingCap, args0: bigint): Step<IoctlResult> {
  // [MS-RNG-01] `if (!kvm_vm_ioctl_check_extension_generic(kvm, cap->cap)) return -EINVAL;` (5.10 knows neither cap: its default is EINVAL too).
  if (checkExtension(vm, cap, 'vm').value === 0) return answer(vm, 'EINVAL', 'MS-RNG-01');
  // [MS-RNG-02] The size parameter is a u32: args[0] is truncated.
  const size = Number(args0 & 0xffff_ffffn);
  if (size === 0 || (size & (size - 1)) !== 0) return answer(vm, 'EINVAL', 'MS-RNG-02');
  // [MS-RNG-03]
  if (size < vm.profile.dirtyRingRsvdEntries * KVM_DIRTY_GFN_SIZE || size < 4096) return answer(vm, 'EINVAL', 'MS-RNG-03');
  // [MS-RNG-04]
  if (size > KVM_DIRTY_RING_MAX_ENTRIES * KVM_DIRTY_GFN_SIZE) return answer(vm, 'E2BIG', 'MS-RNG-04');
  // [MS-RNG-05] Set once, by either cap.
  if (vm.ring.size !== 0) return answer(vm, 'EINVAL', 'MS-RNG-05');
  // [MS-RNG-06] `if (kvm->created_vcpus) r = -EINVAL;`
  if (vm.vcpuCreated) return answer(vm, 'EINVAL', 'MS-RNG-06');
  // [MS-RNG-07]
  return answer(vm, null, 'MS-RNG-07', vmWith(vm, { ring: { ...vm.ring, size } }));
}

/** What a write into logged slot `s` at page `offset` does with a ring, once the vCPU runs ([MS-RNG-09], [MS-RNG-10]). */
export function ringPush(vm: VmState, s: Memslot, offset: bigint): { state: VmState; full: boolean; rule: RuleId } {
  const key = (s.asId << 16) | s.id;
  const r = vm.ring;
  const pages = r.mapped.get(key) ?? noRuns();
  // [MS-RNG-10] Mapped writable: no fault, no push.
  if (isSet(pages, offset)) return { state: vm, full: false, rule: 'MS-RNG-10' };
  // [MS-RNG-09] The write fault maps the page writable (make_spte() → mark_page_dirty_in_slot() → kvm_dirty_ring_push()).
  const ring: DirtyRing = {
    ...r,
    entries: r.entries.with(r.dirtyIndex, { slot: key, offset }, true),
    dirtyIndex: r.dirtyIndex + 1,
    mapped: r.mapped.with(key, setPage(pages, offset), true),
  };
  const state = vmWith(vm, { ring });
  // A push that reaches the soft limit raises KVM_REQ_DIRTY_RING_SOFT_FULL: the vCPU exits before it retries the write.
  return { state, full: ringUsed(ring) >= ringSoftLimit(state), rule: 'MS-RNG-09' };
}

/**
 * [MS-RNG-11] The zap of kvm_arch_flush_shadow_memslot(), run when a DELETE or MOVE publishes the
 * INVALID copy of `old`: every mapping of a KVM_X86_DEFAULT_VM (KVM_X86_QUIRK_SLOT_ZAP_ALL, on by
 * default), only `old`'s in the other types.
 */
export function zapForSlotChange(vm: VmState, old: Memslot): VmState {
  if (vm.ring.size === 0) return vm;
  if (vm.vmType === KVM_X86_DEFAULT_VM) return dropAllMappings(vm);
  const key = (old.asId << 16) | old.id;
  if (vm.ring.mapped.get(key) === undefined && !vm.ring.unknown.has(key)) return vm;
  const unknown = new Set(vm.ring.unknown);
  unknown.delete(key);
  return vmWith(vm, { ring: { ...vm.ring, mapped: vm.ring.mapped.without(key), unknown } });
}

/** Every mapping of the VM dropped ([MS-RNG-11]). */
export function dropAllMappings(vm: VmState): VmState {
  if (vm.ring.mapped.size === 0 && vm.ring.unknown.size === 0) return vm;
  return vmWith(vm, { ring: { ...vm.ring, mapped: emptyNumberMap<DirtyRuns>(), unknown: new Set() } });
}

/**
 * [MS-RNG-11] A FLAGS_ONLY that switches logging on write-protects the slot
 * (kvm_mmu_slot_apply_flags()), except under KVM_DIRTY_LOG_INITIALLY_SET; one that switches it off
 * ends its tracking. Either way the slot's known mappings are forgotten.
 */
export function flagsOnlyMappings(vm: VmState, s: Memslot, loggingOn: boolean, initiallySet: boolean): VmState {
  if (vm.ring.size === 0) return vm;
  const key = (s.asId << 16) | s.id;
  const unknown = new Set(vm.ring.unknown);
  if (loggingOn && initiallySet && vm.vcpuCreated && !vm.profile.writeDropsMappings) unknown.add(key);
  else unknown.delete(key);
  return vmWith(vm, { ring: { ...vm.ring, mapped: vm.ring.mapped.without(key), unknown } });
}

/** The harvest's answer: the entries, and the state with them flagged for reset. */
export interface Harvest {
  readonly state: VmState;
  readonly entries: readonly RingEntry[];
  readonly rule: RuleId;
}

/**
 * [MS-RNG-12] User space's harvest of vCPU 0's ring: every entry pushed since the last harvest,
 * in push order, each flagged KVM_DIRTY_GFN_F_RESET. No ring, or no vCPU yet: none.
 */
export function harvestDirtyRing(vm: VmState): Harvest {
  const r = vm.ring;
  if (r.fetchIndex === r.dirtyIndex) return { state: vm, entries: [], rule: 'MS-RNG-12' };
  const entries = r.entries.getRange(r.fetchIndex, r.dirtyIndex, false).map((p) => p[1]);
  return { state: vmWith(vm, { ring: { ...r, fetchIndex: r.dirtyIndex } }), entries, rule: 'MS-RNG-12' };
}

/** KVM_RESET_DIRTY_RINGS: the number of entries reset, or an errno. */
export type ResetResult =
  { readonly ok: true; readonly count: number; readonly rule: RuleId } | { readonly ok: false; readonly errno: Errno; readonly rule: RuleId };

/** BITS_PER_LONG */
const BATCH = 64n;

/** Mirrors: kvm_vm_ioctl_reset_dirty_pages() → kvm_dirty_ring_reset() → kvm_reset_dirty_gfn() */
export function resetDirtyRings(vm: VmState): Step<ResetResult> {
  const done = (result: ResetResult, state: VmState = vm): Step<ResetResult> => ({ state, result, fired: [result.rule], published: [] });
  // [MS-RNG-13] A kernel without dirty rings has no such ioctl.
  if (vm.kernel.dirtyRingMaxBytes === 0) return done({ ok: false, errno: 'ENOTTY', rule: 'MS-RNG-13' });
  // [MS-RNG-13] `if (!kvm->dirty_ring_size) return -EINVAL;`
  if (vm.ring.size === 0) return done({ ok: false, errno: 'EINVAL', rule: 'MS-RNG-13' });
  // [MS-RNG-14] The harvested entries, in order, in batches of one slot whose offsets span less than 64 pages.
  const r = vm.ring;
  let mapped = r.mapped;
  let entries = r.entries;
  let batch: Batch | null = null;
  for (let i = r.resetIndex; i < r.fetchIndex; i++) {
    const e: RingEntry = r.entries.get(i)!;
    entries = entries.without(i);
    const joined: Batch | null = batch === null ? null : joinBatch(batch, e);
    if (joined !== null) {
      batch = joined;
      continue;
    }
    if (batch !== null) mapped = reprotect(vm, mapped, batch);
    batch = { slot: e.slot, offset: e.offset, mask: 1n };
  }
  if (batch !== null) mapped = reprotect(vm, mapped, batch);
  const count = r.fetchIndex - r.resetIndex;
  const ring: DirtyRing = { ...r, entries, resetIndex: r.fetchIndex, mapped };
  return done({ ok: true, count, rule: 'MS-RNG-14' }, count === 0 ? vm : vmWith(vm, { ring }));
}

/** Harvested entries reset together: pages `offset + i` for each bit i of `mask` (a long). */
interface Batch {
  readonly slot: number;
  readonly offset: bigint;
  readonly mask: bigint;
}

/** The batch with `e` added, or null when `e` starts a new one (another slot, or 64 pages or more away). */
function joinBatch(b: Batch, e: RingEntry): Batch | null {
  if (e.slot !== b.slot) return null;
  const delta = e.offset - b.offset;
  if (delta >= 0n && delta < BATCH) return { ...b, mask: b.mask | (1n << delta) };
  // Backwards, while no bit of the mask is shifted out of the long.
  if (delta < 0n && delta > -BATCH && b.mask << -delta < 1n << BATCH) return { slot: b.slot, offset: e.offset, mask: (b.mask << -delta) | 1n };
  return null;
}

/**
 * One batch of kvm_reset_dirty_gfn(): the pages `offset + i` for each bit i of `mask` are write-protected
 * again, if the slot the entry names exists now and the batch's last page lies inside it; otherwise
 * the whole batch is skipped.
 */
function reprotect(vm: VmState, mapped: SortedMap<number, DirtyRuns>, { slot, offset, mask }: Batch): SortedMap<number, DirtyRuns> {
  const asId = slot >>> 16;
  const id = slot & 0xffff;
  if (asId >= vm.profile.addressSpaces || id >= vm.profile.userMemSlots) return mapped;
  const s = findSlot(vm, asId, id);
  const last = offset + BigInt(mask.toString(2).length - 1);
  if (s === undefined || offset >= s.npages || last >= s.npages) return mapped;
  let pages = mapped.get(slot);
  if (pages === undefined) return mapped;
  for (let i = 0n; i < BATCH; i++) if (((mask >> i) & 1n) !== 0n) pages = clearRange(pages, offset + i, offset + i + 1n);
  return mapped.with(slot, pages, true);
}
