/**
 * `memslot-oracle check`: the stateful conformance suite against one implementation.
 *
 *   memslot-oracle check [--impl scalable|legacy] [--seed S] [--runs N] [--max-steps N]
 *                        [--profile P] [--out DIR] [--workers N] [--shard i/n]
 *                        [--path P] [--replay-path R]
 *
 * Exit status: 0 no disagreement, 1 a counterexample (written to DIR), 2 usage or error.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { profileToJson, type Profile } from '../model/profiles.js';
import { ALL_IMPLEMENTATIONS, IMPL_NAMES } from './implementations.js';
import { DEFAULT_MAX_STEPS, DEFAULT_RUNS, runCheck, type CheckResult, type Progress } from '../properties/run-check.js';
import type { WorkerJob, WorkerMessage } from './check-worker.js';
import { resolveProfile } from './profile-arg.js';
import { intOption, seedOption } from './options.js';
import { UsageError } from './usage.js';
import { printCheck } from './check-report.js';

/** One slice of the work: a seed and a number of runs. */
interface Slice {
  readonly seed: number;
  readonly runs: number;
}

/** `--shard i/n`, 1-based. */
export function parseShard(v: string | undefined): { index: number; count: number } {
  if (v === undefined) return { index: 1, count: 1 };
  const m = /^(\d+)\/(\d+)$/.exec(v);
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (m === null || count < 1 || index < 1 || index > count) throw new UsageError(`--shard ${v}: must be i/n with 1 <= i <= n`);
  return { index, count };
}

/** A seed for slice `i` of a job seeded `seed` (deterministic; slice 0 of 1 is the seed itself). */
export function deriveSeed(seed: number, i: number): number {
  let x = (seed ^ Math.imul(i + 1, 0x9e37_79b9)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85eb_ca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2_ae35) >>> 0;
  return (x ^ (x >>> 16)) & 0x7fff_ffff;
}

/** `total` split into `n` near-equal parts; part i (0-based). */
function share(total: number, n: number, i: number): number {
  return Math.floor(total / n) + (i < total % n ? 1 : 0);
}

/** The slices this process runs: the shard's, split over the workers. */
export function slicesFor(seed: number, runs: number, shard: { index: number; count: number }, workers: number): Slice[] {
  const shardSeed = shard.count === 1 ? seed : deriveSeed(seed, shard.index - 1);
  const shardRuns = share(runs, shard.count, shard.index - 1);
  if (workers === 1) return [{ seed: shardSeed, runs: shardRuns }];
  return Array.from({ length: workers }, (_, w) => ({ seed: deriveSeed(shardSeed, w), runs: share(shardRuns, workers, w) })).filter((s) => s.runs > 0);
}

function timestamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-');
}

/** The worker script: built JS next to this file, or dist/ when running from the TypeScript sources. */
function workerScript(): URL | null {
  const here = new URL('./check-worker.js', import.meta.url);
  if (!fileURLToPath(import.meta.url).endsWith('.ts') && existsSync(fileURLToPath(here))) return here;
  const dist = new URL('../dist/cli/check-worker.js', import.meta.url);
  return existsSync(fileURLToPath(dist)) ? dist : null;
}

function runWorker(script: URL, job: WorkerJob, onProgress: (p: Progress) => void): Promise<CheckResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(script, { workerData: job });
    let settled = false;
    w.on('message', (m: WorkerMessage) => {
      if (m.kind === 'progress') onProgress(m.progress);
      else if (m.kind === 'done') {
        settled = true;
        resolve(m.result);
        void w.terminate();
      } else {
        settled = true;
        reject(new Error(`worker failed: ${m.message}`));
        void w.terminate();
      }
    });
    w.on('error', (e) => {
      if (!settled) reject(e);
    });
    w.on('exit', (code) => {
      if (!settled) reject(new Error(`worker exited with code ${code} before answering`));
    });
  });
}

class ProgressLine {
  private readonly tty = process.stdout.isTTY === true;
  private shown = false;
  private readonly parts = new Map<number, Progress>();

  constructor(private readonly started = Date.now()) {}

