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
import { formatTraceLine, type Request } from '../trace/trace.js';

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

/** The scenario as JSON Lines (no `expect`, no profile line). */
export function dirtyTrace(p: Profile): string {
  return `${dirtyRequests(p)
    .map((r) => formatTraceLine(r))
    .join('\n')}\n`;
}
