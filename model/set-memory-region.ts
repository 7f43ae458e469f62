/**
 * KVM_SET_USER_MEMORY_REGION, as spec/20-set-memory-region.md states it.
 *
 * Checks run in the kernel's order; the first that fails decides the errno. Every guard
 * and every effect carries the ID of the rule it implements.
 */
import type { RuleId } from '../spec/rules.js';
import type { AddressSpace, Step, VmState } from './state.js';
import { findSlot, replaceMemslot, space } from './state.js';
import {
  KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEM_READONLY,
  KVM_MEMSLOT_INVALID,
  KVM_SET_USER_MEMORY_REGION_V1_FLAGS,
  PAGE_SHIFT,
  PAGE_SIZE,
  U32_MAX,
  U64_MAX,
  type ChangeKind,
  type Errno,
  type MemoryRegion,
  type Memslot,
  type SetResult,
} from './types.js';

/** `unsigned long` on x86-64. */
const ULONG_MAX = U64_MAX;

function reject(vm: VmState, errno: Errno, rule: RuleId, fired: readonly RuleId[] = []): Step<SetResult> {
  return { state: vm, result: { ok: false, errno, rule }, fired: [...fired, rule, 'MS-GEN-04'], published: [] };
}

/**
 * The user ioctl: the checks of the ioctl layer, then the common path.
 * Mirrors: kvm_vm_ioctl() case KVM_SET_USER_MEMORY_REGION, kvm_vm_ioctl_set_memory_region()
 * @returns the next state and `{ok: true, change}` or `{ok: false, errno}`, each with its deciding rule.
 */
export function setUserMemoryRegion(vm: VmState, mem: MemoryRegion): Step<SetResult> {
  const p = vm.profile;
  // [MS-VAL-01] The v1 ioctl knows only LOG_DIRTY_PAGES and READONLY.
  if (p.v1FlagsMask && (mem.flags & ~KVM_SET_USER_MEMORY_REGION_V1_FLAGS) !== 0) return reject(vm, 'EINVAL', 'MS-VAL-01');
  // [MS-VAL-02] Only the low 16 bits are compared, so internal ids are unreachable in every address space.
  if ((mem.slot & 0xffff) >= p.userMemSlots) return reject(vm, 'EINVAL', 'MS-VAL-02');
  return setMemoryRegion(vm, mem);
}

/** Why an internal request of `size` bytes is bad input: the kernel's internal callers pass a u32. */
export function internalSizeError(size: bigint): string {
  return `internal slot size ${size} is not a u32 (__x86_set_memory_region() takes u32 size)`;
}

/**
 * The common path shared by user and internal slots.
 * Throws RangeError for an internal id with a size above u32: no kernel caller passes one.
 * Mirrors: kvm_set_memory_region()
 */
