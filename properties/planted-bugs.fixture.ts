/**
 * Planted bugs: wrappers around a correct implementation, each breaking one rule the way real
 * memslot code has been broken. properties/planted-bugs.test.ts proves the suite catches each
 * and shrinks it to a short sequence. Nothing in impl/ is touched. Test-only: as a `*.fixture.ts`
 * file it is not compiled into the package (tsconfig.build.json).
 */
import type { Focus } from './arbitraries.js';
import * as model from '../model/index.js';
import {
  GUEST_MEMFD_FLAG_INIT_SHARED,
  KVM_MEM_GUEST_MEMFD,
  KVM_MEM_READONLY,
  PAGE_SHIFT,
  type DirtyLogOutcome,
  type Gfn,
  type Gpa,
  type Hva,
  type HvaRangeHit,
  type HvaResult,
  type MemoryRegion,
  type MemoryRegion2,
  type Memslot,
  type Profile,
  type SetOutcome,
  type EnableCapName,
  type RingEntry,
  type WriteOutcome,
} from '../model/index.js';
import type { CountOutcome, ImplFactory, MemslotImpl } from '../impl/interface.js';
import type { MemslotCommand } from './commands/index.js';
import { ringPrefix } from './commands/dirty-ring.js';

/** Forwards everything to `inner`; bugs override what they break. */
export class Delegate implements MemslotImpl {
  readonly name: string;
  readonly kernel: Profile;

  constructor(
    protected readonly inner: MemslotImpl,
    bug: string,
  ) {
    this.name = `${inner.name}+${bug}`;
    this.kernel = inner.kernel;
  }

  get profile(): Profile {
    return this.inner.profile;
  }
  reset(vmType?: number): DirtyLogOutcome {
    return this.inner.reset(vmType);
  }
  setUserMemoryRegion2(mem: MemoryRegion2): SetOutcome {
    return this.inner.setUserMemoryRegion2(mem);
  }
  createGuestMemfd(size: bigint, flags: bigint): DirtyLogOutcome {
    return this.inner.createGuestMemfd(size, flags);
  }
  setMemoryAttributes(address: bigint, size: bigint, attributes: bigint, flags: bigint): DirtyLogOutcome {
    return this.inner.setMemoryAttributes(address, size, attributes, flags);
  }
  checkExtension(cap: model.CapName, fd: model.CapFd): number {
    return this.inner.checkExtension(cap, fd);
  }
  clearDirtyLog(c: model.ClearDirtyLog): DirtyLogOutcome {
    return this.inner.clearDirtyLog(c);
  }
  enableCap(cap: EnableCapName, args0: bigint, flags: number): DirtyLogOutcome {
    return this.inner.enableCap(cap, args0, flags);
  }
  guestWrite(asId: number, gpa: Gpa): WriteOutcome {
    return this.inner.guestWrite(asId, gpa);
  }
  harvestDirtyRing(): RingEntry[] {
    return this.inner.harvestDirtyRing();
  }
  resetDirtyRings(): CountOutcome {
    return this.inner.resetDirtyRings();
  }
  setUserMemoryRegion(mem: MemoryRegion): SetOutcome {
    return this.inner.setUserMemoryRegion(mem);
  }
  setInternalMemslot(id: number, gpa: Gpa, size: bigint, hva: Hva): SetOutcome {
    return this.inner.setInternalMemslot(id, gpa, size, hva);
  }
  getDirtyLog(slot: number): DirtyLogOutcome {
    return this.inner.getDirtyLog(slot);
  }
  idToMemslot(asId: number, id: number): Memslot | null {
    return this.inner.idToMemslot(asId, id);
  }
  gfnToMemslot(asId: number, gfn: Gfn): Memslot | null {
    return this.inner.gfnToMemslot(asId, gfn);
  }
  gfnToMemslotApprox(asId: number, gfn: Gfn): Memslot | null {
    return this.inner.gfnToMemslotApprox(asId, gfn);
  }
  gfnRangeMemslots(asId: number, start: Gfn, end: Gfn): Memslot[] {
    return this.inner.gfnRangeMemslots(asId, start, end);
  }
  hvaRangeMemslots(start: Hva, end: Hva): HvaRangeHit[] {
    return this.inner.hvaRangeMemslots(start, end);
  }
  vcpuGfnToMemslot(vcpu: number, inSmm: boolean, gfn: Gfn): Memslot | null {
    return this.inner.vcpuGfnToMemslot(vcpu, inSmm, gfn);
  }
  isVisibleGfn(asId: number, gfn: Gfn): boolean {
    return this.inner.isVisibleGfn(asId, gfn);
  }
  gfnToHva(asId: number, gfn: Gfn, write: boolean): HvaResult {
    return this.inner.gfnToHva(asId, gfn, write);
  }
  slots(asId: number): Memslot[] {
    return this.inner.slots(asId);
  }
  generation(asId: number): bigint {
    return this.inner.generation(asId);
  }
  nrMemslotPages(): bigint {
    return this.inner.nrMemslotPages();
  }

