/**
 * Concrete operations: what a command does once its target is resolved against the model.
 *
 * Commands are pick-based ("the 3rd live slot"), so the same command means different calls in
 * different states. Reports, counterexample minimisation and traces work on the resolved `Op`
 * instead: it names every argument, and replaying it needs no model state.
 */
import { match } from 'ts-pattern';
import {
  KVM_MEM_GUEST_MEMFD,
  KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEM_READONLY,
  PAGE_SHIFT,
  hex,
  type Gfn,
  type Gpa,
  type Hva,
  type HvaRangeHit,
  type HvaResult,
  type CapFd,
  type CapName,
  type GmemRef,
  type MemoryRegion,
  type MemoryRegion2,
  type Memslot,
  type Profile,
  type ClearDirtyLog,
  type EnableCapName,
} from '../model/index.js';
import type { Request } from '../trace/trace.js';

export type Op =
  | { readonly kind: 'reset' }
  | { readonly kind: 'set'; readonly region: MemoryRegion }
  /** Several set requests that count as one step; the state is compared after the last. */
  | { readonly kind: 'bulk'; readonly regions: readonly MemoryRegion[]; readonly label: string }
  | { readonly kind: 'internal'; readonly id: number; readonly gpa: Gpa; readonly size: bigint; readonly hva: Hva }
  | { readonly kind: 'dirtyLog'; readonly slot: number }
  | { readonly kind: 'idLookup'; readonly asId: number; readonly id: number }
  /** The gfns in order: earlier lookups of the address space first, so a stale last_used_slot shows. */
  | { readonly kind: 'gfnLookup'; readonly asId: number; readonly gfns: readonly Gfn[] }
  | { readonly kind: 'approxLookup'; readonly asId: number; readonly gfn: Gfn }
  | { readonly kind: 'gfnRange'; readonly asId: number; readonly start: Gfn; readonly end: Gfn }
  | { readonly kind: 'hvaRange'; readonly start: Hva; readonly end: Hva }
  | { readonly kind: 'vcpu'; readonly vcpu: number; readonly inSmm: boolean; readonly gfns: readonly Gfn[] }
  | { readonly kind: 'visible'; readonly asId: number; readonly gfn: Gfn }
  | { readonly kind: 'gfnToHva'; readonly asId: number; readonly gfn: Gfn; readonly write: boolean }
  | { readonly kind: 'write'; readonly asId: number; readonly gpa: Gpa }
  /** Writes of one vCPU in a row (a guest touching many pages), one step; the state is compared after the last. */
  | { readonly kind: 'writes'; readonly asId: number; readonly gpas: readonly Gpa[]; readonly label: string }
  | { readonly kind: 'clearLog'; readonly clear: ClearDirtyLog }
  | { readonly kind: 'enableCap'; readonly cap: EnableCapName; readonly args0: bigint; readonly flags: number }
  /** User space's harvest of vCPU 0's dirty ring. */
  | { readonly kind: 'harvest' }
  | { readonly kind: 'resetRings' }
  // The 6.8+ memory API (spec/28).
  /** KVM_CREATE_VM of a type: a fresh VM, or the errno and the old VM ([MS-VM-01]). */
  | { readonly kind: 'createVm'; readonly vmType: number }
  | { readonly kind: 'set2'; readonly region: MemoryRegion2 }
  | { readonly kind: 'createGmem'; readonly size: bigint; readonly flags: bigint }
  | { readonly kind: 'attrs'; readonly address: bigint; readonly size: bigint; readonly attributes: bigint; readonly flags: bigint }
  | { readonly kind: 'cap'; readonly cap: CapName; readonly fd: CapFd };

/** Does the op change (or may it change) the VM? */
export function mutates(op: Op): boolean {
  return (
    op.kind === 'reset' ||
    op.kind === 'set' ||
    op.kind === 'bulk' ||
    op.kind === 'internal' ||
    op.kind === 'write' ||
    op.kind === 'writes' ||
    op.kind === 'clearLog' ||
    op.kind === 'enableCap' ||
    op.kind === 'createVm' ||
    op.kind === 'set2' ||
    op.kind === 'createGmem'
  );
}

/** Whether the op names an address space the current VM lacks (after a reset to a type with one: [MS-VM-02]); such lookups are not asked. */
export function asIdBeyond(op: Op, addressSpaces: number): boolean {
  return 'asId' in op && op.asId >= addressSpaces;
}

