/** [MS-LKP-01] id_to_memslot(): the slot of an id in an address space, or none. */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { asIdArb, pickArb, slotIdArb, type ArbConfig } from '../arbitraries.js';
import { MemslotCommand, allSlots } from './common.js';

export class LookupId extends MemslotCommand {
  constructor(
    readonly pick: number | null,
    readonly asId: number,
    readonly id: number,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const all = allSlots(m);
    if (this.pick !== null && all.length > 0) {
      const s = all[this.pick % all.length]!;
      return { kind: 'idLookup', asId: s.asId, id: s.id };
    }
    return { kind: 'idLookup', asId: this.asId, id: this.id };
  }

  toString(): string {
    const abs = `as ${this.asId}, id ${this.id}`;
    return `id_to_memslot(${this.pick === null ? abs : `slot[${this.pick}] (or ${abs})`})`;
  }
}

export function lookupIdArb(c: ArbConfig): fc.Arbitrary<LookupId> {
  return fc.tuple(fc.option(pickArb, { nil: null }), asIdArb(c.profile), slotIdArb(c.profile)).map(([p, a, i]) => new LookupId(p, a, i));
}
