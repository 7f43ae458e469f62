/**
 * The three things the data-structure scenarios measure, behind one small interface:
 *
 * - `model`: the reference model (model/*.ts) itself: immutable state, every request through
 *   `setUserMemoryRegion()`, every lookup through model/lookup.ts (linear scans, no caches);
 * - `legacy` and `scalable`: the implementations of impl/index.ts, through MemslotImpl.
 *
 * Every call checks its answer cheaply (a request must succeed, a lookup must find what the
 * layout says), so a scenario cannot time a fast wrong path.
 */
import * as model from '../model/index.js';
import { IMPLEMENTATIONS, type MemslotImpl } from '../impl/index.js';
import type { Gfn, Hva, MemoryRegion, Memslot, Profile } from '../model/index.js';

export type TargetName = 'model' | 'legacy' | 'scalable';
export const TARGET_NAMES: readonly TargetName[] = ['model', 'legacy', 'scalable'];

export interface Target {
  readonly name: TargetName;
  /** A fresh VM with no slots. */
  reset(): void;
  /** KVM_SET_USER_MEMORY_REGION; throws unless it succeeds (every scenario request is valid). */
  set(mem: MemoryRegion): void;
  /** __gfn_to_memslot() of address space 0. */
  gfnToMemslot(gfn: Gfn): Memslot | null;
  /** kvm_handle_hva_range(): the number of slots the hva range [start, end) touches. */
  hvaRange(start: Hva, end: Hva): number;
  /** __gfn_to_hva_many(..., write = true): the host address, or -1n for an error. */
  gfnToHva(gfn: Gfn): Hva;
}

class ModelTarget implements Target {
  readonly name = 'model';
  private vm: model.VmState;
  constructor(private readonly profile: Profile) {
    this.vm = model.createVm(profile);
  }
  reset(): void {
    this.vm = model.createVm(this.profile);
  }
  set(mem: MemoryRegion): void {
    const step = model.setUserMemoryRegion(this.vm, mem);
    if (!step.result.ok) throw new Error(`model: request for slot ${mem.slot} failed with ${step.result.errno}`);
    this.vm = step.state;
  }
  gfnToMemslot(gfn: Gfn): Memslot | null {
    return model.gfnToMemslot(this.vm, 0, gfn);
  }
  hvaRange(start: Hva, end: Hva): number {
    return model.hvaRangeMemslots(this.vm, start, end).length;
  }
  gfnToHva(gfn: Gfn): Hva {
    const r = model.gfnToHva(this.vm, 0, gfn, true);
    return r.ok ? r.hva : -1n;
  }
}

class ImplTarget implements Target {
  constructor(
    readonly name: 'legacy' | 'scalable',
    private readonly impl: MemslotImpl,
  ) {}
  reset(): void {
    this.impl.reset();
  }
  set(mem: MemoryRegion): void {
    const r = this.impl.setUserMemoryRegion(mem);
    if (!r.ok) throw new Error(`${this.name}: request for slot ${mem.slot} failed with ${r.errno}`);
  }
  gfnToMemslot(gfn: Gfn): Memslot | null {
    return this.impl.gfnToMemslot(0, gfn);
  }
  hvaRange(start: Hva, end: Hva): number {
    return this.impl.hvaRangeMemslots(start, end).length;
  }
  gfnToHva(gfn: Gfn): Hva {
    const r = this.impl.gfnToHva(0, gfn, true);
    return r.ok ? r.hva : -1n;
  }
}

export function createTarget(name: TargetName, profile: Profile): Target {
  if (name === 'model') return new ModelTarget(profile);
  return new ImplTarget(name, IMPLEMENTATIONS[name](profile));
}