export function flagsText(flags: number): string {
  const names: string[] = [];
  if (flags & KVM_MEM_LOG_DIRTY_PAGES) names.push('LOG_DIRTY_PAGES');
  if (flags & KVM_MEM_READONLY) names.push('READONLY');
  if (flags & KVM_MEM_GUEST_MEMFD) names.push('GUEST_MEMFD');
  const rest = (flags & ~(KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY | KVM_MEM_GUEST_MEMFD)) >>> 0;
  if (rest !== 0) names.push(hex(rest));
  return names.length === 0 ? '0' : `${hex(flags >>> 0)} /*${names.join('|')}*/`;
}

/** `KVM_SET_USER_MEMORY_REGION(...)` as a kernel-style call. */
export function regionCall(m: MemoryRegion): string {
  const as = m.slot >>> 16;
  const id = m.slot & 0xffff;
  return (
    `KVM_SET_USER_MEMORY_REGION(slot=${hex(m.slot >>> 0)} /*as ${as}, id ${id}*/, flags=${flagsText(m.flags)}, ` +
    `guest_phys_addr=${hex(m.guestPhysAddr)}, memory_size=${hex(m.memorySize)}${pagesNote(m.memorySize)}, userspace_addr=${hex(m.userspaceAddr)})`
  );
}

/** How a guest_memfd reference reads: a handle of this VM, or the kind of fd (spec/80). */
export function gmemRefText(ref: GmemRef): string {
  return typeof ref === 'number' ? `gmem#${ref}` : ref === 'other_vm' ? "another VM's guest_memfd" : ref === 'memfd' ? 'a memfd' : 'a closed fd';
}

/** `KVM_SET_USER_MEMORY_REGION2(...)` as a kernel-style call. */
export function region2Call(m: MemoryRegion2): string {
  return `${regionCall(m).replace('KVM_SET_USER_MEMORY_REGION(', 'KVM_SET_USER_MEMORY_REGION2(').slice(0, -1)}, guest_memfd_offset=${hex(m.guestMemfdOffset)}, guest_memfd=${gmemRefText(m.guestMemfd)})`;
}

function pagesNote(size: bigint): string {
  if (size === 0n) return ' /*delete*/';
  if (size % (1n << PAGE_SHIFT) !== 0n) return '';
  const n = size >> PAGE_SHIFT;
  return ` /*${n} page${n === 1n ? '' : 's'}*/`;
}

export function internalName(profile: Profile, id: number): string {
  const names = ['TSS_PRIVATE_MEMSLOT', 'APIC_ACCESS_PAGE_PRIVATE_MEMSLOT', 'IDENTITY_PAGETABLE_PRIVATE_MEMSLOT'];
  return names[id - profile.userMemSlots] ?? 'beyond KVM_MEM_SLOTS_NUM';
}

