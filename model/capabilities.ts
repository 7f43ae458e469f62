/**
 * KVM_CHECK_EXTENSION for the capabilities a VMM probes before it manages memory
 * (spec/28-memory-api.md, "KVM_CHECK_EXTENSION").
 */
import type { RuleId } from '../spec/rules.js';
import { supportedGmemFlags, supportedMemAttributes } from './guest-memfd.js';
import type { VmState } from './state.js';
import { KVM_MEMORY_ATTRIBUTE_PRIVATE, type CapResult } from './types.js';
import { vmTypeInfo } from './vm-types.js';

/** The capabilities of the protocol, by name without `KVM_CAP_`, with their numbers (include/uapi/linux/kvm.h). */
export const CAPS = {
  USER_MEMORY: 3,
  NR_MEMSLOTS: 10,
  READONLY_MEM: 81,
  MULTI_ADDRESS_SPACE: 118,
  MANUAL_DIRTY_LOG_PROTECT2: 168,
  DIRTY_LOG_RING: 192,
  DIRTY_LOG_RING_ACQ_REL: 223,
  USER_MEMORY2: 231,
  MEMORY_ATTRIBUTES: 233,
  GUEST_MEMFD: 234,
  VM_TYPES: 235,
  GUEST_MEMFD_FLAGS: 244,
} as const;
export type CapName = keyof typeof CAPS;
export const CAP_NAMES = Object.keys(CAPS) as CapName[];

/** Where the ioctl is asked: the VM fd or /dev/kvm. */
export type CapFd = 'vm' | 'system';

/** KVM_DIRTY_LOG_MANUAL_CAPS on x86: PROTECT_ENABLE | INITIALLY_SET. */
const MANUAL_CAPS = 3;

/**
 * Mirrors: kvm_vm_ioctl_check_extension_generic() and x86's kvm_vm_ioctl_check_extension().
 * On `system` the VM's profile is the kernel's (`vm.kernel`); on `vm` it is the VM's.
 */
export function checkExtension(vm: VmState, cap: CapName, fd: CapFd): CapResult {
  const k = vm.kernel;
  const onVm = fd === 'vm';
  const v = (value: number | bigint | boolean, rule: RuleId): CapResult => ({ value: Number(value), rule });
  switch (cap) {
    case 'USER_MEMORY':
      // [MS-CAP-01]
      return v(1, 'MS-CAP-01');
    case 'NR_MEMSLOTS':
      // [MS-CAP-02]
      return v(k.userMemSlots, 'MS-CAP-02');
    case 'READONLY_MEM':
      // [MS-CAP-03] `kvm ? kvm_arch_has_readonly_mem(kvm) : 1`
      return v(onVm ? vm.profile.readonlyMem : true, 'MS-CAP-03');
    case 'MULTI_ADDRESS_SPACE':
      // [MS-CAP-04] Compiled out without SMM: the x86 default answers 0.
      return v(k.addressSpaces === 1 ? 0 : onVm ? vm.profile.addressSpaces : k.addressSpaces, 'MS-CAP-04');
    case 'MANUAL_DIRTY_LOG_PROTECT2':
      // [MS-CAP-05]
      return v(MANUAL_CAPS, 'MS-CAP-05');
    case 'DIRTY_LOG_RING':
      // [MS-CAP-06]
      return v(k.dirtyRingMaxBytes, 'MS-CAP-06');
    case 'DIRTY_LOG_RING_ACQ_REL':
      // [MS-CAP-06]
      return v(k.dirtyRingAcqRel ? k.dirtyRingMaxBytes : 0, 'MS-CAP-06');
    case 'USER_MEMORY2':
      // [MS-CAP-07]
      return v(k.userMemory2, 'MS-CAP-07');
    case 'MEMORY_ATTRIBUTES':
      // [MS-CAP-08]
      return v(!k.memoryAttributes ? 0n : onVm ? supportedMemAttributes(vm) : KVM_MEMORY_ATTRIBUTE_PRIVATE, 'MS-CAP-08');
    case 'GUEST_MEMFD':
      // [MS-CAP-09] 6.12: `!kvm || kvm_arch_has_private_mem(kvm)`.
      return v(k.guestMemfd && (k.guestMemfdSlots === 'all' || !onVm || vmTypeInfo(vm.vmType).privateMem), 'MS-CAP-09');
    case 'VM_TYPES':
      // [MS-CAP-10]
      return v(k.vmTypes, 'MS-CAP-10');
    case 'GUEST_MEMFD_FLAGS':
      // [MS-CAP-11]
      return v(onVm ? supportedGmemFlags(vm) : k.guestMemfdFlags, 'MS-CAP-11');
  }
}
