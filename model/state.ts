/**
 * The model's state: one VM (spec/10-state.md).
 *
 * Plain immutable data. Each address space holds its slots as an array in ascending
 * `baseGfn` order; every change builds a new array. Nothing here is clever on purpose.
 */
import type { RuleId } from '../spec/rules.js';
import type { Profile } from './profiles.js';
import type { Memslot } from './types.js';

export interface AddressSpace {
  readonly asId: number;
  /** The generation of the active memslot set of this address space. */
  readonly generation: bigint;
  /** Live slots, ascending by baseGfn. */
  readonly slots: readonly Memslot[];
}

export interface VmState {
  readonly profile: Profile;
  readonly spaces: readonly AddressSpace[];
  /** `kvm->nr_memslot_pages`: pages of every slot of every address space, internal ones included. */
  readonly nrMemslotPages: bigint;
  /** Dirty bitmaps allocated so far; the next one gets this number. */
  readonly bitmapsAllocated: number;
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
export function createVm(profile: Profile): VmState {
  const spaces: AddressSpace[] = [];
  for (let asId = 0; asId < profile.addressSpaces; asId++) {
    // [MS-GEN-01] "Generations must be different for each address space."
    spaces.push({ asId, generation: BigInt(asId), slots: [] });
  }
  return { profile, spaces, nrMemslotPages: 0n, bitmapsAllocated: 0 };
}

/** The address space `asId`; the caller has checked that it exists. */
export function space(vm: VmState, asId: number): AddressSpace {
  const s = vm.spaces[asId];
  if (s === undefined) throw new RangeError(`address space ${asId} does not exist in profile ${vm.profile.name}`);
  return s;
}

/** The slot of `id` in address space `asId`, if any. Linear: the model keeps no index. */
export function findSlot(vm: VmState, asId: number, id: number): Memslot | undefined {
  return space(vm, asId).slots.find((s) => s.id === id);
}

/** The last gfn a slot covers (inclusive). */
export function lastGfn(s: Pick<Memslot, 'baseGfn' | 'npages'>): bigint {
  return s.baseGfn + s.npages - 1n;
}
