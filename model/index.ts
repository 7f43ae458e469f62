/** The reference model: the spec, executed. Pure functions over immutable state. */
export * from './types.js';
export * from './profiles.js';
export * from './state.js';
export { setUserMemoryRegion, setMemoryRegion } from './set-memory-region.js';
export { setUserMemoryRegionNoMem } from './resources.js';
export { getDirtyLog } from './dirty-log.js';
export { setInternalMemslot, internalSlotIds, INTERNAL_SLOT_LAYOUT } from './internal-slots.js';
export * from './lookup.js';
export * from './invariants.js';
export * from './atomicity.js';
