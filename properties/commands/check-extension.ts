/** [MS-CAP-01] .. [MS-CAP-11] KVM_CHECK_EXTENSION of each capability of the protocol, on the VM fd and on /dev/kvm. */
import fc from 'fast-check';
import { CAP_NAMES, type CapFd, type CapName } from '../../model/index.js';
import type { Op } from '../ops.js';
import type { ArbConfig } from '../arbitraries.js';
import { MemslotCommand } from './common.js';

export class CheckExtension extends MemslotCommand {
  constructor(
    readonly cap: CapName,
    readonly fd: CapFd,
  ) {
    super();
  }

  resolve(): Op {
    return { kind: 'cap', cap: this.cap, fd: this.fd };
  }

  toString(): string {
    return `check_extension(KVM_CAP_${this.cap}, ${this.fd})`;
  }
}

export function checkExtensionArb(_c: ArbConfig): fc.Arbitrary<CheckExtension> {
  return fc.tuple(fc.constantFrom(...CAP_NAMES), fc.constantFrom<CapFd>('vm', 'system')).map(([c, f]) => new CheckExtension(c, f));
}
