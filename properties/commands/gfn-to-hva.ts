/** [MS-LKP-09] [MS-LKP-10] [MS-LKP-11] __gfn_to_hva_many(): KVM_HVA_ERR_BAD with no slot, KVM_HVA_ERR_RO_BAD for a write to a READONLY slot, else the host address. */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { asIdArb, gfnSelArb, gfnSelText, type ArbConfig, type GfnSel } from '../arbitraries.js';
import { MemslotCommand, resolveGfn } from './common.js';

export class GfnToHva extends MemslotCommand {
  constructor(
    readonly asId: number,
    readonly at: GfnSel,
    readonly write: boolean,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const { gfn, asId } = resolveGfn(m, this.at);
    return { kind: 'gfnToHva', asId: asId ?? this.asId, gfn, write: this.write };
  }

  toString(): string {
    return `gfn_to_hva(as ${this.asId}, gfn=${gfnSelText(this.at)}, ${this.write ? 'write' : 'read'})`;
  }
}

export function gfnToHvaArb(c: ArbConfig): fc.Arbitrary<GfnToHva> {
  return fc.tuple(asIdArb(c.profile), gfnSelArb(c.profile), fc.boolean()).map(([a, s, w]) => new GfnToHva(a, s, w));
}
