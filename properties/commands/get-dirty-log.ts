/** [MS-DLG-01] .. [MS-DLG-05] KVM_GET_DIRTY_LOG of a live slot, or of any slot number. */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { pickArb, requestAsIdArb, slotIdArb, type ArbConfig } from '../arbitraries.js';
import { MemslotCommand, slotNr, userSlots } from './common.js';
import { dirtyLogExchangeable } from '../../model/index.js';

export class GetDirtyLog extends MemslotCommand {
  constructor(
    readonly pick: number | null,
    readonly asId: number,
    readonly id: number,
    readonly logged = false,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    // A bitmap too large to exchange (an INITIALLY_SET 2^31-page slot) is never read (spec/25).
    const all = userSlots(m).filter((s) => dirtyLogExchangeable(m.vm, slotNr(s.asId, s.id)));
    const withBitmap = all.filter((s) => s.dirtyBitmap !== null);
    // Reads of a slot with a bitmap, where the bits are (the migration loop).
    const live = this.logged && withBitmap.length > 0 ? withBitmap : all;
    if (this.pick !== null && live.length > 0) {
      const t = live[this.pick % live.length]!;
      return { kind: 'dirtyLog', slot: slotNr(t.asId, t.id) };
    }
    const slot = slotNr(this.asId, this.id);
    // Instead, the first id past the user slots: MS-DLG-02's EINVAL.
    return { kind: 'dirtyLog', slot: dirtyLogExchangeable(m.vm, slot) ? slot : slotNr(this.asId, m.vm.profile.userMemSlots) };
  }

  toString(): string {
    const abs = `slot=${slotNr(this.asId, this.id)} /*as ${this.asId}, id ${this.id}*/`;
    return `KVM_GET_DIRTY_LOG(${this.pick === null ? abs : `${this.logged ? 'logged ' : ''}slot[${this.pick}] (or ${abs})`})`;
  }
}

export function getDirtyLogArb(c: ArbConfig): fc.Arbitrary<GetDirtyLog> {
  return fc
    .tuple(
      fc.oneof({ arbitrary: pickArb, weight: 2 }, { arbitrary: fc.constant(null), weight: 1 }),
      requestAsIdArb(c.profile),
      slotIdArb(c.profile),
      fc.boolean(),
    )
    .map(([p, a, i, logged]) => new GetDirtyLog(p, a, i, logged));
}
