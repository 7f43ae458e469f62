/**
 * What every command shares: the base class, target resolution by position, and the
 * request builders.
 *
 * A command's constructor arguments are all it is: `toString()` prints only them (fast-check
 * #367: instances are reused across shrinks, so a string built from values resolved in `run`
 * could describe another execution). The resolved call appears in the suite's own report.
 */
import type fc from 'fast-check';
import {
  KVM_MEM_LOG_DIRTY_PAGES,
  PAGE_SHIFT,
  U64_MAX,
  findSlot,
  hex,
  memslots,
  space,
  type Gfn,
  type MemoryRegion,
  type Memslot,
  type VmState,
} from '../../model/index.js';
import { step, type ModelBox } from '../harness.js';
import type { Target } from '../target.js';
import type { Op } from '../ops.js';
import type { GfnSel } from '../arbitraries.js';

/** A command of the suite: resolve against the model, then step both sides. */
export abstract class MemslotCommand implements fc.AsyncCommand<ModelBox, Target> {
  /** Filters only nonsense; the default is that the command applies in every state. */
  check(_m: Readonly<ModelBox>): boolean {
    return true;
  }

  async run(m: ModelBox, r: Target): Promise<void> {
    await step(m, r, this.resolve(m));
  }

  /** The concrete operation this command means in the model's current state. */
  abstract resolve(m: Readonly<ModelBox>): Op;

  abstract toString(): string;
}

// Built once per model state: fast-check asks every command's check() and resolve() in turn,
// and the model's states are immutable.
const all = new WeakMap<VmState, readonly Memslot[]>();
const user = new WeakMap<VmState, readonly Memslot[]>();

/** Every live slot (internal ones included), in (asId, baseGfn) order. */
export function allSlots(m: Readonly<ModelBox>): readonly Memslot[] {
  let a = all.get(m.vm);
  if (a === undefined) {
    a = m.vm.spaces.flatMap((sp) => memslots(m.vm, sp.asId));
    all.set(m.vm, a);
  }
  return a;
}

/** Live user slots (id below KVM_USER_MEM_SLOTS) of every address space, in (asId, baseGfn) order. */
export function userSlots(m: Readonly<ModelBox>): readonly Memslot[] {
  let u = user.get(m.vm);
  if (u === undefined) {
    u = allSlots(m).filter((s) => s.id < m.profile.userMemSlots);
    user.set(m.vm, u);
  }
  return u;
}

/** A command that targets a live user slot; it needs one. */
export abstract class TargetCommand extends MemslotCommand {
  abstract readonly pick: number;

  override check(m: Readonly<ModelBox>): boolean {
    return userSlots(m).length > 0;
  }

  protected target(m: Readonly<ModelBox>): Memslot {
    const live = userSlots(m);
    const t = live[this.pick % live.length];
    if (t === undefined) throw new Error(`${this.toString()}: no live slot (check() should have said so)`);
    return t;
  }
}

/** The u32 `slot` field of a request. */
export function slotNr(asId: number, id: number): number {
  return ((asId << 16) | (id & 0xffff)) >>> 0;
}

/** The request that re-issues `s` as it is. */
export function regionOf(s: Memslot): MemoryRegion {
  return {
    slot: slotNr(s.asId, s.id),
    flags: s.flags,
    guestPhysAddr: s.baseGfn << PAGE_SHIFT,
    memorySize: s.npages << PAGE_SHIFT,
    userspaceAddr: s.userspaceAddr,
  };
}

/** A request in pages (gfn, npages), wrapped to u64 like a C caller would compute it. */
export function region(slot: number, flags: number, gfn: Gfn, npages: bigint, uaddr: bigint): MemoryRegion {
  return {
    slot,
    flags: flags >>> 0,
    guestPhysAddr: (gfn << PAGE_SHIFT) & U64_MAX,
    memorySize: (npages << PAGE_SHIFT) & U64_MAX,
    userspaceAddr: uaddr & U64_MAX,
  };
}

/** The lowest user id of `asId` that is free, from `hint % KVM_USER_MEM_SLOTS` on (wrapping). */
export function freeId(m: Readonly<ModelBox>, asId: number, hint: number): number {
  const n = m.profile.userMemSlots;
  const start = hint % n;
  if (asId >= m.vm.profile.addressSpaces) return start;
  for (let k = 0; k < n; k++) {
    const id = (start + k) % n;
    if (findSlot(m.vm, asId, id) === undefined) return id;
  }
  return start;
}

/** Every free user id of `asId`, ascending. */
export function freeIds(m: Readonly<ModelBox>, asId: number): number[] {
  const out: number[] = [];
  if (asId >= m.vm.profile.addressSpaces) return [];
  // The live ids in ascending order (the model's id map), and the gaps between them.
  let next = 0;
  for (const s of space(m.vm, asId).byId.valuesArray()) {
    for (; next < s.id && next < m.profile.userMemSlots; next++) out.push(next);
    next = s.id + 1;
  }
  for (; next < m.profile.userMemSlots; next++) out.push(next);
  return out;
}

/**
 * The lowest gfn from which `pages` pages are free in `asId`: the first hole that fits, else the
 * first gfn above every slot.
 */
export function freeGfnRun(m: Readonly<ModelBox>, asId: number, pages: bigint): Gfn {
  let cursor = 0n;
  if (asId >= m.vm.profile.addressSpaces) return cursor;
  for (const s of memslots(m.vm, asId)) {
    if (s.baseGfn - cursor >= pages) return cursor;
    const end = s.baseGfn + s.npages;
    if (end > cursor) cursor = end;
  }
  return cursor;
}

/** The gfn a GfnSel means now, and the address space of the slot it was taken from (if any). */
export function resolveGfn(m: Readonly<ModelBox>, sel: GfnSel): { gfn: Gfn; asId: number | null } {
  const all = allSlots(m);
  if (sel.pick === null || all.length === 0) return { gfn: sel.gfn, asId: null };
  const s = all[sel.pick % all.length]!;
  const at: Record<GfnSel['spot'], Gfn> = {
    before: s.baseGfn === 0n ? 0n : s.baseGfn - 1n,
    base: s.baseGfn,
    mid: s.baseGfn + s.npages / 2n,
    last: s.baseGfn + s.npages - 1n,
    end: s.baseGfn + s.npages,
  };
  return { gfn: at[sel.spot], asId: s.asId };
}

export { hex };

/** Live user slots bound to a guest_memfd. */
export function gmemSlots(m: Readonly<ModelBox>): readonly Memslot[] {
  return userSlots(m).filter((s) => s.gmem !== null);
}

/**
 * The user slots a guest write may aim at: every one but those whose ring pushes the model
 * cannot tell ([MS-RNG-11]: logging switched on under INITIALLY_SET with a ring, a trace
 * defect). With `logged`, where the dirty bits go, when there is such a slot: in a VM with a
 * ring the slots with KVM_MEM_LOG_DIRTY_PAGES, else those with a bitmap.
 */
export function writeSlots(m: Readonly<ModelBox>, logged: boolean): readonly Memslot[] {
  const unknown = m.vm.ring.unknown;
  const all = unknown.size === 0 ? userSlots(m) : userSlots(m).filter((s) => !unknown.has((s.asId << 16) | s.id));
  if (!logged) return all;
  const ring = m.vm.ring.size !== 0;
  const aimed = all.filter((s) => (ring ? (s.flags & KVM_MEM_LOG_DIRTY_PAGES) !== 0 : s.dirtyBitmap !== null));
  return aimed.length > 0 ? aimed : all;
}
