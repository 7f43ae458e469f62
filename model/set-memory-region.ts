/**
 * KVM_SET_USER_MEMORY_REGION, as spec/20-set-memory-region.md states it.
 *
 * Checks run in the kernel's order; the first that fails decides the errno. Every guard
 * and every effect carries the ID of the rule it implements.
 */
import type { RuleId } from '../spec/rules.js';
import type { AddressSpace, GuestMemfd, Step, VmState } from './state.js';
import { findSlot, replaceMemslot, space, vmWith } from './state.js';
import { vmTypeInfo } from './vm-types.js';
import { NO_GMEM } from './guest-memfd.js';
import { allRuns, noRuns } from './dirty-bits.js';
import { flagsOnlyMappings, zapForSlotChange } from './dirty-ring.js';
import {
  KVM_DIRTY_LOG_INITIALLY_SET,
  KVM_MEM_GUEST_MEMFD,
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
  type GmemBinding,
  type MemoryRegion,
  type MemoryRegion2,
  type Memslot,
  type SetResult,
} from './types.js';

/** `unsigned long` on x86-64. */
const ULONG_MAX = U64_MAX;

function reject(vm: VmState, errno: Errno, rule: RuleId, before?: RuleId): Step<SetResult> {
  // One rule before at most (MS-V2-02): a literal, not a spread, on every rejected request.
  return { state: vm, result: { ok: false, errno, rule }, fired: before === undefined ? [rule, 'MS-GEN-04'] : [before, rule, 'MS-GEN-04'], published: [] };
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
  // The kernel zero-fills the v2 tail; no kernel with GUEST_MEMFD lacks MS-VAL-01, so it is never read.
  return setMemoryRegion(vm, mem);
}

/**
 * KVM_SET_USER_MEMORY_REGION2 (spec/28-memory-api.md).
 * Mirrors: kvm_vm_ioctl() case KVM_SET_USER_MEMORY_REGION2, kvm_vm_ioctl_set_memory_region()
 */
export function setUserMemoryRegion2(vm: VmState, mem: MemoryRegion2): Step<SetResult> {
  const p = vm.profile;
  // [MS-V2-01]
  if (!p.userMemory2) return reject(vm, 'ENOTTY', 'MS-V2-01');
  // [MS-VAL-02] [MS-V2-02] No v1 flag mask.
  if ((mem.slot & 0xffff) >= p.userMemSlots) return reject(vm, 'EINVAL', 'MS-VAL-02', 'MS-V2-02');
  const step = setMemoryRegion(vm, mem);
  return { ...step, fired: ['MS-V2-02', ...step.fired] };
}

