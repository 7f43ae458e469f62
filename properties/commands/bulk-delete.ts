/** [MS-DEL-02] Delete k consecutive live slots (in (as, gfn) order, from position pick) in one step. */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { pickArb, type ArbConfig } from '../arbitraries.js';
import { TargetCommand, regionOf, userSlots } from './common.js';

export class BulkDelete extends TargetCommand {
  constructor(
    readonly pick: number,
    readonly k: number,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const live = userSlots(m);
    const from = this.pick % live.length;
    const regions = live.slice(from, from + this.k).map((s) => ({ ...regionOf(s), memorySize: 0n }));
    return { kind: 'bulk', regions, label: `delete ${this.k}` };
  }

  toString(): string {
    return `bulk_delete(${this.k} slots from slot[${this.pick}])`;
  }
}

export function bulkDeleteArb(c: ArbConfig): fc.Arbitrary<BulkDelete> {
  return fc.tuple(pickArb, fc.integer({ min: 2, max: Math.max(2, c.maxBulk) })).map(([p, k]) => new BulkDelete(p, k));
}
