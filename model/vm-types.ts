/**
 * VM types (spec/28-memory-api.md, "VM types"): what `KVM_CREATE_VM`'s type argument changes.
 *
 * The table is the 7.3 source (uapi asm/kvm.h:970-975); which types a kernel accepts is its
 * profile's `vmTypes` (KVM_CAP_VM_TYPES).
 */
import type { RuleId } from '../spec/rules.js';
import type { Profile } from './profiles.js';

export const KVM_X86_DEFAULT_VM = 0;
export const KVM_X86_SW_PROTECTED_VM = 1;
export const KVM_X86_SEV_VM = 2;
export const KVM_X86_SEV_ES_VM = 3;
export const KVM_X86_SNP_VM = 4;
export const KVM_X86_TDX_VM = 5;

export interface VmTypeInfo {
  readonly name: string;
  /** `kvm->arch.has_private_mem` */
  readonly privateMem: boolean;
  /** `kvm->arch.has_protected_state` */
  readonly protectedState: boolean;
  /**
   * `kvm_gfn_direct_bits()`: a slot whose last gfn has one of these bits fails with EINVAL.
   * Only TDX sets them: the shared bit, gpa bit 47 with the 48-bit guest physical address width
   * assumed here (gfn bit 35; 51 with a 52-bit width).
   */
  readonly gfnDirectBits: bigint;
}

export const VM_TYPES: readonly VmTypeInfo[] = [
  { name: 'DEFAULT', privateMem: false, protectedState: false, gfnDirectBits: 0n },
  { name: 'SW_PROTECTED', privateMem: true, protectedState: false, gfnDirectBits: 0n },
  { name: 'SEV', privateMem: false, protectedState: false, gfnDirectBits: 0n },
  { name: 'SEV_ES', privateMem: false, protectedState: true, gfnDirectBits: 0n },
  { name: 'SNP', privateMem: true, protectedState: true, gfnDirectBits: 0n },
  { name: 'TDX', privateMem: true, protectedState: true, gfnDirectBits: 1n << 35n },
];

/** The VM types a kernel accepts, as a mask: type 0 alone where it lacks KVM_CAP_VM_TYPES. */
export function acceptedVmTypes(kernel: Profile): number {
  return kernel.vmTypes === 0 ? 1 : kernel.vmTypes;
}

/** Which rule rejects a VM type, or null when the kernel creates it. */
export function vmTypeRejected(kernel: Profile, vmType: number): RuleId | null {
  // [MS-VM-01] kvm_arch_init_vm(): a type outside kvm_caps.supported_vm_types fails with EINVAL.
  return vmType < 32 && (acceptedVmTypes(kernel) >>> vmType) & 1 ? null : 'MS-VM-01';
}

/** The type's entry; the caller has checked that the kernel accepts it. */
export function vmTypeInfo(vmType: number): VmTypeInfo {
  const t = VM_TYPES[vmType];
  if (t === undefined) throw new RangeError(`VM type ${vmType} is not in the 7.3 table`);
  return t;
}

/**
 * The parameters of one VM: the kernel's profile with what the type changes.
 * [MS-VM-02] N is 1 with private memory (kvm_arch_nr_memslot_as_ids(), asm/kvm_host.h:1882-1886);
 * READONLY needs a VM without protected state (kvm_arch_has_readonly_mem(), asm/kvm_host.h:1865).
 */
export function vmProfile(kernel: Profile, vmType: number): Profile {
  if (vmType === KVM_X86_DEFAULT_VM) return kernel;
  const t = vmTypeInfo(vmType);
  return {
    ...kernel,
    addressSpaces: t.privateMem ? 1 : kernel.addressSpaces,
    readonlyMem: kernel.readonlyMem && !t.protectedState,
  };
}
