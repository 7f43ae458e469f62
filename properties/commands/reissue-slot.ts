/** [MS-NOP-01] [MS-GEN-04] Re-issue a live slot exactly as it is: 0, and nothing changes (no generation bump). */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { pickArb, type ArbConfig } from '../arbitraries.js';
import { TargetCommand, regionOf } from './common.js';

export class ReissueSlot extends TargetCommand {
  constructor(readonly pick: number) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    return { kind: 'set', region: regionOf(this.target(m)) };
  }

  toString(): string {
    return `reissue(slot[${this.pick}])`;
  }
}

export function reissueSlotArb(_c: ArbConfig): fc.Arbitrary<ReissueSlot> {
  return pickArb.map((p) => new ReissueSlot(p));
}
