/**
 * [MS-CRT-02] [MS-VAL-02] Fill an address space: a one-page slot for every free user id, up to
 * KVM_USER_MEM_SLOTS live slots (32764 on mainline, 509 on 5.10), then the first id past the
 * limit, which must fail. One step.
 */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { UADDR_BASE, asIdArb, type ArbConfig } from '../arbitraries.js';
import { MemslotCommand, freeIds, region, slotNr, freeGfnRun } from './common.js';
import type { MemoryRegion } from '../../model/index.js';

export class BulkFill extends MemslotCommand {
  constructor(readonly asId: number) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const ids = freeIds(m, this.asId);
    let gfn = freeGfnRun(m, this.asId, BigInt(ids.length + 1));
    const regions: MemoryRegion[] = [];
    for (const [i, id] of ids.entries()) {
      regions.push(region(slotNr(this.asId, id), 0, gfn, 1n, UADDR_BASE + (BigInt(i) << 12n)));
      gfn += 1n;
    }
    regions.push(region(slotNr(this.asId, m.profile.userMemSlots), 0, gfn, 1n, UADDR_BASE));
    return { kind: 'bulk', regions, label: `fill as ${this.asId} to KVM_USER_MEM_SLOTS, then id KVM_USER_MEM_SLOTS` };
  }

  toString(): string {
    return `bulk_fill(as ${this.asId}: every free user id, then the first id past the limit)`;
  }
}

export function bulkFillArb(c: ArbConfig): fc.Arbitrary<BulkFill> {
  return asIdArb(c.profile).map((a) => new BulkFill(a));
}