  update(slice: number, p: Progress): void {
    if (!this.tty) return;
    this.parts.set(slice, p);
    let runs = 0;
    let steps = 0;
    let covered = 0;
    let total = 0;
    for (const q of this.parts.values()) {
      runs += q.runs;
      steps += q.steps;
      covered = Math.max(covered, q.rulesCovered);
      total = q.totalRules;
    }
    const secs = (Date.now() - this.started) / 1000;
    const rate = secs > 0 ? Math.round(steps / secs) : 0;
    const shrinking = [...this.parts.values()].some((q) => q.shrinking) ? ', shrinking a failure' : '';
    process.stdout.write(`\r\x1b[Kcheck: ${runs} runs, ${steps} steps, ${rate} steps/s, ${covered}/${total} rules covered${shrinking}`);
    this.shown = true;
  }

  clear(): void {
    if (this.shown) process.stdout.write('\r\x1b[K');
    this.shown = false;
  }
}

/**
 * Runs `memslot-oracle check`.
 * @returns the exit status: 0 no disagreement, 1 counterexample written; throws UsageError for bad options.
 */
export async function checkCli(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      impl: { type: 'string' },
      seed: { type: 'string' },
      runs: { type: 'string' },
      'max-steps': { type: 'string' },
      profile: { type: 'string' },
      out: { type: 'string' },
      workers: { type: 'string' },
      shard: { type: 'string' },
      path: { type: 'string' },
      'replay-path': { type: 'string' },
      sut: { type: 'string' },
      timeout: { type: 'string' },
    },
  });
  if (positionals.length > 0) throw new UsageError(`check takes no positional arguments (got ${positionals.join(' ')})`);
  if (values.sut !== undefined) {
    if (values.impl !== undefined) throw new UsageError('check takes --impl or --sut, not both');
    const { checkSutCli } = await import('./sut/check-sut-cli.js');
    return checkSutCli(values);
  }
  const implName = values.impl ?? 'scalable';
  const factory = ALL_IMPLEMENTATIONS[implName];
  if (factory === undefined) throw new UsageError(`--impl ${implName}: unknown implementation (known: ${IMPL_NAMES.join(', ')})`);
  const profile: Profile = resolveProfile(values.profile);
  const seed = seedOption(values.seed);
  const runs = intOption('runs', values.runs, DEFAULT_RUNS, 1);
  const maxSteps = intOption('max-steps', values['max-steps'], DEFAULT_MAX_STEPS, 1);
  const workers = intOption('workers', values.workers, 1, 1);
  const shard = parseShard(values.shard);
  if ((values.path !== undefined || values['replay-path'] !== undefined) && (workers > 1 || shard.count > 1)) {
    throw new UsageError('--path and --replay-path replay one failure: use them without --workers and --shard');
  }
  const outDir = values.out ?? join('memslot-oracle-out', timestamp());
  const profileArg = values.profile ?? profile.name;
  const reproduce = `memslot-oracle check --impl ${implName} --profile ${profileArg} --seed {seed} --path "{path}" --replay-path "{replayPath}" --max-steps ${maxSteps}`;

  const slices = slicesFor(seed, runs, shard, workers);
  const progress = new ProgressLine();
  let results: CheckResult[];
  const script = workers > 1 ? workerScript() : null;
  if (workers > 1 && script === null)
    process.stderr.write('memslot-oracle: check: no built worker script (dist/cli/check-worker.js); running the slices one after another\n');
  if (script !== null) {
    results = await Promise.all(
      slices.map((s, i) =>
        runWorker(
          script,
          {
            impl: implName,
            profileName: profile.name,
            profile: profileToJson(profile),
            seed: s.seed,
            runs: s.runs,
            maxSteps,
            outDir: slices.length > 1 ? join(outDir, `worker-${i}`) : outDir,
            reproduce,
          },
          (p) => progress.update(i, p),
        ),
      ),
    );
  } else {
    results = [];
    for (const [i, s] of slices.entries()) {
      results.push(
        await runCheck({
          impl: factory,
          implName,
          profile,
          seed: s.seed,
          runs: s.runs,
          maxSteps,
          outDir: slices.length > 1 ? join(outDir, `slice-${i}`) : outDir,
          reproduce,
          ...(values.path !== undefined ? { path: values.path } : {}),
          ...(values['replay-path'] !== undefined ? { replayPath: values['replay-path'] } : {}),
          onProgress: (p) => progress.update(i, p),
        }),
      );
    }
  }
  progress.clear();
  const where = `${implName} under ${profile.name}${shard.count > 1 ? ` (shard ${shard.index}/${shard.count})` : ''}`;
  const seeds = slices.length === 1 ? `seed ${slices[0]!.seed}` : `seed ${seed}, slice seeds ${slices.map((s) => s.seed).join(', ')}`;
  return printCheck(results, profile, where, seeds);
}
