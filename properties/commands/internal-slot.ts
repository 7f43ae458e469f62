/**
 * [MS-INT-01] [MS-INT-02] [MS-INT-03] [MS-VAL-09] The x86 internal slots through
 * __x86_set_memory_region(): create or delete the TSS (3 pages), the APIC access page
 * (0xfee00000) or the identity map (0xfffbc000) at the kernel's usual places, elsewhere, or
 * against a live slot; `which` 3 is the id KVM_MEM_SLOTS_NUM, past the last internal id.
 */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { INTERNAL_HVA_BASE, gfnArb, pickArb, type ArbConfig } from '../arbitraries.js';
import { MemslotCommand, hex, allSlots } from './common.js';
import { INTERNAL_SLOT_LAYOUT, PAGE_SHIFT, PAGE_SIZE } from '../../model/index.js';

export type Place = { readonly kind: 'usual' } | { readonly kind: 'gfn'; readonly gfn: bigint } | { readonly kind: 'on-slot'; readonly pick: number };

/** What a delete passes as its host address (ignored by the kernel): misaligned. */
const DELETE_HVA = 0x1001n;

const NAMES = ['tss', 'apic_access_page', 'identity_map', 'KVM_MEM_SLOTS_NUM'] as const;

export class InternalSlot extends MemslotCommand {
  constructor(
    readonly which: 0 | 1 | 2 | 3,
    readonly create: boolean,
    readonly place: Place,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const p = m.profile;
    const id = this.which === 3 ? p.memSlotsNum : p.userMemSlots + this.which;
    const npages = this.which === 0 ? INTERNAL_SLOT_LAYOUT.tssPages : 1n;
    const usual = [0xfeffd000n, INTERNAL_SLOT_LAYOUT.apicAccessPageGpa, INTERNAL_SLOT_LAYOUT.identityMapGpa, 0xfee00000n][this.which]!;
    let gpa = usual;
    if (this.place.kind === 'gfn') gpa = this.place.gfn << PAGE_SHIFT;
    if (this.place.kind === 'on-slot') {
      const all = allSlots(m);
      if (all.length > 0) gpa = all[this.place.pick % all.length]!.baseGfn << PAGE_SHIFT;
    }
    const hva = INTERNAL_HVA_BASE + BigInt(this.which) * 0x10n * PAGE_SIZE;
    // A delete passes a misaligned host address on purpose: the kernel uses the slot's own
    // (MS-INT-03), so one that used the caller's would fail MS-VAL-06.
    return { kind: 'internal', id, gpa: this.create ? gpa : 0n, size: this.create ? npages << PAGE_SHIFT : 0n, hva: this.create ? hva : DELETE_HVA };
  }

  toString(): string {
    const where = this.place.kind === 'usual' ? 'usual place' : this.place.kind === 'gfn' ? `gfn ${hex(this.place.gfn)}` : `on slot[${this.place.pick}]`;
    return `__x86_set_memory_region(${NAMES[this.which]}, ${this.create ? `create at ${where}` : 'delete'})`;
  }
}

export function internalSlotArb(c: ArbConfig): fc.Arbitrary<InternalSlot> {
  const place: fc.Arbitrary<Place> = fc.oneof(
    { arbitrary: fc.constant({ kind: 'usual' as const }), weight: 3 },
    { arbitrary: gfnArb(c.profile).map((gfn) => ({ kind: 'gfn' as const, gfn })), weight: 2 },
    { arbitrary: pickArb.map((pick) => ({ kind: 'on-slot' as const, pick })), weight: 1 },
  );
  const which = fc.oneof({ arbitrary: fc.constantFrom<0 | 1 | 2>(0, 1, 2), weight: 8 }, { arbitrary: fc.constant<3>(3), weight: 1 });
  return fc.tuple(which, fc.boolean(), place).map(([w, cr, pl]) => new InternalSlot(w, cr, pl));
}
