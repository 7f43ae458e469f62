/**
 * [MS-RNG-01] .. [MS-RNG-07] [MS-RNG-12] .. [MS-RNG-14] Dirty rings: KVM_ENABLE_CAP of either
 * ring cap with good and bad sizes, user space's harvest, and KVM_RESET_DIRTY_RINGS.
 */
import fc from 'fast-check';
import { KVM_MEM_LOG_DIRTY_PAGES, PAGE_SIZE, hex, type RingCap } from '../../model/index.js';
import type { Op } from '../ops.js';
import { UADDR_BASE } from '../arbitraries.js';
import { MemslotCommand } from './common.js';
import { CreateSlot } from './create-slot.js';
import { WriteBurst } from './write-burst.js';

export class EnableDirtyRing extends MemslotCommand {
  constructor(
    readonly cap: RingCap,
    readonly args0: bigint,
    readonly flags: number,
  ) {
    super();
  }

  resolve(): Op {
    return { kind: 'enableCap', cap: this.cap, args0: this.args0, flags: this.flags };
  }

  toString(): string {
    return `KVM_ENABLE_CAP(${this.cap}, args[0]=${hex(this.args0)}, flags=${this.flags})`;
  }
}

/**
 * Sizes in bytes: mostly valid ones (the smallest, 4096: 256 entries, soft limit 192 with 64
 * reserved), sometimes not a power of two, below the minimum (a page, and 16 bytes per
 * reserved entry), above the maximum (E2BIG), or with bits above 32 that the u32 parameter
 * drops. Three of the bad ones are below the minimum and two above the maximum: one of them
 * alone left MS-RNG-03 unhit by 4 seeds in 30 of the conformance gate.
 */
const RING_SIZES: readonly bigint[] = [4096n, 4096n, 4096n, 8192n, 65536n];
const BAD_SIZES: readonly bigint[] = [0n, 3n, 16n, 1024n, 2048n, 0x20_0000n, 0x8000_0000n, (1n << 32n) | 4096n, 1n << 32n, 0xffff_ffff_ffff_f000n];

export function enableDirtyRingArb(): fc.Arbitrary<EnableDirtyRing> {
  return fc
    .tuple(
      fc.constantFrom<RingCap>('DIRTY_LOG_RING', 'DIRTY_LOG_RING_ACQ_REL'),
      fc.oneof({ arbitrary: fc.constantFrom(...RING_SIZES), weight: 3 }, { arbitrary: fc.constantFrom(...BAD_SIZES), weight: 2 }),
      // The flags are not looked at.
      fc.oneof({ arbitrary: fc.constant(0), weight: 5 }, { arbitrary: fc.constantFrom(1, 0x8000_0000), weight: 1 }),
    )
    .map(([cap, size, flags]) => new EnableDirtyRing(cap, size, flags));
}

export class HarvestDirtyRing extends MemslotCommand {
  resolve(): Op {
    return { kind: 'harvest' };
  }

  toString(): string {
    return 'harvest_dirty_ring()';
  }
}

export function harvestDirtyRingArb(): fc.Arbitrary<HarvestDirtyRing> {
  return fc.constant(null).map(() => new HarvestDirtyRing());
}

export class ResetDirtyRings extends MemslotCommand {
  resolve(): Op {
    return { kind: 'resetRings' };
  }

  toString(): string {
    return 'KVM_RESET_DIRTY_RINGS';
  }
}

export function resetDirtyRingsArb(): fc.Arbitrary<ResetDirtyRings> {
  return fc.constant(null).map(() => new ResetDirtyRings());
}

/** Pages of the logged slot that ringPrefix() creates: more than a 4096-byte ring's 192-entry soft limit. */
export const RING_SLOT_PAGES = 256n;

/**
 * Commands that start a sequence in a VM with the smallest ring (4096 bytes, either cap) and a
 * logged slot of RING_SLOT_PAGES pages at gfn 0x200 of address space 0; with `fill`, then
 * writes to `fill` of its pages (192: the ring at its soft limit with 64 reserved, MS-RNG-09).
 */
export function ringPrefix(cap: RingCap, fill = 0): MemslotCommand[] {
  const cmds: MemslotCommand[] = [
    new EnableDirtyRing(cap, 4096n, 0),
    new CreateSlot(0, 0, 0x200n, RING_SLOT_PAGES, KVM_MEM_LOG_DIRTY_PAGES, UADDR_BASE + 0x1000n * PAGE_SIZE),
  ];
  if (fill > 0) cmds.push(new WriteBurst(0, 0, fill, false));
  return cmds;
}