export function setMemoryRegion(vm: VmState, mem: MemoryRegion): Step<SetResult> {
  const p = vm.profile;
  // Bad input, not a rule: only __x86_set_memory_region() passes internal ids, with a u32 size.
  if ((mem.slot & 0xffff) >= p.userMemSlots && mem.memorySize > BigInt(U32_MAX)) throw new RangeError(internalSizeError(mem.memorySize));

  // [MS-VAL-03] check_memory_region_flags(): READONLY only where the VM supports it.
  const valid = KVM_MEM_LOG_DIRTY_PAGES | (p.readonlyMem ? KVM_MEM_READONLY : 0);
  if ((mem.flags & ~valid) !== 0) return reject(vm, 'EINVAL', 'MS-VAL-03');

  const asId = mem.slot >>> 16;
  const id = mem.slot & 0xffff;

  // [MS-VAL-04]
  if (mem.memorySize % PAGE_SIZE !== 0n) return reject(vm, 'EINVAL', 'MS-VAL-04');
  // [MS-VAL-05]
  if (mem.guestPhysAddr % PAGE_SIZE !== 0n) return reject(vm, 'EINVAL', 'MS-VAL-05');
  // [MS-VAL-06]
  if (mem.userspaceAddr % PAGE_SIZE !== 0n) return reject(vm, 'EINVAL', 'MS-VAL-06');
  // [MS-VAL-07] access_ok(): the u64 sum must not wrap and must not pass the user address limit.
  const uend = (mem.userspaceAddr + mem.memorySize) & U64_MAX;
  if (uend < mem.userspaceAddr || uend > p.userAddrMax) return reject(vm, 'EINVAL', 'MS-VAL-07');
  // [MS-VAL-08]
  if (asId >= p.addressSpaces) return reject(vm, 'EINVAL', 'MS-VAL-08');
  // [MS-VAL-09]
  if (id >= p.memSlotsNum) return reject(vm, 'EINVAL', 'MS-VAL-09');
  // [MS-VAL-10] u64 wrap of guest_phys_addr + memory_size.
  // Stryker disable next-line EqualityOperator: both are page aligned (MS-VAL-04/05), so the sum is never U64_MAX itself
  if (mem.guestPhysAddr + mem.memorySize > U64_MAX) return reject(vm, 'EINVAL', 'MS-VAL-10');
  // [MS-VAL-11] Internal ids are exempt on newer kernels.
  const npages = mem.memorySize >> PAGE_SHIFT;
  if ((!p.maxNrPagesUserOnly || id < p.userMemSlots) && npages > p.maxNrPages) return reject(vm, 'EINVAL', 'MS-VAL-11');

  const old = findSlot(vm, asId, id);

  if (mem.memorySize === 0n) {
    // [MS-DEL-01] Deleting a missing slot is an error, not a no-op.
    if (old === undefined) return reject(vm, 'EINVAL', 'MS-DEL-01');
    // [MS-DEL-02] The request's flags, gpa and uaddr need not match the slot.
    return commit(vm, asId, old, null, 'DELETE', 'MS-DEL-02', []);
  }

  const baseGfn = mem.guestPhysAddr >> PAGE_SHIFT;
  let change: ChangeKind;
  let decidedBy: RuleId;
  if (old === undefined) {
    // [MS-CRT-01] nr_memslot_pages is an unsigned long.
    if (p.nrMemslotPagesCheck && vm.nrMemslotPages + npages > ULONG_MAX) return reject(vm, 'EINVAL', 'MS-CRT-01');
    // [MS-CRT-02]
    change = 'CREATE';
    decidedBy = 'MS-CRT-02';
  } else {
    // [MS-MOD-01]
    if (mem.userspaceAddr !== old.userspaceAddr) return reject(vm, 'EINVAL', 'MS-MOD-01');
    // [MS-MOD-02]
    if (npages !== old.npages) return reject(vm, 'EINVAL', 'MS-MOD-02');
    // [MS-MOD-03]
    if (((mem.flags ^ old.flags) & KVM_MEM_READONLY) !== 0) return reject(vm, 'EINVAL', 'MS-MOD-03');
    if (baseGfn !== old.baseGfn) {
      // [MS-MOV-01] Flags may change in the same call; it is still a MOVE.
      change = 'MOVE';
      decidedBy = 'MS-MOV-01';
    } else if (mem.flags !== old.flags) {
      // [MS-FLG-01]
      change = 'FLAGS_ONLY';
      decidedBy = 'MS-FLG-01';
    } else {
      // [MS-NOP-01] [MS-GEN-04] Returns 0 before any publish.
      return { state: vm, result: { ok: true, change: 'NONE', rule: 'MS-NOP-01' }, fired: ['MS-NOP-01', 'MS-GEN-04'], published: [] };
    }
  }

  // Stryker disable next-line ConditionalExpression: FLAGS_ONLY keeps its range, which overlaps no other slot
  if (change === 'CREATE' || change === 'MOVE') {
    // [MS-OVL-01] Same address space only; half-open ranges; the slot's own id is skipped; internal slots count.
    const end = baseGfn + npages;
    // Slots are disjoint (MS-INV-02), so ends ascend with starts: any overlap includes the nearest other slot starting below `end`.
    const byGfn = space(vm, asId).byGfn;
    let nearest = byGfn.nextLowerPair(end)?.[1];
    if (nearest !== undefined && nearest.id === id) nearest = byGfn.nextLowerPair(nearest.baseGfn)?.[1];
    if (nearest !== undefined && baseGfn < nearest.baseGfn + nearest.npages) return reject(vm, 'EEXIST', 'MS-OVL-01');
    // [MS-X86-01] kvm_arch_prepare_memory_region(), after the overlap check.
    if (p.maxGfn !== null && end - 1n > p.maxGfn) {
      return change === 'MOVE' ? revertMove(vm, asId, old!, 'MS-X86-01') : reject(vm, 'EINVAL', 'MS-X86-01');
    }
  }

  const next: Omit<Memslot, 'dirtyBitmap'> = {
    asId,
    id,
    baseGfn,
    npages,
    flags: mem.flags,
    userspaceAddr: mem.userspaceAddr,
  };
  return commit(vm, asId, old ?? null, next, change, decidedBy, []);
}

