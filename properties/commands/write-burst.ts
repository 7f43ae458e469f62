/**
 * [MS-RNG-08] [MS-RNG-09] [MS-RNG-10] [MS-WR-03] A burst of guest writes: `n` distinct pages of
 * the logged slots of one address space, from page `first` of the picked one on, once or twice
 * over, as one step. What fills a
 * ring to its soft limit (192 entries of a 4096-byte ring), rewrites pages still mapped writable
 * (the second pass), and sets many bits of a bitmap.
 */
import fc from 'fast-check';
import { PAGE_SHIFT } from '../../model/index.js';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { pickArb } from '../arbitraries.js';
import { MemslotCommand, writeSlots } from './common.js';

export class WriteBurst extends MemslotCommand {
  constructor(
    readonly pick: number,
    readonly first: number,
    readonly n: number,
    readonly twice: boolean,
  ) {
    super();
  }

  override check(m: Readonly<ModelBox>): boolean {
    return writeSlots(m, true).length > 0;
  }

  resolve(m: Readonly<ModelBox>): Op {
    const live = writeSlots(m, true);
    const t = live[this.pick % live.length];
    if (t === undefined) throw new Error(`${this.toString()}: no slot (check() should have said so)`);
    // Distinct pages of the picked slot from `first` on, then of the address space's other
    // aimed slots, so that small slots together still reach a ring's soft limit.
    const slots = [t, ...live.filter((s) => s !== t && s.asId === t.asId)];
    const pages: bigint[] = [];
    for (const s of slots) {
      for (let i = 0n; i < s.npages && pages.length < this.n; i++)
        pages.push((s.baseGfn + (((s === t ? BigInt(this.first) : 0n) + i) % s.npages)) << PAGE_SHIFT);
      if (pages.length >= this.n) break;
    }
    const gpas = this.twice ? [...pages, ...pages] : pages;
    return { kind: 'writes', asId: t.asId, gpas, label: `${pages.length} pages from slot ${t.asId}:${t.id} on${this.twice ? ', twice' : ''}` };
  }

  toString(): string {
    return `write_burst(logged slot[${this.pick}], ${this.n} pages from page ${this.first}${this.twice ? ', twice' : ''})`;
  }
}

export function writeBurstArb(): fc.Arbitrary<WriteBurst> {
  return fc
    .tuple(
      pickArb,
      fc.oneof(fc.nat({ max: 3 }), fc.nat({ max: 255 })),
      // A few pages, or about the soft limit of the smallest ring (192 with 64 reserved).
      fc.oneof({ arbitrary: fc.integer({ min: 2, max: 16 }), weight: 2 }, { arbitrary: fc.constantFrom(64, 191, 192, 193, 200), weight: 1 }),
      fc.oneof({ arbitrary: fc.constant(false), weight: 2 }, { arbitrary: fc.constant(true), weight: 1 }),
    )
    .map(([p, f, n, twice]) => new WriteBurst(p, f, n, twice));
}
