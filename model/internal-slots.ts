/**
 * x86 internal memslots (TSS, APIC access page, identity map), spec/26-internal-slots.md.
 */
import type { SetResult } from './types.js';
import { PAGE_SIZE, U32_MAX, type Gpa, type Hva } from './types.js';
import type { Step, VmState } from './state.js';
import { findSlot } from './state.js';
import { internalSizeError, setMemoryRegion } from './set-memory-region.js';
import type { RuleId } from '../spec/rules.js';

/** Internal slot ids on x86: KVM_USER_MEM_SLOTS + 0, 1, 2. */
export function internalSlotIds(vm: VmState): { tss: number; apicAccessPage: number; identityMap: number } {
  const u = vm.profile.userMemSlots;
  return { tss: u, apicAccessPage: u + 1, identityMap: u + 2 };
}

/** What the kernel places where, when it creates each internal slot. */
export const INTERNAL_SLOT_LAYOUT = {
  /** vmx_set_tss_addr(): three pages at the KVM_SET_TSS_ADDR address. */
  tssPages: 3n,
  /** kvm_alloc_apic_access_page(): one page at APIC_DEFAULT_PHYS_BASE. */
  apicAccessPageGpa: 0xfee0_0000n,
  /** init_rmode_identity_map(): one page, at 0xfffbc000 unless KVM_SET_IDENTITY_MAP_ADDR moved it. */
  identityMapGpa: 0xfffb_c000n,
  pageSize: PAGE_SIZE,
} as const;

/**
 * Creates (size > 0) or deletes (size 0) an internal slot in every address space.
 * Throws RangeError for bad input no kernel caller can produce: a user id, or a size that is
 * not a u32.
 * Mirrors: __x86_set_memory_region()
 * `hva` stands for the address vm_mmap() would return; nothing observable depends on it but
 * hva lookups.
 */
export function setInternalMemslot(vm: VmState, id: number, gpa: Gpa, size: bigint, hva: Hva): Step<SetResult> {
  const p = vm.profile;
  if (id < p.userMemSlots) throw new RangeError(`internal slot id ${id} is a user id (WARN in kvm_set_internal_memslot)`);
  // No kernel caller can pass more: __x86_set_memory_region() takes `u32 size`.
  if (size < 0n || size > BigInt(U32_MAX)) throw new RangeError(internalSizeError(size));
  // [MS-VAL-09] __x86_set_memory_region() checks the id bound itself, with a WARN.
  if (id >= p.memSlotsNum) {
    return { state: vm, result: { ok: false, errno: 'EINVAL', rule: 'MS-VAL-09' }, fired: ['MS-VAL-09', 'MS-GEN-04'], published: [] };
  }
  const existing = findSlot(vm, 0, id);
  const present = existing !== undefined;
  // [MS-INT-01]
  if (size > 0n && present) {
    return { state: vm, result: { ok: false, errno: 'EEXIST', rule: 'MS-INT-01' }, fired: ['MS-INT-01', 'MS-GEN-04'], published: [] };
  }
  // [MS-INT-02]
  if (size === 0n && !present) {
    return { state: vm, result: { ok: true, change: 'NONE', rule: 'MS-INT-02' }, fired: ['MS-INT-02', 'MS-GEN-04'], published: [] };
  }
  // [MS-INT-03] Every address space in turn, flags 0; a failure stops the loop and keeps what was done.
  // Only a delete gets here with a slot: it passes the slot's own host address, not the caller's.
  const uaddr = existing !== undefined ? existing.userspaceAddr : hva;
  let state = vm;
  const fired: RuleId[] = ['MS-INT-03'];
  const published: VmState[] = [];
  // Stryker disable next-line ObjectLiteral,BooleanLiteral,StringLiteral: address space 0 always exists, so the loop always overwrites it
  let result: SetResult = { ok: true, change: 'NONE', rule: 'MS-INT-03' };
  for (let asId = 0; asId < p.addressSpaces; asId++) {
    const step = setMemoryRegion(state, { slot: (asId << 16) | id, flags: 0, guestPhysAddr: gpa, memorySize: size, userspaceAddr: uaddr });
    state = step.state;
    fired.push(...step.fired);
    published.push(...step.published);
    result = step.result;
    if (!step.result.ok) break;
  }
  return { state, result, fired, published };
}
