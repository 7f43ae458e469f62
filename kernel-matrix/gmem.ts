/**
 * The memory-API scenario (spec/28-memory-api.md) every kernel of the matrix answers in a third
 * boot: KVM_SET_USER_MEMORY_REGION2, guest_memfd, memory attributes, VM types and capabilities,
 * on a default (type-0) VM. Like the fill (fill.ts) it is sent as is, with no model in lockstep,
 * and the answers are written as they come (record.ts `sendAndRecord`); the SUT's hello decides
 * nothing but which requests are sent (an op it does not list is skipped and counted) and the
 * max gfn the above-the-limit requests use.
 *
 * Handles: each section starts with a reset, and every create_guest_memfd whose answer differs
 * between kernel lines (the flag bits, the sizes near the limits) comes after the last request
 * of its section that names a handle, so the handles the requests name are those of creates
 * every line with guest_memfd accepts.
 *
 * Sections:
 *  1. capabilities: all twelve of spec/80 on the VM fd and on /dev/kvm;
 *  2. VM types: reset with vm_type 0, then 1..6, 31, 32 (EINVAL where not offered), showing that
 *     a refused type keeps the VM (a slot and a guest_memfd binding made before are still there);
 *  3. create_guest_memfd sizes (0, unaligned, 2^63, 2^64 - 4096, good, 2^63 - 4096) and every
 *     flag bit 0..63;
 *  4. region2: GUEST_MEMFD alone / with LOG_DIRTY / with READONLY, unknown bits, offset unaligned
 *     and wrapping, each guest_memfd kind (closed, memfd, other_vm, handle), past the file's size,
 *     success, a disjoint range of the same file, the same range twice (and partly, and across
 *     two bindings, and from address space 1), overlap with an ordinary slot (alone and with a
 *     bound range), above the max gfn (alone, bound, with a closed fd), a user id past the limit,
 *     v2 without the flag (the fd fields ignored), the v1 ioctl with bit 2, modifies of a gmem
 *     slot (identical reissue, flags, move, v1), get_dirty_log, deletes (v2 without and with the
 *     flag, with an unaligned offset, with LOG_DIRTY, v1) and the same ranges bound again;
 *  5. set_memory_attributes: flags, each attribute bit, size 0, wrap, unaligned address and
 *     size, success with and without slots;
 *  6. a last reset and the VM-fd caps of the new VM.
 */
import type { Profile } from '../model/profiles.js';
import type { CapName } from '../model/capabilities.js';
import { CAP_NAMES } from '../model/capabilities.js';
import type { GmemRef } from '../model/types.js';
import type { Request } from '../trace/trace.js';

const PAGE = 0x1000n;
const UADDR = 0x7f00_0000_0000n;
const GMEM = 4; // KVM_MEM_GUEST_MEMFD
const LOG_DIRTY = 1;
const READONLY = 2;

const v2 = (slot: number, flags: number, gpa: bigint, size: bigint, ref?: GmemRef, offset = 0n, uaddr = UADDR): Request => ({
  op: 'set_user_memory_region2',
  region: {
    slot: slot >>> 0,
    flags,
    guestPhysAddr: gpa,
    memorySize: size,
    userspaceAddr: uaddr,
    guestMemfdOffset: offset,
    // The protocol needs a ref with the flag; without one the driver passes fd 0xffffffff.
    guestMemfd: ref ?? 'closed',
  },
});
const v1 = (slot: number, flags: number, gpa: bigint, size: bigint, uaddr = UADDR): Request => ({
  op: 'set_user_memory_region',
  region: { slot: slot >>> 0, flags, guestPhysAddr: gpa, memorySize: size, userspaceAddr: uaddr },
});
const gmem = (size: bigint, flags = 0n): Request => ({ op: 'create_guest_memfd', size, flags });
const attrs = (address: bigint, size: bigint, attributes: bigint, flags = 0n): Request => ({ op: 'set_memory_attributes', address, size, attributes, flags });
const cap = (c: CapName, fd: 'vm' | 'system'): Request => ({ op: 'check_extension', cap: c, fd });
const slots = (asId = 0): Request => ({ op: 'get_slots', asId });

