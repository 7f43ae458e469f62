/** [MS-MOD-01] Change userspace_addr of a live slot: EINVAL. */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { pickArb, type ArbConfig } from '../arbitraries.js';
import { TargetCommand, regionOf } from './common.js';
import { PAGE_SIZE } from '../../model/index.js';

export class ChangeUserspaceAddr extends TargetCommand {
  constructor(
    readonly pick: number,
    readonly deltaPages: bigint,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const r = regionOf(this.target(m));
    const u = r.userspaceAddr + this.deltaPages * PAGE_SIZE;
    return { kind: 'set', region: { ...r, userspaceAddr: u < 0n ? r.userspaceAddr + PAGE_SIZE : u } };
  }

  toString(): string {
    return `change_userspace_addr(slot[${this.pick}], by ${this.deltaPages} pages)`;
  }
}

export function changeUserspaceAddrArb(_c: ArbConfig): fc.Arbitrary<ChangeUserspaceAddr> {
  return fc.tuple(pickArb, fc.constantFrom(-1n, 1n, 16n)).map(([p, d]) => new ChangeUserspaceAddr(p, d));
}
