/**
 * vCPU 0's dirty ring as the kernel keeps it (virt/kvm/dirty_ring.c): an array of
 * `struct kvm_dirty_gfn` of a power-of-two size, indexed by free-running u32 counters, with the
 * flags user space and the kernel hand each entry back and forth by. The MMU's part, which pages
 * are mapped writable (and so push nothing when written), is a set of page offsets per slot.
 * Both implementations use it: the ring is the same in both designs.
 */
import type { EnableCapName } from '../../model/dirty-log.js';
import type { Profile } from '../../model/profiles.js';
import type { RingEntry } from '../../model/state.js';
import { KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY, KVM_MEMSLOT_INVALID, type IoctlOutcome, type Memslot } from '../../model/types.js';
import type { CountOutcome } from '../interface.js';

/** KVM_DIRTY_GFN_F_DIRTY, KVM_DIRTY_GFN_F_RESET */
const F_DIRTY = 1;
const F_RESET = 2;
const GFN_SIZE = 16;
const MAX_ENTRIES = 65536;
const PAGE_SIZE = 4096;

export class DirtyRing {
  /** `kvm->dirty_ring_size` in bytes. */
  size = 0;
  /** `kvm->created_vcpus` > 0 */
  vcpuCreated = false;
  private flags = new Uint8Array(0);
  private slots = new Uint32Array(0);
  /** Page offsets: below 2^31 (KVM_MEM_MAX_NR_PAGES), exact as doubles. */
  private offsets = new Float64Array(0);
  private dirtyIndex = 0;
  private resetIndex = 0;
  /** User space's fetch index. */
  private fetchIndex = 0;
  private softLimit = 0;
  /** Writable mappings of logged pages: slot (`as_id << 16 | id`) → page offsets. */
  private readonly writable = new Map<number, Set<number>>();

  reset(): void {
    this.size = 0;
    this.vcpuCreated = false;
    this.flags = new Uint8Array(0);
    this.dirtyIndex = this.resetIndex = this.fetchIndex = 0;
    this.writable.clear();
  }

  /** Mirrors: kvm_vm_ioctl_enable_dirty_log_ring() */
  enable(profile: Profile, cap: EnableCapName, args0: bigint): IoctlOutcome {
    const offered = cap === 'DIRTY_LOG_RING' ? profile.dirtyRingMaxBytes : profile.dirtyRingAcqRel ? profile.dirtyRingMaxBytes : 0;
    // [MS-RNG-01]
    if (offered === 0) return { ok: false, errno: 'EINVAL' };
    // [MS-RNG-02] `u32 size`
    const size = Number(BigInt.asUintN(32, args0));
    if (size === 0 || (size & (size - 1)) !== 0) return { ok: false, errno: 'EINVAL' };
    // [MS-RNG-03]
    if (size < profile.dirtyRingRsvdEntries * GFN_SIZE || size < PAGE_SIZE) return { ok: false, errno: 'EINVAL' };
    // [MS-RNG-04]
    if (size > MAX_ENTRIES * GFN_SIZE) return { ok: false, errno: 'E2BIG' };
    // [MS-RNG-05] [MS-RNG-06]
    if (this.size !== 0 || this.vcpuCreated) return { ok: false, errno: 'EINVAL' };
    // [MS-RNG-07]
    this.size = size;
    return { ok: true };
  }

  /** KVM_CREATE_VCPU for vCPU 0. Mirrors: kvm_dirty_ring_alloc() */
  createVcpu(profile: Profile): void {
    if (this.vcpuCreated) return;
    this.vcpuCreated = true;
    if (this.size === 0) return;
    const n = this.size / GFN_SIZE;
    this.flags = new Uint8Array(n);
    this.slots = new Uint32Array(n);
    this.offsets = new Float64Array(n);
    this.softLimit = n - profile.dirtyRingRsvdEntries;
  }

  private used(): number {
    return (this.dirtyIndex - this.resetIndex) >>> 0;
  }

  /** kvm_dirty_ring_check_request() on the way into the guest. */
  softFull(): boolean {
    return this.size !== 0 && this.used() >= this.softLimit;
  }

  /**
   * A write fault on a logged page (make_spte() → mark_page_dirty_in_slot()): pushes unless the
   * page is mapped writable already. @returns true when the push made the ring soft-full.
   */
  writeFault(slot: Memslot, offset: number): boolean {
    const key = (slot.asId << 16) | slot.id;
    let pages = this.writable.get(key);
    // [MS-RNG-10]
    if (pages?.has(offset) === true) return false;
    if (pages === undefined) this.writable.set(key, (pages = new Set()));
    pages.add(offset);
    // [MS-RNG-09] Mirrors: kvm_dirty_ring_push()
    const i = this.dirtyIndex & (this.flags.length - 1);
    this.slots[i] = key;
    this.offsets[i] = offset;
    this.flags[i] = F_DIRTY;
    this.dirtyIndex = (this.dirtyIndex + 1) >>> 0;
    return this.softFull();
  }

