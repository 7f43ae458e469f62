/** [MS-LKP-08] kvm_is_visible_gfn(): a user slot that is not INVALID covers the gfn (internal slots are not visible). */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { asIdArb, gfnSelArb, gfnSelText, type ArbConfig, type GfnSel } from '../arbitraries.js';
import { MemslotCommand, resolveGfn } from './common.js';

export class LookupVisible extends MemslotCommand {
  constructor(
    readonly asId: number,
    readonly at: GfnSel,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const { gfn, asId } = resolveGfn(m, this.at);
    return { kind: 'visible', asId: asId ?? this.asId, gfn };
  }

  toString(): string {
    return `kvm_is_visible_gfn(as ${this.asId}, gfn=${gfnSelText(this.at)})`;
  }
}

export function lookupVisibleArb(c: ArbConfig): fc.Arbitrary<LookupVisible> {
  return fc.tuple(asIdArb(c.profile), gfnSelArb(c.profile)).map(([a, s]) => new LookupVisible(a, s));
}
