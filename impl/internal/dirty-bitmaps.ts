/**
 * The dirty bitmaps of a VM as the kernel keeps them: per bitmap an array of `unsigned long`
 * words, bit i of word w for page 64w + i (kvm_dirty_bitmap_bytes()). Held sparse, with the
 * value every untouched word has (0, or all ones for KVM_DIRTY_LOG_INITIALLY_SET), so a
 * 2^31-page slot costs nothing until its pages are written. Both implementations use it: the
 * bitmap is the same in both designs.
 */
import { MAX_EXCHANGED_BITS } from '../../model/dirty-bits.js';
import {
  KVM_DIRTY_LOG_INITIALLY_SET,
  KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
  KVM_MEM_READONLY,
  KVM_MEMSLOT_INVALID,
  type DirtyLogOutcome,
  type Memslot,
} from '../../model/types.js';
import type { ClearDirtyLog } from '../../model/dirty-log.js';
import type { Profile } from '../../model/profiles.js';
import type { ActiveMemslotsView } from './validate.js';
import { DirtyRing, ringWrite } from './dirty-rings.js';
import type { EnableCapName, WriteOutcome } from '../../model/dirty-log.js';

const ONES = (1n << 64n) - 1n;

interface Bitmap {
  readonly npages: bigint;
  readonly fill: bigint;
  readonly words: Map<bigint, bigint>;
}

export class DirtyBitmaps {
  private readonly maps = new Map<number, Bitmap>();
  /** `kvm->manual_dirty_log_protect` */
  manualProtect = 0;
  /** vCPU 0's dirty ring; with one, `kvm_use_dirty_bitmap()` is false. */
  readonly ring = new DirtyRing();

  /** A fresh bitmap for a slot of `npages`. Mirrors: kvm_alloc_dirty_bitmap() (+ bitmap_set() with INITIALLY_SET) */
  alloc(n: number, npages: bigint): void {
    this.maps.set(n, { npages, fill: (this.manualProtect & KVM_DIRTY_LOG_INITIALLY_SET) !== 0 ? ONES : 0n, words: new Map() });
  }

  private word(b: Bitmap, w: bigint): bigint {
    return b.words.get(w) ?? b.fill;
  }

  /** Mirrors: mark_page_dirty_in_slot() → set_bit_le(rel_gfn, memslot->dirty_bitmap) */
  setBit(n: number, page: bigint): void {
    const b = this.maps.get(n)!;
    const w = page >> 6n;
    b.words.set(w, this.word(b, w) | (1n << (page & 63n)));
  }

  /** The bitmap's bytes as hex, trailing zero bytes dropped (spec/25). */
  hex(n: number): string {
    const b = this.maps.get(n)!;
    const nwords = (b.npages + 63n) >> 6n;
    // The last word that holds a bit: every word with the fill set, else the highest written one.
    let last = -1n;
    if (b.fill !== 0n) last = nwords - 1n;
    else for (const [w, v] of b.words) if (v !== 0n && w > last) last = w;
    if (last < 0n) return '';
    if ((last + 1n) << 6n > MAX_EXCHANGED_BITS + 63n) throw new RangeError('a dirty bitmap too large to exchange (spec/25)');
    const parts: string[] = [];
    for (let w = 0n; w <= last; w++) {
      let v = this.word(b, w);
      // Bits past the slot's end are never set.
      if (w === nwords - 1n && (b.npages & 63n) !== 0n) v &= (1n << (b.npages & 63n)) - 1n;
      for (let k = 0n; k < 8n; k++) parts.push(((v >> (8n * k)) & 0xffn).toString(16).padStart(2, '0'));
    }
    let hex = parts.join('');
    while (hex.endsWith('00')) hex = hex.slice(0, -2);
    return hex;
  }

  /** Mirrors: the get-and-clear of kvm_get_dirty_log_protect() without manual protect. */
  clearAll(n: number): void {
    const b = this.maps.get(n)!;
    this.maps.set(n, { npages: b.npages, fill: 0n, words: new Map() });
  }

  /** Clears in bitmap `n` the bits of `mask` (64 pages from `firstWord`). */
  clearWord(n: number, w: bigint, mask: bigint): void {
    const b = this.maps.get(n)!;
    b.words.set(w, this.word(b, w) & ~mask);
  }

  reset(): void {
    this.maps.clear();
    this.manualProtect = 0;
    this.ring.reset();
  }
}

/**
 * A guest write into `slot` (what the implementation's gfn lookup found, or null): whether it
 * lands, and the bit it sets. Mirrors: kvm_faultin_pfn() + mark_page_dirty_in_slot()
 */
export function guestWriteInto(bitmaps: DirtyBitmaps, profile: Profile, slot: Memslot | null, gfn: bigint): WriteOutcome {
  const ring = bitmaps.ring;
  ring.createVcpu(profile);
  const outcome = ringWrite(ring, slot, slot === null ? 0n : gfn - slot.baseGfn) ?? bitmapWrite(bitmaps, slot, gfn);
  // [MS-RNG-11] The SUT's own slot change after the write.
  if (profile.writeDropsMappings) ring.zapAll();
  return outcome;
}