  /** [MS-RNG-11] kvm_arch_flush_shadow_memslot(): all mappings in a default VM, the slot's in others. */
  flushShadowMemslot(old: Memslot, vmType: number): void {
    if (vmType === 0) this.writable.clear();
    else this.writable.delete((old.asId << 16) | old.id);
  }

  /** [MS-RNG-11] kvm_mmu_slot_apply_flags() on a FLAGS_ONLY: logging on write-protects, off untracks. */
  slotApplyFlags(neu: Memslot): void {
    this.writable.delete((neu.asId << 16) | neu.id);
  }

  /** All mappings dropped (a SUT whose write zaps them: `write_drops_mappings`). */
  zapAll(): void {
    this.writable.clear();
  }

  /** [MS-RNG-12] User space: read from the fetch index while entries are dirty, flag each for reset. */
  harvest(): RingEntry[] {
    const out: RingEntry[] = [];
    if (this.flags.length === 0) return out;
    for (;;) {
      const i = this.fetchIndex & (this.flags.length - 1);
      if ((this.flags[i]! & F_DIRTY) === 0) break;
      out.push({ slot: this.slots[i]!, offset: BigInt(this.offsets[i]!) });
      this.flags[i] = F_RESET;
      this.fetchIndex = (this.fetchIndex + 1) >>> 0;
    }
    return out;
  }

  /** Mirrors: kvm_vm_ioctl_reset_dirty_pages() → kvm_dirty_ring_reset() */
  resetRings(profile: Profile, idToMemslot: (asId: number, id: number) => Memslot | null): CountOutcome {
    // [MS-RNG-13]
    if (profile.dirtyRingMaxBytes === 0) return { ok: false, errno: 'ENOTTY' };
    if (this.size === 0) return { ok: false, errno: 'EINVAL' };
    let count = 0;
    if (this.flags.length === 0) return { ok: true, count };
    // [MS-RNG-14] Coalesced as the kernel does: one slot, a 64-bit mask from curOffset.
    let curSlot = 0;
    let curOffset = 0;
    let mask = 0n;
    for (;;) {
      const i = this.resetIndex & (this.flags.length - 1);
      if ((this.flags[i]! & F_RESET) === 0) break;
      const slot = this.slots[i]!;
      const offset = this.offsets[i]!;
      this.flags[i] = 0;
      this.resetIndex = (this.resetIndex + 1) >>> 0;
      count++;
      if (mask !== 0n && slot === curSlot) {
        const delta = offset - curOffset;
        if (delta >= 0 && delta < 64) {
          mask |= 1n << BigInt(delta);
          continue;
        }
        if (delta > -64 && delta < 0 && BigInt.asUintN(64, mask << BigInt(-delta)) >> BigInt(-delta) === mask) {
          curOffset = offset;
          mask = (mask << BigInt(-delta)) | 1n;
          continue;
        }
      }
      this.resetDirtyGfn(profile, idToMemslot, curSlot, curOffset, mask);
      curSlot = slot;
      curOffset = offset;
      mask = 1n;
    }
    this.resetDirtyGfn(profile, idToMemslot, curSlot, curOffset, mask);
    return { ok: true, count };
  }

  /** Mirrors: kvm_reset_dirty_gfn() → kvm_arch_mmu_enable_log_dirty_pt_masked() */
  private resetDirtyGfn(profile: Profile, idToMemslot: (asId: number, id: number) => Memslot | null, slot: number, offset: number, mask: bigint): void {
    if (mask === 0n) return;
    const asId = slot >>> 16;
    const id = slot & 0xffff;
    if (asId >= profile.addressSpaces || id >= profile.userMemSlots) return;
    const memslot = idToMemslot(asId, id);
    const fls = mask.toString(2).length - 1;
    if (memslot === null || BigInt(offset) >= memslot.npages || BigInt(offset + fls) >= memslot.npages) return;
    const pages = this.writable.get(slot);
    if (pages === undefined) return;
    for (let b = 0; b <= fls; b++) if (((mask >> BigInt(b)) & 1n) !== 0n) pages.delete(offset + b);
  }
}

/**
 * What vCPU 0's write does once the lookup found `slot` (or null), with the VM's ring.
 * @returns 'dirty_ring_full' when the ring keeps the vCPU out of the guest or the push filled it,
 * null when the ring has nothing to do with this write (the bitmap path decides).
 */
export function ringWrite(ring: DirtyRing, slot: Memslot | null, offset: bigint): 'ret' | 'mmio' | 'dirty_ring_full' | null {
  if (ring.size === 0) return null;
  // [MS-RNG-08]
  if (ring.softFull()) return 'dirty_ring_full';
  // [MS-WR-01] [MS-WR-02]
  if (slot === null || (slot.flags & (KVM_MEMSLOT_INVALID | KVM_MEM_READONLY)) !== 0) return 'mmio';
  if ((slot.flags & KVM_MEM_LOG_DIRTY_PAGES) === 0) return 'ret';
  return ring.writeFault(slot, Number(offset)) ? 'dirty_ring_full' : 'ret';
}
