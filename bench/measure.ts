/**
 * One measurement through tinybench: warm up, take repeated samples, report the median and the
 * spread per operation.
 *
 * A sample is one call of `fn`, which performs `opsPerSample` operations (a batch of lookups, a
 * whole slot setup, ...); batching keeps each sample well above the timer's resolution, and
 * every statistic of a sample divides exactly by the batch size. `beforeEach` runs before
 * every sample outside the timed window (tinybench's per-iteration hook).
 *
 * tinybench keeps sampling until both the time budget and the minimum sample count are met.
 * A pilot call first estimates a sample's cost: for samples that take seconds (legacy slot
 * setup at 32764 slots) the pilot is the whole warm-up and only `minSamples` samples are taken.
 */
import { performance } from 'node:perf_hooks';
import { Bench } from 'tinybench';

export interface MeasureSpec {
  readonly name: string;
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

/** Linear interpolation between order statistics, as tinybench computes its percentiles. */
function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (pos - lo);
}

export async function measure(spec: MeasureSpec): Promise<OpStats> {
  const isAsync = spec.async ?? false;
  // Pilot: one untimed-by-tinybench call, which estimates a sample's cost and warms up.
  await spec.beforeEach?.();
  const t0 = performance.now();
  await spec.fn();
  const pilotMs = performance.now() - t0;
  const warmup = pilotMs * 4 < spec.warmupMs;
  const bench = new Bench({
    name: spec.name,
    time: spec.budgetMs,
    iterations: spec.minSamples,
    warmup,
    warmupTime: spec.warmupMs,
    warmupIterations: 2,
    retainSamples: true,
    throws: true,
    timestampProvider: 'hrtimeNow',
  });
  const fnOpts = spec.beforeEach === undefined ? { async: isAsync } : { async: isAsync, beforeEach: spec.beforeEach as () => void };
  bench.add(spec.name, spec.fn, fnOpts);
  if (isAsync) await bench.run();
  else bench.runSync();
  const task = bench.tasks[0]!;
  const r = task.result;
  if (r.state !== 'completed') {
    throw new Error(`${spec.name}: ${r.state === 'errored' ? r.error.message : `tinybench ended in state ${r.state}`}`);
  }
  const ops = typeof spec.opsPerSample === 'number' ? spec.opsPerSample : spec.opsPerSample();
  const scale = 1e6 / ops; // ms per sample -> ns per operation
  const lat = r.latency;
  const sorted = lat.samples ?? [lat.p50];
  return {
    medianNs: lat.p50 * scale,
    p25Ns: quantile(sorted, 0.25) * scale,
    p75Ns: lat.p75 * scale,
    madNs: lat.mad * scale,
    minNs: lat.min * scale,
    samples: lat.samplesCount,
    opsPerSample: ops,
  };
}