/** Which rule of check_memory_region_flags() rejects `flags`, or null when they are valid. */
function flagsRejected(vm: VmState, flags: number): RuleId | null {
  const p = vm.profile;
  // Before guest_memfd (5.10, 6.1) bit 2 is just an unknown flag (MS-VAL-03).
  const gmem = p.guestMemfd && (flags & KVM_MEM_GUEST_MEMFD) !== 0;
  if (gmem) {
    // [MS-GMS-01] 7.2+ on every type; 6.12 only with private memory.
    if (p.guestMemfdSlots === 'private' && !vmTypeInfo(vm.vmType).privateMem) return 'MS-GMS-01';
    // [MS-GMS-02]
    if ((flags & KVM_MEM_LOG_DIRTY_PAGES) !== 0) return 'MS-GMS-02';
    // [MS-GMS-03]
    if ((flags & KVM_MEM_READONLY) !== 0 && p.readonlyMem) return 'MS-GMS-03';
  }
  // [MS-VAL-03] READONLY only where the VM supports it.
  const valid = KVM_MEM_LOG_DIRTY_PAGES | (gmem ? KVM_MEM_GUEST_MEMFD : p.readonlyMem ? KVM_MEM_READONLY : 0);
  return (flags & ~valid) !== 0 ? 'MS-VAL-03' : null;
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
export function setMemoryRegion(vm: VmState, mem: MemoryRegion | MemoryRegion2): Step<SetResult> {
  const p = vm.profile;
  // Bad input, not a rule: only __x86_set_memory_region() passes internal ids, with a u32 size.
  if ((mem.slot & 0xffff) >= p.userMemSlots && mem.memorySize > BigInt(U32_MAX)) throw new RangeError(internalSizeError(mem.memorySize));

  // check_memory_region_flags(): [MS-VAL-03] [MS-GMS-01] [MS-GMS-02] [MS-GMS-03]
  const badFlags = flagsRejected(vm, mem.flags);
  if (badFlags !== null) return reject(vm, 'EINVAL', badFlags);
  const gmem = (mem.flags & KVM_MEM_GUEST_MEMFD) !== 0;
  // A request without the v2 tail (v1, internal) passes none: the kernel's zero-filled struct.
  const tail = gmem ? ('guestMemfd' in mem ? mem : NO_GMEM) : NO_GMEM;

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
  // [MS-GMS-04]
  if (gmem && (tail.guestMemfdOffset % PAGE_SIZE !== 0n || tail.guestMemfdOffset + mem.memorySize > U64_MAX)) return reject(vm, 'EINVAL', 'MS-GMS-04');
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
    return commit(vm, asId, old, null, 'DELETE', 'MS-DEL-02', old.gmem !== null);
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
    // [MS-GMS-05] guest_memfd slots are immutable: only a delete gets past.
    if (gmem) return reject(vm, 'EINVAL', 'MS-GMS-05');
    // [MS-MOD-01]
    if (mem.userspaceAddr !== old.userspaceAddr) return reject(vm, 'EINVAL', 'MS-MOD-01');
    // [MS-MOD-02]
    if (npages !== old.npages) return reject(vm, 'EINVAL', 'MS-MOD-02');
    // [MS-MOD-03]
    if (((mem.flags ^ old.flags) & KVM_MEM_READONLY) !== 0) return reject(vm, 'EINVAL', 'MS-MOD-03');
    // [MS-GMS-06] The same test, for the GUEST_MEMFD bit.
    if (((mem.flags ^ old.flags) & KVM_MEM_GUEST_MEMFD) !== 0) return reject(vm, 'EINVAL', 'MS-GMS-06');
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
  }
  // Only a CREATE binds: MS-GMS-05 turned away every other request with the flag.
  let binding: GmemBinding | null = null;
  if (gmem) {
    const bind = bindChecks(vm, tail, npages);
    if (typeof bind === 'string') return reject(vm, bind === 'MS-GMB-01' ? 'EBADF' : 'EINVAL', bind);
    binding = bind;
    // [MS-GMB-05] 6.12 and 7.2: inside kvm_gmem_bind(), before the arch checks.
    if (!p.gmemBindLate && boundElsewhere(vm, bind, npages)) return reject(vm, p.gmemBindErrno, 'MS-GMB-05');
  }
  // Stryker disable next-line ConditionalExpression: FLAGS_ONLY keeps its range, which is below the max gfn already
  if (change === 'CREATE' || change === 'MOVE') {
    // [MS-X86-01] kvm_arch_prepare_memory_region(), after the overlap check.
    const end = baseGfn + npages;
    const archRule: RuleId | null =
      p.maxGfn !== null && end - 1n > p.maxGfn ? 'MS-X86-01' : ((end - 1n) & vmTypeInfo(vm.vmType).gfnDirectBits) !== 0n ? 'MS-X86-02' : null;
    // [MS-X86-02] TDX's shared bit, right after.
    if (archRule !== null) return change === 'MOVE' ? revertMove(vm, asId, old!, archRule) : reject(vm, 'EINVAL', archRule);
  }
  // [MS-GMB-05] 7.3: kvm_gmem_commit_memory_region(), after the arch checks.
  if (binding !== null && p.gmemBindLate && boundElsewhere(vm, binding, npages)) return reject(vm, p.gmemBindErrno, 'MS-GMB-05');

  const next: Omit<Memslot, 'dirtyBitmap'> = {
    asId,
    id,
    baseGfn,
    npages,
    flags: mem.flags,
    userspaceAddr: mem.userspaceAddr,
    gmem: binding,
  };
  return commit(vm, asId, old ?? null, next, change, decidedBy, binding !== null);
}

/**
 * The checks of kvm_gmem_bind() (6.12, 7.2) / kvm_gmem_prepare_memory_region() (7.3) before the
 * already-bound test: the rule that fails, or the binding the slot would get.
 */
function bindChecks(vm: VmState, mem: Pick<MemoryRegion2, 'guestMemfd' | 'guestMemfdOffset'>, npages: bigint): GmemBinding | RuleId {
  const ref = mem.guestMemfd;
  // [MS-GMB-01] fget() fails.
  if (ref === 'closed') return 'MS-GMB-01';
  // [MS-GMB-02] Not kvm_gmem_fops.
  if (ref === 'memfd') return 'MS-GMB-02';
  // [MS-GMB-03] gmem->kvm != kvm.
  if (ref === 'other_vm') return 'MS-GMB-03';
  const file: GuestMemfd | undefined = vm.gmems[ref];
  if (file === undefined) throw new RangeError(`guest_memfd handle ${ref} names no file of this VM`);
  // [MS-GMB-04]
  if (mem.guestMemfdOffset + (npages << PAGE_SHIFT) > file.size) return 'MS-GMB-04';
  return { file: ref, pgoff: mem.guestMemfdOffset >> PAGE_SHIFT };
}

