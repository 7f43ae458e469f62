/**
 * The VM-level ioctls of the 6.8+ memory API that both implementations share (spec/28):
 * KVM_CREATE_VM's type check, KVM_CREATE_GUEST_MEMFD, KVM_SET_MEMORY_ATTRIBUTES and
 * KVM_CHECK_EXTENSION, written once in the kernel's check order. How the files keep their
 * bound ranges is each implementation's own (`BindingStore`).
 */
import type { CapFd, CapName } from '../../model/capabilities.js';
import type { Profile } from '../../model/profiles.js';
import { GUEST_MEMFD_FLAG_INIT_SHARED, KVM_MEMORY_ATTRIBUTE_PRIVATE, PAGE_SIZE, U64_MAX, type IoctlOutcome } from '../../model/types.js';
import { vmTypeInfo } from '../../model/vm-types.js';

const OK: IoctlOutcome = { ok: true };
const EINVAL: IoctlOutcome = { ok: false, errno: 'EINVAL' };
const ENOTTY: IoctlOutcome = { ok: false, errno: 'ENOTTY' };

/** A guest_memfd's bound ranges, in file pages. Mirrors: `gmem->bindings` */
export interface BindingStore {
  /** True when `[pgoff, pgoff + npages)` meets a bound range. */
  intersects(pgoff: bigint, npages: bigint): boolean;
  bind(pgoff: bigint, npages: bigint): void;
  /** Removes the range that starts at `pgoff`. */
  unbind(pgoff: bigint): void;
}

export interface GmemFile {
  readonly size: bigint;
  readonly flags: bigint;
  readonly bindings: BindingStore;
}

/** [MS-VM-01] Mirrors: kvm_arch_init_vm()'s kvm_is_vm_type_supported() */
export function vmTypeSupported(kernel: Profile, vmType: number): boolean {
  const accepted = kernel.vmTypes === 0 ? 1 : kernel.vmTypes;
  return vmType < 32 && ((accepted >>> vmType) & 1) === 1;
}

/** Mirrors: kvm_gmem_get_supported_flags() */
function gmemFlags(profile: Profile, vmType: number): bigint {
  return profile.guestMemfdFlags & ~(vmTypeInfo(vmType).privateMem ? GUEST_MEMFD_FLAG_INIT_SHARED : 0n);
}

/** The checks of kvm_gmem_create(); on success the caller adds the file. */
export function checkCreateGuestMemfd(profile: Profile, vmType: number, size: bigint, flags: bigint): IoctlOutcome {
  // [MS-GMF-01]
  if (!profile.guestMemfd) return ENOTTY;
  // [MS-GMF-02]
  if ((flags & ~gmemFlags(profile, vmType)) !== 0n) return EINVAL;
  // [MS-GMF-03] loff_t: non-positive means 0 or bit 63 set.
  if (size === 0n || size >> 63n !== 0n || size % PAGE_SIZE !== 0n) return EINVAL;
  // [MS-GMF-04]
  return OK;
}

/** Mirrors: kvm_vm_ioctl_set_mem_attributes() (the attributes are kept nowhere: spec/28). */
export function setMemoryAttributesCommon(profile: Profile, vmType: number, address: bigint, size: bigint, attributes: bigint, flags: bigint): IoctlOutcome {
  // [MS-ATR-01]
  if (!profile.memoryAttributes) return ENOTTY;
  // [MS-ATR-02]
  if (flags !== 0n) return EINVAL;
  // [MS-ATR-03]
  const supported = vmTypeInfo(vmType).privateMem ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0n;
  if ((attributes & ~supported) !== 0n) return EINVAL;
  // [MS-ATR-04] u64 wrap
  if (size === 0n || ((address + size) & U64_MAX) < address) return EINVAL;
  // [MS-ATR-05]
  if ((address | size) % PAGE_SIZE !== 0n) return EINVAL;
  // [MS-ATR-06]
  return OK;
}

/**
 * Mirrors: kvm_vm_ioctl_check_extension_generic() and x86's kvm_vm_ioctl_check_extension().
 * `kernel` is the profile as given, `vm` the VM's (its type applied).
 */
export function checkExtensionCommon(kernel: Profile, vm: Profile, vmType: number, cap: CapName, fd: CapFd): number {
  const onVm = fd === 'vm';
  const priv = vmTypeInfo(vmType).privateMem;
  switch (cap) {
    case 'USER_MEMORY':
      return 1;
    case 'NR_MEMSLOTS':
      return kernel.userMemSlots;
    case 'READONLY_MEM':
      return onVm ? Number(vm.readonlyMem) : 1;
    case 'MULTI_ADDRESS_SPACE':
      if (kernel.addressSpaces < 2) return 0;
      return onVm ? vm.addressSpaces : kernel.addressSpaces;
    case 'MANUAL_DIRTY_LOG_PROTECT2':
      return 3;
    case 'DIRTY_LOG_RING':
      return kernel.dirtyRingMaxBytes;
    case 'DIRTY_LOG_RING_ACQ_REL':
      return kernel.dirtyRingAcqRel ? kernel.dirtyRingMaxBytes : 0;
    case 'USER_MEMORY2':
      return kernel.userMemory2 ? 1 : 0;
    case 'MEMORY_ATTRIBUTES':
      if (!kernel.memoryAttributes) return 0;
      return Number(!onVm || priv ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0n);
    case 'GUEST_MEMFD':
      if (!kernel.guestMemfd) return 0;
      return kernel.guestMemfdSlots === 'all' || !onVm || priv ? 1 : 0;
    case 'VM_TYPES':
      return kernel.vmTypes;
    case 'GUEST_MEMFD_FLAGS':
      return Number(onVm ? gmemFlags(kernel, vmType) : kernel.guestMemfdFlags);
  }
}
