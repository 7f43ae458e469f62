/** [MS-MOD-02] Change the size of a live slot: EINVAL (a size of 0 would be a delete, so the new size stays >= 1 page). */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { pickArb, type ArbConfig } from '../arbitraries.js';
import { TargetCommand, regionOf } from './common.js';
import { PAGE_SHIFT } from '../../model/index.js';

export class ResizeSlot extends TargetCommand {
  constructor(
    readonly pick: number,
    readonly deltaPages: bigint,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const t = this.target(m);
    const n = t.npages + this.deltaPages >= 1n ? t.npages + this.deltaPages : t.npages + 1n;
    return { kind: 'set', region: { ...regionOf(t), memorySize: n << PAGE_SHIFT } };
  }

  toString(): string {
    return `resize(slot[${this.pick}], by ${this.deltaPages} pages)`;
  }
}

export function resizeSlotArb(_c: ArbConfig): fc.Arbitrary<ResizeSlot> {
  return fc.tuple(pickArb, fc.constantFrom(-1n, 1n, 2n, 64n)).map(([p, d]) => new ResizeSlot(p, d));
}