  /** The slot `mem` names, if its address space exists and the slot does. */
  protected existing(mem: MemoryRegion): Memslot | null {
    return this.slotOf(mem);
  }

  /** The slot `mem` names, if its address space exists and the slot does. */
  slotOf(mem: MemoryRegion): Memslot | null {
    const asId = mem.slot >>> 16;
    return asId < this.profile.addressSpaces && (mem.slot & 0xffff) < this.profile.memSlotsNum ? this.inner.idToMemslot(asId, mem.slot & 0xffff) : null;
  }

  /** The rule that would decide `mem` on an empty VM: the request's own validity. */
  protected decidesOnEmptyVm(mem: MemoryRegion): string {
    return model.setUserMemoryRegion(model.createVm(this.profile), mem).result.rule;
  }
}

const contains = (s: Memslot, gfn: Gfn): boolean => s.baseGfn <= gfn && gfn < s.baseGfn + s.npages;

/** [MS-OVL-01] off by one: a slot that merely touches another (end == start) counts as overlapping. */
class AdjacentOverlaps extends Delegate {
  override setUserMemoryRegion(mem: MemoryRegion): SetOutcome {
    const asId = mem.slot >>> 16;
    const id = mem.slot & 0xffff;
    if (mem.memorySize > 0n && this.decidesOnEmptyVm(mem) === 'MS-CRT-02') {
      const base = mem.guestPhysAddr >> PAGE_SHIFT;
      const end = base + (mem.memorySize >> PAGE_SHIFT);
      const old = this.existing(mem);
      if (old === null || old.baseGfn !== base) {
        const near = this.inner.gfnRangeMemslots(asId, base > 0n ? base - 1n : 0n, end + 1n);
        if (near.some((s) => s.id !== id && (s.baseGfn + s.npages === base || s.baseGfn === end))) return { ok: false, errno: 'EEXIST' };
      }
    }
    return this.inner.setUserMemoryRegion(mem);
  }
}

/**
 * [MS-OVL-01] off by one the other way: a range that shares exactly one page with another slot
 * (its first page is the other's last, or the reverse) is not seen as overlapping, and the
 * request answers success.
 */
class OnePageOverlapMissed extends Delegate {
  override setUserMemoryRegion(mem: MemoryRegion): SetOutcome {
    const r = this.inner.setUserMemoryRegion(mem);
    if (r.ok || r.errno !== 'EEXIST' || this.decidesOnEmptyVm(mem) !== 'MS-CRT-02') return r;
    const asId = mem.slot >>> 16;
    const id = mem.slot & 0xffff;
    const base = mem.guestPhysAddr >> PAGE_SHIFT;
    const end = base + (mem.memorySize >> PAGE_SHIFT);
    const clashes = this.inner.gfnRangeMemslots(asId, base, end).filter((s) => s.id !== id);
    const onePage = (s: Memslot): boolean => (end < s.baseGfn + s.npages ? end : s.baseGfn + s.npages) - (base > s.baseGfn ? base : s.baseGfn) === 1n;
    if (clashes.length > 0 && clashes.every(onePage)) return { ok: true, change: this.existing(mem) === null ? 'CREATE' : 'MOVE' };
    return r;
  }
}

/** A stale gfn index: after a DELETE, gfn lookups in the deleted range still find the deleted slot. */
class StaleGfnIndexAfterDelete extends Delegate {
  private deleted: Memslot[] = [];
  override reset(vmType?: number): DirtyLogOutcome {
    this.deleted = [];
    return super.reset(vmType);
  }
  override setUserMemoryRegion(mem: MemoryRegion): SetOutcome {
    const old = this.existing(mem);
    const r = this.inner.setUserMemoryRegion(mem);
    if (r.ok && r.change === 'DELETE' && old !== null) this.deleted.push(old);
    return r;
  }
  override gfnToMemslot(asId: number, gfn: Gfn): Memslot | null {
    return this.inner.gfnToMemslot(asId, gfn) ?? this.deleted.find((s) => s.asId === asId && contains(s, gfn)) ?? null;
  }
}

/**
 * A missed replay on the second memslot set: the DELETE reached only one of the two sets, so
 * the next change, made on the other set, brings the deleted slot back.
 */
class DeleteResurrectedByNextChange extends Delegate {
  private pending: MemoryRegion | null = null;
  override reset(vmType?: number): DirtyLogOutcome {
    this.pending = null;
    return super.reset(vmType);
  }
  override setUserMemoryRegion(mem: MemoryRegion): SetOutcome {
    const old = this.existing(mem);
    const r = this.inner.setUserMemoryRegion(mem);
    if (!r.ok || r.change === 'NONE') return r;
    if (this.pending !== null) {
      this.inner.setUserMemoryRegion(this.pending);
      this.pending = null;
    }
    if (r.change === 'DELETE' && old !== null) {
      this.pending = {
        slot: mem.slot,
        flags: old.flags,
        guestPhysAddr: old.baseGfn << PAGE_SHIFT,
        memorySize: old.npages << PAGE_SHIFT,
        userspaceAddr: old.userspaceAddr,
      };
    }
    return r;
  }
}

