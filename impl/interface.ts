/**
 * The interface every implementation offers: the requests of the spec plus the lookups.
 * The stateful suite drives an implementation only through this interface and compares
 * each answer with the model.
 */
import type { Profile } from '../model/profiles.js';
import type { CapFd, CapName } from '../model/capabilities.js';
import type { ClearDirtyLog, EnableCapName, WriteOutcome } from '../model/dirty-log.js';
import type { RingEntry } from '../model/state.js';
import type {
  DirtyLogOutcome,
  Errno,
  Gfn,
  Gpa,
  Hva,
  HvaRangeHit,
  HvaResult,
  IoctlOutcome,
  MemoryRegion,
  MemoryRegion2,
  Memslot,
  SetOutcome,
} from '../model/types.js';

export interface MemslotImpl {
  readonly name: string;
  /** The kernel's profile, as given to the factory. */
  readonly kernel: Profile;
  /** The current VM's parameters: `kernel` with its VM type applied ([MS-VM-02]). */
  readonly profile: Profile;
  /**
   * A fresh VM of `vmType` (default 0): no slots, no guest_memfd files, generation i for address
   * space i; EINVAL and the previous VM kept for a type the kernel does not offer ([MS-VM-01]).
   * Mirrors: kvm_create_vm()
   */
  reset(vmType?: number): IoctlOutcome;
  /** Mirrors: kvm_vm_ioctl_set_memory_region() */
  setUserMemoryRegion(mem: MemoryRegion): SetOutcome;
  /** Mirrors: kvm_vm_ioctl() case KVM_SET_USER_MEMORY_REGION2 */
  setUserMemoryRegion2(mem: MemoryRegion2): SetOutcome;
  /** Mirrors: kvm_gmem_create(); a success makes the VM's next handle. */
  createGuestMemfd(size: bigint, flags: bigint): IoctlOutcome;
  /** Mirrors: kvm_vm_ioctl_set_mem_attributes() */
  setMemoryAttributes(address: bigint, size: bigint, attributes: bigint, flags: bigint): IoctlOutcome;
  /** Mirrors: KVM_CHECK_EXTENSION on the VM fd or /dev/kvm */
  checkExtension(cap: CapName, fd: CapFd): number;
  /** Mirrors: kvm_clear_dirty_log_protect() */
  clearDirtyLog(c: ClearDirtyLog): IoctlOutcome;
  /** Mirrors: kvm_vm_ioctl_enable_cap_generic() for KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 and KVM_CAP_DIRTY_LOG_RING[_ACQ_REL] */
  enableCap(cap: EnableCapName, args0: bigint, flags: number): IoctlOutcome;
  /** vCPU 0 (created by the VM's first write) writes one byte at `gpa` in address space `asId`. */
  guestWrite(asId: number, gpa: Gpa): WriteOutcome;
  /** User space's harvest of vCPU 0's dirty ring: the entries since the last harvest, flagged for reset. */
  harvestDirtyRing(): RingEntry[];
  /** Mirrors: kvm_vm_ioctl_reset_dirty_pages(); the number of entries reset. */
  resetDirtyRings(): CountOutcome;
  /** Mirrors: __x86_set_memory_region(); `hva` stands for what vm_mmap() returned. */
  setInternalMemslot(id: number, gpa: Gpa, size: bigint, hva: Hva): SetOutcome;
  /** Mirrors: kvm_get_dirty_log_protect() */
  getDirtyLog(slot: number): DirtyLogOutcome;

