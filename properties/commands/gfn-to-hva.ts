/** [MS-LKP-09] [MS-LKP-10] [MS-LKP-11] __gfn_to_hva_many(): KVM_HVA_ERR_BAD with no slot, KVM_HVA_ERR_RO_BAD for a write to a READONLY slot, else the host address. */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { asIdArb, gfnSelArb, gfnSelText, type ArbConfig, type GfnSel } from '../arbitraries.js';
import { MemslotCommand, resolveGfn, allSlots } from './common.js';
import { KVM_MEM_READONLY } from '../../model/index.js';

export class GfnToHva extends MemslotCommand {
  constructor(
    readonly asId: number,
    readonly at: GfnSel,
    readonly write: boolean,
    /** Aim at a READONLY slot when one lives ([MS-LKP-10] needs a write into one). */
    readonly readonly: boolean,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const ro = this.readonly ? allSlots(m).filter((s) => (s.flags & KVM_MEM_READONLY) !== 0) : [];
    const target = ro[(this.at.pick ?? 0) % Math.max(ro.length, 1)];
    if (target !== undefined) return { kind: 'gfnToHva', asId: target.asId, gfn: target.baseGfn + target.npages / 2n, write: this.write };
    const { gfn, asId } = resolveGfn(m, this.at);
    return { kind: 'gfnToHva', asId: asId ?? this.asId, gfn, write: this.write };
  }

  toString(): string {
    const where = this.readonly ? `a READONLY slot (or ${gfnSelText(this.at)})` : gfnSelText(this.at);
    return `gfn_to_hva(as ${this.asId}, gfn=${where}, ${this.write ? 'write' : 'read'})`;
  }
}

export function gfnToHvaArb(c: ArbConfig): fc.Arbitrary<GfnToHva> {
  const write = fc.oneof({ arbitrary: fc.constant(true), weight: 3 }, { arbitrary: fc.constant(false), weight: 1 });
  const readonly = fc.oneof({ arbitrary: fc.constant(false), weight: 2 }, { arbitrary: fc.constant(true), weight: 1 });
  return fc.tuple(asIdArb(c.profile), gfnSelArb(c.profile), write, readonly).map(([a, s, w, r]) => new GfnToHva(a, s, w, r));
}
