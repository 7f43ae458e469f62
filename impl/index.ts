/**
 * The implementations of `MemslotImpl` (./interface.ts), by name.
 *
 * - `scalable`: the kernel's design since 5.17 (gfn tree, hva interval tree, id hash, two
 *   sets swapped per change), O(log n) per operation.
 * - `legacy`: the 5.10 design (one sorted array per address space, duplicated on every
 *   change), O(n) per change; the benchmark baseline.
 *
 * Both are also `ConcurrentMemslotImpl`s: SRCU readers bound to the set they dereferenced,
 * and a writer that stops after each publish until the grace period is over
 * (spec/45-atomicity.md).
 */
import type { ImplFactory } from './interface.js';
import { createLegacyImpl } from './legacy/legacy-impl.js';
import { createScalableImpl } from './scalable/scalable-impl.js';

export type { ImplFactory, MemslotImpl, ConcurrentMemslotImpl, MemslotsReader, SyncPoint, WriterSteps } from './interface.js';
export { createLegacyImpl, LegacyMemslots } from './legacy/legacy-impl.js';
export { createScalableImpl, ScalableMemslots } from './scalable/scalable-impl.js';

/** Every implementation, by name. */
export const IMPLEMENTATIONS: Record<'scalable' | 'legacy', ImplFactory> = {
  scalable: createScalableImpl,
  legacy: createLegacyImpl,
};
