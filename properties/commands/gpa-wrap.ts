/** [MS-VAL-10] guest_phys_addr + memory_size past 2^64 (or ending exactly at 2^64, which does not wrap). */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { type ArbConfig, UADDR_BASE } from '../arbitraries.js';
import { MemslotCommand, freeId, slotNr } from './common.js';
import { PAGE_SIZE } from '../../model/index.js';

export class GpaWrap extends MemslotCommand {
  constructor(
    readonly pagesBelowTop: bigint,
    readonly npages: bigint,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const gpa = (1n << 64n) - this.pagesBelowTop * PAGE_SIZE;
    return {
      kind: 'set',
      region: { slot: slotNr(0, freeId(m, 0, 0)), flags: 0, guestPhysAddr: gpa, memorySize: this.npages * PAGE_SIZE, userspaceAddr: UADDR_BASE },
    };
  }

  toString(): string {
    return `gpa_wrap(guest_phys_addr=2^64-${this.pagesBelowTop} pages, npages=${this.npages})`;
  }
}

export function gpaWrapArb(_c: ArbConfig): fc.Arbitrary<GpaWrap> {
  return fc.tuple(fc.bigInt(1n, 3n), fc.bigInt(1n, 4n)).map(([b, n]) => new GpaWrap(b, n));
}
