/**
 * The model's state as the suite keeps it: the reference model's decisions, evaluated fast
 * enough for tens of thousands of live slots.
 *
 * The model (model/*.ts) is deliberately naive: every request scans and copies whole slot
 * arrays with bigint arithmetic, so filling the 32764 slots of one address space through it
 * costs minutes. The suite needs that scale, so `ModelState` asks the model about a request on
 * a *reduced* VM that holds only the slots the request can see, then splices the model's answer
 * back into the full state:
 *
 * - a set-memory-region request of (as, id, [gfn, gfn + npages)) reads only the slot with that id
 *   and the slots of that address space whose gfn range intersects [gfn, gfn + npages)
 *   (model/set-memory-region.ts: `findSlot`, the [MS-OVL-01] scan); every other slot is carried
 *   over untouched by `commit()` (the frame condition of the model);
 * - an internal-slot request reads the same, in every address space;
 * - KVM_GET_DIRTY_LOG reads only the slot with that id.
 *
 * The answer, the rules that fired, the generation, `nrMemslotPages` and the bitmap counter all
 * come from the model itself; only the choice of slots to show it is ours. `mode: 'direct'` skips
 * the reduction and runs the model on the whole state: the conformance suite runs the model
 * adapter in direct mode against the oracle in local mode, which checks this reduction.
 */
import * as model from '../model/index.js';
import type { DirtyLogResult, Gfn, Gpa, Hva, MemoryRegion, Memslot, Profile, SetResult, Step, VmState } from '../model/index.js';
import { PAGE_SHIFT } from '../model/index.js';
import type { RuleId } from '../spec/rules.js';

/** What one request did: the model's answer and every rule that fired on the way. */
export interface Applied<R> {
  readonly result: R;
  readonly fired: readonly RuleId[];
}

interface SpaceData {
  readonly asId: number;
  generation: bigint;
  /** Live slots ascending by baseGfn. Copied before a mutation once handed out (`shared`). */
  slots: Memslot[];
  shared: boolean;
  readonly byId: Map<number, Memslot>;
}

export type ModelMode = 'local' | 'direct';

/** The model's VM, mutable from the outside, immutable model values inside. */
export class ModelState {
  private spaces: SpaceData[] = [];
  private nrPages = 0n;
  private bitmaps = 0;
  /** Direct mode only: the model's own state. */
  private whole: VmState;

  constructor(
    readonly profile: Profile,
    readonly mode: ModelMode = 'local',
  ) {
    this.whole = model.createVm(profile);
    this.reset();
  }

  /** A fresh VM. Mirrors: kvm_create_vm() */
  reset(): void {
    this.whole = model.createVm(this.profile);
    this.spaces = this.whole.spaces.map((s) => ({ asId: s.asId, generation: s.generation, slots: [], shared: false, byId: new Map() }));
    this.nrPages = 0n;
    this.bitmaps = 0;
  }

  /** The whole state as the model's VmState (a view: do not keep it across a mutation). */
  vm(): VmState {
    if (this.mode === 'direct') return this.whole;
    return {
      profile: this.profile,
      spaces: this.spaces.map((s) => ({ asId: s.asId, generation: s.generation, slots: this.slots(s.asId) })),
      nrMemslotPages: this.nrPages,
      bitmapsAllocated: this.bitmaps,
    };
  }

  /** The live slots of address space `asId`, ascending by baseGfn. */
  slots(asId: number): readonly Memslot[] {
    if (this.mode === 'direct') return model.space(this.whole, asId).slots;
    const s = this.space(asId);
    s.shared = true;
    return s.slots;
  }

  generation(asId: number): bigint {
    return this.mode === 'direct' ? model.space(this.whole, asId).generation : this.space(asId).generation;
  }

  nrMemslotPages(): bigint {
    return this.mode === 'direct' ? this.whole.nrMemslotPages : this.nrPages;
  }

  /** The slot of `id` in `asId`, if any. */
  slot(asId: number, id: number): Memslot | undefined {
    if (this.mode === 'direct') return model.findSlot(this.whole, asId, id);
    return this.space(asId).byId.get(id);
  }

  /** Number of live slots over all address spaces. */
  slotCount(): number {
    let n = 0;
    for (let asId = 0; asId < this.profile.addressSpaces; asId++) n += this.slots(asId).length;
    return n;
  }

  /** Live user slots (id below KVM_USER_MEM_SLOTS) of every address space, in (asId, baseGfn) order. */
  userSlots(): Memslot[] {
    const out: Memslot[] = [];
    for (let asId = 0; asId < this.profile.addressSpaces; asId++) {
      for (const s of this.slots(asId)) if (s.id < this.profile.userMemSlots) out.push(s);
    }
    return out;
  }

  /** Every live slot (internal ones included), in (asId, baseGfn) order. */
  allSlots(): Memslot[] {
    const out: Memslot[] = [];
    for (let asId = 0; asId < this.profile.addressSpaces; asId++) out.push(...this.slots(asId));
    return out;
  }

