/** [MS-MAN-01] .. [MS-MAN-03] KVM_ENABLE_CAP(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) with good and bad options. */
import fc from 'fast-check';
import type { Op } from '../ops.js';
import { MemslotCommand } from './common.js';

export class ManualProtect extends MemslotCommand {
  constructor(
    readonly args0: bigint,
    readonly flags: number,
  ) {
    super();
  }

  resolve(): Op {
    return { kind: 'enableCap', cap: 'MANUAL_DIRTY_LOG_PROTECT2', args0: this.args0, flags: this.flags };
  }

  toString(): string {
    return `KVM_ENABLE_CAP(MANUAL_DIRTY_LOG_PROTECT2, args[0]=${this.args0}, flags=${this.flags})`;
  }
}

export function manualProtectArb(): fc.Arbitrary<ManualProtect> {
  return fc
    .tuple(fc.constantFrom(1n, 3n, 0n, 1n, 3n, 2n, 4n, 7n), fc.oneof({ arbitrary: fc.constant(0), weight: 5 }, { arbitrary: fc.constant(1), weight: 1 }))
    .map(([a, f]) => new ManualProtect(a, f));
}
