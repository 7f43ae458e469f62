/**
 * The dirty-bits scenario every kernel of the matrix answers (`--dirty`): a scripted sequence
 * that exercises each rule of spec/25 with a vCPU that writes (the driver's `write`), sent as
 * is like fill.ts's (no model in lockstep), the answers written as they come, into
 * `NAME[-npt0].dirty.jsonl.gz`, then replayed through the model.
 *
 * Per address space (as 0 first, then, after a reset, as 1 with a logged as-0 slot at the
 * same gpas that its writes must leave clean):
 *
 * - a logged slot of 200 pages (not a multiple of 64: the CLEAR exemption at the slot's end),
 *   a plain one, a READONLY one and a READONLY|LOG one; writes into each (MS-WR-01..04), the
 *   same page twice, pages 0, 63, 64 and the last one; GET twice (get-and-clear, MS-DLB-02);
 *   every GET errno (MS-DLG-01..04);
 * - dirty logging off and on (FLAGS_ONLY: MS-DLG-08, MS-DLG-07 with a fresh zero bitmap,
 *   MS-DLB-01), a MOVE that keeps LOG (MS-DLG-06: the bits kept; the old gpa is MMIO now), a
 *   MOVE that drops it and one that sets it again, DELETE and re-create;
 * - KVM_CLEAR_DIRTY_LOG without manual protect: every errno (MS-CLR-01..04, the range end and
 *   the multiple-of-64 rule) and its effect on the bits (MS-CLR-05), `num_pages` 0;
 * - KVM_ENABLE_CAP(MANUAL_DIRTY_LOG_PROTECT2): flags and options refused (MS-MAN-01, 02),
 *   PROTECT_ENABLE (GET no longer clears; CLEAR does), INITIALLY_SET (new bitmaps all ones:
 *   a CREATE, a FLAGS_ONLY; an existing bitmap and a MOVE's kept one unchanged), and 0 (GET
 *   clears again).
 *
 * The gpas are below 4 GiB (the driver's guest runs in flat 32-bit mode) but for a logged
 * slot at 4 GiB and an MMIO write at 8 GiB (64-bit mode); the userspace addresses are
 * distinct per slot, so the driver can map the pages the writes touch.
 */
import type { Profile } from '../model/profiles.js';
import type { RuleId } from '../spec/rules.js';
import { requestToJson, type Request } from '../trace/trace.js';

/** The rules of spec/25 the scenario fires, every one of them (the replay test checks it). */
export const DIRTY_RULES: readonly RuleId[] = [
  'MS-DLG-01',
  'MS-DLG-02',
  'MS-DLG-03',
  'MS-DLG-04',
  'MS-DLG-05',
  'MS-DLG-06',
  'MS-DLG-07',
  'MS-DLG-08',
  'MS-DLB-01',
  'MS-DLB-02',
  'MS-WR-01',
  'MS-WR-02',
  'MS-WR-03',
  'MS-WR-04',
  'MS-CLR-01',
  'MS-CLR-02',
  'MS-CLR-03',
  'MS-CLR-04',
  'MS-CLR-05',
  'MS-MAN-01',
  'MS-MAN-02',
  'MS-MAN-03',
];

/**
 * The dirty-ring rules the ring part fires on a kernel with dirty rings (6.1 and later), every
 * one of spec/25's but MS-RNG-01 (a kernel without rings: 5.10, where the part fires it and
 * MS-RNG-13 instead) and MS-RNG-10 (a write into a page still mapped writable: never with this
 * driver, whose every write drops the mappings, `write_drops_mappings`).
 */
export const DIRTY_RING_RULES: readonly RuleId[] = [
  'MS-DLG-09',
  'MS-DLG-10',
  'MS-CLR-06',
  'MS-RNG-02',
  'MS-RNG-03',
  'MS-RNG-04',
  'MS-RNG-05',
  'MS-RNG-06',
  'MS-RNG-07',
  'MS-RNG-08',
  'MS-RNG-09',
  'MS-RNG-11',
  'MS-RNG-12',
  'MS-RNG-13',
  'MS-RNG-14',
];

/** What the ring part fires on a kernel without dirty rings (5.10). */
export const NO_RING_RULES: readonly RuleId[] = ['MS-RNG-01', 'MS-RNG-12', 'MS-RNG-13'];

const P = 0x1000n;
const LOG = 1;
const RO = 2;
const UADDR = 0x7f10_0000_0000n;