/**
 * Applies a validated change and publishes it.
 * Mirrors: kvm_set_memslot(), kvm_prepare_memory_region(), kvm_commit_memory_region()
 */
function commit(
  vm: VmState,
  asId: number,
  old: Memslot | null,
  next: Omit<Memslot, 'dirtyBitmap'> | null,
  change: Exclude<ChangeKind, 'NONE'>,
  decidedBy: RuleId,
  fired: RuleId[],
): Step<SetResult> {
  fired.push(decidedBy);
  let bitmapsAllocated = vm.bitmapsAllocated;
  let created: Memslot | null = null;
  if (next !== null) {
    let dirtyBitmap: number | null;
    if ((next.flags & KVM_MEM_LOG_DIRTY_PAGES) === 0) {
      // [MS-DLG-08]
      dirtyBitmap = null;
      fired.push('MS-DLG-08');
    } else if (old !== null && old.dirtyBitmap !== null) {
      // [MS-DLG-06] A MOVE reuses the bitmap and its contents.
      dirtyBitmap = old.dirtyBitmap;
      fired.push('MS-DLG-06');
    } else {
      // [MS-DLG-07]
      dirtyBitmap = bitmapsAllocated++;
      fired.push('MS-DLG-07');
    }
    created = memslot(next, next.flags, dirtyBitmap);
  }

  const n = BigInt(vm.profile.addressSpaces);
  const before = space(vm, asId);
  const nrMemslotPages = vm.nrMemslotPages - (old?.npages ?? 0n) + (created?.npages ?? 0n);

  const published: VmState[] = [];
  let generation = before.generation;
  if (change === 'DELETE' || change === 'MOVE') {
    // [MS-GEN-03] First publish: the old slot replaced by its INVALID copy.
    generation += n;
    const invalid = memslot(old!, old!.flags | KVM_MEMSLOT_INVALID, old!.dirtyBitmap);
    published.push(withSpace(vm, replaceMemslot(before, old, invalid, generation), vm.nrMemslotPages, vm.bitmapsAllocated));
    fired.push('MS-GEN-03');
  } else {
    // [MS-GEN-02]
    fired.push('MS-GEN-02');
  }
  generation += n;
  const state = withSpace(vm, replaceMemslot(before, old, created, generation), nrMemslotPages, bitmapsAllocated);
  published.push(state);
  return { state, result: { ok: true, change, rule: decidedBy }, fired, published };
}

/**
 * A MOVE that the architecture rejects after the INVALID copy was published: the kernel
 * restores the old slot with a second publish, so the request fails but the generation
 * still grows by 2N.
 * Mirrors: kvm_set_memslot(), the `kvm_activate_memslot(kvm, invalid_slot, old)` error path
 */
export function revertMove(
  vm: VmState,
  asId: number,
  old: Memslot,
  rule: RuleId,
  errno: Errno = 'EINVAL',
  fired: readonly RuleId[] = [rule, 'MS-GEN-05'],
): Step<SetResult> {
  const n = BigInt(vm.profile.addressSpaces);
  const before = space(vm, asId);
  const invalid = memslot(old, old.flags | KVM_MEMSLOT_INVALID, old.dirtyBitmap);
  // [MS-GEN-05]
  const invalidState = withSpace(vm, replaceMemslot(before, old, invalid, before.generation + n), vm.nrMemslotPages, vm.bitmapsAllocated);
  const state = withSpace(vm, { ...before, generation: before.generation + 2n * n }, vm.nrMemslotPages, vm.bitmapsAllocated);
  return { state, result: { ok: false, errno, rule }, fired, published: [invalidState, state] };
}

/**
 * Builds a memslot object. One literal in one place gives every slot the same object shape,
 * which V8 reads fastest (spread copies made scans of slot arrays 15x slower).
 */
function memslot(s: Omit<Memslot, 'dirtyBitmap' | 'flags'>, flags: number, dirtyBitmap: number | null): Memslot {
  return { asId: s.asId, id: s.id, baseGfn: s.baseGfn, npages: s.npages, flags, userspaceAddr: s.userspaceAddr, dirtyBitmap };
}

function withSpace(vm: VmState, s: AddressSpace, nrMemslotPages: bigint, bitmapsAllocated: number): VmState {
  return { profile: vm.profile, spaces: vm.spaces.map((x) => (x.asId === s.asId ? s : x)), nrMemslotPages, bitmapsAllocated };
}
