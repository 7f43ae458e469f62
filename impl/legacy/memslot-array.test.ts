/** The legacy array of slot records (memslot-array.ts), field by field. */
import { describe, expect, it } from 'vitest';
import { MemslotArray } from './memslot-array.js';

describe('legacy memslot array', () => {
  it('every record keeps its own fields, and flags can be set on any of them', () => {
    const arr = new MemslotArray(4);
    const slots = [0, 1, 2, 3].map((i) => ({
      asId: i & 1,
      id: 10 + i,
      baseGfn: BigInt(100 - i * 10),
      npages: BigInt(i + 1),
      flags: i,
      userspaceAddr: BigInt(i) << 20n,
      dirtyBitmap: i === 2 ? null : i,
      gmem: i === 1 ? { file: 3, pgoff: 0x1234_5678_9an } : null,
    }));
    slots.forEach((s, i) => arr.set(i, s));
    expect([0, 1, 2, 3].map((i) => arr.get(i))).toEqual(slots);
    arr.setFlags(2, 0x10001);
    expect(arr.flags(2)).toBe(0x10001);
    expect([arr.flags(0), arr.flags(1), arr.flags(3)]).toEqual([0, 1, 3]);
    arr.moveRecords(0, 1, 3);
    expect(arr.get(0)).toEqual(slots[1]);
    expect(arr.get(1)).toEqual({ ...slots[2], flags: 0x10001 });
  });
});
