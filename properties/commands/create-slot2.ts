/**
 * [MS-V2-01] [MS-V2-02] [MS-GMS-01] [MS-GMS-02] [MS-GMS-03] [MS-GMS-04] [MS-GMB-01] .. [MS-GMB-06]
 * [MS-X86-02] Create a slot at a fresh id with KVM_SET_USER_MEMORY_REGION2, with or without
 * KVM_MEM_GUEST_MEMFD: the file a handle of this VM (the offset at 0, past every binding,
 * inside / overlapping / adjacent to a bound range, at or past the file's end, unaligned,
 * wrapping), another VM's guest_memfd, a memfd or a closed fd; the gfn free, anywhere, past the
 * max gfn (MS-GMB-05 against MS-X86-01 in both check orders) or at TDX's shared bit.
 */
import fc from 'fast-check';
import { KVM_MEM_GUEST_MEMFD, VM_TYPES, acceptedVmTypes, PAGE_SHIFT, PAGE_SIZE, U64_MAX, type GmemRef, type MemoryRegion2 } from '../../model/index.js';
import { flagsText } from '../ops.js';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { UADDR_BASE, asIdArb, gfnArb, npagesArb, pickArb, uaddrArb, type ArbConfig } from '../arbitraries.js';
import { MemslotCommand, freeGfnRun, freeId, hex, region, slotNr } from './common.js';

export type GfnAt =
  | { readonly kind: 'free' }
  | { readonly kind: 'gfn'; readonly gfn: bigint }
  /** The first gfn past the max gfn (MS-X86-01). */
  | { readonly kind: 'past-max' }
  /** TDX's shared bit, gfn 2^35 (MS-X86-02). */
  | { readonly kind: 'shared-bit' };

export type FdSel = { readonly kind: 'handle'; readonly pick: number } | { readonly kind: 'other_vm' | 'memfd' | 'closed' };

export type OffsetSel =
  | { readonly kind: 'zero' | 'after' | 'file-end' | 'past-end' | 'misaligned' | 'wrap' }
  | { readonly kind: 'binding'; readonly pick: number; readonly rel: 'inside' | 'head' | 'tail' | 'adjacent' | 'same' };

/**
 * The guest_memfd a selection means now: a handle of a file of this VM (for an offset relative to
 * a binding, of a file with one, when there is one; a closed fd when the VM has no file), or a
 * kind of fd.
 */
export function resolveFd(m: Readonly<ModelBox>, fd: FdSel, offset?: OffsetSel): GmemRef {
  if (fd.kind !== 'handle') return fd.kind;
  const files = m.vm.gmems.keys();
  let handles = [...files];
  if (offset?.kind === 'binding') {
    const bound = handles.filter((h) => m.vm.gmems[h]!.bindings.size > 0);
    if (bound.length > 0) handles = bound;
  }
  return handles.length === 0 ? 'closed' : handles[fd.pick % handles.length]!;
}

/** The guest_memfd_offset a selection means now, for a slot of `npages` pages bound to `ref`. */
export function resolveOffset(m: Readonly<ModelBox>, ref: GmemRef, sel: OffsetSel, npages: bigint): bigint {
  if (sel.kind === 'misaligned') return PAGE_SIZE / 2n;
  if (sel.kind === 'wrap') return U64_MAX - PAGE_SIZE + 1n;
  const file = typeof ref === 'number' ? m.vm.gmems[ref] : undefined;
  if (file === undefined || sel.kind === 'zero') return 0n;
  const pages = file.size >> PAGE_SHIFT;
  const bound = file.bindings.valuesArray();
  let pgoff: bigint;
  if (sel.kind === 'after') pgoff = bound.reduce((end, b) => (b.pgoff + b.npages > end ? b.pgoff + b.npages : end), 0n);
  else if (sel.kind === 'file-end') pgoff = pages - npages;
  else if (sel.kind === 'past-end') pgoff = pages - npages + 1n;
  else if (sel.kind === 'binding') {
    const b = bound[sel.pick % Math.max(bound.length, 1)];
    if (b === undefined) return 0n;
    const at = { same: b.pgoff, inside: b.pgoff + b.npages / 2n, head: b.pgoff - npages + 1n, tail: b.pgoff + b.npages - 1n, adjacent: b.pgoff + b.npages };
    pgoff = at[sel.rel];
  } else return 0n;
  return pgoff < 0n ? 0n : pgoff << PAGE_SHIFT;
}

export function fdSelText(fd: FdSel): string {
  return fd.kind === 'handle' ? `gmem[${fd.pick}]` : fd.kind;
}

export function offsetSelText(o: OffsetSel): string {
  return o.kind === 'binding' ? `${o.rel} binding[${o.pick}]` : o.kind;
}

export class CreateSlot2 extends MemslotCommand {
  constructor(
    readonly asId: number,
    readonly idHint: number,
    readonly at: GfnAt,
    readonly npages: bigint,
    /** Flags besides KVM_MEM_GUEST_MEMFD. */
    readonly flags: number,
    readonly gmem: boolean,
    readonly uaddr: bigint,
    readonly fd: FdSel,
    readonly offset: OffsetSel,
  ) {
    super();
  }

