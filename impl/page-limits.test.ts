/**
 * Page-count limits the random sequences cannot reach, on crafted states and profiles, for both
 * implementations against the model. Mutation testing found both unchecked in impl/: no request
 * sequence gets nr_memslot_pages near 2^64, and the built-in max_nr_pages (2^31 - 1) is far
 * above any internal slot, so the exemption of internal slots never showed.
 */
import { describe, expect, it } from 'vitest';
import * as model from '../model/index.js';
import { U64_MAX, type Profile } from '../model/index.js';
import { L510, NOSMM, PAGE, X86, region } from '../test/rules/helpers.js';
import { IMPLEMENTATIONS } from './index.js';

const UADDR = 0x7f00_0000_0000n;

describe.each(Object.entries(IMPLEMENTATIONS))('%s', (_name, make) => {
  /** A fresh implementation whose page counter already holds `pages` (as no request can make it). */
  function withPages(p: Profile, pages: bigint) {
    const impl = make(p);
    (impl as unknown as { nrPages: bigint }).nrPages = pages;
    return impl;
  }

  it('[MS-CRT-01] a create that would overflow the u64 nr_memslot_pages fails with EINVAL; one that reaches 2^64 - 1 exactly fits', () => {
    const over = withPages(NOSMM, U64_MAX - 1n);
    expect(over.setUserMemoryRegion(region(0, 0n, 2n * PAGE, UADDR))).toEqual({ ok: false, errno: 'EINVAL' });
    expect(over.slots(0)).toEqual([]);
    const fits = withPages(NOSMM, U64_MAX - 1n);
    expect(fits.setUserMemoryRegion(region(0, 0n, PAGE, UADDR))).toEqual({ ok: true, change: 'CREATE' });
    expect(fits.nrMemslotPages()).toBe(U64_MAX);
    // The model agrees on both.
    const vm = { ...model.createVm(NOSMM), nrMemslotPages: U64_MAX - 1n };
    expect(model.setUserMemoryRegion(vm, region(0, 0n, 2n * PAGE, UADDR)).result.ok).toBe(false);
    expect(model.setUserMemoryRegion(vm, region(0, 0n, PAGE, UADDR)).result.ok).toBe(true);
  });

  it('[MS-CRT-01] 5.10 has no such check: the same create succeeds', () => {
    const impl = withPages(L510, U64_MAX - 1n);
    expect(impl.setUserMemoryRegion(region(0, 0n, 2n * PAGE, UADDR))).toEqual({ ok: true, change: 'CREATE' });
  });

  it('[MS-VAL-11] with max_nr_pages_user_only, an internal slot above max_nr_pages is allowed; without it, EINVAL', () => {
    for (const userOnly of [true, false]) {
      const p: Profile = { ...X86, name: `x86_64 max_nr_pages 2 user_only ${userOnly}`, maxNrPages: 2n, maxNrPagesUserOnly: userOnly };
      const tss = p.userMemSlots;
      const impl = make(p);
      const want = model.setInternalMemslot(model.createVm(p), tss, 0xfeffd000n, 3n * PAGE, 0x7e00_0000_0000n).result;
      const got = impl.setInternalMemslot(tss, 0xfeffd000n, 3n * PAGE, 0x7e00_0000_0000n);
      expect(got).toEqual(userOnly ? { ok: true, change: 'CREATE' } : { ok: false, errno: 'EINVAL' });
      expect(got.ok).toBe(want.ok);
      // A user slot above the limit fails either way.
      expect(impl.setUserMemoryRegion(region(1, 0n, 3n * PAGE, UADDR))).toEqual({ ok: false, errno: 'EINVAL' });
    }
  });
});
