/**
 * The oracle's own throughput, in steps (requests) a second:
 *
 * - `oracle-replay`: `replay()` of trace/replay.ts over an in-memory trace of small-state
 *   requests, each with the model's answer as `expect` (model only, in process);
 * - `oracle-check`: the stateful conformance check against the scalable implementation,
 *   `runCheck()` of properties/run-check.ts (fast-check commands, model and implementation
 *   compared after every step); where that module is missing, the same requests as the replay
 *   stepped through the model (trace/execute.ts `modelStep`) and the implementation (`implStep`)
 *   with every answer compared;
 * - `oracle-protocol`: `replay()` with a SUT, as `replay --sut` does it: every request goes to
 *   the model and, as a JSON line, to a child `node` process (bench/sut.ts) that answers from
 *   the scalable implementation.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Profile } from '../model/index.js';
import { IMPLEMENTATIONS, type ImplFactory } from '../impl/index.js';
import * as model from '../model/index.js';
import { implStep, modelStep, requestDefect } from '../trace/execute.js';
import { replay } from '../trace/replay.js';
import { answerText, type Request } from '../trace/trace.js';
import { SutClient } from '../sut/protocol.js';
import { measure, summarize, type Clock, type OpStats, type RawMeasurement } from './measure.js';
import { smallStateRequests, streamOf, traceWithExpect } from './requests.js';

export interface ThroughputOptions {
  readonly profile: Profile;
  readonly clock: Clock;
  readonly replaySteps: number;
  readonly checkRuns: number;
  readonly checkMaxSteps: number;
  readonly protocolSteps: number;
  readonly budgetMs: number;
  readonly warmupMs: number;
  readonly minSamples: number;
}

export interface ThroughputResult {
  readonly stats: OpStats;
  /** Steps in one timed run. */
  readonly stepsPerRun: number;
  readonly how: string;
  readonly clock: Clock;
}

function stats_(raw: RawMeasurement): OpStats {
  return summarize(raw.nsPerOp, raw.opsPerSample);
}

export async function replayThroughput(o: ThroughputOptions): Promise<ThroughputResult> {
  const lines = traceWithExpect(o.profile, smallStateRequests(o.replaySteps, 7));
  let lastSteps = 0;
  const stats = stats_(
    await measure({
      name: 'oracle-replay',
      clock: o.clock,
      async: true,
      fn: async () => {
        const s = await replay(streamOf(lines), { profile: o.profile });
        if (s.mismatches !== 0) throw new Error(`replay: ${s.mismatches} mismatches on the model's own answers`);
        lastSteps = s.steps;
      },
      opsPerSample: () => lastSteps,
      budgetMs: o.budgetMs,
      warmupMs: o.warmupMs,
      minSamples: o.minSamples,
    }),
  );
  return { stats, stepsPerRun: lastSteps, how: `replay() of ${lines.length} small-state requests with expect, model only`, clock: o.clock };
}

/** The shape of properties/run-check.ts that this benchmark uses. */
type RunCheck = (opts: { impl: ImplFactory; profile: Profile; seed: number; runs: number; maxSteps: number; minimiseMs: number }) => Promise<{
  ok: boolean;
  steps: number;
}>;

async function loadRunCheck(): Promise<RunCheck | null> {
  // Resolved at run time so that the benchmark builds and runs whether or not the module exists.
  const url = new URL('../properties/run-check.js', import.meta.url);
  if (!existsSync(fileURLToPath(url))) return null;
  const mod = (await import(url.href)) as Record<string, unknown>;
  return typeof mod['runCheck'] === 'function' ? (mod['runCheck'] as RunCheck) : null;
}

