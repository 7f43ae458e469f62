/**
 * [MS-MOV-01] [MS-OVL-01] [MS-DLG-06] Move a live slot: by a few pages (onto its own old range,
 * which is allowed), to any gfn, or next to / onto another live slot; optionally toggling
 * KVM_MEM_LOG_DIRTY_PAGES in the same call (still a MOVE).
 */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { gfnArb, pickArb, type ArbConfig } from '../arbitraries.js';
import { TargetCommand, hex, regionOf, userSlots } from './common.js';
import { PAGE_SHIFT, U64_MAX, KVM_MEM_LOG_DIRTY_PAGES } from '../../model/index.js';

export type MoveTo =
  | { readonly kind: 'by'; readonly pages: bigint }
  | { readonly kind: 'gfn'; readonly gfn: bigint }
  | { readonly kind: 'onto'; readonly pick: number; readonly offset: bigint };

export class MoveSlot extends TargetCommand {
  constructor(
    readonly pick: number,
    readonly to: MoveTo,
    readonly toggleDirty: boolean,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const t = this.target(m);
    let gfn: bigint;
    if (this.to.kind === 'by') gfn = t.baseGfn + this.to.pages;
    else if (this.to.kind === 'gfn') gfn = this.to.gfn;
    else {
      const live = userSlots(m);
      const other = live[this.to.pick % live.length]!;
      gfn = other.baseGfn + this.to.offset;
    }
    if (gfn < 0n) gfn = 0n;
    const r = regionOf(t);
    return {
      kind: 'set',
      region: { ...r, guestPhysAddr: (gfn << PAGE_SHIFT) & U64_MAX, flags: this.toggleDirty ? r.flags ^ KVM_MEM_LOG_DIRTY_PAGES : r.flags },
    };
  }

  toString(): string {
    const to =
      this.to.kind === 'by'
        ? `by ${this.to.pages} pages`
        : this.to.kind === 'gfn'
          ? `to gfn ${hex(this.to.gfn)}`
          : `to slot[${this.to.pick}] base ${this.to.offset >= 0n ? '+' : ''}${this.to.offset}`;
    return `move(slot[${this.pick}], ${to}${this.toggleDirty ? ', toggle LOG_DIRTY_PAGES' : ''})`;
  }
}

export function moveSlotArb(c: ArbConfig): fc.Arbitrary<MoveSlot> {
  const to: fc.Arbitrary<MoveTo> = fc.oneof(
    { arbitrary: fc.constantFrom(-4n, -2n, -1n, 1n, 2n, 4n).map((pages) => ({ kind: 'by' as const, pages })), weight: 3 },
    { arbitrary: gfnArb(c.profile).map((gfn) => ({ kind: 'gfn' as const, gfn })), weight: 2 },
    { arbitrary: fc.tuple(pickArb, fc.constantFrom(-2n, -1n, 0n, 1n, 2n)).map(([pick, offset]) => ({ kind: 'onto' as const, pick, offset })), weight: 2 },
  );
  return fc.tuple(pickArb, to, fc.boolean()).map(([p, t, d]) => new MoveSlot(p, t, d));
}