/** last_used_slot is not reset when its slot is deleted or moved: gfn lookups keep answering it. */
class StaleLastUsedSlot extends Delegate {
  private lastUsed = new Map<number, Memslot>();
  override reset(vmType?: number): DirtyLogOutcome {
    this.lastUsed.clear();
    return super.reset(vmType);
  }
  override gfnToMemslot(asId: number, gfn: Gfn): Memslot | null {
    const cached = this.lastUsed.get(asId);
    if (cached !== undefined && contains(cached, gfn)) return cached;
    const r = this.inner.gfnToMemslot(asId, gfn);
    if (r !== null) this.lastUsed.set(asId, r);
    return r;
  }
}

/** [MS-LKP-07] The per-vCPU cache ignores the generation: a vCPU keeps answering a slot deleted or moved since. */
class StaleVcpuCache extends Delegate {
  private readonly cache = new Map<number, Memslot>();
  override reset(vmType?: number): DirtyLogOutcome {
    this.cache.clear();
    return super.reset(vmType);
  }
  override vcpuGfnToMemslot(vcpu: number, inSmm: boolean, gfn: Gfn): Memslot | null {
    const cached = this.cache.get(vcpu);
    if (cached !== undefined && contains(cached, gfn)) return cached;
    const r = this.inner.vcpuGfnToMemslot(vcpu, inSmm, gfn);
    if (r !== null) this.cache.set(vcpu, r);
    return r;
  }
}

/** [MS-LKP-06] A vCPU in SMM looks up address space 0. */
class SmmIgnored extends Delegate {
  override vcpuGfnToMemslot(vcpu: number, _inSmm: boolean, gfn: Gfn): Memslot | null {
    return this.inner.vcpuGfnToMemslot(vcpu, false, gfn);
  }
}

/** [MS-GEN-03] A MOVE publishes once: the generation grows by N instead of 2N. */
class MoveBumpsGenerationOnce extends Delegate {
  private readonly deficit = new Map<number, bigint>();
  override reset(vmType?: number): DirtyLogOutcome {
    this.deficit.clear();
    return super.reset(vmType);
  }
  override setUserMemoryRegion(mem: MemoryRegion): SetOutcome {
    const r = this.inner.setUserMemoryRegion(mem);
    if (r.ok && r.change === 'MOVE') {
      const asId = mem.slot >>> 16;
      this.deficit.set(asId, (this.deficit.get(asId) ?? 0n) + BigInt(this.profile.addressSpaces));
    }
    return r;
  }
  override generation(asId: number): bigint {
    return this.inner.generation(asId) - (this.deficit.get(asId) ?? 0n);
  }
}

/** [MS-DEL-01] Deleting a slot that does not exist returns 0. */
class DeleteMissingSucceeds extends Delegate {
  override setUserMemoryRegion(mem: MemoryRegion): SetOutcome {
    const r = this.inner.setUserMemoryRegion(mem);
    if (!r.ok && mem.memorySize === 0n && this.decidesOnEmptyVm(mem) === 'MS-DEL-01') return { ok: true, change: 'DELETE' };
    return r;
  }
}

/** [MS-MOD-03] Toggling KVM_MEM_READONLY on a live slot is accepted (as a flags change). */
class ReadonlyToggleAccepted extends Delegate {
  override setUserMemoryRegion(mem: MemoryRegion): SetOutcome {
    const old = this.existing(mem);
    if (
      old !== null &&
      mem.memorySize === old.npages << PAGE_SHIFT &&
      mem.userspaceAddr === old.userspaceAddr &&
      ((mem.flags ^ old.flags) & KVM_MEM_READONLY) !== 0
    ) {
      const r = this.inner.setUserMemoryRegion({ ...mem, flags: (mem.flags & ~KVM_MEM_READONLY) | (old.flags & KVM_MEM_READONLY) });
      return r.ok && r.change === 'NONE' ? { ok: true, change: 'FLAGS_ONLY' } : r;
    }
    return this.inner.setUserMemoryRegion(mem);
  }
}

/** [MS-VAL-02] The user id bound is off by one: slot id KVM_USER_MEM_SLOTS (32764 on mainline) is accepted. */
class FirstInternalIdAccepted extends Delegate {
  override setUserMemoryRegion(mem: MemoryRegion): SetOutcome {
    const r = this.inner.setUserMemoryRegion(mem);
    if ((mem.slot & 0xffff) === this.profile.userMemSlots && mem.memorySize > 0n && this.decidesOnEmptyVm(mem) === 'MS-VAL-02') {
      return { ok: true, change: 'CREATE' };
    }
    return r;
  }
}

