/**
 * [MS-VM-01] [MS-VM-02] KVM_CREATE_VM with a type: one the kernel offers (a fresh VM of that type,
 * with its address spaces and READONLY), or one it refuses (EINVAL, and the previous VM stays).
 */
import fc from 'fast-check';
import { acceptedVmTypes } from '../../model/index.js';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import type { ArbConfig } from '../arbitraries.js';
import { MemslotCommand } from './common.js';

export type VmTypeChoice = { readonly kind: 'offered'; readonly pick: number } | { readonly kind: 'type'; readonly vmType: number };

export class ResetVmType extends MemslotCommand {
  constructor(readonly choice: VmTypeChoice) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    if (this.choice.kind === 'type') return { kind: 'createVm', vmType: this.choice.vmType };
    // The types besides DEFAULT where the kernel has any (a plain reset makes a DEFAULT VM already).
    const mask = acceptedVmTypes(m.vm.kernel);
    const all = [...Array(32).keys()].filter((t) => (mask >>> t) & 1);
    const offered = all.length > 1 ? all.filter((t) => t !== 0) : all;
    return { kind: 'createVm', vmType: offered[this.choice.pick % offered.length] ?? 0 };
  }

  toString(): string {
    return this.choice.kind === 'type' ? `kvm_create_vm(type=${this.choice.vmType})` : `kvm_create_vm(offered type[${this.choice.pick}], DEFAULT last)`;
  }
}

export function resetVmTypeArb(_c: ArbConfig): fc.Arbitrary<ResetVmType> {
  const choice: fc.Arbitrary<VmTypeChoice> = fc.oneof(
    { arbitrary: fc.nat({ max: 31 }).map((pick) => ({ kind: 'offered' as const, pick })), weight: 3 },
    { arbitrary: fc.constantFrom(0, 1, 2, 3, 4, 5, 6, 31, 0xffff_ffff).map((vmType) => ({ kind: 'type' as const, vmType })), weight: 1 },
  );
  return choice.map((c) => new ResetVmType(c));
}
