/**
 * [MS-ATR-01] .. [MS-ATR-06] KVM_SET_MEMORY_ATTRIBUTES over a range at or around a live slot (or
 * anywhere: attributes are not tied to slots), with edge sizes and addresses, the PRIVATE
 * attribute or others, and flags 0 or not.
 */
import fc from 'fast-check';
import { KVM_MEMORY_ATTRIBUTE_PRIVATE, PAGE_SHIFT, PAGE_SIZE, U64_MAX } from '../../model/index.js';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { gfnSelArb, gfnSelText, type ArbConfig, type GfnSel } from '../arbitraries.js';
import { MemslotCommand, hex, resolveGfn } from './common.js';

/** The address: a gfn around a slot, or a raw (edge) address. */
export type AttrAt = { readonly kind: 'gfn'; readonly at: GfnSel } | { readonly kind: 'raw'; readonly address: bigint };

export class SetMemoryAttributes extends MemslotCommand {
  constructor(
    readonly at: AttrAt,
    readonly size: bigint,
    readonly attributes: bigint,
    readonly flags: bigint,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const address = this.at.kind === 'raw' ? this.at.address : (resolveGfn(m, this.at.at).gfn << PAGE_SHIFT) & U64_MAX;
    return { kind: 'attrs', address, size: this.size, attributes: this.attributes, flags: this.flags };
  }

  toString(): string {
    const at = this.at.kind === 'raw' ? hex(this.at.address) : gfnSelText(this.at.at);
    return `set_memory_attributes(at ${at}, size=${hex(this.size)}, attributes=${hex(this.attributes)}, flags=${hex(this.flags)})`;
  }
}

export function setMemoryAttributesArb(c: ArbConfig): fc.Arbitrary<SetMemoryAttributes> {
  const at: fc.Arbitrary<AttrAt> = fc.oneof(
    { arbitrary: gfnSelArb(c.profile).map((s) => ({ kind: 'gfn' as const, at: s })), weight: 6 },
    { arbitrary: fc.constantFrom(1n, PAGE_SIZE / 2n, U64_MAX - PAGE_SIZE + 1n, U64_MAX).map((address) => ({ kind: 'raw' as const, address })), weight: 1 },
  );
  const size = fc.oneof(
    { arbitrary: fc.bigInt(1n, 16n).map((n) => n * PAGE_SIZE), weight: 8 },
    { arbitrary: fc.constantFrom(0n, 1n, PAGE_SIZE - 1n, PAGE_SIZE + 1n, U64_MAX - PAGE_SIZE + 1n), weight: 3 },
  );
  const attributes = fc.oneof(
    { arbitrary: fc.constantFrom(0n, KVM_MEMORY_ATTRIBUTE_PRIVATE), weight: 8 },
    { arbitrary: fc.nat({ max: 63 }).map((b) => 1n << BigInt(b)), weight: 2 },
  );
  const flags = fc.oneof({ arbitrary: fc.constant(0n), weight: 8 }, { arbitrary: fc.constantFrom(1n, 1n << 63n), weight: 1 });
  return fc.tuple(at, size, attributes, flags).map(([a, s, t, f]) => new SetMemoryAttributes(a, s, t, f));
}