/** The op as a readable kernel-style call. */
export function opCall(profile: Profile, op: Op): string {
  return match(op)
    .with({ kind: 'reset' }, () => 'kvm_create_vm() /*fresh VM*/')
    .with({ kind: 'set' }, ({ region }) => regionCall(region))
    .with({ kind: 'bulk' }, ({ regions, label }) => {
      const first = regions[0];
      const last = regions.at(-1);
      if (first === undefined || last === undefined) return `bulk(${label}): no requests`;
      return `bulk(${label}): ${regions.length} x KVM_SET_USER_MEMORY_REGION, first ${regionCall(first)}${regions.length > 1 ? `, last ${regionCall(last)}` : ''}`;
    })
    .with(
      { kind: 'internal' },
      (x) =>
        `__x86_set_memory_region(kvm, id=${x.id} /*${internalName(profile, x.id)}*/, gpa=${hex(x.gpa)}, size=${hex(x.size)}${pagesNote(x.size)}) /*hva ${hex(x.hva)}*/`,
    )
    .with({ kind: 'dirtyLog' }, ({ slot }) => `KVM_GET_DIRTY_LOG(slot=${hex(slot >>> 0)} /*as ${slot >>> 16}, id ${slot & 0xffff}*/)`)
    .with({ kind: 'idLookup' }, ({ asId, id }) => `id_to_memslot(__kvm_memslots(kvm, ${asId}), ${id})`)
    .with({ kind: 'gfnLookup' }, ({ asId, gfns }) => `__gfn_to_memslot(__kvm_memslots(kvm, ${asId}), gfn=${gfns.map((g) => hex(g)).join(' then ')})`)
    .with({ kind: 'approxLookup' }, ({ asId, gfn }) => `search_memslots(__kvm_memslots(kvm, ${asId}), gfn=${hex(gfn)}, approx=true)`)
    .with(
      { kind: 'gfnRange' },
      ({ asId, start, end }) => `kvm_for_each_memslot_in_gfn_range(__kvm_memslots(kvm, ${asId}), start=${hex(start)}, end=${hex(end)})`,
    )
    .with({ kind: 'hvaRange' }, ({ start, end }) => `kvm_handle_hva_range(kvm, start=${hex(start)}, end=${hex(end)})`)
    .with(
      { kind: 'vcpu' },
      ({ vcpu, inSmm, gfns }) => `kvm_vcpu_gfn_to_memslot(vcpu${vcpu}${inSmm ? ' /*in SMM*/' : ''}, gfn=${gfns.map((g) => hex(g)).join(' then ')})`,
    )
    .with({ kind: 'visible' }, ({ asId, gfn }) => `kvm_is_visible_gfn(kvm /*as ${asId}*/, gfn=${hex(gfn)})`)
    .with({ kind: 'gfnToHva' }, ({ asId, gfn, write }) => `__gfn_to_hva_many(__gfn_to_memslot(as ${asId}, ${hex(gfn)}), gfn=${hex(gfn)}, write=${write})`)
    .with({ kind: 'write' }, ({ asId, gpa }) => `guest write of one byte at gpa ${hex(gpa)} (vCPU in address space ${asId})`)
    .with(
      { kind: 'clearLog' },
      ({ clear: c }) =>
        `KVM_CLEAR_DIRTY_LOG(slot=${hex(c.slot >>> 0)}, first_page=${hex(c.firstPage)}, num_pages=${c.numPages}, bitmap=${c.bitmap === '' ? '0' : c.bitmap})`,
    )
    .with({ kind: 'writes' }, ({ asId, gpas, label }) => {
      const first = gpas[0];
      const last = gpas.at(-1);
      if (first === undefined || last === undefined) return `writes(${label}): none`;
      return `writes(${label}): ${gpas.length} guest writes of one byte (vCPU in address space ${asId}), first at gpa ${hex(first)}${gpas.length > 1 ? `, last at ${hex(last)}` : ''}`;
    })
    .with({ kind: 'enableCap' }, ({ cap, args0, flags }) => `KVM_ENABLE_CAP(KVM_CAP_${cap}, args[0]=${hex(args0)}, flags=${flags})`)
    .with({ kind: 'harvest' }, () => "harvest of vCPU 0's dirty ring (entries flagged KVM_DIRTY_GFN_F_RESET)")
    .with({ kind: 'resetRings' }, () => 'KVM_RESET_DIRTY_RINGS')
    .with({ kind: 'createVm' }, ({ vmType }) => `KVM_CREATE_VM(type=${vmType})`)
    .with({ kind: 'set2' }, ({ region }) => region2Call(region))
    .with({ kind: 'createGmem' }, ({ size, flags }) => `KVM_CREATE_GUEST_MEMFD(size=${hex(size)}, flags=${hex(flags)})`)
    .with(
      { kind: 'attrs' },
      (x) => `KVM_SET_MEMORY_ATTRIBUTES(address=${hex(x.address)}, size=${hex(x.size)}, attributes=${hex(x.attributes)}, flags=${hex(x.flags)})`,
    )
    .with({ kind: 'cap' }, ({ cap, fd }) => `KVM_CHECK_EXTENSION(KVM_CAP_${cap}) on ${fd === 'vm' ? 'the VM fd' : '/dev/kvm'}`)
    .exhaustive();
}

/** A slot in one line. `bitmap` is the dirty bitmap's identity as the model numbers it. */
export function slotText(s: Memslot | null, bitmap: string | null = s?.dirtyBitmap == null ? null : `#${s.dirtyBitmap}`): string {
  if (s === null) return 'none';
  return `{as ${s.asId} id ${s.id} gfn ${hex(s.baseGfn)}+${s.npages} flags ${hex(s.flags)} uaddr ${hex(s.userspaceAddr)} bitmap ${bitmap ?? 'none'}}`;
}

export function hitsText(hits: readonly HvaRangeHit[]): string {
  return `[${hits.map((h) => `as ${h.asId} id ${h.id} gfn ${hex(h.gfnStart)}..${hex(h.gfnEnd)}`).join(', ')}]`;
}

