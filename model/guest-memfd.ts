/**
 * KVM_CREATE_GUEST_MEMFD and KVM_SET_MEMORY_ATTRIBUTES, as spec/28-memory-api.md states them.
 */
import type { RuleId } from '../spec/rules.js';
import { emptyBigintMap } from './internal/sorted-map.js';
import type { GmemBindingRange, Step, VmState } from './state.js';
import { vmWith } from './state.js';
import { GUEST_MEMFD_FLAG_INIT_SHARED, KVM_MEMORY_ATTRIBUTE_PRIVATE, PAGE_SIZE, U64_MAX, type Errno, type IoctlResult } from './types.js';
import { vmTypeInfo } from './vm-types.js';

/** The v2 tail of a request that has none (v1, internal slots): never read without KVM_MEM_GUEST_MEMFD. */
export const NO_GMEM = { guestMemfdOffset: 0n, guestMemfd: 'closed' } as const;

function answer(vm: VmState, errno: Errno | null, rule: RuleId, state: VmState = vm): Step<IoctlResult> {
  const result: IoctlResult = errno === null ? { ok: true, rule } : { ok: false, errno, rule };
  return { state, result, fired: [rule], published: [] };
}

/** The GUEST_MEMFD_FLAG_* bits the VM accepts; INIT_SHARED only without private memory. Mirrors: kvm_gmem_get_supported_flags() */
export function supportedGmemFlags(vm: VmState): bigint {
  return vm.profile.guestMemfdFlags & ~(vmTypeInfo(vm.vmType).privateMem ? GUEST_MEMFD_FLAG_INIT_SHARED : 0n);
}

/** Mirrors: kvm_gmem_create() */
export function createGuestMemfd(vm: VmState, size: bigint, flags: bigint): Step<IoctlResult> {
  // [MS-GMF-01]
  if (!vm.profile.guestMemfd) return answer(vm, 'ENOTTY', 'MS-GMF-01');
  // [MS-GMF-02]
  if ((flags & ~supportedGmemFlags(vm)) !== 0n) return answer(vm, 'EINVAL', 'MS-GMF-02');
  // [MS-GMF-03] `loff_t size <= 0`: 0, or 2^63 and above as a signed value.
  if (size === 0n || size >= 1n << 63n || size % PAGE_SIZE !== 0n) return answer(vm, 'EINVAL', 'MS-GMF-03');
  // [MS-GMF-04] The next handle is the file's index.
  const gmems = [...vm.gmems, { size, flags, bindings: emptyBigintMap<GmemBindingRange>() }];
  return answer(vm, null, 'MS-GMF-04', vmWith(vm, { gmems }));
}

/** The attributes the VM accepts. Mirrors: kvm_supported_mem_attributes() */
export function supportedMemAttributes(vm: VmState): bigint {
  return vmTypeInfo(vm.vmType).privateMem ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0n;
}

/**
 * Mirrors: kvm_vm_ioctl_set_mem_attributes(). The attributes themselves are not kept: no request
 * of the protocol observes them (spec/28).
 */
export function setMemoryAttributes(vm: VmState, address: bigint, size: bigint, attributes: bigint, flags: bigint): Step<IoctlResult> {
  // [MS-ATR-01]
  if (!vm.profile.memoryAttributes) return answer(vm, 'ENOTTY', 'MS-ATR-01');
  // [MS-ATR-02]
  if (flags !== 0n) return answer(vm, 'EINVAL', 'MS-ATR-02');
  // [MS-ATR-03]
  if ((attributes & ~supportedMemAttributes(vm)) !== 0n) return answer(vm, 'EINVAL', 'MS-ATR-03');
  // [MS-ATR-04]
  if (size === 0n || address + size > U64_MAX) return answer(vm, 'EINVAL', 'MS-ATR-04');
  // [MS-ATR-05]
  if (address % PAGE_SIZE !== 0n || size % PAGE_SIZE !== 0n) return answer(vm, 'EINVAL', 'MS-ATR-05');
  // [MS-ATR-06]
  return answer(vm, null, 'MS-ATR-06');
}