export async function checkThroughput(o: ThroughputOptions): Promise<ThroughputResult> {
  const runCheck = await loadRunCheck();
  if (runCheck !== null) {
    let lastSteps = 0;
    const stats = stats_(
      await measure({
        name: 'oracle-check',
        clock: o.clock,
        async: true,
        fn: async () => {
          const r = await runCheck({
            impl: IMPLEMENTATIONS.scalable,
            profile: o.profile,
            seed: 42,
            runs: o.checkRuns,
            maxSteps: o.checkMaxSteps,
            minimiseMs: 0,
          });
          if (!r.ok) throw new Error('runCheck found a disagreement between the scalable implementation and the model');
          lastSteps = r.steps;
        },
        opsPerSample: () => lastSteps,
        budgetMs: o.budgetMs,
        warmupMs: o.warmupMs,
        minSamples: o.minSamples,
      }),
    );
    return { stats, stepsPerRun: lastSteps, how: `runCheck() vs scalable, seed 42, ${o.checkRuns} runs of up to ${o.checkMaxSteps} commands`, clock: o.clock };
  }
  // Fallback: the replay's requests through the model and the implementation, answers compared.
  const requests = smallStateRequests(o.replaySteps, 11);
  const impl = IMPLEMENTATIONS.scalable(o.profile);
  const stats = stats_(
    await measure({
      name: 'oracle-check',
      clock: o.clock,
      fn: () => stepBoth(o.profile, impl, requests),
      opsPerSample: requests.length,
      budgetMs: o.budgetMs,
      warmupMs: o.warmupMs,
      minSamples: o.minSamples,
    }),
  );
  return {
    stats,
    stepsPerRun: requests.length,
    how: `modelStep + implStep over ${requests.length} small-state requests (run-check.ts not found)`,
    clock: o.clock,
  };
}

function stepBoth(profile: Profile, impl: ReturnType<ImplFactory>, requests: readonly Request[]): void {
  let vm = model.createVm(profile);
  impl.reset();
  for (const r of requests) {
    if (requestDefect(vm, r) !== null) throw new Error('bad request');
    const m = modelStep(vm, r);
    vm = m.state;
    const a = implStep(impl, r);
    if (answerText(a) !== answerText(m.answer)) throw new Error(`the implementation disagrees with the model on ${r.op}`);
  }
}

/** The tiny SUT script, next to this module once compiled (dist/bench/sut.js). */
export function sutScriptPath(): string {
  return fileURLToPath(new URL('./sut.js', import.meta.url));
}

export async function protocolThroughput(o: ThroughputOptions): Promise<ThroughputResult> {
  const script = sutScriptPath();
  if (!existsSync(script)) throw new Error(`${script} not found: run \`npm run build\` first`);
  const lines = traceWithExpect(o.profile, smallStateRequests(o.protocolSteps, 13));
  const quoteArg = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const sut = await SutClient.start(`${quoteArg(process.execPath)} ${quoteArg(script)} ${o.profile.name}`, { timeoutMs: 30_000 });
  try {
    const profile = sut.resolveProfile(o.profile, o.profile);
    let lastSteps = 0;
    const stats = stats_(
      await measure({
        name: 'oracle-protocol',
        // Two processes and a pipe: only the wall clock sees the whole round trip.
        clock: 'wall',
        async: true,
        fn: async () => {
          const s = await replay(streamOf(lines), {
            profile,
            onReset: async () => {
              await sut.request({ op: 'reset' });
            },
            sut: (r) => sut.request(r),
            sutSupports: (r) => sut.supports(r.op),
          });
          if (s.mismatches !== 0) throw new Error(`replay --sut: ${s.mismatches} mismatches between the bench SUT and the model`);
          lastSteps = s.steps;
        },
        opsPerSample: () => lastSteps,
        budgetMs: o.budgetMs,
        warmupMs: o.warmupMs,
        minSamples: o.minSamples,
      }),
    );
    return {
      stats,
      stepsPerRun: lastSteps,
      how: `replay() with SUT \`node dist/bench/sut.js\` (scalable impl over JSON Lines), ${lines.length} requests`,
      clock: 'wall',
    };
  } finally {
    await sut.close();
  }
}
