/**
 * The model's state: one VM (spec/10-state.md).
 *
 * Plain immutable data. Each address space holds its slots in two persistent sorted maps, one
 * keyed by `baseGfn` and one by `id`, holding the same slot objects; every change returns new
 * maps and leaves the old ones as they were (model/internal/sorted-map.ts).
 */
import type { RuleId } from '../spec/rules.js';
import { emptyBigintMap, emptyNumberMap, type SortedMap } from './internal/sorted-map.js';
import type { ObservableState } from './invariants.js';
import type { DirtyRuns } from './dirty-bits.js';
import type { Profile } from './profiles.js';
import type { Gfn, Memslot } from './types.js';
import { KVM_X86_DEFAULT_VM, vmProfile } from './vm-types.js';

export type { SortedMap };

export interface AddressSpace {
  readonly asId: number;
  /** The generation of the active memslot set of this address space. */
  readonly generation: bigint;
  /** Live slots by baseGfn (no two share one: MS-INV-02). */
  readonly byGfn: SortedMap<Gfn, Memslot>;
  /** The same slot objects by id (MS-INV-01). */
  readonly byId: SortedMap<number, Memslot>;
}

/** A binding of a guest_memfd range to a slot: file pages `[pgoff, pgoff + npages)`. */
export interface GmemBindingRange {
  readonly pgoff: bigint;
  readonly npages: bigint;
  readonly asId: number;
  readonly id: number;
}

/** A guest_memfd file of the VM (`KVM_CREATE_GUEST_MEMFD`), named by its handle: its index in `gmems`. */
export interface GuestMemfd {
  readonly size: bigint;
  readonly flags: bigint;
  /** The bound ranges by first file page; disjoint ([MS-GMB-05]). Mirrors: `gmem->bindings` (an xarray) */
  readonly bindings: SortedMap<bigint, GmemBindingRange>;
}

export interface VmState {
  /** The kernel's profile, as given. */
  readonly kernel: Profile;
  /** The parameters of this VM: `kernel` with what its type changes ([MS-VM-02]). */
  readonly profile: Profile;
  /** `KVM_CREATE_VM`'s type argument. */
  readonly vmType: number;
  /** The VM's guest_memfd files, by handle. */
  readonly gmems: readonly GuestMemfd[];
  readonly spaces: readonly AddressSpace[];
  /** `kvm->nr_memslot_pages`: pages of every slot of every address space, internal ones included. */
  readonly nrMemslotPages: bigint;
  /** Dirty bitmaps allocated so far; the next one gets this number. */
  readonly bitmapsAllocated: number;
  /** The set bits of each live dirty bitmap, by its number (spec/25, "The bits"). */
  readonly dirtyBits: SortedMap<number, DirtyRuns>;
  /** `kvm->manual_dirty_log_protect`: KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE (1) | KVM_DIRTY_LOG_INITIALLY_SET (2). */
  readonly manualProtect: number;
  /** vCPU 0 exists: the VM's first `write` created it (KVM_CREATE_VCPU). */
  readonly vcpuCreated: boolean;
  /** vCPU 0's dirty ring (spec/25, "Dirty rings"); size 0 without one. */
  readonly ring: DirtyRing;
}

/** A dirty ring entry, `struct kvm_dirty_gfn` without its flags: the slot (`as_id << 16 | id`) and the page offset in it. */
export interface RingEntry {
  readonly slot: number;
  readonly offset: bigint;
}

export interface DirtyRing {
  /** `kvm->dirty_ring_size` in bytes; 0: the VM has no ring. */
  readonly size: number;
  /** The entries not yet reset, by ring index: `[resetIndex, dirtyIndex)`. */
  readonly entries: SortedMap<number, RingEntry>;
  /** `ring->reset_index`: the next entry KVM_RESET_DIRTY_RINGS looks at. */
  readonly resetIndex: number;
  /** User space's fetch index: the entries below it are harvested (flagged KVM_DIRTY_GFN_F_RESET). */
  readonly fetchIndex: number;
  /** `ring->dirty_index`: the next entry a push fills. */
  readonly dirtyIndex: number;
  /**
   * The pages of logged slots that KVM has mapped writable since it last protected them, per slot
   * (`as_id << 16 | id`): a write there does not fault, so it pushes nothing ([MS-RNG-10]).
   */
  readonly mapped: SortedMap<number, DirtyRuns>;
  /**
   * Slots whose logging was switched on by a FLAGS_ONLY under KVM_DIRTY_LOG_INITIALLY_SET, which
   * write-protects nothing: which of their pages are mapped writable the model cannot know, so a
   * write into them is outside the spec until a zap ([MS-RNG-11]).
   */
  readonly unknown: ReadonlySet<number>;
}

/** One model transition: the next state, the answer, and every rule that fired on the way. */
export interface Step<R> {
  readonly state: VmState;
  readonly result: R;
  readonly fired: readonly RuleId[];
  /**
   * Every memslot state that readers could observe during the request, in publish order
   * (one per swap of the active set). Empty for a request that publishes nothing.
   */
  readonly published: readonly VmState[];
}

/**
 * A fresh VM, as `kvm_create_vm()` leaves it: no slots, generation i for address space i.
 * Mirrors: kvm_create_vm()
 */
