/**
 * [MS-OVL-01] [MS-CRT-02] Create a slot placed relative to a live one: touching it on either
 * side (no overlap: half-open ranges), one page into it, inside it, around it, on exactly its
 * range, one page apart, or on its range in the other address space (which must succeed under
 * two-address-space profiles and hit [MS-VAL-08] under one).
 */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { flagsText } from '../ops.js';
import { pickArb, uaddrArb, type ArbConfig } from '../arbitraries.js';
import { TargetCommand, freeId, hex, region, slotNr } from './common.js';

export type Relation = 'touch-before' | 'touch-after' | 'overlap-head' | 'overlap-tail' | 'inside' | 'around' | 'same' | 'gap' | 'other-as';
export const RELATIONS: readonly Relation[] = ['touch-before', 'touch-after', 'overlap-head', 'overlap-tail', 'inside', 'around', 'same', 'gap', 'other-as'];

export class CreateNear extends TargetCommand {
  constructor(
    readonly pick: number,
    readonly relation: Relation,
    readonly npages: bigint,
    readonly flags: number,
    readonly uaddr: bigint,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const t = this.target(m);
    const n = this.npages;
    const clamp = (g: bigint): bigint => (g < 0n ? 0n : g);
    const [gfn, npages] = ((): [bigint, bigint] => {
      switch (this.relation) {
        case 'touch-before':
          return [clamp(t.baseGfn - n), n];
        case 'touch-after':
          return [t.baseGfn + t.npages, n];
        case 'overlap-head':
          return [clamp(t.baseGfn - n + 1n), n];
        case 'overlap-tail':
          return [t.baseGfn + t.npages - 1n, n];
        case 'inside':
          return [t.baseGfn + t.npages / 2n, 1n];
        case 'around':
          return [clamp(t.baseGfn - 1n), t.npages + 2n];
        case 'same':
        case 'other-as':
          return [t.baseGfn, t.npages];
        case 'gap':
          return [t.baseGfn + t.npages + 1n, n];
      }
    })();
    const asId = this.relation === 'other-as' ? (t.asId + 1) % Math.max(m.profile.addressSpaces, 2) : t.asId;
    const id = freeId(m, asId, t.id + 1);
    return { kind: 'set', region: region(slotNr(asId, id), this.flags, gfn, npages, this.uaddr) };
  }

  toString(): string {
    return `create_near(slot[${this.pick}], ${this.relation}, npages=${this.npages}, flags=${flagsText(this.flags)}, userspace_addr=${hex(this.uaddr)})`;
  }
}

export function createNearArb(c: ArbConfig): fc.Arbitrary<CreateNear> {
  return fc
    .tuple(pickArb, fc.constantFrom(...RELATIONS), fc.bigInt(1n, 4n), fc.constantFrom(0, 1, 2), uaddrArb(c.profile))
    .map(([p, r, n, f, u]) => new CreateNear(p, r, n, f, u));
}
