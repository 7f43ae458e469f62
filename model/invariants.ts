/**
 * The named invariants of spec/50-invariants.md, checked over any observable state.
 * A violation is a bug (the kernel's WARN/BUG): it throws InvariantError, never an errno.
 */
import type { Profile } from './profiles.js';
import { InvariantError, KVM_MEM_LOG_DIRTY_PAGES, KVM_MEMSLOT_INVALID, type Memslot } from './types.js';

/** What the invariants look at: the same shape for the model and every implementation. */
export interface ObservableState {
  readonly spaces: readonly { readonly asId: number; readonly generation: bigint; readonly slots: readonly Memslot[] }[];
  readonly nrMemslotPages: bigint;
  /** The VM has a dirty ring: then a logged slot need not have a bitmap (MS-DLG-10). */
  readonly dirtyRing?: boolean;
}

/**
 * Throws InvariantError on the first invariant that `now` breaks. With `before`, also checks
 * that generations never decrease.
 */
export function checkInvariants(profile: Profile, now: ObservableState, before?: ObservableState): void {
  const n = BigInt(profile.addressSpaces);
  let total = 0n;
  for (const sp of now.spaces) {
    const ids = new Set<number>();
    let prev: Memslot | undefined;
    for (const s of sp.slots) {
      // [MS-INV-01]
      if (ids.has(s.id)) throw new InvariantError('MS-INV-01', `as ${sp.asId}: id ${s.id} twice`);
      ids.add(s.id);
      // [MS-INV-03]
      if (s.npages < 1n) throw new InvariantError('MS-INV-03', `as ${sp.asId}: slot ${s.id} has ${s.npages} pages`);
      // [MS-INV-02] Slots are listed ascending by baseGfn, so disjoint means each starts at or after the previous end.
      if (prev !== undefined && s.baseGfn < prev.baseGfn + prev.npages) {
        throw new InvariantError('MS-INV-02', `as ${sp.asId}: slot ${s.id} overlaps slot ${prev.id} or is out of gfn order`);
      }
      // [MS-INV-06]
      if ((s.flags & KVM_MEMSLOT_INVALID) !== 0) throw new InvariantError('MS-INV-06', `as ${sp.asId}: slot ${s.id} is INVALID`);
      // [MS-INV-07]
      const logged = (s.flags & KVM_MEM_LOG_DIRTY_PAGES) !== 0;
      if (s.dirtyBitmap !== null ? !logged : logged && now.dirtyRing !== true) {
        throw new InvariantError('MS-INV-07', `as ${sp.asId}: slot ${s.id} dirty bitmap ${s.dirtyBitmap} with flags ${s.flags}`);
      }
      total += s.npages;
      prev = s;
    }
    // [MS-INV-04]
    if (sp.generation % n !== BigInt(sp.asId)) {
      throw new InvariantError('MS-INV-04', `as ${sp.asId}: generation ${sp.generation} is not ${sp.asId} mod ${n}`);
    }
    const old = before?.spaces.find((x) => x.asId === sp.asId);
    if (old !== undefined && sp.generation < old.generation) {
      throw new InvariantError('MS-INV-04', `as ${sp.asId}: generation went back from ${old.generation} to ${sp.generation}`);
    }
  }
  // [MS-INV-05]
  if (total !== now.nrMemslotPages) throw new InvariantError('MS-INV-05', `nr_memslot_pages ${now.nrMemslotPages}, slots sum ${total}`);
}