  /** Mirrors: kvm_vm_ioctl_set_memory_region() */
  setUserMemoryRegion(mem: MemoryRegion): Applied<SetResult> {
    const asId = mem.slot >>> 16;
    const id = mem.slot & 0xffff;
    const asIds = asId < this.profile.addressSpaces ? [asId] : [];
    return this.apply((vm) => model.setUserMemoryRegion(vm, mem), asIds, id, mem.guestPhysAddr, mem.memorySize);
  }

  /** Mirrors: __x86_set_memory_region() */
  setInternalMemslot(id: number, gpa: Gpa, size: bigint, hva: Hva): Applied<SetResult> {
    const all = this.spaces.map((s) => s.asId);
    return this.apply((vm) => model.setInternalMemslot(vm, id, gpa, size, hva), all, id, gpa, size);
  }

  /** Mirrors: kvm_get_dirty_log_protect() */
  getDirtyLog(slot: number): Applied<DirtyLogResult> {
    const asId = slot >>> 16;
    const asIds = asId < this.profile.addressSpaces ? [asId] : [];
    return this.apply((vm) => model.getDirtyLog(vm, slot), asIds, slot & 0xffff, 0n, 0n);
  }

  private space(asId: number): SpaceData {
    const s = this.spaces[asId];
    if (s === undefined) throw new RangeError(`address space ${asId} does not exist in profile ${this.profile.name}`);
    return s;
  }

  /**
   * Runs one model step. Local mode shows the model only the slots with `id` and the slots
   * intersecting the gfn range of [gpa, gpa + size) in the address spaces `asIds`.
   */
  private apply<R>(fn: (vm: VmState) => Step<R>, asIds: readonly number[], id: number, gpa: Gpa, size: bigint): Applied<R> {
    if (this.mode === 'direct') {
      const step = fn(this.whole);
      this.whole = step.state;
      return { result: step.result, fired: step.fired };
    }
    const start = gpa >> PAGE_SHIFT;
    // A zero-page range still shows the slot at `start`: harmless, and it keeps the query simple.
    const end = start + (size >> PAGE_SHIFT > 0n ? size >> PAGE_SHIFT : 1n);
    const shown = new Map<number, Memslot[]>();
    for (const asId of asIds) shown.set(asId, this.relevant(asId, id, start, end));
    const reduced: VmState = {
      profile: this.profile,
      spaces: this.spaces.map((s) => ({ asId: s.asId, generation: s.generation, slots: shown.get(s.asId) ?? [] })),
      nrMemslotPages: this.nrPages,
      bitmapsAllocated: this.bitmaps,
    };
    const step = fn(reduced);
    for (const after of step.state.spaces) {
      const before = reduced.spaces[after.asId]!;
      const sp = this.space(after.asId);
      sp.generation = after.generation;
      if (after.slots === before.slots) continue;
      const kept = new Set(after.slots);
      const had = new Set(before.slots);
      for (const s of before.slots) if (!kept.has(s)) this.remove(sp, s);
      for (const s of after.slots) if (!had.has(s)) this.insert(sp, s);
    }
    this.nrPages = step.state.nrMemslotPages;
    this.bitmaps = step.state.bitmapsAllocated;
    return { result: step.result, fired: step.fired };
  }

  /** The slot with `id` plus every slot intersecting [start, end), ascending by baseGfn. */
  private relevant(asId: number, id: number, start: Gfn, end: Gfn): Memslot[] {
    const sp = this.space(asId);
    const out: Memslot[] = [];
    // Slots are disjoint and sorted, so their ends are sorted too: find the first that ends after start.
    let i = firstIndex(sp.slots, (s) => s.baseGfn + s.npages > start);
    for (; i < sp.slots.length && sp.slots[i]!.baseGfn < end; i++) out.push(sp.slots[i]!);
    const same = sp.byId.get(id);
    if (same !== undefined && !out.includes(same)) {
      const at = out.findIndex((s) => s.baseGfn > same.baseGfn);
      out.splice(at < 0 ? out.length : at, 0, same);
    }
    return out;
  }

  private writable(sp: SpaceData): Memslot[] {
    if (sp.shared) {
      sp.slots = sp.slots.slice();
      sp.shared = false;
    }
    return sp.slots;
  }

  private remove(sp: SpaceData, s: Memslot): void {
    const arr = this.writable(sp);
    const i = arr.indexOf(s, firstIndex(arr, (x) => x.baseGfn >= s.baseGfn));
    if (i < 0) throw new Error(`model state: slot ${s.id} of as ${sp.asId} is not in the gfn order`);
    arr.splice(i, 1);
    if (sp.byId.get(s.id) === s) sp.byId.delete(s.id);
  }

  private insert(sp: SpaceData, s: Memslot): void {
    const arr = this.writable(sp);
    arr.splice(firstIndex(arr, (x) => x.baseGfn > s.baseGfn), 0, s);
    sp.byId.set(s.id, s);
  }
}

/** The first index whose element satisfies the monotone predicate `p` (false...false true...true). */
function firstIndex<T>(arr: readonly T[], p: (x: T) => boolean): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (p(arr[mid]!)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
