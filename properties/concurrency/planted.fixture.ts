/**
 * Broken writers, to show that the scheduled property catches what it claims to catch.
 * Test-only (properties/concurrency.test.ts): as a `*.fixture.ts` file it is not compiled into
 * the package (tsconfig.build.json).
 *
 * Each variant subclasses an implementation and overrides one of the kernel-mirroring steps
 * that impl/ exposes as protected for this purpose. Variants (a), (b) and (c) answer every
 * request exactly as the model does when they run alone (the synchronous API): only a reader
 * running during the request can tell. Variant (d) breaks even sequential runs, and (e) breaks
 * lookups that a sequential suite also makes.
 */
import type { ConcurrentMemslotImpl, WriterSteps } from '../../impl/interface.js';
import { makeInvalidCopy } from '../../impl/internal/memslot.js';
import { LegacyMemslots } from '../../impl/legacy/legacy-impl.js';
import { ScalableMemslots, type KvmMemslots } from '../../impl/scalable/scalable-impl.js';
import type { DirtyLogOutcome, Gfn, Memslot, Profile } from '../../model/index.js';

type ChangeKind = 'CREATE' | 'DELETE' | 'MOVE' | 'FLAGS_ONLY';

/**
 * (a) Mutates the active set in place: kvm_activate_memslot() replays the change on the set
 * readers are using, then swaps, instead of swapping first and replaying on the set the swap
 * retired. Both sets end up right; readers of the active set see it change under them.
 */
export class ScalableInPlace extends ScalableMemslots {
  protected override *activateMemslot(old: Memslot | null, neu: Memslot | null): WriterSteps<void> {
    const asId = (old ?? neu)!.asId;
    this.replaceMemslotIn(this.activeSet(asId), old, neu);
    yield* this.swapActiveMemslots(asId);
  }
}

/** (b) Skips synchronize_srcu(): replays on (and finishes the generation of) sets readers still hold. */
export class ScalableNoGracePeriod extends ScalableMemslots {
  protected override *synchronizeSrcu(): WriterSteps<void> {}
}

/**
 * (c) Publishes before the inactive set is complete: swaps first, then makes the change in the
 * set it just published (and replays it on the other one as usual).
 */
export class ScalablePublishEarly extends ScalableMemslots {
  private *publishThenReplace(asId: number, old: Memslot | null, neu: Memslot | null): WriterSteps<void> {
    yield* this.swapActiveMemslots(asId);
    this.replaceMemslotIn(this.activeSet(asId), old, neu);
  }

  protected override *createMemslot(neu: Memslot): WriterSteps<void> {
    yield* this.publishThenReplace(neu.asId, null, neu);
    this.replaceMemslot(null, neu);
  }

  protected override *invalidateMemslot(old: Memslot): WriterSteps<Memslot> {
    const invalid = makeInvalidCopy(old);
    yield* this.publishThenReplace(old.asId, old, invalid);
    return invalid;
  }

  protected override *deleteMemslot(old: Memslot, invalid: Memslot): WriterSteps<void> {
    yield* this.publishThenReplace(old.asId, old, null);
    this.replaceMemslot(invalid, null);
  }

  protected override *moveMemslot(old: Memslot, neu: Memslot, invalid: Memslot): WriterSteps<void> {
    yield* this.publishThenReplace(old.asId, old, neu);
    this.replaceMemslot(invalid, neu);
  }

  protected override *updateFlagsMemslot(old: Memslot, neu: Memslot): WriterSteps<void> {
    yield* this.publishThenReplace(old.asId, old, neu);
    this.replaceMemslot(old, neu);
  }
}

/** (d) Forgets to replay on the second set: kvm_activate_memslot() only swaps. */
export class ScalableNoReplay extends ScalableMemslots {
  protected override *activateMemslot(old: Memslot | null, neu: Memslot | null): WriterSteps<void> {
    yield* this.swapActiveMemslots((old ?? neu)!.asId);
  }
}

/** (e) A per-vCPU slot cache that ignores the generation: it outlives the set it came from. */
export class ScalableStaleVcpuCache extends ScalableMemslots {
  private readonly cache = new Map<number, Memslot>();

  protected override vcpuGfnToMemslotIn(slots: KvmMemslots, vcpu: number, gfn: Gfn): Memslot | null {
    const cached = this.cache.get(vcpu);
    if (cached !== undefined && cached.baseGfn <= gfn && gfn < cached.baseGfn + cached.npages) return cached;
    const slot = super.vcpuGfnToMemslotIn(slots, vcpu, gfn);
    if (slot !== null) this.cache.set(vcpu, slot);
    return slot;
  }

