/** [MS-CLR-01] .. [MS-CLR-05] KVM_CLEAR_DIRTY_LOG of a live slot: aligned or not, to the end, in words, or past it. */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { pickArb, requestAsIdArb, slotIdArb, type ArbConfig } from '../arbitraries.js';
import { MemslotCommand, slotNr, userSlots } from './common.js';

type Count = 'to-end' | 'words' | 'short-odd' | 'past';

export class ClearDirtyLogCmd extends MemslotCommand {
  constructor(
    readonly pick: number | null,
    readonly asId: number,
    readonly id: number,
    readonly word: number,
    readonly misaligned: boolean,
    readonly count: Count,
    readonly words: number,
    readonly mask: readonly number[],
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    // Slots with a bitmap, when there are any: the others only answer ENOENT (MS-CLR-03).
    const all = userSlots(m);
    const withBitmap = all.filter((s) => s.dirtyBitmap !== null);
    const live = withBitmap.length > 0 && this.pick !== null && this.pick % 4 !== 3 ? withBitmap : all;
    const t = this.pick !== null && live.length > 0 ? live[this.pick % live.length]! : null;
    const npages = t?.npages ?? 64n;
    const slot = t === null ? slotNr(this.asId, this.id) : slotNr(t.asId, t.id);
    const firstWords = (npages + 63n) / 64n;
    const firstPage = (BigInt(this.word) % (firstWords + 1n)) * 64n + (this.misaligned ? 32n : 0n);
    const rest = npages > firstPage ? npages - firstPage : 0n;
    const n =
      this.count === 'to-end'
        ? rest
        : this.count === 'words'
          ? (rest / 64n < BigInt(this.words) ? rest / 64n : BigInt(this.words)) * 64n
          : this.count === 'short-odd'
            ? 1n
            : rest + 1n + BigInt(this.words);
    const numPages = Number(n > 0xffff_ffffn ? 0xffff_ffffn : n);
    // A user buffer no longer than the kernel reads: ALIGN(num_pages, 64) / 8 bytes.
    const bytes = this.mask.slice(0, Math.ceil(numPages / 64) * 8);
    const bitmap = bytes.map((b) => b.toString(16).padStart(2, '0')).join('');
    return { kind: 'clearLog', clear: { slot, firstPage, numPages, bitmap } };
  }

  toString(): string {
    const where = this.pick === null ? `slot as ${this.asId} id ${this.id}` : `slot[${this.pick}]`;
    return `KVM_CLEAR_DIRTY_LOG(${where}, word ${this.word}${this.misaligned ? '+32' : ''}, ${this.count} ${this.words}, mask ${this.mask.length} bytes)`;
  }
}

export function clearDirtyLogArb(c: ArbConfig): fc.Arbitrary<ClearDirtyLogCmd> {
  return fc
    .record({
      pick: fc.oneof({ arbitrary: pickArb, weight: 4 }, { arbitrary: fc.constant(null), weight: 1 }),
      asId: requestAsIdArb(c.profile),
      id: slotIdArb(c.profile),
      word: fc.nat({ max: 8 }),
      misaligned: fc.oneof({ arbitrary: fc.constant(false), weight: 4 }, { arbitrary: fc.constant(true), weight: 1 }),
      count: fc.constantFrom<Count>('to-end', 'to-end', 'to-end', 'words', 'words', 'short-odd', 'past'),
      words: fc.nat({ max: 4 }),
      mask: fc.array(fc.oneof(fc.constant(0xff), fc.nat({ max: 255 })), { maxLength: 24 }),
    })
    .map((x) => new ClearDirtyLogCmd(x.pick, x.asId, x.id, x.word, x.misaligned, x.count, x.words, x.mask));
}
