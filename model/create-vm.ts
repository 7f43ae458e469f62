/**
 * KVM_CREATE_VM with a type (spec/28-memory-api.md, "VM types"), as the protocol's `reset`
 * asks it: a fresh VM, or the errno and the previous VM unchanged.
 */
import { createVm, type Step, type VmState } from './state.js';
import type { IoctlResult } from './types.js';
import { vmTypeRejected } from './vm-types.js';

/** Mirrors: kvm_dev_ioctl_create_vm() → kvm_create_vm() → kvm_arch_init_vm() */
export function createVmOfType(vm: VmState, vmType: number): Step<IoctlResult> {
  // [MS-VM-01]
  const rejected = vmTypeRejected(vm.kernel, vmType);
  if (rejected !== null) return { state: vm, result: { ok: false, errno: 'EINVAL', rule: rejected }, fired: [rejected], published: [] };
  // [MS-VM-02] [MS-GEN-01]
  return { state: createVm(vm.kernel, vmType), result: { ok: true, rule: 'MS-VM-02' }, fired: ['MS-VM-02', 'MS-GEN-01'], published: [] };
}
