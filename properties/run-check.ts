/**
 * The runner: fast-check's stateful runs of the command mix against one target under one
 * profile, compared with the model after every step. One runner for every kind of target: an
 * implementation in process (sync or async) and a SUT over the protocol (properties/target.ts),
 * with the same defaults, the same shrinking and post-pass, the same counterexample (steps,
 * trace, C reproducer, report). Returns data; never exits the process.
 */
import type { Focus } from './arbitraries.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { RULE_IDS, type RuleId } from '../spec/rules.js';
import type { Profile } from '../model/index.js';
import type { ImplFactory } from '../impl/interface.js';
import { commandArbs, type MemslotCommand } from './commands/index.js';
import { Coverage } from './coverage.js';
import { newBox, startRun, type ModelBox } from './harness.js';
import { buildCounterexample, recordCommands, type Counterexample, type TargetFactory } from './report.js';
import { implTarget, targetOffers, type Target } from './target.js';

/** Defaults tuned so that `memslot-oracle check` takes 10-20 s on two cores. */
export const DEFAULT_RUNS = 200;
export const DEFAULT_MAX_STEPS = 400;

export interface Progress {
  readonly runs: number;
  readonly steps: number;
  readonly elapsedMs: number;
  readonly stepsPerSecond: number;
  readonly rulesCovered: number;
  readonly totalRules: number;
  /** True while fast-check shrinks a failure. */
  readonly shrinking: boolean;
}

export interface CheckOptions {
  /** An implementation in process, made fresh for each run; or `target`. */
  readonly impl?: ImplFactory;
  /** Any target (a SUT over the protocol, an async implementation): a fresh VM on it for each run. */
  readonly target?: TargetFactory;
  /** Shown in reports; defaults to the target's `name`. */
  readonly implName?: string;
  readonly profile: Profile;
  /** fast-check seed; random when absent. */
  readonly seed?: number;
  /** Number of sequences (fast-check numRuns). */
  readonly runs?: number;
  /** Longest sequence, in commands (a bulk command counts as one). */
  readonly maxSteps?: number;
  /** fast-check path of a failure, to replay it. */
  readonly path?: string;
  /** The commands' replayPath printed with a counterexample. */
  readonly replayPath?: string;
  /** Where to write counterexample.md and counterexample.jsonl on failure. */
  readonly outDir?: string;
  readonly onProgress?: (p: Progress) => void;
  /** Largest bulk create (default 2000). */
  readonly maxBulk?: number;
  /** Whether BulkFill is drawn (default: when KVM_USER_MEM_SLOTS <= 4096, i.e. 5.10). */
  readonly fill?: boolean;
  /** Commands drawn more often (ArbConfig.focus). */
  readonly focus?: Focus;
  /** Commands run before each generated sequence (e.g. filling every slot), part of every report. */
  readonly prefix?: readonly MemslotCommand[];
  /** Time allowed to delete needless steps after fast-check shrank (default 20 s). */
  readonly minimiseMs?: number;
  /** How the report says to reproduce, e.g. the CLI line; `{seed}`, `{path}` and `{replayPath}` are filled in. */
  readonly reproduce?: string;
}

/** The target factory of the options: `target`, or the in-process `impl`. */
function targetFactory(opts: CheckOptions): TargetFactory {
  if (opts.target !== undefined) return opts.target;
  const impl = opts.impl;
  if (impl === undefined) throw new TypeError('runCheck needs impl or target');
  return async (p) => implTarget(impl(p));
}

interface Common {
  readonly impl: string;
  readonly profile: string;
  readonly seed: number;
  readonly runs: number;
  readonly steps: number;
  readonly elapsedMs: number;
  /** Answers of ENOMEM where the model accepts, followed (MS-RES-01; SUTs only). */
  readonly resourceSteps: number;
  /** How often each rule fired, by rule ID. */
  readonly coverage: Readonly<Record<RuleId, number>>;
}

export type CheckResult = (Common & { readonly ok: true }) | (Common & { readonly ok: false; readonly counterexample: Counterexample });

/** A fresh random seed in fast-check's range. */
export function randomSeed(): number {
  return (Math.random() * 0x7fff_ffff) | 0;
}

/**
 * Runs the stateful conformance property.
 * @returns `{ok: true, runs, steps, coverage}`, or `{ok: false, counterexample}` with the
 * minimised sequence, its report and its trace.
 */
