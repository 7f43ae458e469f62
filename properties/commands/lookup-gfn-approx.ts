/** [MS-LKP-03] search_memslots(approx = true): the containing slot, else one of the two slots bordering the hole, else none. */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { asIdArb, gfnSelArb, gfnSelText, type ArbConfig, type GfnSel } from '../arbitraries.js';
import { MemslotCommand, resolveGfn } from './common.js';

export class LookupGfnApprox extends MemslotCommand {
  constructor(
    readonly asId: number,
    readonly at: GfnSel,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const { gfn, asId } = resolveGfn(m, this.at);
    return { kind: 'approxLookup', asId: asId ?? this.asId, gfn };
  }

  toString(): string {
    return `search_memslots(approx=true, as ${this.asId}, gfn=${gfnSelText(this.at)})`;
  }
}

export function lookupGfnApproxArb(c: ArbConfig): fc.Arbitrary<LookupGfnApprox> {
  return fc.tuple(asIdArb(c.profile), gfnSelArb(c.profile)).map(([a, s]) => new LookupGfnApprox(a, s));
}
