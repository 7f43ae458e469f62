/**
 * The request trace the matrix sends when it records by replaying (see main.ts, RECORDER):
 *
 * 1. the hand-picked requests of test/ground-truth/kernel-handpicked.jsonl (their `expect`
 *    and profile line dropped: they were the host's answers);
 * 2. the same again with every request of address space 0 followed by its twin in address
 *    space 1 (`slot | 0x10000`), so each slot is created at the same gpa in both spaces;
 * 3. `steps` seeded random requests in sequences that each start with a reset, mixing both
 *    address spaces heavily (about 45% each, the rest as_id 2 and 0xffff), with ids, gfns and
 *    sizes from small spaces so that overlaps, moves, flag changes and deletes are frequent,
 *    and with the edges of both max gfns seen under QEMU (2^28 - 1 with npt, 2^40 - 1 without).
 *
 * The output is JSON Lines of protocol requests without `expect`, deterministic for a seed.
 */
import { readFileSync } from 'node:fs';

const PAGE = 0x1000n;
const UADDR_BASE = 0x7f00_0000_0000n;
const USER_ADDR_MAX = 0x7ffffffff000n;
const U64_MAX = (1n << 64n) - 1n;

const hex = (v: bigint): string => `0x${v.toString(16)}`;

type Req = Record<string, unknown>;

const set = (slot: number, flags: number, gpa: bigint, size: bigint, uaddr: bigint): Req => ({
  op: 'set_user_memory_region',
  slot: slot >>> 0,
  flags: flags >>> 0,
  guest_phys_addr: hex(gpa & U64_MAX),
  memory_size: hex(size & U64_MAX),
  userspace_addr: hex(uaddr & U64_MAX),
});

