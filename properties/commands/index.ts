/**
 * Every command of the suite, with how often each is drawn. fast-check's `commands()` draws
 * uniformly from its list, so the weights live in one weighted `oneof`.
 */
import fc from 'fast-check';
import type { ArbConfig } from '../arbitraries.js';
import type { MemslotCommand } from './common.js';
import { badFlagsArb } from './bad-flags.js';
import { bulkCreateArb } from './bulk-create.js';
import { bulkDeleteArb } from './bulk-delete.js';
import { bulkFillArb } from './bulk-fill.js';
import { changeUserspaceAddrArb } from './change-uaddr.js';
import { createNearArb } from './create-near.js';
import { createSlotArb } from './create-slot.js';
import { deleteMissingArb } from './delete-missing.js';
import { deleteSlotArb } from './delete-slot.js';
import { getDirtyLogArb } from './get-dirty-log.js';
import { guestWriteArb } from './guest-write.js';
import { clearDirtyLogArb } from './clear-dirty-log.js';
import { manualProtectArb } from './manual-protect.js';
import { gfnToHvaArb } from './gfn-to-hva.js';
import { gpaWrapArb } from './gpa-wrap.js';
import { internalSlotArb } from './internal-slot.js';
import { lookupGfnApproxArb } from './lookup-gfn-approx.js';
import { lookupGfnRangeArb } from './lookup-gfn-range.js';
import { lookupGfnArb } from './lookup-gfn.js';
import { lookupHvaRangeArb } from './lookup-hva-range.js';
import { lookupIdArb } from './lookup-id.js';
import { vcpuLookupArb } from './lookup-vcpu.js';
import { lookupVisibleArb } from './lookup-visible.js';
import { maxGfnArb } from './max-gfn.js';
import { maxPagesArb } from './max-pages.js';
import { misalignedArb } from './misaligned.js';
import { moveSlotArb } from './move-slot.js';
import { rawRegionArb } from './raw-region.js';
import { reissueSlotArb } from './reissue-slot.js';
import { resetVmArb } from './reset-vm.js';
import { resizeSlotArb } from './resize-slot.js';
import { setDirtyLoggingArb } from './set-dirty-logging.js';
import { slotIdBoundArb } from './slot-id-bound.js';
import { toggleReadonlyArb } from './toggle-readonly.js';
import { userAddrLimitArb } from './user-addr-limit.js';
import { checkExtensionArb } from './check-extension.js';
import { createGuestMemfdArb } from './create-guest-memfd.js';
import { createSlot2Arb } from './create-slot2.js';
import { deleteSlot2Arb } from './delete-slot2.js';
import { modifyGmemSlotArb } from './modify-gmem-slot.js';
import { resetVmTypeArb } from './reset-vm-type.js';
import { setMemoryAttributesArb } from './set-memory-attributes.js';
import { enableDirtyRingArb, harvestDirtyRingArb, resetDirtyRingsArb } from './dirty-ring.js';
import { writeBurstArb } from './write-burst.js';
import { OFFERS_ALL } from '../arbitraries.js';

export { MemslotCommand, TargetCommand } from './common.js';
export { BulkFill } from './bulk-fill.js';
export { BulkCreate } from './bulk-create.js';

type Entry = readonly [(c: ArbConfig) => fc.Arbitrary<MemslotCommand>, number];

/**
 * The command mix: state changes first, then the error rules, lookups and bulk steps, then the
 * 6.8+ memory API (spec/28), each only where the target offers its request.
 */
function entries(c: ArbConfig): Entry[] {
  const o = c.offers ?? OFFERS_ALL;
  const p = c.profile;
  const w = (offered: boolean, weight: number): number => (offered ? weight : 0);
  const rings = p.dirtyRingMaxBytes !== 0;
  // Targeted runs (ArbConfig.focus): the ring's traffic (enables, writes, harvests, resets,
  // logging toggles) four times as often; or the bitmap's (writes, reads, clears, logging
  // toggles); or guest_memfd's (files, slot creates and deletes, requests on its slots).
  const f = c.focus === 'dirty-rings' ? 4 : 1;
  const b = c.focus === 'dirty-bitmaps' ? 4 : 1;
  const d = Math.max(f, b);
  const g = c.focus === 'guest-memfd' ? 4 : 1;
  return [
    [createSlotArb, 10],
    [createNearArb, 8],
    [deleteSlotArb, 5],
    [deleteMissingArb, 2],
    [moveSlotArb, 6],
    [setDirtyLoggingArb, 4 * d],
    [reissueSlotArb, 3],
    [toggleReadonlyArb, 2],
    [resizeSlotArb, 2],
    [changeUserspaceAddrArb, 2],
    [badFlagsArb, 3],
    [misalignedArb, 3],
    [gpaWrapArb, 1],
    [userAddrLimitArb, 2],
    [slotIdBoundArb, 3],
    [maxPagesArb, 1],
    [maxGfnArb, 2],
    // 7, not 6: in a VM with a ring every read answers ENXIO (MS-DLG-09).
    [getDirtyLogArb, 7 * b],
    [guestWriteArb, 6 * d],
    [clearDirtyLogArb, 3 * b],
    [manualProtectArb, 1],
    [internalSlotArb, 5],
    [rawRegionArb, 4],
    [resetVmArb, 1],
    [lookupIdArb, 2],
    [lookupGfnArb, 4],
    [lookupGfnApproxArb, 3],
    [lookupGfnRangeArb, 3],
    [lookupHvaRangeArb, 3],
    [vcpuLookupArb, 6],
    [lookupVisibleArb, 2],
    [gfnToHvaArb, 3],
    [bulkCreateArb, 2],
    [bulkDeleteArb, 1],
    [bulkFillArb, c.fill ? 1 : 0],
    // A kernel without an ioctl answers ENOTTY to all of it (MS-V2-01, MS-GMF-01, MS-ATR-01): one
    // command of each then suffices, and the rest of the mix keeps its share.
    [resetVmTypeArb, w(o.createVm, 2)],
    [createGuestMemfdArb, w(o.guestMemfd, p.guestMemfd ? 4 * g : 1)],
    [createSlot2Arb, w(o.region2, p.userMemory2 ? 10 * g : 2)],
    [deleteSlot2Arb, w(o.region2 && p.userMemory2, 3 * g)],
    [modifyGmemSlotArb, w(o.region2 && p.userMemory2 && p.guestMemfd, 6 * g)],
    [setMemoryAttributesArb, w(o.attributes, p.memoryAttributes ? 3 : 1)],
    [checkExtensionArb, w(o.capabilities, 3)],
    // Dirty rings (spec/25), light in the general mix so the rest keeps its share (the targeted
    // ring runs weigh them up): a ring must be enabled before the VM's first write (MS-RNG-06);
    // without rings one command of each suffices (MS-RNG-01, MS-RNG-13).
    [enableDirtyRingArb, w(o.dirtyRings, rings ? (f > 1 ? 16 : 2) : 1)],
    [harvestDirtyRingArb, w(o.dirtyRings, f > 1 ? 12 : 1)],
    [resetDirtyRingsArb, w(o.dirtyRings, f > 1 ? 12 : 1)],
    [writeBurstArb, w(o.write, d > 1 ? 12 : 2)],
  ];
}

/** The weighted command arbitrary (one element, for `fc.commands`). */
export function commandArbs(c: ArbConfig): fc.Arbitrary<MemslotCommand>[] {
  const weighted = entries(c)
    .filter(([, w]) => w > 0)
    .map(([make, weight]) => ({ arbitrary: make(c), weight }));
  return [fc.oneof(...weighted)];
}