  /** A handle needs a file: before the VM has one, "closed" stands for it only in a minority of cases. */
  override check(m: Readonly<ModelBox>): boolean {
    return this.fd.kind !== 'handle' || m.vm.gmems.length > 0 || this.fd.pick % 4 === 0;
  }

  resolve(m: Readonly<ModelBox>): Op {
    // An address space of this VM (a type with private memory has one; v1 creates test MS-VAL-08 there).
    const asId = this.asId % m.vm.profile.addressSpaces;
    const id = freeId(m, asId, this.idHint);
    const maxGfn = m.vm.profile.maxGfn ?? (1n << 40n) - 1n;
    const gfn =
      this.at.kind === 'free' ? freeGfnRun(m, asId, this.npages) : this.at.kind === 'gfn' ? this.at.gfn : this.at.kind === 'past-max' ? maxGfn + 1n : 1n << 35n;
    const flags = (this.flags | (this.gmem ? KVM_MEM_GUEST_MEMFD : 0)) >>> 0;
    const guestMemfd = resolveFd(m, this.fd, this.offset);
    const r: MemoryRegion2 = {
      ...region(slotNr(asId, id), flags, gfn, this.npages, this.uaddr),
      guestMemfd,
      guestMemfdOffset: resolveOffset(m, guestMemfd, this.offset, this.npages),
    };
    return { kind: 'set2', region: r };
  }

  toString(): string {
    const at = this.at.kind === 'gfn' ? `gfn ${hex(this.at.gfn)}` : this.at.kind;
    return (
      `create2(slot=<as ${this.asId} (mod the VM's address spaces), first free id from ${this.idHint}>, ${at}, npages=${this.npages}, flags=${flagsText(this.flags)}` +
      `${this.gmem ? '|GUEST_MEMFD' : ''}, userspace_addr=${hex(this.uaddr)}, guest_memfd=${fdSelText(this.fd)}, offset=${offsetSelText(this.offset)})`
    );
  }
}

export function fdSelArb(): fc.Arbitrary<FdSel> {
  return fc.oneof(
    { arbitrary: pickArb.map((pick) => ({ kind: 'handle' as const, pick })), weight: 8 },
    { arbitrary: fc.constantFrom('other_vm' as const, 'memfd' as const, 'closed' as const).map((kind) => ({ kind })), weight: 3 },
  );
}

export function offsetSelArb(): fc.Arbitrary<OffsetSel> {
  return fc.oneof(
    { arbitrary: fc.constantFrom('zero' as const, 'after' as const).map((kind) => ({ kind })), weight: 4 },
    {
      arbitrary: fc
        .tuple(pickArb, fc.constantFrom('inside' as const, 'head' as const, 'tail' as const, 'adjacent' as const, 'same' as const))
        .map(([pick, rel]) => ({ kind: 'binding' as const, pick, rel })),
      weight: 6,
    },
    { arbitrary: fc.constantFrom('file-end' as const, 'past-end' as const).map((kind) => ({ kind })), weight: 2 },
    { arbitrary: fc.constantFrom('misaligned' as const, 'wrap' as const).map((kind) => ({ kind })), weight: 1 },
  );
}

export function createSlot2Arb(c: ArbConfig): fc.Arbitrary<CreateSlot2> {
  const at: fc.Arbitrary<GfnAt> = fc.oneof(
    { arbitrary: fc.constant({ kind: 'free' as const }), weight: 6 },
    { arbitrary: gfnArb(c.profile).map((gfn) => ({ kind: 'gfn' as const, gfn })), weight: 3 },
    { arbitrary: fc.constant({ kind: 'past-max' as const }), weight: 1 },
    // More often where the kernel offers a VM type with gfn_direct_bits (TDX): only there does it decide.
    {
      arbitrary: fc.constant({ kind: 'shared-bit' as const }),
      weight: VM_TYPES.some((t, i) => t.gfnDirectBits !== 0n && (acceptedVmTypes(c.profile) >>> i) & 1) ? 4 : 1,
    },
  );
  const flags = fc.oneof(
    { arbitrary: fc.constant(0), weight: 16 },
    { arbitrary: fc.constantFrom(1, 2, 3), weight: 2 },
    { arbitrary: fc.integer({ min: 3, max: 31 }).map((b) => (1 << b) >>> 0), weight: 1 },
  );
  const uaddr = fc.oneof({ arbitrary: fc.bigInt(0n, 255n).map((k) => UADDR_BASE + k * PAGE_SIZE), weight: 8 }, { arbitrary: uaddrArb(c.profile), weight: 1 });
  const npages = fc.oneof({ arbitrary: fc.bigInt(1n, 4n), weight: 8 }, { arbitrary: npagesArb(c.profile), weight: 1 });
  return fc
    .tuple(
      asIdArb(c.profile),
      fc.nat({ max: 31 }),
      at,
      npages,
      flags,
      fc.oneof({ arbitrary: fc.constant(true), weight: 3 }, { arbitrary: fc.constant(false), weight: 1 }),
      uaddr,
      fdSelArb(),
      offsetSelArb(),
    )
    .map(([as, id, a, n, f, g, u, fd, o]) => new CreateSlot2(as, id, a, n, f, g, u, fd, o));
}