/** [MS-DLB-02] KVM_GET_DIRTY_LOG without manual protect does not clear: every later read still shows the bits. */
class GetDoesNotClear extends Delegate {
  private seen = new Map<number, string>();
  override reset(vmType?: number): DirtyLogOutcome {
    this.seen.clear();
    return super.reset(vmType);
  }
  override setUserMemoryRegion(mem: MemoryRegion): SetOutcome {
    const r = this.inner.setUserMemoryRegion(mem);
    // A new bitmap (create, logging switched on) starts from what the kernel says.
    if (r.ok && r.change !== 'MOVE') this.seen.delete(mem.slot);
    return r;
  }
  override getDirtyLog(slot: number): DirtyLogOutcome {
    const r = this.inner.getDirtyLog(slot);
    if (!r.ok || r.bitmap === undefined) return r;
    const acc = orHex(this.seen.get(slot) ?? '', r.bitmap);
    this.seen.set(slot, acc);
    return { ok: true, bitmap: acc };
  }
}

/** Bytewise OR of two bitmaps in the protocol's hex (trailing zero bytes left out). */
function orHex(a: string, b: string): string {
  const n = Math.max(a.length, b.length) / 2;
  let out = '';
  for (let i = 0; i < n; i++)
    out += ((parseInt(a.slice(2 * i, 2 * i + 2) || '0', 16) | parseInt(b.slice(2 * i, 2 * i + 2) || '0', 16)) & 0xff).toString(16).padStart(2, '0');
  return out.replace(/(00)+$/, '');
}

/** [MS-CLR-05] KVM_CLEAR_DIRTY_LOG ignores where the range ends: it clears every set bit of the buffer's words up to the slot's end. */
class ClearIgnoresRangeEnd extends Delegate {
  override clearDirtyLog(c: model.ClearDirtyLog): DirtyLogOutcome {
    // The checks decide as before (an empty buffer clears nothing) ...
    const r = this.inner.clearDirtyLog({ ...c, bitmap: '' });
    const slot = this.inner.idToMemslot(c.slot >>> 16, c.slot & 0xffff);
    if (!r.ok || slot === null) return r;
    // ... then the clear runs to the end of the slot, with every bit past the range set in the buffer.
    const toEnd = Number(slot.npages - c.firstPage);
    const words = Math.ceil(c.numPages / 64) * 16;
    const bitmap = c.bitmap.padEnd(words, '0') + 'ff'.repeat(Math.ceil(toEnd / 8));
    return this.inner.clearDirtyLog({ ...c, numPages: toEnd, bitmap: bitmap.slice(0, Math.ceil(toEnd / 64) * 16) });
  }
}

/** [MS-DLG-06] A MOVE drops the dirty bitmap and gives the slot a fresh one (bits lost). */
class BitmapDroppedOnMove extends Delegate {
  override setUserMemoryRegion(mem: MemoryRegion): SetOutcome {
    const r = this.inner.setUserMemoryRegion(mem);
    if (r.ok && r.change === 'MOVE' && (mem.flags & model.KVM_MEM_LOG_DIRTY_PAGES) !== 0) {
      // Logging off and on again: what a MOVE that reallocates does.
      this.inner.setUserMemoryRegion({ ...mem, flags: mem.flags & ~model.KVM_MEM_LOG_DIRTY_PAGES });
      this.inner.setUserMemoryRegion(mem);
    }
    return r;
  }
}

// Dirty rings (spec/25, "Dirty rings").

/** Whether `cap` is a ring cap. */
const isRingCap = (cap: EnableCapName): boolean => cap !== 'MANUAL_DIRTY_LOG_PROTECT2';

/** [MS-DLG-09] KVM_GET_DIRTY_LOG misses its `kvm_use_dirty_bitmap()` check: with a ring it runs the bitmap checks as if there were none. */
class GetDirtyLogWithRing extends Delegate {
  private ring = false;
  override reset(vmType?: number): DirtyLogOutcome {
    this.ring = false;
    return super.reset(vmType);
  }
  override enableCap(cap: EnableCapName, args0: bigint, flags: number): DirtyLogOutcome {
    const r = this.inner.enableCap(cap, args0, flags);
    if (r.ok && isRingCap(cap)) this.ring = true;
    return r;
  }
  override getDirtyLog(slot: number): DirtyLogOutcome {
    const r = this.inner.getDirtyLog(slot);
    if (!this.ring) return r;
    const asId = slot >>> 16;
    const id = slot & 0xffff;
    if (asId >= this.profile.addressSpaces || id >= this.profile.userMemSlots) return { ok: false, errno: 'EINVAL' };
    const s = this.inner.idToMemslot(asId, id);
    return s === null || s.dirtyBitmap === null ? { ok: false, errno: 'ENOENT' } : { ok: true };
  }
}

