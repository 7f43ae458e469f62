/**
 * The reference model wrapped as a MemslotImpl: an implementation that is the spec.
 *
 * Useful as a stand-in while an implementation is being written, as the `--impl model` of
 * `memslot-oracle check`, and as the base the planted-bug tests corrupt. Every answer comes from
 * model/*.ts; the model has no caches, so the vCPU index is ignored.
 */
import * as model from '../model/index.js';
import type { DirtyLogOutcome, Gfn, Gpa, Hva, HvaRangeHit, HvaResult, MemoryRegion, Memslot, Profile, SetOutcome } from '../model/index.js';
import type { ImplFactory, MemslotImpl } from '../impl/interface.js';
import { ModelState, type ModelMode } from './model-state.js';

/** The model as an implementation. */
export class ModelImpl implements MemslotImpl {
  readonly name: string;
  protected readonly state: ModelState;

  /** `mode: 'direct'` runs the unmodified model on the whole state (slow beyond a few thousand slots). */
  constructor(
    readonly profile: Profile,
    mode: ModelMode = 'local',
  ) {
    this.name = mode === 'direct' ? 'model-direct' : 'model';
    this.state = new ModelState(profile, mode);
  }

  reset(): void {
    this.state.reset();
  }

  setUserMemoryRegion(mem: MemoryRegion): SetOutcome {
    return outcome(this.state.setUserMemoryRegion(mem).result);
  }

  setInternalMemslot(id: number, gpa: Gpa, size: bigint, hva: Hva): SetOutcome {
    return outcome(this.state.setInternalMemslot(id, gpa, size, hva).result);
  }

  getDirtyLog(slot: number): DirtyLogOutcome {
    const r = this.state.getDirtyLog(slot).result;
    return r.ok ? { ok: true } : { ok: false, errno: r.errno };
  }

  idToMemslot(asId: number, id: number): Memslot | null {
    return this.state.slot(asId, id) ?? null;
  }

  gfnToMemslot(asId: number, gfn: Gfn): Memslot | null {
    return model.gfnToMemslot(this.state.vm(), asId, gfn);
  }

  /** The model allows either bordering slot; this adapter answers the first candidate. */
  gfnToMemslotApprox(asId: number, gfn: Gfn): Memslot | null {
    return model.gfnToMemslotApproxCandidates(this.state.vm(), asId, gfn)[0] ?? null;
  }

  gfnRangeMemslots(asId: number, start: Gfn, end: Gfn): Memslot[] {
    return [...model.gfnRangeMemslots(this.state.vm(), asId, start, end)];
  }

  hvaRangeMemslots(start: Hva, end: Hva): HvaRangeHit[] {
    return [...model.hvaRangeMemslots(this.state.vm(), start, end)];
  }

  vcpuGfnToMemslot(_vcpu: number, inSmm: boolean, gfn: Gfn): Memslot | null {
    return model.vcpuGfnToMemslot(this.state.vm(), inSmm, gfn);
  }

  isVisibleGfn(asId: number, gfn: Gfn): boolean {
    return model.isVisibleGfn(this.state.vm(), asId, gfn);
  }

  gfnToHva(asId: number, gfn: Gfn, write: boolean): HvaResult {
    return model.gfnToHva(this.state.vm(), asId, gfn, write);
  }

  slots(asId: number): Memslot[] {
    return [...this.state.slots(asId)];
  }

  generation(asId: number): bigint {
    return this.state.generation(asId);
  }

  nrMemslotPages(): bigint {
    return this.state.nrMemslotPages();
  }
}

function outcome(r: model.SetResult): SetOutcome {
  return r.ok ? { ok: true, change: r.change } : { ok: false, errno: r.errno };
}

/** The model adapter as an ImplFactory. */
export const modelImplFactory: ImplFactory = (profile) => new ModelImpl(profile);

/** The unreduced model (every request sees the whole state) as an ImplFactory. */
export const directModelImplFactory: ImplFactory = (profile) => new ModelImpl(profile, 'direct');
