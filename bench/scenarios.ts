/**
 * The data-structure scenarios, after the tests of memslot_perf_test.c (see bench/README.md for
 * the mapping). Each scenario is a sample function over a Target that already holds the
 * layout's n slots (except `setup`, which builds them), plus what one operation is.
 */
import { performance } from 'node:perf_hooks';
import { PAGE_SHIFT, PAGE_SIZE } from '../model/index.js';
import { MEM_TEST_GFN, MEM_TEST_HVA, MEM_TEST_PAGES, MEM_TEST_UNMAP_SIZE, layout, moveAreaGfns, randomTestGfns, type Layout } from './layout.js';
import type { Target } from './targets.js';

export type ScenarioId = 'setup' | 'map' | 'unmap' | 'unmap-2m' | 'move-active' | 'move-inactive' | 'rw';
export const SCENARIO_IDS: readonly ScenarioId[] = ['setup', 'map', 'unmap', 'unmap-2m', 'move-active', 'move-inactive', 'rw'];

export interface ScenarioInfo {
  readonly id: ScenarioId;
  readonly title: string;
  /** What one operation is (the unit of "ns per operation"). */
  readonly op: string;
  /** The memslot_perf_test.c test it stands for (numbered as its -f/-e options number them). */
  readonly kernel: string;
}

export const SCENARIOS: Readonly<Record<ScenarioId, ScenarioInfo>> = {
  setup: { id: 'setup', title: 'slot setup', op: 'one CREATE (filling n slots from empty)', kernel: 'prepare_vm() slot setup time' },
  map: { id: 'map', title: 'map', op: 'one gfn→slot lookup (random gfn)', kernel: 'test 0 "map" (fault-in: gfn→slot)' },
  unmap: { id: 'unmap', title: 'unmap', op: 'one hva-range lookup over 1 page', kernel: 'test 1 "unmap" (MMU notifier per page)' },
  'unmap-2m': { id: 'unmap-2m', title: 'unmap 2M', op: 'one hva-range lookup over 2 MiB', kernel: 'test 2 "unmap chunked" (2 MiB)' },
  'move-active': { id: 'move-active', title: 'move active', op: 'one MOVE + 8 lookups, half in the moving slot', kernel: 'test 3 "move active area"' },
  'move-inactive': { id: 'move-inactive', title: 'move inactive', op: 'one MOVE + 8 lookups before the moving slot', kernel: 'test 4 "move inactive area"' },
  rw: { id: 'rw', title: 'RW', op: 'one gfn→hva translation (pages in order)', kernel: 'test 5 "RW" (every page via gpa→hva)' },
};

/** Lookups the "guest" makes after each MOVE in the move scenarios. */
export const MOVE_LOOKUPS = 8;
/** MEM_TEST_UNMAP_CHUNK_SIZE */
const CHUNK_2M = 2n << 20n;
const CHUNKS_2M = MEM_TEST_UNMAP_SIZE / CHUNK_2M;
const UNMAP_PAGES = MEM_TEST_UNMAP_SIZE >> PAGE_SHIFT;

/** A prepared scenario for one target and one n: the sample function and its batch size. */
export interface Prepared {
  readonly fn: () => void;
  readonly beforeEach?: () => void;
  readonly opsPerSample: number;
  /** Scenario-specific figures, e.g. slots touched per operation. */
  readonly extra?: () => Record<string, number>;
}

/**
 * Sink for results, so that no lookup can be optimised away. It is kept below 2^28, a small
 * integer to V8: a plain sum passed 2^30 after a few million lookups and from then on every
 * `sink +=` allocated a heap number, which added tens of ns to every later operation (the
 * 509-slot map lookup measured 42, 69 and 90 ns in three rounds of one run).
 */
let sink = 0;
export function sinkValue(): number {
  return sink;
}

function consume(x: number): void {
  sink = (sink + x) & 0xfff_ffff;
}

/** Fills `target` with the layout's slots. */
export function fill(target: Target, lay: Layout): void {
  target.reset();
  for (const c of lay.creates) target.set(c);
}

/**
 * How many operations fit in about `sampleMs` for a cheap `op` (called with a running index):
 * a short calibration, so that every sample is long enough to time and short enough to repeat.
 * The batch doubles until it takes a quarter of `sampleMs`; that batch is timed twice more and
 * the fastest of the three sets the rate, so that one GC pause cannot shrink the batch to a size
 * the timer cannot resolve.
 */
