/**
 * One measurement through tinybench: warm up, take repeated samples, hand back every sample
 * as nanoseconds per operation.
 *
 * A sample is one call of `fn`, which performs `opsPerSample` operations (a batch of lookups, a
 * whole slot setup, ...); batching keeps each sample well above the timer's resolution, and
 * every statistic of a sample divides exactly by the batch size. `beforeEach` runs before
 * every sample outside the timed window (tinybench's per-iteration hook).
 *
 * tinybench keeps sampling until both the time budget and the minimum sample count are met.
 * Warm-up calls come first (not recorded): for samples that take seconds (legacy slot setup at
 * 32764 slots) one call is the whole warm-up, and only `minSamples` samples are taken.
 *
 * A full garbage collection runs before the measurement (untimed), so that no measurement pays
 * for the garbage of the one before it. (Not before every sample: right after a full GC the
 * next few milliseconds run several times slower, which would swamp short samples.)
 */
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Bench } from 'tinybench';

/**
 * What a sample's duration is measured with: `cpu` is the CPU time of this process (user +
 * system, `process.cpuUsage()`), which leaves out the time the scheduler gives to other
 * processes on a shared machine; `wall` is the monotonic clock (`process.hrtime`).
 */
export type Clock = 'cpu' | 'wall';

/** The clock in milliseconds. */
export function clockMs(clock: Clock): number {
  if (clock === 'wall') return performance.now();
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

let readCost: number | undefined;
/**
 * What one read of the CPU clock costs (ms): a sample timed with it is that much too long
 * (the read between the two timestamps), which matters only for samples of tens of µs (slot
 * setup of 10 slots). The wall clock's read (~50 ns) is left alone.
 */
function cpuClockReadMs(): number {
  if (readCost === undefined) {
    const k = 20_000;
    const t0 = performance.now();
    for (let i = 0; i < k; i++) clockMs('cpu');
    readCost = (performance.now() - t0) / k;
  }
  return readCost;
}

export interface MeasureSpec {
  readonly name: string;
  readonly clock: Clock;
  /** One sample: `opsPerSample` operations. Sync or async. */
  readonly fn: () => unknown;
  readonly async?: boolean;
  /** Untimed, before every sample (and before the pilot). */
  readonly beforeEach?: () => unknown;
  /** Operations per sample; may be a function read after the run (when the count is only known then). */
  readonly opsPerSample: number | (() => number);
  readonly budgetMs: number;
  readonly warmupMs: number;
  readonly minSamples: number;
  /** A known cost of one sample (ms), from an earlier round: no pilot then when it is long. */
  readonly estimateMs?: number;
}

export interface RawMeasurement {
  /** Every sample, as ns per operation, ascending. */
  readonly nsPerOp: number[];
  readonly opsPerSample: number;
  /** The cost of one sample (ms), for the next round's `estimateMs`. */
  readonly sampleMs: number;
}

/** Nanoseconds per operation. */
export interface OpStats {
  readonly medianNs: number;
  readonly p25Ns: number;
  readonly p75Ns: number;
  /** Median absolute deviation (unscaled). */
  readonly madNs: number;
  readonly minNs: number;
  readonly samples: number;
  readonly opsPerSample: number;
}

let gcFn: (() => void) | null | undefined;

/** A full GC, where Node lets us have one (`--expose-gc`, set at run time). */
export function collectGarbage(): void {
  if (gcFn === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      gcFn = runInNewContext('gc') as () => void;
    } catch {
      gcFn = null;
    }
  }
  gcFn?.();
}

/** Linear interpolation between order statistics, as tinybench computes its percentiles. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (pos - lo);
}

/** Median, quartiles, MAD and minimum of samples pooled from one or more rounds. */
export function summarize(samples: readonly number[], opsPerSample: number): OpStats {
  const sorted = [...samples].sort((a, b) => a - b);
  const median = quantile(sorted, 0.5);
  const dev = sorted.map((x) => Math.abs(x - median)).sort((a, b) => a - b);
  return {
    medianNs: median,
    p25Ns: quantile(sorted, 0.25),
    p75Ns: quantile(sorted, 0.75),
    madNs: quantile(dev, 0.5),
    minNs: sorted[0] ?? Number.NaN,
    samples: sorted.length,
    opsPerSample,
  };
}

export async function measure(spec: MeasureSpec): Promise<RawMeasurement> {
  const isAsync = spec.async ?? false;
  collectGarbage();
  // Warm-up: untimed-by-tinybench calls until `warmupMs` is spent (at least two while a call
  // is under two seconds, so that the estimate is of JIT-compiled code); none when an earlier
  // round already knows that a call takes seconds.
  let estimate = spec.estimateMs ?? Number.NaN;
  let spent = 0;
  for (let calls = 0; ; calls++) {
    const enough = spent >= spec.warmupMs && calls >= (estimate < 2000 ? 2 : 1);
    if (enough || (calls === 0 && spec.estimateMs !== undefined && spec.estimateMs >= 2000)) break;
    await spec.beforeEach?.();
    const t0 = clockMs(spec.clock);
    await spec.fn();
    estimate = clockMs(spec.clock) - t0;
    spent += estimate;
  }
  const bench = new Bench({
    name: spec.name,
    time: spec.budgetMs,
    iterations: spec.minSamples,
    warmup: false,
    retainSamples: true,
    throws: true,
    ...(spec.clock === 'wall' ? { timestampProvider: 'hrtimeNow' as const } : { now: () => clockMs('cpu') }),
  });
  const before = spec.beforeEach;
  if (isAsync) {
    bench.add(spec.name, spec.fn, before === undefined ? { async: true } : { async: true, beforeEach: async () => void (await before()) });
  } else {
    bench.add(spec.name, spec.fn, before === undefined ? { async: false } : { async: false, beforeEach: () => void before() });
  }
  if (isAsync) await bench.run();
  else bench.runSync();
  const task = bench.tasks[0]!;
  const r = task.result;
  if (r.state !== 'completed') {
    throw new Error(`${spec.name}: ${r.state === 'errored' ? r.error.message : `tinybench ended in state ${r.state}`}`);
  }
  const ops = typeof spec.opsPerSample === 'number' ? spec.opsPerSample : spec.opsPerSample();
  const scale = 1e6 / ops; // ms per sample -> ns per operation
  const samples = r.latency.samples ?? [r.latency.p50];
  const overhead = spec.clock === 'cpu' ? cpuClockReadMs() : 0;
  return { nsPerOp: samples.map((ms) => Math.max(0, ms - overhead) * scale), opsPerSample: ops, sampleMs: r.latency.p50 };
}