export function hvaText(r: HvaResult): string {
  return r.ok ? hex(r.hva) : r.error;
}

/**
 * The protocol requests that stand for the op in a trace (spec/70-traces.md), `profile` being
 * the current VM's (its address spaces decide the vCPU's). Requests the
 * protocol has map one to one; lookups it lacks are stood in for by the nearest request
 * (`exact: false`): gfn_to_memslot for the vCPU view, visibility and gfn-to-hva, get_slots for
 * id, approx and gfn-range lookups.
 */
export function traceRequests(profile: Profile, op: Op): { readonly requests: readonly Request[]; readonly exact: boolean } {
  const vcpuAs = (inSmm: boolean): number => (inSmm && profile.addressSpaces > 1 ? 1 : 0);
  return match(op)
    .with({ kind: 'reset' }, () => ({ requests: [{ op: 'reset' } as const], exact: true }))
    .with({ kind: 'set' }, ({ region }) => ({ requests: [{ op: 'set_user_memory_region', region } as const], exact: true }))
    .with({ kind: 'bulk' }, ({ regions }) => ({ requests: regions.map((region) => ({ op: 'set_user_memory_region', region }) as const), exact: true }))
    .with({ kind: 'internal' }, (x) => ({
      requests: [{ op: 'set_internal_memslot', id: x.id, guestPhysAddr: x.gpa, memorySize: x.size, userspaceAddr: x.hva } as const],
      exact: true,
    }))
    .with({ kind: 'dirtyLog' }, ({ slot }) => ({ requests: [{ op: 'get_dirty_log', slot } as const], exact: true }))
    .with({ kind: 'write' }, ({ asId, gpa }) => ({ requests: [{ op: 'write', asId, gpa } as const], exact: true }))
    .with({ kind: 'clearLog' }, ({ clear }) => ({ requests: [{ op: 'clear_dirty_log', clear } as const], exact: true }))
    .with({ kind: 'writes' }, ({ asId, gpas }) => ({ requests: gpas.map((gpa) => ({ op: 'write', asId, gpa }) as const), exact: true }))
    .with({ kind: 'enableCap' }, ({ cap, args0, flags }) => ({ requests: [{ op: 'enable_cap', cap, args0, flags } as const], exact: true }))
    .with({ kind: 'harvest' }, () => ({ requests: [{ op: 'harvest_dirty_ring' } as const], exact: true }))
    .with({ kind: 'resetRings' }, () => ({ requests: [{ op: 'reset_dirty_rings' } as const], exact: true }))
    .with({ kind: 'gfnLookup' }, ({ asId, gfns }) => ({ requests: gfns.map((gfn) => ({ op: 'gfn_to_memslot', asId, gfn }) as const), exact: true }))
    .with({ kind: 'hvaRange' }, ({ start, end }) => ({ requests: [{ op: 'hva_to_memslots', start, end } as const], exact: true }))
    .with({ kind: 'vcpu' }, ({ inSmm, gfns }) => ({ requests: gfns.map((gfn) => ({ op: 'gfn_to_memslot', asId: vcpuAs(inSmm), gfn }) as const), exact: false }))
    .with({ kind: 'visible' }, { kind: 'gfnToHva' }, ({ asId, gfn }) => ({ requests: [{ op: 'gfn_to_memslot', asId, gfn } as const], exact: false }))
    .with({ kind: 'idLookup' }, { kind: 'approxLookup' }, { kind: 'gfnRange' }, ({ asId }) => ({
      requests: [{ op: 'get_slots', asId } as const],
      exact: false,
    }))
    .with({ kind: 'createVm' }, ({ vmType }) => ({ requests: [{ op: 'reset', vmType } as const], exact: true }))
    .with({ kind: 'set2' }, ({ region }) => ({ requests: [{ op: 'set_user_memory_region2', region } as const], exact: true }))
    .with({ kind: 'createGmem' }, ({ size, flags }) => ({ requests: [{ op: 'create_guest_memfd', size, flags } as const], exact: true }))
    .with({ kind: 'attrs' }, (x) => ({
      requests: [{ op: 'set_memory_attributes', address: x.address, size: x.size, attributes: x.attributes, flags: x.flags } as const],
      exact: true,
    }))
    .with({ kind: 'cap' }, ({ cap, fd }) => ({ requests: [{ op: 'check_extension', cap, fd } as const], exact: true }))
    .exhaustive();
}
