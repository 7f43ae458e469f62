/**
 * The bound that lets an implementation keep gfns as numbers (./gfn-num.ts): every slot's
 * gfns are below 2^52, and the top of the gfn space round-trips exactly.
 */
import { describe, expect, it } from 'vitest';
import { U64_MAX } from '../../model/types.js';
import * as model from '../../model/index.js';
import { L510, PAGE, region } from '../../test/rules/helpers.js';
import { createLegacyImpl, createScalableImpl } from '../index.js';
import { GFN_NUM_MAX, fromGfnNum, gfnSearchKey, toGfnNum } from './gfn-num.js';

describe('GfnNum', () => {
  it('is exact up to 2^53 - 1 and refuses anything outside 0 .. 2^53 - 1', () => {
    for (const g of [0n, 1n, (1n << 52n) - 1n, 1n << 52n, GFN_NUM_MAX - 1n, GFN_NUM_MAX]) {
      expect(fromGfnNum(toGfnNum(g))).toBe(g);
    }
    expect(GFN_NUM_MAX).toBe((1n << 53n) - 1n);
    expect(() => toGfnNum(1n << 53n)).toThrow('does not fit a GfnNum');
    expect(() => toGfnNum(-1n)).toThrow('does not fit a GfnNum');
  });

  it('a search key compares with every key as the bigint does, even past 2^53', () => {
    const keys = [0n, 5n, (1n << 52n) - 1n, 1n << 52n, GFN_NUM_MAX].map(toGfnNum);
    const gfns = [-(1n << 60n), -1n, 0n, 4n, 5n, 6n, (1n << 52n) - 1n, 1n << 52n, GFN_NUM_MAX, 1n << 53n, (1n << 53n) + 1n, U64_MAX >> 12n, U64_MAX];
    for (const g of gfns) {
      for (const k of keys) {
        const kb = fromGfnNum(k);
        expect([gfnSearchKey(g) < k, gfnSearchKey(g) >= k, k <= gfnSearchKey(g)], `${g} vs ${kb}`).toStrictEqual([g < kb, g >= kb, kb <= g]);
      }
    }
  });

  it('[MS-LKP-02][MS-LKP-03] the highest slot a request can make (gpa 2^64 - 8 KiB: the range may not wrap, and 5.10 has no max gfn) round-trips exactly', () => {
    const top = U64_MAX - 2n * PAGE + 1n;
    const topGfn = top >> 12n;
    expect(topGfn).toBe((1n << 52n) - 2n);
    for (const make of [createScalableImpl, createLegacyImpl]) {
      const impl = make(L510);
      const below = region(1, top - 4n * PAGE, 2n * PAGE, 0x10_0000n);
      const atTop = region(2, top, PAGE, 0x20_0000n);
      let vm = model.createVm(L510);
      for (const r of [below, atTop]) {
        const step = model.setUserMemoryRegion(vm, r);
        expect(step.result).toMatchObject({ ok: true, change: 'CREATE' });
        vm = step.state;
        expect(impl.setUserMemoryRegion(r)).toMatchObject({ ok: true, change: 'CREATE' });
      }
      expect(impl.slots(0).map((x) => [x.id, x.baseGfn, x.npages])).toStrictEqual([
        [1, topGfn - 4n, 2n],
        [2, topGfn, 1n],
      ]);
      expect(model.gfnToMemslot(vm, 0, topGfn)?.id).toBe(2);
      expect(impl.gfnToMemslot(0, topGfn)?.id).toBe(2);
      expect(impl.gfnToMemslot(0, topGfn - 1n)).toBeNull();
      expect(impl.gfnToMemslot(0, topGfn - 3n)?.id).toBe(1);
      expect(impl.gfnToMemslot(0, topGfn + 1n)).toBeNull();
      expect(impl.gfnToMemslot(0, 1n << 52n)).toBeNull();
      expect(impl.gfnToMemslot(0, U64_MAX)).toBeNull();
      expect([1, 2]).toContain(impl.gfnToMemslotApprox(0, topGfn - 1n)?.id);
      expect(impl.gfnToMemslotApprox(0, U64_MAX)?.id).toBe(2);
      expect(impl.gfnRangeMemslots(0, topGfn - 3n, 1n << 52n).map((s) => s.id)).toStrictEqual([1, 2]);
      expect(impl.gfnRangeMemslots(0, topGfn + 1n, U64_MAX)).toStrictEqual([]);
      expect(impl.gfnToHva(0, topGfn, false)).toStrictEqual({ ok: true, hva: 0x20_0000n });
    }
  });
});
