/**
 * [MS-LKP-02] gfn_to_memslot(): the slot whose range contains a gfn, or none. Each lookup first
 * re-asks the gfns last looked up in that address space, so a VM-wide last_used_slot cache that
 * survives a delete or move shows as a wrong answer.
 */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { asIdArb, gfnSelArb, gfnSelText, type ArbConfig, type GfnSel } from '../arbitraries.js';
import { MemslotCommand, resolveGfn } from './common.js';

export class LookupGfn extends MemslotCommand {
  constructor(
    readonly asId: number,
    readonly at: GfnSel,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const { gfn, asId } = resolveGfn(m, this.at);
    const as = asId ?? this.asId;
    return { kind: 'gfnLookup', asId: as, gfns: [...(m.gfnHistory.get(as) ?? []), gfn] };
  }

  toString(): string {
    return `__gfn_to_memslot(as ${this.asId}, earlier gfns then ${gfnSelText(this.at)})`;
  }
}

export function lookupGfnArb(c: ArbConfig): fc.Arbitrary<LookupGfn> {
  return fc.tuple(asIdArb(c.profile), gfnSelArb(c.profile)).map(([a, s]) => new LookupGfn(a, s));
}