/** Whether file pages `[pgoff, pgoff + npages)` meet a range bound to a slot. */
function boundElsewhere(vm: VmState, b: GmemBinding, npages: bigint): boolean {
  // Bound ranges are disjoint ([MS-GMB-05]), so the nearest one starting below the end decides, as in MS-OVL-01.
  const nearest = vm.gmems[b.file]!.bindings.nextLowerPair(b.pgoff + npages)?.[1];
  return nearest !== undefined && b.pgoff < nearest.pgoff + nearest.npages;
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
  rebinds: boolean,
): Step<SetResult> {
  // [MS-GMB-06] A change that binds or unbinds a guest_memfd range.
  const fired: RuleId[] = rebinds ? [decidedBy, 'MS-GMB-06'] : [decidedBy];
  let bitmapsAllocated = vm.bitmapsAllocated;
  let dirtyBits = vm.dirtyBits;
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
    } else if (vm.ring.size !== 0) {
      // [MS-DLG-10] `else if (kvm_use_dirty_bitmap(kvm))`: a VM with a dirty ring allocates none.
      dirtyBitmap = null;
      fired.push('MS-DLG-10');
    } else {
      // [MS-DLG-07] [MS-DLB-01] Zeroed, or all ones with KVM_DIRTY_LOG_INITIALLY_SET.
      dirtyBitmap = bitmapsAllocated++;
      fired.push('MS-DLG-07', 'MS-DLB-01');
      dirtyBits = dirtyBits.with(dirtyBitmap, (vm.manualProtect & KVM_DIRTY_LOG_INITIALLY_SET) !== 0 ? allRuns(next.npages) : noRuns());
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
  const gmems = old?.gmem != null || created?.gmem != null ? rebind(vm.gmems, old, created) : vm.gmems;
  // A bitmap no slot keeps is freed (DELETE, or logging switched off): kvm_destroy_dirty_bitmap().
  if (old !== null && old.dirtyBitmap !== null && created?.dirtyBitmap !== old.dirtyBitmap) dirtyBits = dirtyBits.without(old.dirtyBitmap);
  let state = vmWith(vm, { gmems, dirtyBits, spaces: spacesWith(vm, replaceMemslot(before, old, created, generation)), nrMemslotPages, bitmapsAllocated });
  published.push(state);
  // [MS-RNG-11] What the change does to the MMU's mappings, which decide the ring's pushes.
  if (vm.ring.size !== 0 && (change === 'DELETE' || change === 'MOVE')) {
    state = zapForSlotChange(state, old!);
    fired.push('MS-RNG-11');
  } else if (vm.ring.size !== 0 && change === 'FLAGS_ONLY') {
    state = flagsOnlyMappings(state, created!, (created!.flags & KVM_MEM_LOG_DIRTY_PAGES) !== 0, (vm.manualProtect & KVM_DIRTY_LOG_INITIALLY_SET) !== 0);
    fired.push('MS-RNG-11');
  }
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
  firedBefore: readonly RuleId[] = [rule, 'MS-GEN-05'],
): Step<SetResult> {
  let fired = firedBefore;
  const n = BigInt(vm.profile.addressSpaces);
  const before = space(vm, asId);
  const invalid = memslot(old, old.flags | KVM_MEMSLOT_INVALID, old.dirtyBitmap);
  // [MS-GEN-05]
  const invalidState = withSpace(vm, replaceMemslot(before, old, invalid, before.generation + n), vm.nrMemslotPages, vm.bitmapsAllocated);
  let state = withSpace(
    vm,
    { asId: before.asId, generation: before.generation + 2n * n, byGfn: before.byGfn, byId: before.byId },
    vm.nrMemslotPages,
    vm.bitmapsAllocated,
  );
  const published = [invalidState, state];
  // [MS-RNG-11] The INVALID publish zapped the mappings (kvm_invalidate_memslot()) before the change failed.
  if (vm.ring.size !== 0) {
    state = zapForSlotChange(state, old);
    fired = [...fired, 'MS-RNG-11'];
  }
  return { state, result: { ok: false, errno, rule }, fired, published };
}

/**
 * Builds a memslot object. One literal in one place gives every slot the same object shape,
 * which V8 reads fastest (spread copies made scans of slot arrays 15x slower).
 */
function memslot(s: Omit<Memslot, 'dirtyBitmap' | 'flags'>, flags: number, dirtyBitmap: number | null): Memslot {
  return { asId: s.asId, id: s.id, baseGfn: s.baseGfn, npages: s.npages, flags, userspaceAddr: s.userspaceAddr, dirtyBitmap, gmem: s.gmem };
}

/** The files with `old`'s binding removed and `neu`'s added ([MS-GMB-06]). */
function rebind(gmems: readonly GuestMemfd[], old: Memslot | null, neu: Memslot | null): readonly GuestMemfd[] {
  const out = gmems.slice();
  if (old?.gmem != null) {
    const f = out[old.gmem.file]!;
    out[old.gmem.file] = { ...f, bindings: f.bindings.without(old.gmem.pgoff) };
  }
  if (neu?.gmem != null) {
    const f = out[neu.gmem.file]!;
    out[neu.gmem.file] = { ...f, bindings: f.bindings.with(neu.gmem.pgoff, { pgoff: neu.gmem.pgoff, npages: neu.npages, asId: neu.asId, id: neu.id }, true) };
  }
  return out;
}

function withSpace(vm: VmState, s: AddressSpace, nrMemslotPages: bigint, bitmapsAllocated: number): VmState {
  return vmWith(vm, { spaces: spacesWith(vm, s), nrMemslotPages, bitmapsAllocated });
}

/** The VM's address spaces with `s` in its place (`spaces[i]` is address space i: createVm()). */
function spacesWith(vm: VmState, s: AddressSpace): readonly AddressSpace[] {
  const spaces = vm.spaces.slice();
  spaces[s.asId] = s;
  return spaces;
}