/** [MS-RNG-06] A ring enable checks `kvm->created_vcpus` no more: it is accepted after the VM's first write. */
class RingAfterVcpu extends Delegate {
  private ring = false;
  private vcpu = false;
  override reset(vmType?: number): DirtyLogOutcome {
    this.ring = this.vcpu = false;
    return super.reset(vmType);
  }
  override guestWrite(asId: number, gpa: Gpa): WriteOutcome {
    this.vcpu = true;
    return this.inner.guestWrite(asId, gpa);
  }
  override enableCap(cap: EnableCapName, args0: bigint, flags: number): DirtyLogOutcome {
    const r = this.inner.enableCap(cap, args0, flags);
    if (r.ok && isRingCap(cap)) this.ring = true;
    // What an enable would answer before any vCPU: then only the vCPU refused it.
    const fresh = model.enableCap(model.createVm(this.kernel), cap, args0, flags).result;
    if (!r.ok && isRingCap(cap) && this.vcpu && !this.ring && fresh.ok) {
      this.ring = true;
      return { ok: true };
    }
    return r;
  }
}

/**
 * The ring's internals, patched on the instance (TypeScript's private members are plain
 * properties at runtime): the bugs below live inside kvm_dirty_ring_push() and
 * kvm_dirty_ring_reset(), which no wrapper of the public API reaches.
 */
interface RingInternals {
  size: number;
  used(): number;
  softFull(): boolean;
  writeFault(slot: Memslot, offset: number): boolean;
  resetDirtyGfn(...args: unknown[]): void;
  softLimit: number;
  writable: Map<number, Set<number>>;
}

function ringOf(impl: MemslotImpl): RingInternals {
  const ring = (impl as unknown as { bitmaps?: { ring?: RingInternals } }).bitmaps?.ring;
  if (ring === undefined || typeof ring.resetDirtyGfn !== 'function' || typeof ring.writeFault !== 'function') {
    throw new Error(`${impl.name}: no dirty ring where the planted ring bugs expect it (impl/internal/dirty-rings.ts changed?)`);
  }
  return ring;
}

/** [MS-RNG-14] KVM_RESET_DIRTY_RINGS resets the entries but does not write-protect their pages: a later write to one pushes nothing. */
class ResetDoesNotReprotect extends Delegate {
  constructor(inner: MemslotImpl, bug: string) {
    super(inner, bug);
    ringOf(inner).resetDirtyGfn = () => {};
  }
}

/** [MS-RNG-10] A push ignores the MMU: every write into a logged page pushes, mapped writable or not (duplicate entries). */
class PushIgnoresMapping extends Delegate {
  constructor(inner: MemslotImpl, bug: string) {
    super(inner, bug);
    const ring = ringOf(inner);
    const writeFault = ring.writeFault.bind(ring);
    ring.writeFault = (slot, offset) => {
      ring.writable.get((slot.asId << 16) | slot.id)?.delete(offset);
      return writeFault(slot, offset);
    };
  }
}

/** [MS-RNG-08] The soft limit is off by one: `kvm_dirty_ring_soft_full()` compares with `>`, so the ring takes one entry more before the vCPU stops. */
class SoftLimitOffByOne extends Delegate {
  constructor(inner: MemslotImpl, bug: string) {
    super(inner, bug);
    const ring = ringOf(inner);
    ring.softFull = () => ring.size !== 0 && ring.used() > ring.softLimit;
  }
}

// Chapter 28: the 6.8+ memory API (spec/28-memory-api.md).

/** Whether `mem` is a v2 CREATE with KVM_MEM_GUEST_MEMFD for a file of this VM (a handle). */
function gmemCreate(d: Delegate, mem: MemoryRegion2): mem is MemoryRegion2 & { readonly guestMemfd: number } {
  return (mem.flags & KVM_MEM_GUEST_MEMFD) !== 0 && mem.memorySize > 0n && typeof mem.guestMemfd === 'number' && d.slotOf(mem) === null;
}

/** The file ranges bound to live slots, from the slots' own bindings: `[pgoff, pgoff + npages)` of `file`. */
function boundRanges(inner: MemslotImpl, file: number): { pgoff: bigint; npages: bigint }[] {
  const out: { pgoff: bigint; npages: bigint }[] = [];
  for (let asId = 0; asId < inner.profile.addressSpaces; asId++) {
    for (const s of inner.slots(asId)) if (s.gmem !== null && s.gmem.file === file) out.push({ pgoff: s.gmem.pgoff, npages: s.npages });
  }
  return out;
}

/** [MS-GMS-05] A guest_memfd slot re-issued exactly as it is answers 0, as MS-NOP-01 says for other slots. */
class GmemReissueAccepted extends Delegate {
  override setUserMemoryRegion2(mem: MemoryRegion2): SetOutcome {
    const old = this.slotOf(mem);
    const r = this.inner.setUserMemoryRegion2(mem);
    if (
      !r.ok &&
      old?.gmem != null &&
      mem.memorySize === old.npages << PAGE_SHIFT &&
      mem.guestPhysAddr === old.baseGfn << PAGE_SHIFT &&
      mem.userspaceAddr === old.userspaceAddr &&
      mem.flags === old.flags
    ) {
      return { ok: true, change: 'NONE' };
    }
    return r;
  }
}

