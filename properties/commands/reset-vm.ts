/** [MS-GEN-01] A fresh VM (reset()): no slots, generation i for address space i. */
import fc from 'fast-check';
import type { Op } from '../ops.js';
import type { ArbConfig } from '../arbitraries.js';
import { MemslotCommand } from './common.js';

export class ResetVm extends MemslotCommand {
  resolve(): Op {
    return { kind: 'reset' };
  }

  toString(): string {
    return 'kvm_create_vm()';
  }
}

export function resetVmArb(_c: ArbConfig): fc.Arbitrary<ResetVm> {
  return fc.constant(null).map(() => new ResetVm());
}
