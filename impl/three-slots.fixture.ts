/**
 * Test-only builders for the implementation unit tests in impl/. A `*.fixture.ts`
 * file is never compiled into the package (tsconfig.build.json) and nothing shipped imports it.
 */
import { expect } from 'vitest';
import type { Memslot } from '../model/types.js';
import { NOSMM, PAGE, region } from '../test/rules/helpers.js';
import type { MemslotImpl } from './interface.js';
import { makeMemslot } from './internal/memslot.js';

/** Three slots at gfn 0x10, 0x20, 0x30 (ids 1..3), one page each. */
export function threeSlots(make: (p: typeof NOSMM) => MemslotImpl, profile = NOSMM): MemslotImpl {
  const impl = make(profile);
  for (const id of [1, 2, 3]) {
    const r = impl.setUserMemoryRegion(region(id, BigInt(id) * 0x10n * PAGE, PAGE, 0x100_0000n + BigInt(id) * PAGE));
    expect(r.ok).toBe(true);
  }
  return impl;
}

/** A slot of address space 0 that no set holds. */
export function slot(id: number, baseGfn: bigint, npages = 1n): Memslot {
  return makeMemslot({ asId: 0, id, baseGfn, npages, flags: 0, userspaceAddr: 0x200_0000n + BigInt(id) * PAGE, gmem: null }, null);
}
