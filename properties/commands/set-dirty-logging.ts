/** [MS-FLG-01] [MS-DLG-06] [MS-DLG-07] [MS-DLG-08] Turn dirty logging of a live slot on or off (FLAGS_ONLY, or NONE when already so). */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { pickArb, type ArbConfig } from '../arbitraries.js';
import { TargetCommand, regionOf } from './common.js';
import { KVM_MEM_LOG_DIRTY_PAGES } from '../../model/index.js';

export class SetDirtyLogging extends TargetCommand {
  constructor(
    readonly pick: number,
    readonly on: boolean,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const r = regionOf(this.target(m));
    const flags = this.on ? r.flags | KVM_MEM_LOG_DIRTY_PAGES : r.flags & ~KVM_MEM_LOG_DIRTY_PAGES;
    return { kind: 'set', region: { ...r, flags } };
  }

  toString(): string {
    return `dirty_logging(slot[${this.pick}], ${this.on ? 'on' : 'off'})`;
  }
}

export function setDirtyLoggingArb(_c: ArbConfig): fc.Arbitrary<SetDirtyLogging> {
  return fc.tuple(pickArb, fc.boolean()).map(([p, o]) => new SetDirtyLogging(p, o));
}
