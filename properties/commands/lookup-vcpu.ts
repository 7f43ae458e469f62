/**
 * [MS-LKP-06] [MS-LKP-07] kvm_vcpu_gfn_to_memslot(): a vCPU (in SMM or not) looks up a gfn, then
 * again every gfn it looked up last time. Run across changes, a per-vCPU cache kept past its
 * generation, or shared between address spaces, shows as a wrong answer.
 */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { gfnSelArb, gfnSelText, type ArbConfig, type GfnSel } from '../arbitraries.js';
import { MemslotCommand, resolveGfn } from './common.js';

export class VcpuLookup extends MemslotCommand {
  constructor(
    readonly vcpu: number,
    readonly inSmm: boolean,
    readonly at: GfnSel,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const { gfn } = resolveGfn(m, this.at);
    const before = m.vcpus.get(this.vcpu)?.gfns ?? [];
    return { kind: 'vcpu', vcpu: this.vcpu, inSmm: this.inSmm, gfns: [...before, gfn] };
  }

  toString(): string {
    return `kvm_vcpu_gfn_to_memslot(vcpu${this.vcpu}${this.inSmm ? ' in SMM' : ''}, earlier gfns then ${gfnSelText(this.at)})`;
  }
}

export function vcpuLookupArb(c: ArbConfig): fc.Arbitrary<VcpuLookup> {
  return fc.tuple(fc.nat({ max: 3 }), fc.boolean(), gfnSelArb(c.profile)).map(([v, s, g]) => new VcpuLookup(v, s, g));
}
