/**
 * The memory layout of tools/testing/selftests/kvm/memslot_perf_test.c, at the data-structure
 * level: which slots exist for a given slot count, and the gfns and host addresses the
 * scenarios look up.
 *
 * memslot_perf_test.c keeps slot 0 for the selftest framework's own memory and splits a test
 * area of MEM_SIZE = 512 MiB + 64 KiB at MEM_GPA = 256 MiB evenly between the remaining
 * slots 1 .. n-1 (the last one gets the remainder); the test area is one host mapping, so the
 * data slots are contiguous in hva too. `n` counts every slot, as KVM_CAP_NR_MEMSLOTS does:
 * n = 509 is the 5.10 x86 limit, n = 32764 today's (each data slot then has 4 pages).
 */
import { PAGE_SHIFT, type MemoryRegion } from '../model/index.js';

export const MEM_GPA = 256n << 20n;
export const MEM_SIZE = (512n << 20n) + (64n << 10n);
export const MEM_PAGES = MEM_SIZE >> PAGE_SHIFT;
/** Host address of the test area (one mmap in the selftest). */
export const TEST_HVA = 0x7f00_0000_0000n;
/** The selftest's sync area: the first 64 KiB of the test area (MEM_EXTRA_SIZE). */
export const MEM_EXTRA_SIZE = 64n << 10n;
/** MEM_TEST_GPA: where the tests' own memory starts, after the sync area. */
export const MEM_TEST_GFN = (MEM_GPA + MEM_EXTRA_SIZE) >> PAGE_SHIFT;
/** Host address of MEM_TEST_GPA. */
export const MEM_TEST_HVA = TEST_HVA + MEM_EXTRA_SIZE;
/** MEM_TEST_UNMAP_SIZE: the unmap tests walk 128 MiB from MEM_TEST_GPA. */
export const MEM_TEST_UNMAP_SIZE = 128n << 20n;
/** MEM_TEST_MOVE_SIZE: the area the guest writes in the move tests (3 x 64 KiB). */
export const MEM_TEST_MOVE_SIZE = 3n * (64n << 10n);
/** Host address of slot 0, the framework's memory, apart from the test area. */
export const MAIN_HVA = 0x7e00_0000_0000n;
/** Where the move tests put the last slot: right after the test area (MEM_GPA + MEM_SIZE). */
export const MOVE_GPA = MEM_GPA + MEM_SIZE;

export interface Layout {
  readonly n: number;
  /** CREATE requests for slots 0 .. n-1, in id order (slot setup issues them in this order). */
  readonly creates: readonly MemoryRegion[];
  /** Pages of every data slot but the last (`pages_per_slot`). */
  readonly pagesPerSlot: bigint;
  /** The last slot (id n-1): the one the move tests move. */
  readonly last: MemoryRegion;
  /** The last slot moved to MOVE_GPA. */
  readonly lastMoved: MemoryRegion;
}

/**
 * The slots of memslot_perf_test.c's prepare_vm() for `n` slots in all (n >= 3).
 * Mirrors: prepare_vm() (`pages_per_slot = mempages / nslots`, remainder to the last slot)
 */
export function layout(n: number): Layout {
  if (!Number.isInteger(n) || n < 3) throw new RangeError(`the layout needs at least 3 slots, got ${n}`);
  const dataSlots = BigInt(n - 1);
  const pagesPerSlot = MEM_PAGES / dataSlots;
  const creates: MemoryRegion[] = [{ slot: 0, flags: 0, guestPhysAddr: 0n, memorySize: MEM_GPA, userspaceAddr: MAIN_HVA }];
  for (let id = 1; id < n; id++) {
    const first = BigInt(id - 1) * pagesPerSlot;
    const pages = id === n - 1 ? MEM_PAGES - first : pagesPerSlot;
    creates.push({
      slot: id,
      flags: 0,
      guestPhysAddr: MEM_GPA + (first << PAGE_SHIFT),
      memorySize: pages << PAGE_SHIFT,
      userspaceAddr: TEST_HVA + (first << PAGE_SHIFT),
    });
  }
  const last = creates[n - 1]!;
  return { n, creates, pagesPerSlot, last, lastMoved: { ...last, guestPhysAddr: MOVE_GPA } };
}

/** A small deterministic PRNG (mulberry32): the same lookups in every run and implementation. */
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

/** MEM_TEST_SIZE in pages: the test memory after the sync area. */
export const MEM_TEST_PAGES = MEM_PAGES - (MEM_EXTRA_SIZE >> PAGE_SHIFT);

/** `count` gfns drawn uniformly from the test memory (MEM_TEST_GPA, MEM_TEST_SIZE). */
export function randomTestGfns(count: number, seed: number): bigint[] {
  const rnd = prng(seed);
  const out: bigint[] = [];
  for (let i = 0; i < count; i++) out.push(MEM_TEST_GFN + BigInt(Math.floor(rnd() * Number(MEM_TEST_PAGES))));
  return out;
}

/**
 * The gfns the guest writes in the move tests, `count` of them spread evenly over the
 * MEM_TEST_MOVE_SIZE area: for the active test the area's middle is the start of the moving
 * (last) slot, so half of it moves away and back; for the inactive test the area ends where the
 * last slot starts, so no write is in the moving slot.
 * Mirrors: test_memslot_move_prepare() (`movetestgpa = movesrcgpa - MEM_TEST_MOVE_SIZE / (isactive ? 2 : 1)`)
 */
export function moveAreaGfns(lay: Layout, active: boolean, count: number): bigint[] {
  const src = lay.last.guestPhysAddr;
  const start = (src - MEM_TEST_MOVE_SIZE / (active ? 2n : 1n)) >> PAGE_SHIFT;
  const pages = MEM_TEST_MOVE_SIZE >> PAGE_SHIFT;
  const out: bigint[] = [];
  for (let i = 0; i < count; i++) out.push(start + (BigInt(i) * pages + pages / BigInt(2 * count)) / BigInt(count));
  return out;
}