/**
 * [MS-GMB-05] The already-bound check compares only start offsets: a range that overlaps a bound
 * one without starting where it does is bound anyway.
 */
class GmemOverlapStartOnly extends Delegate {
  override setUserMemoryRegion2(mem: MemoryRegion2): SetOutcome {
    const r = this.inner.setUserMemoryRegion2(mem);
    if (r.ok || r.errno !== this.profile.gmemBindErrno || !gmemCreate(this, mem)) return r;
    const pgoff = mem.guestMemfdOffset >> PAGE_SHIFT;
    const end = pgoff + (mem.memorySize >> PAGE_SHIFT);
    const bound = boundRanges(this.inner, mem.guestMemfd);
    const overlaps = bound.filter((b) => pgoff < b.pgoff + b.npages && b.pgoff < end);
    const asId = mem.slot >>> 16;
    const gfn = mem.guestPhysAddr >> PAGE_SHIFT;
    const gfnClash = this.inner.gfnRangeMemslots(asId, gfn, gfn + (mem.memorySize >> PAGE_SHIFT)).length > 0;
    if (!gfnClash && overlaps.length > 0 && overlaps.every((b) => b.pgoff !== pgoff)) return { ok: true, change: 'CREATE' };
    return r;
  }
}

/** [MS-GMB-06] A delete does not unbind: the file range of a deleted guest_memfd slot cannot be bound again. */
class DeleteKeepsBinding extends Delegate {
  private ghosts: { file: number; pgoff: bigint; npages: bigint }[] = [];
  override reset(vmType?: number): DirtyLogOutcome {
    const r = super.reset(vmType);
    if (r.ok) this.ghosts = [];
    return r;
  }
  private deleting(mem: MemoryRegion, r: SetOutcome, old: Memslot | null): SetOutcome {
    if (r.ok && r.change === 'DELETE' && old?.gmem != null) this.ghosts.push({ file: old.gmem.file, pgoff: old.gmem.pgoff, npages: old.npages });
    return r;
  }
  override setUserMemoryRegion(mem: MemoryRegion): SetOutcome {
    const old = this.slotOf(mem);
    return this.deleting(mem, this.inner.setUserMemoryRegion(mem), old);
  }
  override setUserMemoryRegion2(mem: MemoryRegion2): SetOutcome {
    const old = this.slotOf(mem);
    if (gmemCreate(this, mem)) {
      const pgoff = mem.guestMemfdOffset >> PAGE_SHIFT;
      const end = pgoff + (mem.memorySize >> PAGE_SHIFT);
      const r = this.inner.setUserMemoryRegion2(mem);
      if (r.ok && this.ghosts.some((g) => g.file === mem.guestMemfd && pgoff < g.pgoff + g.npages && g.pgoff < end)) {
        this.inner.setUserMemoryRegion2({ ...mem, memorySize: 0n });
        return { ok: false, errno: this.profile.gmemBindErrno };
      }
      return r;
    }
    return this.deleting(mem, this.inner.setUserMemoryRegion2(mem), old);
  }
}

/** [MS-GMF-02] The supported guest_memfd flags are the kernel's, not the VM's: INIT_SHARED is accepted on a VM with private memory. */
class InitSharedOnPrivateVm extends Delegate {
  override createGuestMemfd(size: bigint, flags: bigint): DirtyLogOutcome {
    const r = this.inner.createGuestMemfd(size, flags);
    if (!r.ok && (flags & GUEST_MEMFD_FLAG_INIT_SHARED) !== 0n && (flags & ~this.kernel.guestMemfdFlags) === 0n) {
      return this.inner.createGuestMemfd(size, flags & ~GUEST_MEMFD_FLAG_INIT_SHARED);
    }
    return r;
  }
}

/**
 * [MS-GMB-05] 7.3's check order on 7.2: the already-bound check runs after MS-X86-01, so a
 * CREATE that overlaps a binding and passes the max gfn answers EINVAL, where 7.2 answers EEXIST.
 * (6.18 answers EINVAL to both checks: there the order cannot be seen.)
 */
class BindCheckAfterArchChecks extends Delegate {
  override setUserMemoryRegion2(mem: MemoryRegion2): SetOutcome {
    const r = this.inner.setUserMemoryRegion2(mem);
    const last = (mem.guestPhysAddr >> PAGE_SHIFT) + (mem.memorySize >> PAGE_SHIFT) - 1n;
    const maxGfn = this.profile.maxGfn;
    if (!r.ok && r.errno === 'EEXIST' && maxGfn !== null && last > maxGfn && gmemCreate(this, mem)) return { ok: false, errno: 'EINVAL' };
    return r;
  }
}