function bitmapWrite(bitmaps: DirtyBitmaps, slot: Memslot | null, gfn: bigint): WriteOutcome {
  // [MS-WR-01] [MS-WR-02] No slot, an INVALID one, or READONLY: an MMIO exit.
  if (slot === null || (slot.flags & (KVM_MEMSLOT_INVALID | KVM_MEM_READONLY)) !== 0) return 'mmio';
  // [MS-WR-03] [MS-WR-04]
  if (slot.dirtyBitmap !== null) bitmaps.setBit(slot.dirtyBitmap, gfn - slot.baseGfn);
  return 'ret';
}

/** KVM_GET_DIRTY_LOG's success: the copy, and the clear without manual protect. */
export function readDirtyLog(bitmaps: DirtyBitmaps, slot: Memslot): DirtyLogOutcome {
  const n = slot.dirtyBitmap!;
  // [MS-DLB-02]
  const bitmap = bitmaps.hex(n);
  if ((bitmaps.manualProtect & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) === 0) bitmaps.clearAll(n);
  return { ok: true, bitmap };
}

/**
 * Mirrors: kvm_get_dirty_log_protect()
 * @returns success, or EINVAL / ENOENT.
 */
export function getDirtyLogCommon(profile: Profile, slot: number, view: ActiveMemslotsView, bitmaps: DirtyBitmaps): DirtyLogOutcome {
  // [MS-DLG-09]
  if (bitmaps.ring.size !== 0) return { ok: false, errno: 'ENXIO' };
  const asId = slot >>> 16;
  const id = slot & 0xffff;
  // [MS-DLG-01]
  if (asId >= profile.addressSpaces) return { ok: false, errno: 'EINVAL' };
  // [MS-DLG-02]
  if (id >= profile.userMemSlots) return { ok: false, errno: 'EINVAL' };
  const memslot = view.idToMemslot(asId, id);
  // [MS-DLG-03]
  if (memslot === null) return { ok: false, errno: 'ENOENT' };
  // [MS-DLG-04]
  if (memslot.dirtyBitmap === null) return { ok: false, errno: 'ENOENT' };
  // [MS-DLG-05]
  return readDirtyLog(bitmaps, memslot);
}

/** Mirrors: kvm_clear_dirty_log_protect() */
export function clearDirtyLogCommon(profile: Profile, c: ClearDirtyLog, view: ActiveMemslotsView, bitmaps: DirtyBitmaps): DirtyLogOutcome {
  // [MS-CLR-06]
  if (bitmaps.ring.size !== 0) return { ok: false, errno: 'ENXIO' };
  const asId = c.slot >>> 16;
  const id = c.slot & 0xffff;
  // [MS-CLR-01]
  if (asId >= profile.addressSpaces || id >= profile.userMemSlots) return { ok: false, errno: 'EINVAL' };
  // [MS-CLR-02]
  if (c.firstPage % 64n !== 0n) return { ok: false, errno: 'EINVAL' };
  const slot = view.idToMemslot(asId, id);
  // [MS-CLR-03]
  if (slot === null || slot.dirtyBitmap === null) return { ok: false, errno: 'ENOENT' };
  // [MS-CLR-04]
  const n = BigInt(c.numPages);
  if (c.firstPage > slot.npages || n > slot.npages - c.firstPage || (n < slot.npages - c.firstPage && n % 64n !== 0n)) return { ok: false, errno: 'EINVAL' };
  // [MS-CLR-05] One long word of the user buffer at a time, as the kernel's loop. Words past the
  // buffer's end carry no bits (mask 0, nothing cleared), so the loop stops there: a slot of 2^31
  // pages would otherwise take 2^25 iterations for nothing.
  const all = (n + 63n) / 64n;
  const inBuffer = BigInt(Math.ceil(c.bitmap.length / 16));
  const words = all < inBuffer ? all : inBuffer;
  for (let i = 0n; i < words; i++) {
    let mask = 0n;
    for (let k = 0n; k < 8n; k++) {
      const at = Number((i * 8n + k) * 2n);
      if (at < c.bitmap.length) mask |= BigInt(parseInt(c.bitmap.slice(at, at + 2), 16)) << (8n * k);
    }
    if (mask !== 0n) bitmaps.clearWord(slot.dirtyBitmap, c.firstPage / 64n + i, mask);
  }
  return { ok: true };
}

/** Mirrors: kvm_vm_ioctl_enable_cap_generic(); `kernel` is the profile as given (the caps are the kernel's). */
export function enableCapCommon(kernel: Profile, profile: Profile, bitmaps: DirtyBitmaps, cap: EnableCapName, args0: bigint, flags: number): DirtyLogOutcome {
  if (cap === 'MANUAL_DIRTY_LOG_PROTECT2') return enableManualProtectCommon(bitmaps, args0, flags);
  return bitmaps.ring.enable({ ...profile, dirtyRingMaxBytes: kernel.dirtyRingMaxBytes, dirtyRingAcqRel: kernel.dirtyRingAcqRel }, cap, args0);
}

/** Mirrors: kvm_vm_ioctl_enable_cap_generic() case KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 */
function enableManualProtectCommon(bitmaps: DirtyBitmaps, args0: bigint, flags: number): DirtyLogOutcome {
  // [MS-MAN-01]
  if (flags !== 0) return { ok: false, errno: 'EINVAL' };
  // [MS-MAN-02]
  const allowed = (args0 & 1n) !== 0n ? 3n : 1n;
  if ((args0 & ~allowed) !== 0n) return { ok: false, errno: 'EINVAL' };
  // [MS-MAN-03]
  bitmaps.manualProtect = Number(args0);
  return { ok: true };
}
