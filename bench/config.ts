/**
 * The three run sizes: `full` (default), `--quick` (about a minute on two cores) and `--smoke`
 * (seconds; what bench/bench.test.ts runs).
 */
import type { Clock } from './measure.js';
import type { TargetName } from './targets.js';

export type ConfigName = 'full' | 'quick' | 'smoke';

export interface Config {
  readonly name: ConfigName;
  /** Slot counts, ascending. */
  readonly ns: readonly number[];
  /** The largest n measured per target (legacy's setup is O(n²): the quick run stops it at 4096). */
  readonly maxN: Readonly<Record<TargetName, number>>;
  /** Each scenario starts from a freshly filled VM when a fill takes less than this (ms). */
  readonly refillMaxMs: number;
  /** Target duration of one sample of a batched scenario (ms). */
  readonly sampleMs: number;
  readonly maxBatch: number;
  /** How samples are timed (see measure.ts): CPU time by default, the machine is shared. */
  readonly clock: Clock;
  /** Rounds over every (implementation, n); budgets and minimum samples are split between them. */
  readonly rounds: number;
  /** tinybench time budget and minimum samples per measurement (all rounds together). */
  readonly budgetMs: number;
  readonly warmupMs: number;
  readonly minSamples: number;
  /** The same for slot setup (one sample = n CREATEs on a fresh VM). */
  readonly setupBudgetMs: number;
  readonly setupMinSamples: number;
  /** Oracle throughput. */
  readonly replaySteps: number;
  readonly checkRuns: number;
  readonly checkMaxSteps: number;
  readonly protocolSteps: number;
  readonly oracleBudgetMs: number;
  readonly oracleMinSamples: number;
  /** The set_memory_region_test.c trace (bench/selftest-trace.ts): slots filled, loops after. */
  readonly selftestSlots: number;
  readonly selftestLoops: number;
  /** Lines of the small-state trace file replayed from the CLI, and runs of each side. */
  readonly cliLines: number;
  readonly cliRuns: number;
  /** The profiled check of the model-vs-implementation split (the quick run keeps the full size: a short one says nothing). */
  readonly splitRuns: number;
  readonly splitMaxSteps: number;
}

export const CONFIGS: Readonly<Record<ConfigName, Config>> = {
  full: {
    name: 'full',
    ns: [10, 509, 4096, 32764],
    maxN: { model: 32764, legacy: 32764, scalable: 32764 },
    clock: 'cpu',
    rounds: 3,
    refillMaxMs: 3000,
    sampleMs: 5,
    maxBatch: 1 << 20,
    budgetMs: 800,
    warmupMs: 200,
    minSamples: 10,
    setupBudgetMs: 1500,
    setupMinSamples: 3,
    replaySteps: 200_000,
    checkRuns: 30,
    checkMaxSteps: 100,
    protocolSteps: 20_000,
    oracleBudgetMs: 3000,
    oracleMinSamples: 3,
    selftestSlots: 32764,
    selftestLoops: 100,
    cliLines: 130_000,
    cliRuns: 5,
    splitRuns: 30,
    splitMaxSteps: 100,
  },
  quick: {
    name: 'quick',
    ns: [10, 509, 4096, 32764],
    maxN: { model: 32764, legacy: 4096, scalable: 32764 },
    clock: 'cpu',
    rounds: 1,
    refillMaxMs: 3000,
    sampleMs: 2,
    maxBatch: 1 << 20,
    budgetMs: 60,
    warmupMs: 20,
    minSamples: 4,
    setupBudgetMs: 100,
    setupMinSamples: 2,
    replaySteps: 20_000,
    checkRuns: 4,
    checkMaxSteps: 40,
    protocolSteps: 1_000,
    oracleBudgetMs: 200,
    oracleMinSamples: 2,
    selftestSlots: 32764,
    selftestLoops: 100,
    cliLines: 130_000,
    cliRuns: 2,
    splitRuns: 30,
    splitMaxSteps: 100,
  },
  smoke: {
    name: 'smoke',
    ns: [10, 64],
    maxN: { model: 64, legacy: 64, scalable: 64 },
    clock: 'cpu',
    rounds: 1,
    refillMaxMs: 3000,
    sampleMs: 0.5,
    maxBatch: 256,
    budgetMs: 5,
    warmupMs: 2,
    minSamples: 2,
    setupBudgetMs: 5,
    setupMinSamples: 2,
    replaySteps: 500,
    checkRuns: 2,
    checkMaxSteps: 10,
    protocolSteps: 100,
    oracleBudgetMs: 5,
    oracleMinSamples: 1,
    selftestSlots: 64,
    selftestLoops: 2,
    cliLines: 500,
    cliRuns: 1,
    splitRuns: 2,
    splitMaxSteps: 10,
  },
};