/** [MS-GMB-05] 7.2's check order on 7.3: a CREATE that overlaps a binding and passes the max gfn answers EEXIST, where 7.3 answers EINVAL (MS-X86-01). */
class BindCheckBeforeArchChecks extends Delegate {
  override setUserMemoryRegion2(mem: MemoryRegion2): SetOutcome {
    const r = this.inner.setUserMemoryRegion2(mem);
    const last = (mem.guestPhysAddr >> PAGE_SHIFT) + (mem.memorySize >> PAGE_SHIFT) - 1n;
    const maxGfn = this.profile.maxGfn;
    if (r.ok || r.errno !== 'EINVAL' || maxGfn === null || last <= maxGfn || !gmemCreate(this, mem)) return r;
    const pgoff = mem.guestMemfdOffset >> PAGE_SHIFT;
    const end = pgoff + (mem.memorySize >> PAGE_SHIFT);
    const asId = mem.slot >>> 16;
    const gfn = mem.guestPhysAddr >> PAGE_SHIFT;
    const gfnClash = this.inner.gfnRangeMemslots(asId, gfn, gfn + (mem.memorySize >> PAGE_SHIFT)).length > 0;
    const bound = boundRanges(this.inner, mem.guestMemfd).some((b) => pgoff < b.pgoff + b.npages && b.pgoff < end);
    return !gfnClash && bound ? { ok: false, errno: 'EEXIST' } : r;
  }
}

/** [MS-GMS-03] KVM_MEM_GUEST_MEMFD with KVM_MEM_READONLY is accepted (READONLY is dropped). */
class GmemReadonlyAccepted extends Delegate {
  override setUserMemoryRegion2(mem: MemoryRegion2): SetOutcome {
    const r = this.inner.setUserMemoryRegion2(mem);
    if (!r.ok && (mem.flags & KVM_MEM_GUEST_MEMFD) !== 0 && (mem.flags & KVM_MEM_READONLY) !== 0 && this.profile.readonlyMem) {
      const again = this.inner.setUserMemoryRegion2({ ...mem, flags: mem.flags & ~KVM_MEM_READONLY });
      if (again.ok) return again;
    }
    return r;
  }
}

/** A planted bug: its name, the rule it breaks, and how to wrap an implementation with it. */
export interface PlantedBug {
  readonly name: string;
  readonly rule: string;
  readonly wrap: (inner: ImplFactory) => ImplFactory;
  /** The profiles where it shows (default x86_64 and linux-5.10-x86_64). */
  readonly profiles?: readonly string[];
  /** The most steps its shrunk counterexample may take (default 6). */
  readonly maxSteps?: number;
  /** Commands drawn more often for it (ArbConfig.focus). */
  readonly focus?: Focus;
  /** Commands every sequence starts with (counted in its steps). */
  readonly prefix?: () => MemslotCommand[];
}

const plant =
  (make: new (inner: MemslotImpl, bug: string) => Delegate, bug: string) =>
  (inner: ImplFactory): ImplFactory =>
  (profile) =>
    new make(inner(profile), bug);