/** The hex of a bitmap (spec/25: bytes in memory order, trailing zero bytes dropped) with these pages set. */
export function bitmapHex(pages: readonly number[]): string {
  const bytes: number[] = [];
  for (const p of pages) {
    while (bytes.length <= p >> 3) bytes.push(0);
    bytes[p >> 3]! |= 1 << (p & 7);
  }
  while (bytes.length > 0 && bytes[bytes.length - 1] === 0) bytes.pop();
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** The bitmap of pages [0, n) all set. */
const ones = (n: number): string => bitmapHex(Array.from({ length: n }, (_, i) => i));

/** The requests of the scenario for a profile (one or two address spaces). */
export function dirtyRequests(p: Profile): Request[] {
  const out: Request[] = [];
  const spaces = Math.min(p.addressSpaces, 2);
  for (let as = 0; as < spaces; as++) {
    const slot = (id: number): number => ((as << 16) | id) >>> 0;
    const ua = UADDR + (BigInt(as) << 32n);
    const set = (id: number, flags: number, gpa: bigint, npages: bigint, uaddr: bigint): void => {
      out.push({ op: 'set_user_memory_region', region: { slot: slot(id), flags, guestPhysAddr: gpa, memorySize: npages * P, userspaceAddr: uaddr } });
    };
    const get = (id: number): void => void out.push({ op: 'get_dirty_log', slot: slot(id) });
    const write = (gpa: bigint, offset = 0x123n): void => void out.push({ op: 'write', asId: as, gpa: gpa + offset });
    const clear = (id: number, firstPage: bigint, numPages: number, bitmap: string): void =>
      void out.push({ op: 'clear_dirty_log', clear: { slot: slot(id), firstPage, numPages, bitmap } });
    const cap = (args0: bigint, flags = 0): void => void out.push({ op: 'enable_cap', cap: 'MANUAL_DIRTY_LOG_PROTECT2', args0, flags });

    out.push({ op: 'reset' });
    // Slot 0: logged, 200 pages at 1 MiB.
    const A = 0x10_0000n;
    const N = 200n;
    if (as === 1) {
      // The other address space at the same gpas, logged: as 1's writes must leave it clean.
      out.push({
        op: 'set_user_memory_region',
        region: { slot: 0, flags: LOG, guestPhysAddr: A, memorySize: N * P, userspaceAddr: UADDR + 0x4000_0000n },
      });
    }
    set(0, LOG, A, N, ua); // MS-DLG-07, MS-DLB-01 (zeros)
    get(0); // "" (MS-DLG-05)
    for (const pg of [0n, 1n, 63n, 64n, 199n]) write(A + pg * P, pg === 199n ? 0xfffn : 0x10n);
    write(A + 5n * P);
    write(A + 5n * P, 0x800n); // the same page twice: one bit
    get(0); // pages 0 1 5 63 64 199
    get(0); // "" (get-and-clear)
    // No slot: MMIO, nothing changes (MS-WR-01).
    write(0x5000_0000n);
    write(A + N * P); // just past the slot's end
    // A plain slot (MS-WR-04), a READONLY one and a READONLY|LOG one (MS-WR-02).
    set(1, 0, 0x20_0000n, 4n, ua + 0x100_0000n);
    write(0x20_0000n + 2n * P);
    get(1); // ENOENT (MS-DLG-04)
    set(2, RO, 0x30_0000n, 2n, ua + 0x200_0000n);
    write(0x30_0000n);
    set(3, RO | LOG, 0x31_0000n, 2n, ua + 0x300_0000n);
    write(0x31_0000n + P);
    get(3); // "": a refused write records nothing
    get(0); // "": none of the above is in slot 0
    // GET's errnos.
    out.push({ op: 'get_dirty_log', slot: ((2 << 16) | 0) >>> 0 }); // as_id 2: MS-DLG-01
    get(p.userMemSlots); // MS-DLG-02
    get(9); // MS-DLG-03
    if (as === 1) out.push({ op: 'get_dirty_log', slot: 0 }); // the as-0 twin: ""

    // Logging off and on (FLAGS_ONLY).
    write(A + 7n * P);
    set(0, 0, A, N, ua); // MS-DLG-08: the bitmap (with page 7) is freed
    get(0); // ENOENT
    write(A + 8n * P); // MS-WR-04: lands, records nothing
    set(0, LOG, A, N, ua); // MS-DLG-07: fresh, zeros
    get(0); // ""
    write(A + 9n * P);
    get(0); // page 9

    // MOVE keeping LOG (MS-DLG-06): the bits go with it.
    const B = 0x100_0000n;
    write(A + 10n * P);
    write(A + 20n * P);
    set(0, LOG, B, N, ua);
    write(A + 10n * P); // the old place: MMIO now
    write(B + 30n * P);
    get(0); // pages 10 20 30
    // A MOVE that drops LOG (MS-DLG-08), one that sets it again (MS-DLG-07).
    write(B + 3n * P);
    const C = 0x200_0000n;
    set(0, 0, C, N, ua);
    get(0); // ENOENT
    set(0, LOG, A, N, ua);
    get(0); // "": fresh
    // DELETE and re-create.
    write(A + 4n * P);
    set(0, 0, A, 0n, ua);
    get(0); // ENOENT (MS-DLG-03)
    write(A + 4n * P); // MMIO
    set(0, LOG, A, N, ua);
    get(0); // ""

    // KVM_CLEAR_DIRTY_LOG without manual protect.
    for (const pg of [0n, 1n, 2n, 65n, 130n, 193n, 199n]) write(A + pg * P);
    clear(0, 0n, 64, bitmapHex([0, 2])); // MS-CLR-05: pages 0 and 2
    clear(0, 192n, 8, bitmapHex([7])); // up to the slot's end (200): allowed; page 199
    clear(0, 128n, 0, ''); // num_pages 0
    get(0); // pages 1 65 130 193
    out.push({ op: 'clear_dirty_log', clear: { slot: ((2 << 16) | 0) >>> 0, firstPage: 0n, numPages: 64, bitmap: '' } }); // as_id 2: MS-CLR-01
    clear(p.userMemSlots, 0n, 64, ''); // MS-CLR-01
    clear(0xffff, 0n, 64, ''); // MS-CLR-01
    clear(0, 1n, 64, '01'); // MS-CLR-02
    clear(0, 0x41n, 64, '01'); // MS-CLR-02
    clear(9, 0n, 64, '01'); // MS-CLR-03: no slot
    clear(1, 0n, 4, '01'); // MS-CLR-03: no bitmap
    clear(0, 256n, 0, ''); // MS-CLR-04: first_page > npages
    clear(0, 192n, 9, ''); // MS-CLR-04: past the end
    clear(0, 128n, 8, '01'); // MS-CLR-04: short of the end, not a multiple of 64
    clear(0, 0n, 199, ''); // MS-CLR-04: short by one
    clear(0, 64n, 64, bitmapHex([1])); // a full word in the middle: page 65
    get(0); // pages 1 130 193 (the refused ones cleared nothing)
    write(A + 2n * P);
    write(A + 199n * P);
    clear(0, 0n, 200, ones(200)); // the whole slot
    get(0); // ""

    // Manual protect (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2).
    cap(1n, 1); // MS-MAN-01
    cap(2n); // MS-MAN-02: INITIALLY_SET alone
    cap(4n); // MS-MAN-02
    cap(7n); // MS-MAN-02
    cap(1n); // MS-MAN-03: PROTECT_ENABLE
    write(A);
    write(A + 64n * P);
    get(0); // pages 0 64
    get(0); // the same: GET does not clear
    clear(0, 0n, 64, '01'); // page 0
    get(0); // page 64
    write(A); // write-protected again by the CLEAR: the bit comes back
    get(0); // pages 0 64
    cap(3n); // PROTECT_ENABLE | INITIALLY_SET
    get(0); // unchanged (pages 0 64)
    set(4, LOG, 0x40_0000n, 70n, ua + 0x400_0000n); // MS-DLB-01: all ones
    get(4); // 70 ones
    set(1, LOG, 0x20_0000n, 4n, ua + 0x100_0000n); // FLAGS_ONLY on: all ones
    get(1); // 4 ones
    set(0, LOG, B, N, ua); // MOVE: the kept bitmap is not set again
    get(0); // pages 0 64
    clear(4, 0n, 70, ones(70));
    get(4); // ""
    write(0x40_0000n + 69n * P);
    write(0x40_0000n + 3n * P);
    get(4); // pages 3 69
    clear(1, 0n, 4, bitmapHex([0, 3]));
    get(1); // pages 1 2
    cap(0n); // manual protect off again
    get(4); // pages 3 69, cleared as read
    get(4); // ""
    write(0x40_0000n + 5n * P);
    get(4); // page 5
    set(5, LOG, 0x50_0000n, 3n, ua + 0x500_0000n); // zeros again
    get(5); // ""
    // Above 4 GiB (the driver's guest in 64-bit mode): a logged slot at 4 GiB, MMIO at 8 GiB.
    const G4 = 0x1_0000_0000n;
    set(6, LOG, G4, 3n, ua + 0x600_0000n);
    write(G4 + P, 0xabcn);
    write(G4 + 2n * P + 0xffen, 0n);
    write(2n * G4);
    get(6); // pages 1 2
    if (as === 1) out.push({ op: 'get_dirty_log', slot: 0 }); // the as-0 twin: still ""
  }
  out.push({ op: 'reset' });
  return out;
}

/** A request as the protocol's JSON object, sent as is (record.ts recordDirty). */
export type RawRequest = Record<string, unknown>;

const hx = (v: bigint): string => `0x${v.toString(16)}`;

/** Request makers for raw requests, appending to `out`. */
function rawMakers(out: RawRequest[]) {
  return {
    reset: (): void => void out.push({ op: 'reset' }),
    region: (slot: number, flags: number, gpa: bigint, npages: bigint, uaddr: bigint): void =>
      void out.push({
        op: 'set_user_memory_region',
        slot: slot >>> 0,
        flags,
        guest_phys_addr: hx(gpa),
        memory_size: hx(npages * P),
        userspace_addr: hx(uaddr),
      }),
    ring: (args0: bigint, flags = 0, cap: 'DIRTY_LOG_RING' | 'DIRTY_LOG_RING_ACQ_REL' = 'DIRTY_LOG_RING'): void =>
      void out.push({ op: 'enable_cap', cap, args0: hx(args0), flags }),
    manual: (args0: bigint): void => void out.push({ op: 'enable_cap', cap: 'MANUAL_DIRTY_LOG_PROTECT2', args0: hx(args0), flags: 0 }),
    write: (as: number, gpa: bigint): void => void out.push({ op: 'write', as_id: as, gpa: hx(gpa) }),
    harvest: (): void => void out.push({ op: 'harvest_dirty_ring' }),
    resetRings: (): void => void out.push({ op: 'reset_dirty_rings' }),
    get: (slot: number): void => void out.push({ op: 'get_dirty_log', slot: slot >>> 0 }),
    clear: (slot: number, firstPage: bigint, numPages: number, bitmap: string): void =>
      void out.push({ op: 'clear_dirty_log', slot: slot >>> 0, first_page: hx(firstPage), num_pages: numPages, bitmap }),
  };
}

/** Host addresses of the ring part's slots (apart from the bitmap part's). */
const RING_UADDR = 0x7f20_0000_0000n;

/**
 * The dirty-ring scenario (KVM_CAP_DIRTY_LOG_RING), after the bitmap part in the same trace.
 * The expected answers in the comments are what the 6.12..7.3 source says on AMD (64 reserved
 * entries); 5.10 has no dirty ring (every ring enable EINVAL, KVM_RESET_DIRTY_RINGS unknown,
 * the bitmap answers as before).
 *
 * 1. Enabling: sizes 0, 3, 2048 (below a page), 0x3000 (not a power of two), 2 MiB (E2BIG),
 *    0x1_0000_1000 (args[0] is taken as a u32: 4096, accepted), then again (EINVAL, and E2BIG
 *    for 2 MiB: the size checks come first), ACQ_REL on top; KVM_RESET_DIRTY_RINGS and a
 *    harvest before the vCPU exists.
 * 2. GET and CLEAR with a ring: ENXIO before any slot, id or as_id check.
 * 3. Writes into a slot logged before the ring was enabled and one logged after, a plain, a
 *    READONLY and no slot, in as 0 and as 1 (SMM); the same page twice (two entries: the
 *    driver's writes drop the mappings); harvest, reset (the count), harvest and reset again.
 * 4. FLAGS_ONLY logging off and on; a MOVE with entries harvested and not; a DELETE with a
 *    harvested entry, and an entry past the end of a re-created smaller slot (both counted by
 *    the reset, which skips them); dirty entries not harvested are not reset.
 * 5. ACQ_REL alone, DIRTY_LOG_RING with flags 1, a ring enabled after the vCPU exists
 *    (EINVAL), KVM_RESET_DIRTY_RINGS without a ring (EINVAL).
 * 6. A 4096-byte ring (256 entries) filled to its soft limit (256 - dirty_ring_rsvd_entries =
 *    192) by writes into distinct pages of a logged slot in each address space, alternately:
 *    the write that pushes entry 192 answers dirty_ring_full, and so does the next one; harvest
 *    and reset, then writes land again.
 */
export function ringRequests(p: Profile): RawRequest[] {
  const out: RawRequest[] = [];
  const m = rawMakers(out);
  const A = 0x10_0000n;
  const B = 0x20_0000n;
  const C = 0x40_0000n;
  const PLAIN = 0x30_0000n;
  const RO_GPA = 0x31_0000n;
  const ua = (as: number, id: number): bigint => RING_UADDR + (BigInt(as) << 32n) + (BigInt(id) << 24n);
  const AS1 = 1 << 16;

  // 1. Enabling.
  m.reset();
  m.region(0, LOG, A, 64n, ua(0, 0)); // logged before the ring: it gets a bitmap
  m.ring(0n); // EINVAL
  m.ring(3n); // EINVAL
  m.ring(0x800n); // EINVAL: below a page
  m.ring(0x3000n); // EINVAL: not a power of two
  m.ring(0x20_0000n); // E2BIG
  m.ring(0x1_0000_1000n); // 0: the u32 0x1000
  m.ring(0x1000n); // EINVAL: once only
  m.ring(0x20_0000n); // E2BIG: the size checks first
  m.ring(0x1000n, 0, 'DIRTY_LOG_RING_ACQ_REL'); // EINVAL
  m.resetRings(); // 0: no vCPU yet
  m.harvest(); // []
  m.region(1, LOG, B, 64n, ua(0, 1)); // logged after: no bitmap
  m.region(2, 0, PLAIN, 4n, ua(0, 2));
  m.region(3, RO, RO_GPA, 2n, ua(0, 3));

  // 2. The bitmap ioctls: ENXIO first.
  m.get(0);
  m.get(1);
  m.get(2);
  m.get(5 << 16); // as_id 5
  m.get(9); // no slot
  m.get(p.userMemSlots); // id past the limit
  m.clear(0, 0n, 64, '01');
  m.clear(5 << 16, 0n, 64, '');
  m.clear(9, 0n, 64, '');
  m.clear(0, 1n, 64, ''); // misaligned

  // 3. Writes and the ring.
  m.write(0, A + P + 0x10n); // {0, 1}
  m.write(0, B + 2n * P); // {1, 2}
  m.write(0, PLAIN + P); // nothing
  m.write(0, RO_GPA); // mmio
  m.write(0, 0x5000_0000n); // mmio
  m.write(0, B + 2n * P + 0x800n); // {1, 2} again
  m.harvest(); // {0,1} {1,2} {1,2}
  m.harvest(); // []
  m.resetRings(); // 3
  m.resetRings(); // 0
  m.harvest(); // []
  m.write(0, A + P); // {0, 1}
  // as 1 (SMM): a logged slot at B (as 0's slot 1 is there too), a plain one, a READONLY one.
  m.region(AS1 | 1, LOG, B, 64n, ua(1, 1));
  m.region(AS1 | 2, 0, PLAIN, 4n, ua(1, 2));
  m.region(AS1 | 3, RO, RO_GPA, 2n, ua(1, 3));
  m.write(1, B + 5n * P); // {0x10001, 5}
  m.write(1, PLAIN); // nothing
  m.write(1, RO_GPA + P); // mmio
  m.write(1, A); // mmio: as 1 has nothing at A
  m.write(1, B + 5n * P); // {0x10001, 5} again
  m.harvest(); // {0,1} {0x10001,5} {0x10001,5}
  m.resetRings(); // 3
  m.get(AS1 | 1); // ENXIO

  // 4. Slot changes with entries in the ring.
  m.region(1, 0, B, 64n, ua(0, 1)); // FLAGS_ONLY: logging off
  m.write(0, B + 3n * P); // nothing
  m.region(1, LOG, B, 64n, ua(0, 1)); // logging on
  m.write(0, B + 3n * P); // {1, 3}
  m.harvest(); // {1,3}
  m.write(0, B + 4n * P);
  m.harvest(); // {1,4}
  m.write(0, B + 5n * P); // {1,5}, not harvested yet
  m.region(1, LOG, C, 64n, ua(0, 1)); // MOVE
  m.write(0, B + 6n * P); // mmio: the old place
  m.write(0, C + 6n * P); // {1, 6}
  m.harvest(); // {1,5} {1,6}
  m.resetRings(); // 4
  m.write(0, A + 7n * P);
  m.harvest(); // {0,7}
  m.region(0, LOG, A, 0n, ua(0, 0)); // DELETE
  m.resetRings(); // 1: counted, the slot is gone
  m.write(0, C + 60n * P);
  m.harvest(); // {1,60}
  m.region(1, 0, C, 0n, ua(0, 1));
  m.region(1, LOG, C, 8n, ua(0, 1)); // re-created with 8 pages: offset 60 is past its end
  m.resetRings(); // 1
  m.write(0, C + 2n * P); // {1,2}, not harvested
  m.resetRings(); // 0
  m.harvest(); // {1,2}
  m.resetRings(); // 1
  m.write(1, B + 6n * P); // {0x10001, 6}
  m.region(AS1 | 1, LOG, C, 64n, ua(1, 1)); // as 1 MOVE
  m.write(1, C + 7n * P); // {0x10001, 7}
  m.harvest();
  m.resetRings(); // 2

  // 5. ACQ_REL, flags, too late, no ring.
  m.reset();
  m.ring(0x1000n, 0, 'DIRTY_LOG_RING_ACQ_REL'); // 0 (6.1+)
  m.region(0, LOG, A, 64n, ua(0, 0));
  m.region(AS1, LOG, A, 64n, ua(1, 0));
  m.write(0, A + 9n * P);
  m.write(1, A + 9n * P);
  m.harvest(); // {0,9} {0x10000,9}
  m.resetRings(); // 2
  m.reset();
  m.ring(0x2000n, 1); // 0: flags are not checked
  m.region(0, LOG, A, 64n, ua(0, 0));
  m.write(0, A + 10n * P);
  m.harvest(); // {0,10}
  m.resetRings(); // 1
  m.reset();
  m.resetRings(); // EINVAL: no ring
  m.harvest(); // []
  m.region(0, LOG, A, 64n, ua(0, 0));
  m.region(AS1, LOG, A, 64n, ua(1, 0));
  m.write(0, A + 11n * P); // the vCPU, without a ring
  m.write(1, A + 12n * P);
  m.ring(0x1000n); // EINVAL: a vCPU exists
  m.harvest(); // []
  m.resetRings(); // EINVAL
  m.get(0); // the bitmap: page 11
  m.get(AS1); // page 12

  // 6. Soft full: 4096 bytes, 256 entries, soft limit 256 - rsvd.
  m.reset();
  m.ring(0x1000n);
  const F = 0x100_0000n;
  m.region(0, LOG, F, 256n, ua(0, 4));
  m.region(AS1, LOG, F, 256n, ua(1, 4));
  const soft = 256 - p.dirtyRingRsvdEntries;
  const limit = soft > 0 ? soft : 192;
  for (let i = 0; i < limit; i++) m.write(i & 1, F + BigInt(i) * P); // the last: dirty_ring_full
  m.write(0, F + BigInt(limit) * P); // dirty_ring_full: the vCPU does not run
  m.write(1, F + BigInt(limit + 1) * P); // dirty_ring_full
  m.get(0); // ENXIO
  m.harvest(); // `limit` entries
  m.harvest(); // []
  m.resetRings(); // limit
  m.write((limit - 1) & 1, F + BigInt(limit - 1) * P); // lands now
  m.write(0, F + 250n * P);
  m.write(1, F + 251n * P);
  m.harvest(); // 3 entries
  m.resetRings(); // 3
  m.reset();
  return out;
}

/** The whole dirty-bits trace's requests: the bitmap part (dirtyRequests) then the ring part. */
export function dirtyRawRequests(p: Profile): RawRequest[] {
  return [...dirtyRequests(p).map((r) => requestToJson(r) as RawRequest), ...ringRequests(p)];
}

/** A small seeded PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Host addresses of the random part's slots. */
const RANDOM_UADDR = 0x7f40_0000_0000n;

/**
 * A seeded random sequence of about `steps` requests over a few slots (ids 0..3 in each address
 * space, gpas on a 1 MiB grid from 1 MiB to 8 MiB, 1, 8, 64 or 70 pages, every flag
 * combination): creates, moves, flag changes and deletes (mostly of the slots it believes
 * live, from its own bookkeeping of which changes succeed), guest writes (mostly into those
 * slots), GET and CLEAR, and the ring ops, in VMs that a reset now and then starts anew, each
 * with a dirty ring (4096 or 8192 bytes, or a size refused), manual protect, or neither.
 * Every slot id keeps one host address per address space, so its pages are mapped once.
 */
export function dirtyRandomRequests(p: Profile, seed: number, steps: number): RawRequest[] {
  const out: RawRequest[] = [];
  const m = rawMakers(out);
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const spaces = Math.min(p.addressSpaces, 2);
  const ua = (as: number, id: number): bigint => RANDOM_UADDR + (BigInt(as) << 36n) + (BigInt(id) << 30n);
  const gpaBase = (): bigint => BigInt(1 + Math.floor(r() * 8)) * 0x10_0000n;
  // The generator's belief of the live slots, by as_id << 16 | id (flags, gpa, npages).
  const live = new Map<number, { flags: number; gpa: bigint; npages: bigint }>();
  const overlaps = (slot: number, gpa: bigint, npages: bigint): boolean =>
    [...live].some(([s, x]) => s !== slot && s >>> 16 === slot >>> 16 && gpa < x.gpa + x.npages * P && x.gpa < gpa + npages * P);
  const region = (slot: number, flags: number, gpa: bigint, npages: bigint): void => {
    m.region(slot, flags, gpa, npages, ua(slot >>> 16, slot & 0xffff));
    const old = live.get(slot);
    if (npages === 0n) live.delete(slot);
    else if ((old === undefined || old.npages === npages) && !overlaps(slot, gpa, npages)) live.set(slot, { flags, gpa, npages });
  };
  const newVm = (): void => {
    m.reset();
    live.clear();
    const x = r();
    if (x < 0.7) m.ring(pick([0x1000n, 0x1000n, 0x2000n, 0x1_0000_1000n, 0x800n]), 0, r() < 0.3 ? 'DIRTY_LOG_RING_ACQ_REL' : 'DIRTY_LOG_RING');
    else if (x < 0.85) m.manual(pick([1n, 3n]));
  };
  const FLAGS = [0, LOG, LOG, LOG, RO, LOG | RO];
  newVm();
  while (out.length < steps) {
    const as = Math.floor(r() * spaces);
    const id = Math.floor(r() * 4);
    const slot = (as << 16) | id;
    const cur = live.get(slot);
    const x = r();
    if (x < 0.4) {
      const mine = [...live].filter(([s]) => s >>> 16 === as);
      if (mine.length > 0 && r() < 0.8) {
        const [, t] = pick(mine);
        m.write(as, t.gpa + BigInt(Math.floor(r() * Number(t.npages))) * P + BigInt(Math.floor(r() * 4096)));
      } else m.write(as, gpaBase() + BigInt(Math.floor(r() * 72)) * P);
    } else if (x < 0.6) {
      const y = r();
      if (cur === undefined || y < 0.1) region(slot, pick(FLAGS), gpaBase(), pick([1n, 8n, 64n, 70n]));
      else if (y < 0.45)
        region(slot, cur.flags ^ LOG, cur.gpa, cur.npages); // logging off or on
      else if (y < 0.75)
        region(slot, cur.flags, gpaBase(), cur.npages); // a MOVE
      else region(slot, cur.flags, cur.gpa, 0n); // DELETE
    } else if (x < 0.7) {
      m.get(r() < 0.05 ? (2 << 16) | id : slot);
    } else if (x < 0.76) {
      const first = pick([0n, 0n, 64n, 1n]);
      const n = pick([64, 8, 6, 70, 0]);
      const bytes = Array.from({ length: Math.min(8, Math.ceil(n / 8)) }, () => Math.floor(r() * 256));
      m.clear(slot, first, n, bytes.map((b) => b.toString(16).padStart(2, '0')).join(''));
    } else if (x < 0.86) {
      m.harvest();
    } else if (x < 0.94) {
      m.resetRings();
    } else if (x < 0.96) {
      m.ring(pick([0x1000n, 0x2000n]));
    } else if (x < 0.98) {
      m.manual(pick([0n, 1n, 3n]));
    } else {
      newVm();
    }
  }
  m.reset();
  return out;
}
