/**
 * [MS-X86-01] The max gfn: a slot whose last gfn is the max gfn (accepted), one past it, or
 * starting past it; created fresh or by moving a live slot there. 5.10 profiles have no such
 * check, so there the same requests succeed.
 */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { pickArb, type ArbConfig, UADDR_BASE } from '../arbitraries.js';
import { MemslotCommand, freeId, region, regionOf, slotNr, userSlots } from './common.js';
import { PAGE_SHIFT } from '../../model/index.js';

export type MaxGfnKind = 'last-at-max' | 'last-past-max' | 'start-past-max';

export class MaxGfn extends MemslotCommand {
  constructor(
    readonly kind: MaxGfnKind,
    readonly npages: bigint,
    readonly movePick: number | null,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const maxGfn = m.profile.maxGfn ?? (1n << 40n) - 1n;
    const live = userSlots(m);
    const moved = this.movePick !== null && live.length > 0 ? live[this.movePick % live.length]! : null;
    const n = moved?.npages ?? this.npages;
    const base = { 'last-at-max': maxGfn - n + 1n, 'last-past-max': maxGfn - n + 2n, 'start-past-max': maxGfn + 1n }[this.kind];
    if (moved !== null) return { kind: 'set', region: { ...regionOf(moved), guestPhysAddr: base << PAGE_SHIFT } };
    return { kind: 'set', region: region(slotNr(0, freeId(m, 0, 0)), 0, base, n, UADDR_BASE) };
  }

  toString(): string {
    return `max_gfn(${this.kind}, ${this.movePick === null ? `new slot of ${this.npages} pages` : `move slot[${this.movePick}] (or a new slot of ${this.npages} pages)`})`;
  }
}

export function maxGfnArb(_c: ArbConfig): fc.Arbitrary<MaxGfn> {
  return fc
    .tuple(fc.constantFrom<MaxGfnKind>('last-at-max', 'last-past-max', 'start-past-max'), fc.bigInt(1n, 3n), fc.option(pickArb, { nil: null }))
    .map(([k, n, p]) => new MaxGfn(k, n, p));
}