/** The requests of the scenario for a profile (the max gfn of the above-the-limit requests). */
export function gmemRequests(p: Profile): Request[] {
  const out: Request[] = [];
  const push = (...r: Request[]): void => {
    out.push(...r);
  };
  const above = p.maxGfn === null ? null : (p.maxGfn + 1n) << 12n;

  // 1. Capabilities.
  push({ op: 'reset' });
  for (const c of CAP_NAMES) push(cap(c, 'vm'), cap(c, 'system'));

  // 2. VM types. Handle 0 of 2 MiB and a binding of its first page at gpa 1 MiB, an ordinary slot at 16 MiB.
  push({ op: 'reset', vmType: 0 }, gmem(0x20_0000n), v1(5, 0, 0x100_0000n, PAGE), v2(6, GMEM, 0x10_0000n, PAGE, 0, 0n));
  for (const t of [1, 2, 3, 4, 5, 6, 31, 32]) push({ op: 'reset', vmType: t });
  // Still the same VM: slot 5's gfn is taken (EEXIST), file page 0 of handle 0 is bound, page 1 is not.
  push(v1(7, 0, 0x100_0000n, PAGE), v2(7, GMEM, 0x20_0000n, PAGE, 0, 0n), v2(7, GMEM, 0x20_0000n, PAGE, 0, PAGE), slots());
  push(cap('VM_TYPES', 'vm'), cap('GUEST_MEMFD', 'vm'));

  // 3. create_guest_memfd sizes and flags (in a VM of its own: what is accepted differs by line).
  push({ op: 'reset' });
  push(gmem(0n), gmem(0x800n), gmem(0x1001n), gmem(1n << 63n), gmem((1n << 64n) - PAGE), gmem(0x20_0000n, 1n << 63n));
  push(gmem(0x20_0000n), gmem((1n << 63n) - PAGE));
  for (let b = 0n; b < 64n; b++) push(gmem(PAGE, 1n << b));
  push(gmem(PAGE, 3n), gmem(0n, 1n), gmem(0x800n, 1n << 2n));

  // 4. KVM_SET_USER_MEMORY_REGION2 on a default VM. Handle 0: 4 MiB, handle 1: 2 MiB.
  push({ op: 'reset' }, gmem(0x40_0000n), gmem(0x20_0000n));
  const A = 0x10_0000n; // slot 1: gpa 1 MiB, 256 pages, file 0 pages 0x000-0x0ff
  const B = 0x30_0000n; // slot 2: gpa 3 MiB, 256 pages, file 0 pages 0x100-0x1ff
  const MiB = 0x10_0000n;
  // Flags.
  push(v2(1, GMEM | LOG_DIRTY, A, MiB, 0, 0n), v2(1, GMEM | READONLY, A, MiB, 0, 0n), v2(1, GMEM | 8, A, MiB, 0, 0n), v2(1, 8, A, MiB));
  push(v2(1, GMEM | LOG_DIRTY | READONLY, A, MiB, 0, 0n));
  // Offset: unaligned, wrapping (and wrapping with an aligned offset past every file).
  push(v2(1, GMEM, A, MiB, 0, 0x800n), v2(1, GMEM, A, MiB, 0, (1n << 64n) - PAGE), v2(1, GMEM, A, PAGE, 0, (1n << 64n) - PAGE));
  // The kinds of fd.
  push(v2(1, GMEM, A, MiB, 'closed', 0n), v2(1, GMEM, A, MiB, 'memfd', 0n), v2(1, GMEM, A, MiB, 'other_vm', 0n));
  // Past the file's size: the last page, exactly at the end, a range reaching past it.
  push(v2(1, GMEM, A, PAGE, 0, 0x40_0000n), v2(1, GMEM, A, 2n * PAGE, 0, 0x3f_f000n), v2(1, GMEM, A, MiB, 1, 0x18_0000n));
  push(v2(1, GMEM, A, 0x40_1000n, 0, 0n));
  push(slots());
  // Success, then a disjoint range of the same file.
  push(v2(1, GMEM, A, MiB, 0, 0n), v2(2, GMEM, B, MiB, 0, MiB), slots());
  // The same range again: whole, one page of it, the last page of slot 2's range, across both ranges.
  push(v2(3, GMEM, 0x50_0000n, MiB, 0, 0n), v2(3, GMEM, 0x50_0000n, PAGE, 0, 0x8_0000n), v2(3, GMEM, 0x50_0000n, 2n * PAGE, 0, 0x1f_f000n));
  push(v2(3, GMEM, 0x50_0000n, 2n * PAGE, 0, 0xf_f000n));
  // From address space 1 (bindings belong to the file, not to an address space).
  push(v2(0x1_0003, GMEM, 0x50_0000n, PAGE, 0, 0n), v2(0x1_0003, GMEM, 0x50_0000n, PAGE, 1, 0n));
  // Overlap with an ordinary slot: a fresh range (EEXIST), a bound range (EEXIST first?), a closed fd.
  push(v1(10, 0, 0x80_0000n, PAGE), v2(3, GMEM, 0x80_0000n, PAGE, 1, PAGE), v2(3, GMEM, 0x80_0000n, PAGE, 0, 0n), v2(3, GMEM, 0x80_0000n, PAGE, 'closed', 0n));
  // Overlap with a guest_memfd slot (gfn) and a fresh file range.
  push(v2(3, GMEM, A, PAGE, 1, 0x2000n), v1(3, 0, A + PAGE, PAGE));
  // Above the max gfn: a fresh range, a bound range, a closed fd, other_vm, past the file's size.
  if (above !== null) {
    push(v2(3, GMEM, above, PAGE, 1, 0x3000n), v2(3, GMEM, above, PAGE, 0, 0n), v2(3, GMEM, above, PAGE, 0, 0x10_0000n));
    push(v2(3, GMEM, above, PAGE, 'closed', 0n), v2(3, GMEM, above, PAGE, 'other_vm', 0n), v2(3, GMEM, above, PAGE, 1, 0x20_0000n));
    push(v2(3, GMEM, above - PAGE, PAGE, 1, 0x3000n), v2(3, 0, above - PAGE, 0n));
  }
  // A user id past the limit, and an as_id past the VM's.
  push(v2(p.userMemSlots, GMEM, 0x90_0000n, PAGE, 1, 0x4000n), v2(0x2_0003, GMEM, 0x90_0000n, PAGE, 1, 0x4000n));
  // v2 without the flag: the fd and offset are ignored (a closed fd, an unaligned offset).
  push(v2(4, 0, 0xa0_0000n, PAGE, 'closed', 0x123n), v2(4, LOG_DIRTY, 0xa0_0000n, PAGE, 'memfd', 0x800n), v2(4, 0, 0xa0_0000n, 0n));
  push(v2(4, LOG_DIRTY, 0xa0_0000n, PAGE), { op: 'get_dirty_log', slot: 4 });
  // The v1 ioctl with bit 2: a create, and over the gmem slot.
  push(v1(11, GMEM, 0xb0_0000n, PAGE), v1(1, GMEM, A, MiB));
  push(slots(), slots(1));
  // Modifies of a guest_memfd slot: identical reissue, another handle or offset, flags, move, v1.
  push(v2(1, GMEM, A, MiB, 0, 0n), v2(1, GMEM, A, MiB, 1, 0n), v2(1, GMEM, A, MiB, 0, MiB * 3n));
  push(v2(1, 0, A, MiB), v2(1, LOG_DIRTY, A, MiB), v2(1, GMEM | LOG_DIRTY, A, MiB, 0, 0n), v2(1, GMEM | READONLY, A, MiB, 0, 0n));
  push(v2(1, GMEM, 0x60_0000n, MiB, 0, 0n), v2(1, 0, 0x60_0000n, MiB), v1(1, 0, A, MiB), v1(1, LOG_DIRTY, A, MiB), v1(1, 0, 0x60_0000n, MiB));
  push(v2(1, GMEM, A, MiB, 0, 0n, UADDR + MiB), v2(1, GMEM, A, 2n * MiB, 0, 0n));
  push({ op: 'get_dirty_log', slot: 1 }, slots());
  // Deletes: slot 1 by v2 without the flag; slot 2 with the flag (an unaligned offset first, LOG_DIRTY, then a good one).
  push(v2(1, 0, A, 0n), v2(3, GMEM, 0x50_0000n, MiB, 0, 0n), slots());
  push(v2(2, GMEM, B, 0n, 0, 0x800n), v2(2, GMEM | LOG_DIRTY, B, 0n, 0, 0n), v2(2, GMEM, B, 0n, 0, (1n << 64n) - PAGE), v2(2, GMEM, B, 0n, 0, MiB));
  push(v2(2, GMEM, B, MiB, 0, MiB), slots());
  // Delete by v1: with bit 2 (the v1 mask), then without; a delete with the flag of a slot that does not exist.
  push(v1(2, GMEM, B, 0n), v1(2, 0, B, 0n), v1(0x1_0003, 0, 0x50_0000n, 0n), v2(9, GMEM, B, 0n, 0, 0n), v2(9, 0, B, 0n));
  // Bound again after the deletes, from both address spaces; a delete with the flag of an ordinary slot.
  push(v2(2, GMEM, B, MiB, 0, MiB), v2(0x1_0003, GMEM, 0x50_0000n, PAGE, 0, 0n), v2(0x1_0004, GMEM, 0x60_0000n, PAGE, 1, 0n));
  push(v2(10, GMEM, 0x80_0000n, 0n, 0, 0n), v2(3, 0, 0x50_0000n, 0n), slots(), slots(1));

  // 5. KVM_SET_MEMORY_ATTRIBUTES (slot 3 of 4. is at gpa 5 MiB).
  push(attrs(0x50_0000n, PAGE, 0n, 1n), attrs(0x50_0000n, PAGE, 0n, 1n << 63n), attrs(0x50_0000n, PAGE, 8n, 1n));
  for (const b of [0n, 1n, 2n, 3n, 4n, 63n]) push(attrs(0x50_0000n, PAGE, 1n << b));
  push(
    attrs(0x50_0000n, 0n, 0n),
    attrs((1n << 64n) - PAGE, 2n * PAGE, 0n),
    attrs((1n << 64n) - PAGE, PAGE, 0n),
    attrs(0x50_0800n, PAGE, 0n),
    attrs(0x50_0000n, 0x800n, 0n),
  );
  push(attrs(0x50_0000n, 0n, 8n), attrs(0x50_0800n, 0n, 0n));
  push(attrs(0x50_0000n, PAGE, 0n), attrs(0x4000_0000n, 0x20_0000n, 0n), attrs(0n, 0x4000_0000n, 0n), attrs(0x50_0000n, PAGE, 0n), slots());

  // 6. A last reset, and the VM-fd caps of the new VM.
  push({ op: 'reset', vmType: 0 });
  for (const c of CAP_NAMES) push(cap(c, 'vm'));
  push({ op: 'reset' });
  return out;
}