  override reset(vmType?: number): DirtyLogOutcome {
    const r = super.reset(vmType);
    this.cache?.clear();
    return r;
  }
}

/**
 * (a) Mutates the installed array in place: the INVALID flag and update_memslots() go into the
 * array readers are using, which is then installed again for the generation. (A CREATE must
 * grow the array, so it still copies.)
 */
export class LegacyInPlace extends LegacyMemslots {
  protected override *setMemslot(asId: number, old: Memslot | null, neu: Memslot, change: ChangeKind): WriterSteps<void> {
    if (change === 'CREATE') return yield* super.setMemslot(asId, old, neu, change);
    const slots = this.activeSet(asId);
    if (change === 'DELETE' || change === 'MOVE') {
      slots.setInvalid(old!.id, true);
      yield* this.installNewMemslots(asId, slots);
    }
    slots.updateMemslots(neu, change);
    yield* this.installNewMemslots(asId, slots);
  }
}

/** (b) Skips synchronize_srcu(): a DELETE or MOVE edits the handed-back array under its readers. */
export class LegacyNoGracePeriod extends LegacyMemslots {
  protected override *synchronizeSrcu(): WriterSteps<void> {}
}

/** (c) Installs the new array before update_memslots() has run on it, then updates it in place. */
export class LegacyPublishEarly extends LegacyMemslots {
  protected override *setMemslot(asId: number, old: Memslot | null, neu: Memslot, change: ChangeKind): WriterSteps<void> {
    let slots = this.activeSet(asId).dup(change);
    if (change === 'DELETE' || change === 'MOVE') {
      slots.setInvalid(old!.id, true);
      slots = yield* this.installNewMemslots(asId, slots);
    }
    yield* this.installNewMemslots(asId, slots);
    slots.updateMemslots(neu, change);
  }
}

/**
 * (d) Forgets to replay on the second set: a DELETE or MOVE re-installs the array that
 * install_new_memslots() handed back without running update_memslots() on it. (5.10 has one
 * array per address space; the handed-back one is its "other set".)
 */
export class LegacyNoReplay extends LegacyMemslots {
  protected override *setMemslot(asId: number, old: Memslot | null, neu: Memslot, change: ChangeKind): WriterSteps<void> {
    if (change !== 'DELETE' && change !== 'MOVE') return yield* super.setMemslot(asId, old, neu, change);
    const slots = this.activeSet(asId).dup(change);
    slots.setInvalid(old!.id, true);
    const handedBack = yield* this.installNewMemslots(asId, slots);
    yield* this.installNewMemslots(asId, handedBack);
  }
}

export interface PlantedBug {
  readonly name: string;
  readonly what: string;
  readonly make: (p: Profile) => ConcurrentMemslotImpl;
  /** Whether a synchronous run (no reader inside a request) answers exactly as the model. */
  readonly sequentiallyCorrect: boolean;
}

export const SCALABLE_BUGS: readonly PlantedBug[] = [
  { name: 'scalable (a)', what: 'mutates the active set in place', make: (p) => new ScalableInPlace(p), sequentiallyCorrect: true },
  { name: 'scalable (b)', what: 'skips the wait for readers', make: (p) => new ScalableNoGracePeriod(p), sequentiallyCorrect: true },
  { name: 'scalable (c)', what: 'publishes before the inactive set is complete', make: (p) => new ScalablePublishEarly(p), sequentiallyCorrect: true },
  { name: 'scalable (d)', what: 'forgets to replay on the second set', make: (p) => new ScalableNoReplay(p), sequentiallyCorrect: false },
  { name: 'scalable (e)', what: 'keeps a vCPU cached slot across generations', make: (p) => new ScalableStaleVcpuCache(p), sequentiallyCorrect: false },
];

export const LEGACY_BUGS: readonly PlantedBug[] = [
  { name: 'legacy (a)', what: 'mutates the installed array in place', make: (p) => new LegacyInPlace(p), sequentiallyCorrect: true },
  { name: 'legacy (b)', what: 'skips the wait for readers', make: (p) => new LegacyNoGracePeriod(p), sequentiallyCorrect: true },
  { name: 'legacy (c)', what: 'installs the array before update_memslots()', make: (p) => new LegacyPublishEarly(p), sequentiallyCorrect: true },
  { name: 'legacy (d)', what: 'forgets to replay on the handed-back array', make: (p) => new LegacyNoReplay(p), sequentiallyCorrect: false },
];