export async function runCheck(opts: CheckOptions): Promise<CheckResult> {
  const profile = opts.profile;
  const seed = opts.seed ?? randomSeed();
  const numRuns = opts.runs ?? DEFAULT_RUNS;
  const maxSteps = opts.maxSteps ?? DEFAULT_MAX_STEPS;
  const factory = targetFactory(opts);
  // One target up front: its name, and which optional requests it offers (only those are generated).
  const probe = await factory(profile);
  const implName = opts.implName ?? probe.name;
  const coverage = new Coverage();
  const counter = { steps: 0 };
  const resource = { steps: 0 };
  // A SUT that breaks the protocol ends the check with that error, never with a verdict.
  let broken: unknown = null;
  const started = Date.now();
  const prefix = opts.prefix ?? [];

  const cfg = {
    profile,
    maxBulk: opts.maxBulk ?? 2000,
    fill: opts.fill ?? profile.userMemSlots <= 4096,
    offers: targetOffers(probe),
    ...(opts.focus !== undefined ? { focus: opts.focus } : {}),
  };
  const cmdsArb = fc.commands(commandArbs(cfg), {
    maxCommands: maxSteps,
    size: 'max',
    ...(opts.replayPath !== undefined ? { replayPath: opts.replayPath } : {}),
  });

  let runs = 0;
  let failedOnce = false;
  let lastProgress = 0;
  const progress = (force: boolean): void => {
    if (opts.onProgress === undefined) return;
    const now = Date.now();
    if (!force && now - lastProgress < 250) return;
    lastProgress = now;
    const elapsedMs = now - started;
    opts.onProgress({
      runs,
      steps: counter.steps,
      elapsedMs,
      stepsPerSecond: elapsedMs > 0 ? Math.round((counter.steps * 1000) / elapsedMs) : 0,
      rulesCovered: coverage.covered(),
      totalRules: RULE_IDS.length,
      shrinking: failedOnce,
    });
  };

  const setup = async (): Promise<{ model: ModelBox; real: Target }> => {
    const model = newBox(profile, coverage, counter, resource);
    const real = await factory(profile);
    await startRun(model, real);
    return { model, real };
  };

  const property = fc.asyncProperty(cmdsArb, async (cmds) => {
    if (broken !== null) return;
    try {
      await fc.asyncModelRun(setup, [...prefix, ...cmds]);
    } catch (e) {
      if (e instanceof Error && e.name === 'SutError') {
        broken = e;
        return;
      }
      failedOnce = true;
      throw e;
    } finally {
      runs++;
      progress(false);
    }
  });

  const details = await fc.check(property, {
    seed,
    numRuns,
    ...(opts.path !== undefined ? { path: opts.path } : {}),
  });
  if (broken !== null) throw broken;
  progress(true);
  const common: Common = {
    impl: implName,
    profile: profile.name,
    seed: details.seed,
    runs: details.failed ? details.numRuns : runs,
    steps: counter.steps,
    elapsedMs: Date.now() - started,
    resourceSteps: resource.steps,
    coverage: coverage.toJSON() as Record<RuleId, number>,
  };
  if (!details.failed) return { ...common, ok: true };

  const value = details.counterexample?.[0];
  const commands: fc.AsyncCommand<ModelBox, Target>[] = value === undefined ? [] : [...value];
  const text = value === undefined ? '' : String(value);
  const replayPath = /replayPath="([^"]*)"/.exec(text)?.[1] ?? null;
  const path = details.counterexamplePath ?? '';
  const executed = await recordCommands(profile, factory, [...prefix, ...commands]);
  const template = opts.reproduce ?? `runCheck({ profile: ${profile.name}, seed: {seed}, path: "{path}", replayPath: "{replayPath}", maxSteps: ${maxSteps} })`;
  const reproduce = template
    .replace('{seed}', String(details.seed))
    .replace('{path}', path)
    .replace('{replayPath}', replayPath ?? '');
  const cx = await buildCounterexample({
    implName,
    profile,
    factory,
    seed: details.seed,
    path,
    replayPath,
    fastCheckCommands: executed.ran,
    recorded: executed,
    error: details.errorInstance,
    reproduce,
    minimiseMs: opts.minimiseMs ?? 20_000,
  });
  let files: Counterexample['files'] = null;
  if (opts.outDir !== undefined) {
    mkdirSync(opts.outDir, { recursive: true });
    files = { report: join(opts.outDir, 'counterexample.md'), trace: join(opts.outDir, 'counterexample.jsonl'), c: join(opts.outDir, 'repro.c') };
    writeFileSync(files.report, cx.report);
    writeFileSync(files.trace, cx.trace);
    writeFileSync(files.c, cx.c);
  }
  return { ...common, ok: false, counterexample: { ...cx, files } };
}
