/**
 * A request trace in the shapes of the kernel's tools/testing/selftests/kvm/set_memory_region_test.c,
 * at full occupancy (issue 14's first figure):
 *
 * 1. test_add_max_memory_regions(): slots 0 .. KVM_CAP_NR_MEMSLOTS - 1 created one by one, each
 *    MEM_REGION_SIZE (2 MiB) at `i * 2 MiB`, host addresses contiguous; then one more id, which
 *    fails with EINVAL;
 * 2. test_move_memory_region() at full occupancy, `loops` times: the last slot moved past the end
 *    of guest memory and back (two MOVEs, each followed by a gfn lookup of its old start: a miss,
 *    then a hit), and a MOVE of slot 10 by one page onto its neighbour (EEXIST, MS-OVL-01);
 * 3. test_delete_memory_region() at full occupancy, `loops` times: slot 10 deleted, its gfn looked
 *    up (a miss), slot 10 created again.
 *
 * With 32764 slots and 100 loops: 32765 + 500 + 300 = 33565 requests; slot 10 must exist (max > 10).
 */
import { PAGE_SHIFT, PAGE_SIZE } from '../model/index.js';
import type { Request } from '../trace/trace.js';

/** MEM_REGION_SIZE of set_memory_region_test.c. */
export const MEM_REGION_SIZE = 0x20_0000n;
const HOST = 0x7e00_0000_0000n;
const SLOT = 10;

/**
 * The trace for `max` slots (KVM_USER_MEM_SLOTS: 32764 on x86_64; fewer for a quick look), with
 * `loops` move and delete rounds. With fewer slots than the profile allows, the create past
 * the last one succeeds instead of failing: the replay compares with the model's answers.
 */
export function selftestTrace(max: number, loops: number): Request[] {
  const at = (id: number): { guestPhysAddr: bigint; userspaceAddr: bigint } => ({
    guestPhysAddr: BigInt(id) * MEM_REGION_SIZE,
    userspaceAddr: HOST + BigInt(id) * MEM_REGION_SIZE,
  });
  const set = (id: number, guestPhysAddr: bigint, memorySize = MEM_REGION_SIZE): Request => ({
    op: 'set_user_memory_region',
    region: { slot: id, flags: 0, guestPhysAddr, memorySize, userspaceAddr: at(id).userspaceAddr },
  });
  const lookup = (gpa: bigint): Request => ({ op: 'gfn_to_memslot', asId: 0, gfn: gpa >> PAGE_SHIFT });
  const out: Request[] = [];
  for (let id = 0; id < max; id++) out.push(set(id, at(id).guestPhysAddr));
  out.push(set(max, at(max).guestPhysAddr));
  const last = max - 1;
  const away = at(max + 1).guestPhysAddr;
  for (let i = 0; i < loops; i++) {
    out.push(set(last, away), lookup(at(last).guestPhysAddr));
    out.push(set(last, at(last).guestPhysAddr), lookup(at(last).guestPhysAddr));
    out.push(set(SLOT, at(SLOT).guestPhysAddr - PAGE_SIZE));
  }
  for (let i = 0; i < loops; i++) {
    out.push(set(SLOT, 0n, 0n), lookup(at(SLOT).guestPhysAddr), set(SLOT, at(SLOT).guestPhysAddr));
  }
  return out;
}