  /** Mirrors: id_to_memslot() */
  idToMemslot(asId: number, id: number): Memslot | null;
  /** Mirrors: __gfn_to_memslot() (with the last_used_slot cache) */
  gfnToMemslot(asId: number, gfn: Gfn): Memslot | null;
  /** Mirrors: search_memslots(..., approx = true) */
  gfnToMemslotApprox(asId: number, gfn: Gfn): Memslot | null;
  /** Mirrors: kvm_for_each_memslot_in_gfn_range(); ascending baseGfn. */
  gfnRangeMemslots(asId: number, start: Gfn, end: Gfn): Memslot[];
  /** Mirrors: kvm_handle_hva_range(); ordered by (asId, id). */
  hvaRangeMemslots(start: Hva, end: Hva): HvaRangeHit[];
  /** Mirrors: kvm_vcpu_gfn_to_memslot(), with the per-vCPU cache keyed by generation. */
  vcpuGfnToMemslot(vcpu: number, inSmm: boolean, gfn: Gfn): Memslot | null;
  /** Mirrors: kvm_is_visible_gfn() */
  isVisibleGfn(asId: number, gfn: Gfn): boolean;
  /** Mirrors: __gfn_to_hva_many() */
  gfnToHva(asId: number, gfn: Gfn, write: boolean): HvaResult;

  /** The live slots of an address space, ascending by baseGfn. */
  slots(asId: number): Memslot[];
  /** The generation of the active set of an address space. */
  generation(asId: number): bigint;
  /** `kvm->nr_memslot_pages` */
  nrMemslotPages(): bigint;
}

/** An ioctl that returns a count on success. */
export type CountOutcome = { readonly ok: true; readonly count: number } | { readonly ok: false; readonly errno: Errno };

export type ImplFactory = (profile: Profile) => MemslotImpl;

/** A MemslotImpl whose methods may return promises (an implementation behind an RPC, say). */
export type AsyncMemslotImpl = {
  readonly [K in keyof MemslotImpl]: MemslotImpl[K] extends (...a: infer A) => infer R ? (...a: A) => R | Promise<R> : MemslotImpl[K];
};

/**
 * Where a writer stops: right after it published a set of `asId` (the publish numbered
 * `epoch`), before synchronize_srcu(). It resumes once the grace period is over.
 */
export interface SyncPoint {
  readonly asId: number;
  readonly epoch: number;
}

/**
 * A writer as a sequence of steps: `next()` runs it to its next publish and yields the
 * SyncPoint, or finishes with the request's answer. The synchronous API drains it at once.
 */
export type WriterSteps<T> = Generator<SyncPoint, T, void>;

/**
 * A reader inside an SRCU read section (spec/45-atomicity.md): every lookup answers from the
 * one set it dereferenced when it entered, whatever the writer publishes meanwhile. Using it
 * after srcuReadUnlock() throws.
 */
export interface MemslotsReader {
  readonly asId: number;
  /** The publish epoch it entered at (publishes of `asId` before srcu_read_lock()). */
  readonly epoch: number;
  /** `slots->generation` of its set, read now: it may drop bit 63 while the reader is inside. */
  generation(): bigint;
  /** Mirrors: id_to_memslot() */
  idToMemslot(id: number): Memslot | null;
  /** Mirrors: __gfn_to_memslot() */
  gfnToMemslot(gfn: Gfn): Memslot | null;
  /** Mirrors: __gfn_to_hva_many() */
  gfnToHva(gfn: Gfn, write: boolean): HvaResult;
  /** Mirrors: kvm_is_visible_memslot(__gfn_to_memslot()) */
  isVisibleGfn(gfn: Gfn): boolean;
  /** A vCPU of this address space. Mirrors: kvm_vcpu_gfn_to_memslot() (its per-vCPU cache included) */
  vcpuGfnToMemslot(vcpu: number, gfn: Gfn): Memslot | null;
}

/** An implementation whose writer can run interleaved with readers. */
export interface ConcurrentMemslotImpl extends MemslotImpl {
  /** Mirrors: srcu_read_lock(&kvm->srcu) + srcu_dereference(kvm->memslots[as_id]) */
  srcuReadLock(asId: number): MemslotsReader;
  /** Mirrors: srcu_read_unlock(&kvm->srcu) */
  srcuReadUnlock(reader: MemslotsReader): void;
  /** setUserMemoryRegion() as steps: it stops after each publish (kvm_set_memslot()). */
  setUserMemoryRegionSteps(mem: MemoryRegion): WriterSteps<SetOutcome>;
  /** Resolves once every reader that entered before the publish of `point` has left. */
  gracePeriod(point: SyncPoint): Promise<void>;
}