export function batchFor(op: (i: number) => void, sampleMs: number, maxBatch: number): number {
  const timed = (k: number): number => {
    const t0 = performance.now();
    for (let i = 0; i < k; i++) op(i);
    return performance.now() - t0;
  };
  let k = 1;
  let ms = timed(k);
  while (ms < sampleMs / 4 && k < maxBatch) {
    k *= 2;
    ms = timed(k);
  }
  ms = Math.min(ms, timed(k), timed(k));
  const perOp = Math.max(ms, 1e-6) / k;
  return Math.max(1, Math.min(maxBatch, Math.round(sampleMs / perOp)));
}

export interface PrepareOptions {
  /** Target duration of one sample of a batched scenario, in ms. */
  readonly sampleMs: number;
  readonly maxBatch: number;
}

/**
 * Prepares scenario `id` on `target`. Every scenario but `setup` expects the target to hold the
 * layout's slots, and leaves it that way.
 */
export function prepare(id: ScenarioId, target: Target, n: number, opts: PrepareOptions): Prepared {
  const lay = layout(n);
  switch (id) {
    case 'setup':
      return {
        beforeEach: () => target.reset(),
        fn: () => {
          for (const c of lay.creates) target.set(c);
        },
        opsPerSample: n,
      };

    case 'map': {
      const gfns = randomTestGfns(4096, 0x5eed + n);
      const op = (i: number): void => {
        const s = target.gfnToMemslot(gfns[i & 4095]!);
        if (s === null) throw new Error(`map: gfn ${gfns[i & 4095]} has no slot`);
        consume(s.id);
      };
      return batched(op, opts);
    }

    case 'unmap': {
      // One page at a time over the 128 MiB unmap area, in order, as the host's
      // MADV_DONTNEED loop (test_memslot_unmap_loop_common()).
      const pages = Number(UNMAP_PAGES);
      let cursor = 0;
      const op = (): void => {
        const start = MEM_TEST_HVA + (BigInt(cursor) << PAGE_SHIFT);
        cursor = cursor + 1 === pages ? 0 : cursor + 1;
        const hits = target.hvaRange(start, start + PAGE_SIZE);
        if (hits !== 1) throw new Error(`unmap: page at ${start.toString(16)} touches ${hits} slots`);
        consume(hits);
      };
      return batched(op, opts);
    }

    case 'unmap-2m': {
      const chunks = Number(CHUNKS_2M);
      let cursor = 0;
      let ops = 0;
      let touched = 0;
      const op = (): void => {
        const start = MEM_TEST_HVA + BigInt(cursor) * CHUNK_2M;
        cursor = cursor + 1 === chunks ? 0 : cursor + 1;
        const hits = target.hvaRange(start, start + CHUNK_2M);
        if (hits < 1) throw new Error(`unmap 2M: chunk at ${start.toString(16)} touches no slot`);
        ops++;
        touched += hits;
      };
      const p = batched(op, opts);
      return { ...p, extra: () => ({ slotsPerOp: ops === 0 ? 0 : touched / ops }) };
    }

    case 'move-active':
    case 'move-inactive': {
      // MOVE the last slot to MEM_GPA + MEM_SIZE and back (test_memslot_move_loop()); after
      // each move the "guest" looks up gfns of its write area: active, half of them in the
      // moving slot (misses while it is away: the kernel's MMIO exits); inactive, all in the
      // slots just before it (always hits).
      const watched = moveAreaGfns(lay, id === 'move-active', MOVE_LOOKUPS);
      const look = (): void => {
        for (const g of watched) {
          const s = target.gfnToMemslot(g);
          consume(s === null ? 1 : s.id);
        }
      };
      const iteration = (): void => {
        target.set(lay.lastMoved);
        look();
        target.set(lay.last);
        look();
      };
      const k = batchFor(iteration, opts.sampleMs, opts.maxBatch);
      return {
        fn: () => {
          for (let i = 0; i < k; i++) iteration();
        },
        opsPerSample: 2 * k,
      };
    }

    case 'rw': {
      // gfn→hva of every page of the test memory in order, with the write check.
      const pages = Number(MEM_TEST_PAGES);
      let cursor = 0;
      const op = (): void => {
        const gfn = MEM_TEST_GFN + BigInt(cursor);
        cursor = cursor + 1 === pages ? 0 : cursor + 1;
        const hva = target.gfnToHva(gfn);
        if (hva < 0n) throw new Error(`rw: gfn ${gfn} has no host address`);
        consume(Number(hva & 0xfffn));
      };
      return batched(op, opts);
    }
  }
}

function batched(op: (i: number) => void, opts: PrepareOptions): Prepared {
  const k = batchFor(op, opts.sampleMs, opts.maxBatch);
  return {
    fn: () => {
      for (let i = 0; i < k; i++) op(i);
    },
    opsPerSample: k,
  };
}
