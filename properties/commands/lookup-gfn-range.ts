/** [MS-LKP-04] kvm_for_each_memslot_in_gfn_range(): every slot intersecting [start, end), ascending by base gfn. */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { asIdArb, gfnSelArb, gfnSelText, type ArbConfig, type GfnSel } from '../arbitraries.js';
import { MemslotCommand, resolveGfn } from './common.js';

export class LookupGfnRange extends MemslotCommand {
  constructor(
    readonly asId: number,
    readonly at: GfnSel,
    readonly pages: bigint,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const { gfn, asId } = resolveGfn(m, this.at);
    return { kind: 'gfnRange', asId: asId ?? this.asId, start: gfn, end: gfn + this.pages };
  }

  toString(): string {
    return `gfn_range(as ${this.asId}, start=${gfnSelText(this.at)}, ${this.pages} pages)`;
  }
}

export function lookupGfnRangeArb(c: ArbConfig): fc.Arbitrary<LookupGfnRange> {
  const pages = fc.oneof({ arbitrary: fc.bigInt(0n, 8n), weight: 4 }, { arbitrary: fc.constantFrom(64n, 1n << 40n, 1n << 52n), weight: 1 });
  return fc.tuple(asIdArb(c.profile), gfnSelArb(c.profile), pages).map(([a, s, n]) => new LookupGfnRange(a, s, n));
}