/** Every planted bug. */
export const PLANTED_BUGS: readonly PlantedBug[] = [
  {
    name: 'KVM_GET_DIRTY_LOG does not clear without manual protect',
    rule: 'MS-DLB-02',
    wrap: plant(GetDoesNotClear, 'get-does-not-clear'),
    // A write, then two reads of its slot: rare in the general mix, more so since rings answer ENXIO to reads.
    focus: 'dirty-bitmaps',
  },
  { name: 'KVM_CLEAR_DIRTY_LOG ignores the end of its range', rule: 'MS-CLR-05', wrap: plant(ClearIgnoresRangeEnd, 'clear-ignores-end') },
  { name: 'the dirty bitmap dropped on MOVE', rule: 'MS-DLG-06', wrap: plant(BitmapDroppedOnMove, 'bitmap-dropped-on-move') },
  { name: 'adjacent slots treated as overlapping', rule: 'MS-OVL-01', wrap: plant(AdjacentOverlaps, 'adjacent-overlap') },
  { name: 'a one-page overlap missed', rule: 'MS-OVL-01', wrap: plant(OnePageOverlapMissed, 'one-page-overlap') },
  {
    name: 'stale gfn index after delete',
    rule: 'MS-LKP-02',
    wrap: plant(StaleGfnIndexAfterDelete, 'stale-gfn-index'),
    // The gfn index is the same under every profile; with 5.10's 509 ids the delete-then-lookup
    // it needs comes within 30 runs, under x86_64 only after 200 (7 s of the suite, close to its run limit).
    profiles: ['linux-5.10-x86_64'],
  },
  {
    name: 'missed replay on the second set: the next change resurrects a deleted slot',
    rule: 'MS-DEL-02',
    wrap: plant(DeleteResurrectedByNextChange, 'resurrect'),
  },
  { name: 'last_used_slot left pointing at a deleted slot', rule: 'MS-LKP-02', wrap: plant(StaleLastUsedSlot, 'stale-last-used') },
  { name: 'per-vCPU cache used across generations', rule: 'MS-LKP-07', wrap: plant(StaleVcpuCache, 'stale-vcpu-cache') },
  { name: 'a vCPU in SMM looks up address space 0', rule: 'MS-LKP-06', wrap: plant(SmmIgnored, 'smm-ignored') },
  { name: 'generation bumped by N, not 2N, for MOVE', rule: 'MS-GEN-03', wrap: plant(MoveBumpsGenerationOnce, 'move-gen-once') },
  { name: 'delete of a missing slot returns 0', rule: 'MS-DEL-01', wrap: plant(DeleteMissingSucceeds, 'delete-missing-ok') },
  { name: 'READONLY toggle accepted', rule: 'MS-MOD-03', wrap: plant(ReadonlyToggleAccepted, 'readonly-toggle') },
  { name: 'slot id KVM_USER_MEM_SLOTS accepted', rule: 'MS-VAL-02', wrap: plant(FirstInternalIdAccepted, 'id-bound') },
  {
    name: 'an identical re-issue of a guest_memfd slot answers 0',
    rule: 'MS-GMS-05',
    wrap: plant(GmemReissueAccepted, 'gmem-reissue'),
    profiles: ['x86_64', 'linux-7.3-x86_64'],
  },
  {
    name: 'the already-bound check compares only start offsets',
    rule: 'MS-GMB-05',
    wrap: plant(GmemOverlapStartOnly, 'gmem-overlap-start'),
    profiles: ['x86_64', 'linux-7.3-x86_64'],
  },
  {
    name: 'a delete does not unbind the guest_memfd range',
    rule: 'MS-GMB-06',
    wrap: plant(DeleteKeepsBinding, 'gmem-no-unbind'),
    profiles: ['x86_64', 'linux-7.3-x86_64-sw-protected'],
    // Four requests in a row (a file, a slot on it, its delete, a slot on the freed range): in
    // the general mix under 1 run in 100 has them, and seed 2 missed it in 300 runs.
    focus: 'guest-memfd',
  },
  {
    name: 'INIT_SHARED accepted on a VM with private memory',
    rule: 'MS-GMF-02',
    wrap: plant(InitSharedOnPrivateVm, 'init-shared-private'),
    profiles: ['linux-7.3-x86_64-sw-protected', 'linux-7.3-x86_64-intel-tdx'],
  },
  {
    name: "7.3's check order (already bound after the max gfn) on 7.2",
    rule: 'MS-GMB-05',
    wrap: plant(BindCheckAfterArchChecks, 'bind-late'),
    profiles: ['linux-7.2-x86_64'],
  },
  {
    name: "7.2's check order (already bound before the max gfn) on 7.3",
    rule: 'MS-GMB-05',
    wrap: plant(BindCheckBeforeArchChecks, 'bind-early'),
    profiles: ['linux-7.3-x86_64'],
  },
  { name: 'GUEST_MEMFD with READONLY accepted', rule: 'MS-GMS-03', wrap: plant(GmemReadonlyAccepted, 'gmem-readonly'), profiles: ['x86_64'] },
  // Dirty rings: none on 5.10.
  {
    name: 'KVM_GET_DIRTY_LOG with a dirty ring does not fail with ENXIO',
    rule: 'MS-DLG-09',
    wrap: plant(GetDirtyLogWithRing, 'get-log-with-ring'),
    profiles: ['x86_64'],
  },
  { name: 'a dirty ring enabled after the vCPU exists', rule: 'MS-RNG-06', wrap: plant(RingAfterVcpu, 'ring-after-vcpu'), profiles: ['x86_64'] },
  {
    name: 'KVM_RESET_DIRTY_RINGS does not write-protect the pages again',
    rule: 'MS-RNG-14',
    wrap: plant(ResetDoesNotReprotect, 'reset-no-reprotect'),
    profiles: ['x86_64'],
    focus: 'dirty-rings',
    prefix: () => ringPrefix('DIRTY_LOG_RING'),
    // enable, create, write, harvest, reset, write, harvest: the missing push shows only in a harvest.
    maxSteps: 7,
  },
  {
    name: 'a write into a page mapped writable pushes again',
    rule: 'MS-RNG-10',
    wrap: plant(PushIgnoresMapping, 'push-ignores-mapping'),
    profiles: ['x86_64'],
    focus: 'dirty-rings',
  },
  {
    name: 'the ring soft limit off by one',
    rule: 'MS-RNG-08',
    wrap: plant(SoftLimitOffByOne, 'soft-limit-off-by-one'),
    profiles: ['x86_64-nosmm,dirty_ring_rsvd_entries=254'],
    focus: 'dirty-rings',
  },
];