export function createVm(kernel: Profile, vmType: number = KVM_X86_DEFAULT_VM): VmState {
  const profile = vmProfile(kernel, vmType);
  const spaces: AddressSpace[] = [];
  for (let asId = 0; asId < profile.addressSpaces; asId++) {
    // [MS-GEN-01] "Generations must be different for each address space."
    spaces.push({ asId, generation: BigInt(asId), byGfn: emptyBigintMap(), byId: emptyNumberMap() });
  }
  return {
    kernel,
    profile,
    vmType,
    gmems: [],
    spaces,
    nrMemslotPages: 0n,
    bitmapsAllocated: 0,
    dirtyBits: emptyNumberMap(),
    manualProtect: 0,
    vcpuCreated: false,
    ring: { size: 0, entries: emptyNumberMap(), resetIndex: 0, fetchIndex: 0, dirtyIndex: 0, mapped: emptyNumberMap(), unknown: new Set() },
  };
}

/**
 * `vm` with the fields of `change` replaced: the next state of a step. One literal in one place
 * gives every state the same shape; `{ ...vm, field }` built a state 15 times slower, a
 * twentieth of a replay (--cpu-prof).
 */
export function vmWith(vm: VmState, change: Partial<VmState>): VmState {
  return {
    kernel: change.kernel ?? vm.kernel,
    profile: change.profile ?? vm.profile,
    vmType: change.vmType ?? vm.vmType,
    gmems: change.gmems ?? vm.gmems,
    spaces: change.spaces ?? vm.spaces,
    nrMemslotPages: change.nrMemslotPages ?? vm.nrMemslotPages,
    bitmapsAllocated: change.bitmapsAllocated ?? vm.bitmapsAllocated,
    dirtyBits: change.dirtyBits ?? vm.dirtyBits,
    manualProtect: change.manualProtect ?? vm.manualProtect,
    vcpuCreated: change.vcpuCreated ?? vm.vcpuCreated,
    ring: change.ring ?? vm.ring,
  };
}

/** The address space `asId`; the caller has checked that it exists. */
export function space(vm: VmState, asId: number): AddressSpace {
  const s = vm.spaces[asId];
  if (s === undefined) throw new RangeError(`address space ${asId} does not exist in profile ${vm.profile.name}`);
  return s;
}

/** The slot of `id` in address space `asId`, if any. */
export function findSlot(vm: VmState, asId: number, id: number): Memslot | undefined {
  // The map refuses NaN as a key; no slot has a non-integer id.
  return Number.isInteger(id) ? space(vm, asId).byId.get(id) : undefined;
}

/** The live slots of address space `asId`, ascending by baseGfn (a fresh array). */
export function memslots(vm: VmState, asId: number): Memslot[] {
  return space(vm, asId).byGfn.valuesArray();
}

/**
 * An address space holding `slots` at `generation`, for states written as data. The slots must
 * have distinct ids and distinct base gfns; checkInvariants() tells whether they are disjoint.
 */
export function addressSpace(asId: number, generation: bigint, slots: readonly Memslot[]): AddressSpace {
  let sp: AddressSpace = { asId, generation, byGfn: emptyBigintMap(), byId: emptyNumberMap() };
  for (const s of slots) {
    if (sp.byGfn.get(s.baseGfn) !== undefined || sp.byId.get(s.id) !== undefined) {
      throw new RangeError(`address space ${asId}: slot ${s.id} at gfn ${s.baseGfn} shares its id or base gfn with another`);
    }
    sp = replaceMemslot(sp, null, s, generation);
  }
  return sp;
}

/**
 * The address space with `old` replaced by `neu` and the given generation: with null `old`
 * this adds `neu`, with null `neu` it removes `old`. `sp` itself is left unchanged.
 * Mirrors: kvm_replace_memslot()
 */
export function replaceMemslot(sp: AddressSpace, old: Memslot | null, neu: Memslot | null, generation: bigint): AddressSpace {
  let byGfn = sp.byGfn;
  let byId = sp.byId;
  // A key that `neu` takes over is overwritten (`with(…, true)`) rather than removed first.
  if (old !== null && old.baseGfn !== neu?.baseGfn) byGfn = byGfn.without(old.baseGfn);
  if (old !== null && old.id !== neu?.id) byId = byId.without(old.id);
  if (neu !== null) {
    byGfn = byGfn.with(neu.baseGfn, neu, true);
    byId = byId.with(neu.id, neu, true);
  }
  return { asId: sp.asId, generation, byGfn, byId };
}

/**
 * The state as the invariants and the comparisons with implementations read it: each address
 * space's slots as an array, ascending by baseGfn.
 */
export function observableState(vm: VmState): ObservableState {
  return {
    spaces: vm.spaces.map((sp) => ({ asId: sp.asId, generation: sp.generation, slots: sp.byGfn.valuesArray() })),
    nrMemslotPages: vm.nrMemslotPages,
    dirtyRing: vm.ring.size !== 0,
  };
}

/** The last gfn a slot covers (inclusive). */
export function lastGfn(s: Pick<Memslot, 'baseGfn' | 'npages'>): bigint {
  return s.baseGfn + s.npages - 1n;
}