/** mulberry32: a small seeded PRNG, so the trace depends on the seed only. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The hand-picked requests (no expect, no profile line). */
export function handpicked(traceFile: string): Req[] {
  const out: Req[] = [];
  for (const line of readFileSync(traceFile, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const v = JSON.parse(line) as Req;
    if ('profile' in v) continue;
    delete v['expect'];
    out.push(v);
  }
  return out;
}

/** Each address-space-0 set/get_dirty_log request followed by its twin with slot | 0x10000. */
export function withAddressSpace1Twins(reqs: readonly Req[]): Req[] {
  const out: Req[] = [];
  for (const r of reqs) {
    out.push(r);
    if ((r['op'] === 'set_user_memory_region' || r['op'] === 'get_dirty_log') && typeof r['slot'] === 'number' && r['slot'] >>> 16 === 0) {
      out.push({ ...r, slot: r['slot'] | 0x10000 });
    }
  }
  return out;
}

interface Live {
  slot: number;
  flags: number;
  gfn: bigint;
  npages: bigint;
  uaddr: bigint;
}

/** `steps` random requests, in sequences of `seqLen` that start with a reset. */
export function randomRequests(seed: number, steps: number, seqLen = 250): Req[] {
  const rnd = prng(seed);
  const int = (n: number): number => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const weighted = <T>(choices: readonly [number, () => T][]): T => {
    const total = choices.reduce((s, c) => s + c[0], 0);
    let x = rnd() * total;
    for (const [w, f] of choices) {
      if ((x -= w) < 0) return f();
    }
    return choices.at(-1)![1]();
  };
  const big = (): bigint => (BigInt(int(0x1_0000_0000)) << 32n) | BigInt(int(0x1_0000_0000));
  const edgeGfns = [
    0n,
    1n,
    0xfeen,
    0xfeffdn,
    1n << 20n,
    (1n << 28n) - 2n,
    (1n << 28n) - 1n,
    1n << 28n,
    (1n << 40n) - 2n,
    (1n << 40n) - 1n,
    1n << 40n,
    (1n << 52n) - 1n,
  ];
  const asId = (): number =>
    weighted<number>([
      [45, () => 0],
      [45, () => 1],
      [5, () => 2],
      [5, () => 0xffff],
    ]);
  const id = (): number =>
    weighted<number>([
      [85, () => int(12)],
      [10, () => pick([32763, 32764, 32765, 32766, 32767, 0xffff])],
      [5, () => int(0x10000)],
    ]);
  const gfn = (): bigint =>
    weighted<bigint>([
      [80, () => BigInt(int(64))],
      [15, () => pick(edgeGfns)],
      [5, () => big() & ((1n << 52n) - 1n)],
    ]);
  const npages = (): bigint =>
    weighted<bigint>([
      [70, () => BigInt(1 + int(4))],
      [25, () => BigInt(5 + int(60))],
      [5, () => pick([0x7fffffffn, 0x80000000n, 1n << 28n])],
    ]);
  const flags = (): number =>
    weighted<number>([
      [88, () => int(4)],
      [8, () => (1 << int(32)) >>> 0],
      [4, () => int(0x1_0000_0000)],
    ]);
  const uaddr = (): bigint =>
    weighted<bigint>([
      [88, () => UADDR_BASE + BigInt(int(256)) * PAGE],
      [8, () => pick([0n, PAGE, USER_ADDR_MAX - PAGE, USER_ADDR_MAX, U64_MAX - PAGE + 1n])],
      [4, () => pick([UADDR_BASE + 1n, UADDR_BASE + PAGE - 1n, UADDR_BASE + PAGE / 2n])],
    ]);

  const anySlot = (): number => ((asId() << 16) | id()) >>> 0;
  const out: Req[] = [];
  let live: Live[] = [];
  // Mirrors success only roughly (no overlap or limit checks): it steers requests towards
  // slots that probably exist; the kernel's answers are what is recorded.
  const track = (slot: number, fl: number, g: bigint, n: bigint, u: bigint): void => {
    const i = live.findIndex((l) => l.slot === slot);
    if (n === 0n) {
      if (i >= 0) live.splice(i, 1);
    } else if (i >= 0) live[i] = { slot, flags: fl, gfn: g, npages: n, uaddr: u };
    else if (slot >>> 16 <= 1 && (slot & 0xffff) < 32764 && fl <= 3 && n <= 64n) live.push({ slot, flags: fl, gfn: g, npages: n, uaddr: u });
  };
  while (out.length < steps) {
    out.push({ op: 'reset' });
    live = [];
    for (let k = 1; k < seqLen && out.length < steps; k++) {
      const l = live.length > 0 ? pick(live) : null;
      const r = weighted<Req>([
        // Create anywhere.
        [
          30,
          () => {
            const s = anySlot();
            const g = gfn();
            const n = npages();
            const f = flags();
            const u = uaddr();
            track(s, f, g, n, u);
            return set(s, f, g << 12n, n << 12n, u);
          },
        ],
        // The same gpa in the other address space (or the same one, for EEXIST).
        [
          12,
          () => {
            if (l === null) return set(id(), 0, gfn() << 12n, PAGE, UADDR_BASE);
            const s = (((l.slot >>> 16) ^ (rnd() < 0.8 ? 1 : 0)) << 16) | int(12);
            track(s, l.flags, l.gfn, l.npages, l.uaddr);
            return set(s, l.flags, l.gfn << 12n, l.npages << 12n, l.uaddr);
          },
        ],
        // Move, change flags, resize, change uaddr, re-issue.
        [
          18,
          () => {
            if (l === null) return set(id(), 0, 0n, PAGE, UADDR_BASE);
            const what = int(5);
            const g = what === 0 ? gfn() : l.gfn;
            const f = what === 1 ? int(4) : what === 4 ? l.flags : l.flags;
            const n = what === 2 ? npages() : l.npages;
            const u = what === 3 ? uaddr() : l.uaddr;
            track(l.slot, f, g, n, u);
            return set(l.slot, f, g << 12n, n << 12n, u);
          },
        ],
        // Delete (sometimes with another gpa or READONLY), or delete a missing slot.
        [
          14,
          () => {
            if (l === null || rnd() < 0.2) return set(anySlot(), 0, 0n, 0n, 0n);
            track(l.slot, 0, 0n, 0n, 0n);
            return set(l.slot, rnd() < 0.2 ? 2 : 0, rnd() < 0.2 ? gfn() << 12n : l.gfn << 12n, 0n, rnd() < 0.8 ? l.uaddr : 0n);
          },
        ],
        // Misaligned or wrapping fields.
        [
          6,
          () =>
            set(
              anySlot(),
              flags(),
              rnd() < 0.5 ? (gfn() << 12n) + BigInt(pick([0, 1, 0x800])) : U64_MAX - PAGE + 1n,
              rnd() < 0.5 ? (npages() << 12n) + BigInt(pick([0, 1, 0xfff])) : pick([0x2000n, U64_MAX - PAGE + 1n]),
              uaddr(),
            ),
        ],
        // get_dirty_log of a live slot, of its twin, or of any id.
        [
          18,
          () => ({
            op: 'get_dirty_log',
            slot: l !== null && rnd() < 0.7 ? (rnd() < 0.8 ? l.slot : l.slot ^ 0x10000) : anySlot(),
          }),
        ],
        // A rare reset mid-sequence.
        [
          1,
          () => {
            live = [];
            return { op: 'reset' };
          },
        ],
      ]);
      out.push(r);
    }
  }
  return out;
}

/** The whole trace: hand-picked, their address-space-1 twins, then `steps` random requests. */
export function generateTrace(handpickedFile: string, seed: number, steps: number): string {
  const hp = handpicked(handpickedFile);
  const reqs = [...hp, ...withAddressSpace1Twins(hp), ...randomRequests(seed, steps)];
  return `${reqs.map((r) => JSON.stringify(r)).join('\n')}\n`;
}
