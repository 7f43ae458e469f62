/** [MS-WR-01] .. [MS-WR-04] [MS-RNG-08] .. [MS-RNG-10] A vCPU writes one byte: into a live user slot's page, or where no slot is. */
import fc from 'fast-check';
import { PAGE_SHIFT, memslots } from '../../model/index.js';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { asIdArb, pickArb, type ArbConfig } from '../arbitraries.js';
import { MemslotCommand, writeSlots } from './common.js';

export class GuestWrite extends MemslotCommand {
  constructor(
    readonly pick: number | null,
    readonly page: number,
    readonly offset: number,
    readonly asId: number,
    readonly logged: boolean,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    // Most writes go where they count: a logged slot (its bitmap, or the ring), when there is one.
    const live = writeSlots(m, this.logged);
    if (this.pick !== null && live.length > 0) {
      const t = live[this.pick % live.length]!;
      const gfn = t.baseGfn + (BigInt(this.page) % t.npages);
      return { kind: 'write', asId: t.asId, gpa: (gfn << PAGE_SHIFT) + BigInt(this.offset) };
    }
    // The lowest page no slot of the address space holds (MMIO): low, so that a real guest can
    // address it (under TCG a guest has 40 physical address bits).
    const asId = this.asId % m.vm.spaces.length;
    let free = 0n;
    for (const s of memslots(m.vm, asId)) {
      if (free < s.baseGfn) break;
      if (s.baseGfn + s.npages > free) free = s.baseGfn + s.npages;
    }
    return { kind: 'write', asId, gpa: (free << PAGE_SHIFT) + BigInt(this.offset) };
  }

  toString(): string {
    return `guest_write(${this.pick === null ? `lowest free page, as ${this.asId}` : `${this.logged ? 'logged ' : ''}slot[${this.pick}], page ${this.page}`}, +${this.offset})`;
  }
}

export function guestWriteArb(c: ArbConfig): fc.Arbitrary<GuestWrite> {
  return fc
    .tuple(
      fc.oneof({ arbitrary: pickArb, weight: 4 }, { arbitrary: fc.constant(null), weight: 1 }),
      fc.oneof(fc.nat({ max: 3 }), fc.nat({ max: 1 << 12 })),
      fc.nat({ max: 4095 }),
      asIdArb(c.profile),
      fc.oneof({ arbitrary: fc.constant(true), weight: 3 }, { arbitrary: fc.constant(false), weight: 1 }),
    )
    .map(([p, page, off, a, logged]) => new GuestWrite(p, page, off, a, logged));
}
