/**
 * The model's state as the suite keeps it: a mutable cursor over the model's immutable VmState.
 * Every answer, rule and state comes from model/*.ts run on the whole state.
 */
import * as model from '../model/index.js';
import type { DirtyLogResult, Gpa, Hva, MemoryRegion, Memslot, Profile, SetResult, Step, VmState } from '../model/index.js';
import type { RuleId } from '../spec/rules.js';

/** What one request did: the model's answer and every rule that fired on the way. */
export interface Applied<R> {
  readonly result: R;
  readonly fired: readonly RuleId[];
}

export type ModelMode = 'local' | 'direct';

/** The model's VM, mutable from the outside, immutable model values inside. */
export class ModelState {
  private whole: VmState;

  constructor(
    readonly profile: Profile,
    readonly mode: ModelMode = 'local',
  ) {
    this.whole = model.createVm(profile);
  }

  reset(): void {
    this.whole = model.createVm(this.profile);
  }

  vm(): VmState {
    return this.whole;
  }

  slots(asId: number): readonly Memslot[] {
    return model.memslots(this.whole, asId);
  }

  generation(asId: number): bigint {
    return model.space(this.whole, asId).generation;
  }

  nrMemslotPages(): bigint {
    return this.whole.nrMemslotPages;
  }

  slot(asId: number, id: number): Memslot | undefined {
    return model.findSlot(this.whole, asId, id);
  }

  slotCount(): number {
    let n = 0;
    for (const sp of this.whole.spaces) n += sp.byGfn.size;
    return n;
  }

  userSlots(): Memslot[] {
    return this.allSlots().filter((s) => s.id < this.profile.userMemSlots);
  }

  allSlots(): Memslot[] {
    return this.whole.spaces.flatMap((sp) => model.memslots(this.whole, sp.asId));
  }

  setUserMemoryRegion(mem: MemoryRegion): Applied<SetResult> {
    return this.apply(model.setUserMemoryRegion(this.whole, mem));
  }

  setInternalMemslot(id: number, gpa: Gpa, size: bigint, hva: Hva): Applied<SetResult> {
    return this.apply(model.setInternalMemslot(this.whole, id, gpa, size, hva));
  }

  getDirtyLog(slot: number): Applied<DirtyLogResult> {
    return this.apply(model.getDirtyLog(this.whole, slot));
  }

  private apply<R>(step: Step<R>): Applied<R> {
    this.whole = step.state;
    return { result: step.result, fired: step.fired };
  }
}
