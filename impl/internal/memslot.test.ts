/**
 * The slot helpers both implementations share (memslot.ts), on their own. Through whole
 * implementations some of their edges cannot be seen: a last_used_slot miss falls back to a
 * tree search that finds the same slot, so try_get_memslot()'s bounds are pinned here.
 */
import { describe, expect, it } from 'vitest';
import { InvariantError, KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS, KVM_MEMSLOT_INVALID, KVM_MEM_READONLY } from '../../model/index.js';
import { NOSMM, X86, memslot } from '../../test/rules/helpers.js';
import {
  checkAsId,
  generationInProgress,
  gfnToHvaMemslot,
  hvaLast,
  hvaRangeHit,
  isVisibleMemslot,
  makeInvalidCopy,
  tryGetMemslot,
  vcpuMemslotsId,
} from './memslot.js';

/** Slot 3 at gfn 0x10, 4 pages, at host 0x40_0000. */
const S = memslot(0, 3, 0x10n, 4n, 0x40_0000n);

describe('slot helpers', () => {
  it('[MS-LKP-02] try_get_memslot() hits from the first gfn to the last, and nowhere else', () => {
    expect(tryGetMemslot(S, 0x10n)).toBe(S);
    expect(tryGetMemslot(S, 0x13n)).toBe(S);
    expect(tryGetMemslot(S, 0xfn)).toBeNull();
    expect(tryGetMemslot(S, 0x14n)).toBeNull();
    expect(tryGetMemslot(null, 0x10n)).toBeNull();
  });

  it('[MS-LKP-08] visible: a user slot that is not INVALID', () => {
    expect(isVisibleMemslot(NOSMM, S)).toBe(true);
    expect(isVisibleMemslot(NOSMM, null)).toBe(false);
    expect(isVisibleMemslot(NOSMM, makeInvalidCopy(S))).toBe(false);
    expect(isVisibleMemslot(X86, { ...S, id: X86.userMemSlots - 1 })).toBe(true);
    expect(isVisibleMemslot(X86, { ...S, id: X86.userMemSlots })).toBe(false);
  });

  it('[MS-LKP-09][MS-LKP-10][MS-LKP-11] gfn_to_hva: bad for none or INVALID, read-only bad for a write to READONLY, else the page', () => {
    expect(gfnToHvaMemslot(null, 0x10n, false)).toEqual({ ok: false, error: 'KVM_HVA_ERR_BAD' });
    expect(gfnToHvaMemslot(makeInvalidCopy(S), 0x10n, false)).toEqual({ ok: false, error: 'KVM_HVA_ERR_BAD' });
    const ro = { ...S, flags: KVM_MEM_READONLY };
    expect(gfnToHvaMemslot(ro, 0x11n, true)).toEqual({ ok: false, error: 'KVM_HVA_ERR_RO_BAD' });
    expect(gfnToHvaMemslot(ro, 0x11n, false)).toEqual({ ok: true, hva: 0x40_1000n });
    expect(gfnToHvaMemslot(S, 0x13n, true)).toEqual({ ok: true, hva: 0x40_3000n });
  });

  it('[MS-GEN-03] the INVALID copy keeps every field and the bitmap, and adds the INVALID flag', () => {
    const withLog = { ...S, flags: 1, dirtyBitmap: 5 };
    expect(makeInvalidCopy(withLog)).toEqual({ ...withLog, flags: 1 | KVM_MEMSLOT_INVALID });
  });

  it('[MS-LKP-05] an hva range is clamped to the slot and rounded out to whole pages', () => {
    expect(hvaLast(S)).toBe(0x40_3fffn);
    // Wider than the slot on both sides: the whole slot.
    expect(hvaRangeHit(S, 0x30_0000n, 0x50_0000n)).toEqual({ asId: 0, id: 3, gfnStart: 0x10n, gfnEnd: 0x14n });
    // Inside, not page aligned: from the page holding start to the page holding end - 1.
    expect(hvaRangeHit(S, 0x40_1800n, 0x40_2001n)).toEqual({ asId: 0, id: 3, gfnStart: 0x11n, gfnEnd: 0x13n });
    expect(hvaRangeHit(S, 0x40_1000n, 0x40_2000n)).toEqual({ asId: 0, id: 3, gfnStart: 0x11n, gfnEnd: 0x12n });
  });

  it('[MS-LKP-06] a vCPU in SMM looks up address space 1 only where there is one', () => {
    expect(vcpuMemslotsId(X86, true)).toBe(1);
    expect(vcpuMemslotsId(X86, false)).toBe(0);
    expect(vcpuMemslotsId(NOSMM, true)).toBe(0);
  });
});

describe('address-space and generation checks', () => {
  it('checkAsId() rejects an address space the profile lacks', () => {
    for (const [asId, profile] of [
      [1, NOSMM],
      [2, NOSMM],
      [-1, NOSMM],
      [0.5, NOSMM],
      [2, X86],
      [1.5, X86],
      [Number.NaN, X86],
    ] as const) {
      const msg = `address space ${asId} does not exist in profile ${profile.name}`;
      expect(() => checkAsId(profile, asId), msg).toThrow(RangeError);
      expect(() => checkAsId(profile, asId), msg).toThrow(msg);
    }
    expect(() => checkAsId(NOSMM, 0)).not.toThrow();
    expect(() => checkAsId(X86, 0)).not.toThrow();
    expect(() => checkAsId(X86, 1)).not.toThrow();
  });

  it('[MS-INV-04] a swap that starts while another is in flight', () => {
    const gen = KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS | 5n;
    const err = new InvariantError('MS-INV-04', `generation ${gen} already has UPDATE_IN_PROGRESS`);
    expect(() => generationInProgress(gen)).toThrow(err);
    expect(() => generationInProgress(KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS)).toThrow(InvariantError);
    expect(() => generationInProgress(KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS)).toThrow(
      '[MS-INV-04] invariant broken: generation 9223372036854775808 already has UPDATE_IN_PROGRESS',
    );
    // Healthy: the flag is set on a generation without it.
    expect(generationInProgress(5n)).toBe(gen);
    expect(generationInProgress(0n)).toBe(KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS);
  });
});
