/** The reference model: the spec, executed. Pure functions over immutable state. */
export * from './types.js';
export * from './profiles.js';
export * from './state.js';
export { setUserMemoryRegion, setUserMemoryRegion2, setMemoryRegion } from './set-memory-region.js';
export { setUserMemoryRegionNoMem, setUserMemoryRegion2NoMem } from './resources.js';
export {
  getDirtyLog,
  clearDirtyLog,
  enableManualDirtyLogProtect,
  enableCap,
  guestWrite,
  inInternalSlot,
  inUnknownRingSlot,
  dirtyLogExchangeable,
  type ClearDirtyLog,
  type EnableCapName,
  type WriteOutcome,
  type WriteResult,
} from './dirty-log.js';
export {
  enableDirtyLogRing,
  harvestDirtyRing,
  resetDirtyRings,
  ringUsed,
  ringSoftLimit,
  KVM_DIRTY_GFN_SIZE,
  KVM_DIRTY_RING_MAX_ENTRIES,
  type RingCap,
  type Harvest,
  type ResetResult,
} from './dirty-ring.js';
export { runsToHex, hexBits, MAX_EXCHANGED_BITS, type DirtyRuns } from './dirty-bits.js';
export { setInternalMemslot, internalSlotIds, INTERNAL_SLOT_LAYOUT } from './internal-slots.js';
export * from './lookup.js';
export * from './invariants.js';
export * from './atomicity.js';
export * from './vm-types.js';
export { createVmOfType } from './create-vm.js';
export { createGuestMemfd, setMemoryAttributes, supportedGmemFlags, supportedMemAttributes, NO_GMEM } from './guest-memfd.js';
export { checkExtension, CAPS, CAP_NAMES, type CapName, type CapFd } from './capabilities.js';
