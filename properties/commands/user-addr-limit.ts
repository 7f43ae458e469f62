/**
 * [MS-VAL-07] access_ok(): userspace_addr + memory_size ending exactly at the profile's user
 * address limit (accepted), one page past it, starting at it, or wrapping past 2^64.
 */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { gfnArb, type ArbConfig } from '../arbitraries.js';
import { MemslotCommand, freeId, hex, slotNr } from './common.js';
import { PAGE_SIZE, PAGE_SHIFT, U64_MAX } from '../../model/index.js';

export type LimitKind = 'end-at-limit' | 'end-past-limit' | 'start-at-limit' | 'u64-wrap';

export class UserAddrLimit extends MemslotCommand {
  constructor(
    readonly kind: LimitKind,
    readonly npages: bigint,
    readonly gfn: bigint,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const size = this.npages * PAGE_SIZE;
    const max = m.profile.userAddrMax;
    const uaddr = { 'end-at-limit': max - size, 'end-past-limit': max - size + PAGE_SIZE, 'start-at-limit': max, 'u64-wrap': U64_MAX - PAGE_SIZE + 1n }[
      this.kind
    ];
    return {
      kind: 'set',
      region: { slot: slotNr(0, freeId(m, 0, 0)), flags: 0, guestPhysAddr: this.gfn << PAGE_SHIFT, memorySize: size, userspaceAddr: uaddr & U64_MAX },
    };
  }

  toString(): string {
    return `user_addr_limit(${this.kind}, npages=${this.npages}, gfn=${hex(this.gfn)})`;
  }
}

export function userAddrLimitArb(c: ArbConfig): fc.Arbitrary<UserAddrLimit> {
  return fc
    .tuple(fc.constantFrom<LimitKind>('end-at-limit', 'end-past-limit', 'start-at-limit', 'u64-wrap'), fc.bigInt(1n, 4n), gfnArb(c.profile))
    .map(([k, n, g]) => new UserAddrLimit(k, n, g));
}
