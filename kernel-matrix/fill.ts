/**
 * The fill-to-the-limit sequence every kernel of the matrix answers after its random steps,
 * made from the profile the kernel's driver reported (its hello):
 *
 * 1. reset; in address space 0 and then 1, a one-page slot for every user id 0 ..
 *    user_mem_slots - 1 (the same gfns in both spaces: ids, gpas and limits are per address
 *    space), then one more: id user_mem_slots (must fail); ids user_mem_slots + 1, + 2,
 *    mem_slots_num - 1, mem_slots_num and 0xffff through the user ioctl, as creates and as
 *    deletes; get_dirty_log of the last user id and of the first one past it; the last user slot
 *    deleted and created again; and the first id past the limit once more;
 * 2. reset; the largest slots: KVM_MEM_MAX_NR_PAGES (2^31 - 1) pages and one page more, at two
 *    gfns, in both address spaces, each deleted again when accepted, and slots of 2^20 and
 *    2^24 pages. A kernel may answer ENOMEM where the model accepts (5.10's rmap and lpage_info
 *    arrays for 2^31 pages do not fit a 1 GiB guest): the recording keeps the kernel's answer.
 *
 * The output is JSON Lines of requests without `expect` and without a profile line: replayed
 * with `--sut`, the SUT's own profile applies.
 */
import type { Profile } from '../model/profiles.js';
import type { Request } from '../trace/trace.js';

const PAGE_SHIFT = 12n;
const UADDR_BASE = 0x7f00_0000_0000n;
/** Where the filled slots start (gfn). */
const FILL_GFN = 0x100n;

const set = (slot: number, gfn: bigint, npages: bigint, uaddr: bigint, flags = 0): Request => ({
  op: 'set_user_memory_region',
  region: {
    slot: slot >>> 0,
    flags,
    guestPhysAddr: gfn << PAGE_SHIFT,
    memorySize: npages << PAGE_SHIFT,
    userspaceAddr: uaddr,
  },
});

/** The requests of the sequence for a profile. */
export function fillRequests(p: Profile): Request[] {
  const out: Request[] = [{ op: 'reset' }];
  const L = p.userMemSlots;
  for (let as = 0; as < p.addressSpaces; as++) {
    const slot = (id: number): number => ((as << 16) | id) >>> 0;
    for (let id = 0; id < L; id++) out.push(set(slot(id), FILL_GFN + BigInt(id), 1n, UADDR_BASE + (BigInt(id) << 12n)));
    // One more than the limit, and the ids past it.
    const past = FILL_GFN + BigInt(L) + 16n;
    for (const id of [L, L + 1, L + 2, p.memSlotsNum - 1, p.memSlotsNum, 0xffff]) {
      out.push(set(slot(id), past, 1n, UADDR_BASE));
      out.push(set(slot(id), past, 0n, UADDR_BASE));
    }
    out.push({ op: 'get_dirty_log', slot: slot(L - 1) });
    out.push({ op: 'get_dirty_log', slot: slot(L) });
    out.push(set(slot(L - 1), FILL_GFN + BigInt(L - 1), 0n, 0n));
    out.push(set(slot(L - 1), past, 1n, UADDR_BASE, 1 /* KVM_MEM_LOG_DIRTY_PAGES */));
    out.push({ op: 'get_dirty_log', slot: slot(L - 1) });
    out.push(set(slot(L), past + 1n, 1n, UADDR_BASE));
  }
  out.push({ op: 'reset' });
  const max = p.maxNrPages;
  for (let as = 0; as < p.addressSpaces; as++) {
    const slot = (id: number): number => ((as << 16) | id) >>> 0;
    for (const gfn of [0n, 1n << 32n]) {
      for (const npages of [max, max + 1n, 1n << 24n, 1n << 20n]) {
        out.push(set(slot(3), gfn, npages, 0x1000n));
        out.push(set(slot(3), gfn, 0n, 0n));
      }
    }
  }
  out.push({ op: 'reset' });
  return out;
}
