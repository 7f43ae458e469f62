/**
 * [MS-VAL-01] [MS-VAL-03] A request with flag bit `bit` set (each of the 32), on a live slot or
 * a fresh one. Bits 0 and 1 are valid flags, so those requests are ordinary changes.
 */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { gfnArb, pickArb, type ArbConfig } from '../arbitraries.js';
import { MemslotCommand, freeId, hex, region, regionOf, slotNr, userSlots } from './common.js';
import { UADDR_BASE } from '../arbitraries.js';

export class BadFlags extends MemslotCommand {
  constructor(
    readonly bit: number,
    readonly pick: number | null,
    readonly gfn: bigint,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const flag = (1 << this.bit) >>> 0;
    const live = userSlots(m);
    if (this.pick !== null && live.length > 0) {
      const r = regionOf(live[this.pick % live.length]!);
      return { kind: 'set', region: { ...r, flags: (r.flags | flag) >>> 0 } };
    }
    return { kind: 'set', region: region(slotNr(0, freeId(m, 0, 0)), flag, this.gfn, 1n, UADDR_BASE) };
  }

  toString(): string {
    const on = this.pick === null ? `fresh slot at gfn ${hex(this.gfn)}` : `slot[${this.pick}] (or a fresh one)`;
    return `bad_flags(bit ${this.bit} = ${hex((1 << this.bit) >>> 0)}, ${on})`;
  }
}

export function badFlagsArb(c: ArbConfig): fc.Arbitrary<BadFlags> {
  return fc.tuple(fc.nat({ max: 31 }), fc.option(pickArb, { nil: null }), gfnArb(c.profile)).map(([b, p, g]) => new BadFlags(b, p, g));
}
