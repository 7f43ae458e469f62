/**
 * ENOMEM, as spec/27-resource-failures.md states it: the answer a request gets instead when
 * the kernel cannot allocate, and what it leaves.
 */
import { revertMove, setUserMemoryRegion, setUserMemoryRegion2 } from './set-memory-region.js';
import { findSlot, type Step, type VmState } from './state.js';
import type { MemoryRegion, MemoryRegion2, SetResult } from './types.js';

/**
 * The step of a KVM_SET_USER_MEMORY_REGION whose allocation fails, or null where ENOMEM
 * cannot be the kernel's answer.
 */
export function setUserMemoryRegionNoMem(vm: VmState, mem: MemoryRegion): Step<SetResult> | null {
  return noMem(vm, mem, setUserMemoryRegion(vm, mem).result);
}

/** The same for KVM_SET_USER_MEMORY_REGION2 (a guest_memfd CREATE also allocates: spec/28). */
export function setUserMemoryRegion2NoMem(vm: VmState, mem: MemoryRegion2): Step<SetResult> | null {
  return noMem(vm, mem, setUserMemoryRegion2(vm, mem).result);
}

function noMem(vm: VmState, mem: MemoryRegion, accepted: SetResult): Step<SetResult> | null {
  // [MS-RES-01] Allocations follow every check, and the no-op returns before them.
  if (!accepted.ok || accepted.change === 'NONE') return null;
  // [MS-RES-02] A MOVE fails after publishing its INVALID copy and restores it; the rest publish nothing.
  const fired = ['MS-RES-01', 'MS-RES-02'] as const;
  if (accepted.change === 'MOVE') {
    const asId = mem.slot >>> 16;
    return revertMove(vm, asId, findSlot(vm, asId, mem.slot & 0xffff)!, 'MS-RES-01', 'ENOMEM', fired);
  }
  return { state: vm, result: { ok: false, errno: 'ENOMEM', rule: 'MS-RES-01' }, fired, published: [] };
}
