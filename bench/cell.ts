/**
 * One cell of the data-structure benchmark: one target at one n, every scenario asked for,
 * measured in a worker thread of its own (./cell-worker.ts), so in a V8 isolate whose
 * compiled code and type feedback no other target and no other n has touched.
 *
 * Measured in one isolate, the scenario code (one function per scenario, called with every
 * target) became polymorphic over the targets and the sizes run before it, and the cheapest
 * operations paid for it: scalable's 509-slot map lookup took 45 ns when scalable ran alone
 * first and 52-60 ns after legacy had run the same code, which made the flatness figure
 * (32764 against 509) look better than the implementation is. A VMM runs one implementation.
 */
import { Worker } from 'node:worker_threads';
import { DEFAULT_PROFILE_NAME, PROFILES } from '../model/index.js';
import type { Config } from './config.js';
import { layout } from './layout.js';
import { fmtNs } from './report.js';
import { measure, summarize } from './measure.js';
import { fill, prepare, sinkValue, type ScenarioId } from './scenarios.js';
import { createTarget, type TargetName } from './targets.js';

export interface CellJob {
  readonly cfg: Config;
  readonly target: TargetName;
  readonly n: number;
  /** The scenarios to measure, in order (a key of a scenario that failed before is left out). */
  readonly scenarios: readonly ScenarioId[];
  /** Sample durations (ms) of earlier rounds, by `scenario|target|n`: tinybench's estimate. */
  readonly estimates: Readonly<Record<string, number>>;
  /** When the run started (Date.now()), for the log's elapsed time. */
  readonly startedMs: number;
}

export interface CellMeasurement {
  readonly scenario: ScenarioId;
  /** ns per operation, one per sample. */
  readonly nsPerOp: readonly number[];
  readonly opsPerSample: number;
  readonly sampleMs: number;
  readonly extra?: Record<string, number>;
}

export interface CellResult {
  readonly measured: readonly CellMeasurement[];
  readonly errors: readonly { readonly scenario: ScenarioId; readonly message: string }[];
  /** The worker's result sink (scenarios.ts), which the run reports so that no lookup is dead code. */
  readonly sink: number;
}

export const cellKey = (s: ScenarioId, t: TargetName, n: number): string => `${s}|${t}|${n}`;

/** Measures one cell in this thread. */
export async function measureCell(job: CellJob, log: (s: string) => void): Promise<CellResult> {
  const { cfg, target: t, n } = job;
  const elapsed = (): string => `[${((Date.now() - job.startedMs) / 1000).toFixed(0).padStart(4)} s]`;
  const target = createTarget(t, PROFILES[DEFAULT_PROFILE_NAME]!);
  const lay = layout(n);
  const measured: CellMeasurement[] = [];
  const errors: { scenario: ScenarioId; message: string }[] = [];
  let filled = false;
  let dirty = false;
  let setupMs = job.estimates[cellKey('setup', t, n)] ?? Number.POSITIVE_INFINITY;
  for (const s of job.scenarios) {
    try {
      // memslot_perf_test.c builds a fresh VM for every test. Here a scenario after a move
      // scenario starts from a freshly filled VM (moves leave history behind, e.g. in a hash
      // table), unless a fill costs seconds (legacy at 32764, whose array holds no history
      // anyway); lookups change nothing but the lookup caches.
      if (s !== 'setup' && (!filled || (dirty && setupMs < cfg.refillMaxMs))) {
        const t0 = performance.now();
        fill(target, lay);
        setupMs = Math.min(setupMs, performance.now() - t0);
        filled = true;
      }
      dirty = s === 'move-active' || s === 'move-inactive';
      const p = prepare(s, target, n, { sampleMs: cfg.sampleMs, maxBatch: cfg.maxBatch });
      const isSetup = s === 'setup';
      const estimate = job.estimates[cellKey(s, t, n)];
      const raw = await measure({
        name: `${s} ${t} n=${n}`,
        clock: cfg.clock,
        fn: p.fn,
        ...(p.beforeEach !== undefined ? { beforeEach: p.beforeEach } : {}),
        opsPerSample: p.opsPerSample,
        budgetMs: (isSetup ? cfg.setupBudgetMs : cfg.budgetMs) / cfg.rounds,
        warmupMs: cfg.warmupMs,
        minSamples: Math.max(1, Math.ceil((isSetup ? cfg.setupMinSamples : cfg.minSamples) / cfg.rounds)),
        ...(estimate !== undefined ? { estimateMs: estimate } : {}),
      });
      if (isSetup) {
        filled = true; // the last sample left the n slots in place
        setupMs = raw.sampleMs;
      }
      const extra = p.extra?.();
      measured.push({ scenario: s, nsPerOp: raw.nsPerOp, opsPerSample: raw.opsPerSample, sampleMs: raw.sampleMs, ...(extra !== undefined ? { extra } : {}) });
      const st = summarize(raw.nsPerOp, raw.opsPerSample);
      log(`  ${elapsed()} ${t} n=${n} ${s}: ${fmtNs(st.medianNs)}/op (${st.samples} samples of ${st.opsPerSample} ops)`);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      errors.push({ scenario: s, message });
      log(`  ${t} n=${n} ${s}: ERROR ${message}`);
      filled = false;
    }
  }
  return { measured, errors, sink: sinkValue() };
}

/** Measures one cell in a fresh worker thread (./cell-worker.ts); rejects if the worker dies without a result. */
export function measureCellInWorker(job: CellJob): Promise<CellResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./cell-worker.js', import.meta.url), { workerData: job });
    let result: CellResult | undefined;
    worker.once('message', (m: CellResult) => {
      result = m;
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (result !== undefined) resolve(result);
      else reject(new Error(`bench worker for ${job.target} n=${job.n} exited with status ${code} and no result`));
    });
  });
}
