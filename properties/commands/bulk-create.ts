/**
 * [MS-CRT-02] Create k slots in one step (k up to thousands), so that sequences reach hundreds
 * or thousands of live slots: fresh ids, above every slot of the address space, touching
 * (stride = npages) or with holes, every `dirtyEvery`-th with dirty logging, with hva ranges
 * either distinct or all aliasing one range. The state is compared after the last request.
 */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { UADDR_BASE, asIdArb, type ArbConfig } from '../arbitraries.js';
import { MemslotCommand, freeIds, region, slotNr, freeGfnRun } from './common.js';
import { KVM_MEM_LOG_DIRTY_PAGES, PAGE_SHIFT, type MemoryRegion } from '../../model/index.js';

export class BulkCreate extends MemslotCommand {
  constructor(
    readonly asId: number,
    readonly k: number,
    readonly npages: bigint,
    readonly hole: bigint,
    readonly dirtyEvery: number,
    readonly aliasHva: boolean,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const ids = freeIds(m, this.asId).slice(0, this.k);
    let gfn = freeGfnRun(m, this.asId, BigInt(ids.length) * (this.npages + this.hole));
    const regions: MemoryRegion[] = [];
    for (const [i, id] of ids.entries()) {
      const flags = this.dirtyEvery > 0 && i % this.dirtyEvery === 0 ? KVM_MEM_LOG_DIRTY_PAGES : 0;
      const uaddr = this.aliasHva ? UADDR_BASE : UADDR_BASE + ((BigInt(i) * this.npages) << PAGE_SHIFT);
      regions.push(region(slotNr(this.asId, id), flags, gfn, this.npages, uaddr));
      gfn += this.npages + this.hole;
    }
    return { kind: 'bulk', regions, label: `create ${this.k}` };
  }

  toString(): string {
    return `bulk_create(as ${this.asId}, ${this.k} slots of ${this.npages} pages, holes of ${this.hole}, dirty logging every ${this.dirtyEvery || 'never'}, ${this.aliasHva ? 'one shared hva range' : 'distinct hva ranges'})`;
  }
}

export function bulkCreateArb(c: ArbConfig): fc.Arbitrary<BulkCreate> {
  const big = Math.max(c.maxBulk, 301);
  const k = fc.oneof(
    { arbitrary: fc.integer({ min: 2, max: 32 }), weight: 8 },
    { arbitrary: fc.integer({ min: 33, max: 300 }), weight: 3 },
    { arbitrary: fc.integer({ min: 301, max: big }), weight: c.maxBulk > 300 ? 1 : 0 },
  );
  return fc
    .tuple(asIdArb(c.profile), k, fc.constantFrom(1n, 2n), fc.constantFrom(0n, 1n), fc.constantFrom(0, 1, 3), fc.boolean())
    .map(([a, n, p, h, d, al]) => new BulkCreate(a, Math.min(n, c.maxBulk), p, h, d, al));
}
