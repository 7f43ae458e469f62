/**
 * The conformance check as a library call: fast-check's stateful runs of the command mix
 * against one implementation under one profile, compared with the model after every step.
 * Returns data; never exits the process.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { RULE_IDS, type RuleId } from '../spec/rules.js';
import type { Profile } from '../model/index.js';
import type { ImplFactory, MemslotImpl } from '../impl/interface.js';
import { commandArbs, type MemslotCommand } from './commands/index.js';
import { Coverage } from './coverage.js';
import { newBox, startRun, type ModelBox } from './harness.js';
import { buildCounterexample, recordCommands, type Counterexample } from './report.js';

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
  readonly impl: ImplFactory;
  /** Shown in reports; defaults to the implementation's `name`. */
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
  /** Commands run before each generated sequence (e.g. filling every slot), part of every report. */
  readonly prefix?: readonly MemslotCommand[];
  /** Time allowed to delete needless steps after fast-check shrank (default 20 s). */
  readonly minimiseMs?: number;
  /** How the report says to reproduce, e.g. the CLI line; `{seed}`, `{path}` and `{replayPath}` are filled in. */
  readonly reproduce?: string;
}

interface Common {
  readonly impl: string;
  readonly profile: string;
  readonly seed: number;
  readonly runs: number;
  readonly steps: number;
  readonly elapsedMs: number;
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
export function runCheck(opts: CheckOptions): CheckResult {
  const profile = opts.profile;
  const seed = opts.seed ?? randomSeed();
  const numRuns = opts.runs ?? DEFAULT_RUNS;
  const maxSteps = opts.maxSteps ?? DEFAULT_MAX_STEPS;
  const implName = opts.implName ?? opts.impl(profile).name;
  const coverage = new Coverage();
  const counter = { steps: 0 };
  const started = Date.now();
  const prefix = opts.prefix ?? [];

  const cfg = { profile, maxBulk: opts.maxBulk ?? 2000, fill: opts.fill ?? profile.userMemSlots <= 4096 };
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

  const setup = (): { model: ModelBox; real: MemslotImpl } => {
    const model = newBox(profile, coverage, counter);
    const real = opts.impl(profile);
    startRun(model, real);
    return { model, real };
  };

  const property = fc.property(cmdsArb, (cmds) => {
    try {
      fc.modelRun(setup, [...prefix, ...cmds]);
    } catch (e) {
      failedOnce = true;
      throw e;
    } finally {
      runs++;
      progress(false);
    }
  });

  const details = fc.check(property, {
    seed,
    numRuns,
    ...(opts.path !== undefined ? { path: opts.path } : {}),
  });
  progress(true);
  const common: Common = {
    impl: implName,
    profile: profile.name,
    seed: details.seed,
    runs: details.failed ? details.numRuns : runs,
    steps: counter.steps,
    elapsedMs: Date.now() - started,
    coverage: coverage.toJSON() as Record<RuleId, number>,
  };
  if (!details.failed) return { ...common, ok: true };

  const value = details.counterexample?.[0];
  const commands: fc.Command<ModelBox, MemslotImpl>[] = value === undefined ? [] : [...value];
  const text = value === undefined ? '' : String(value);
  const replayPath = /replayPath="([^"]*)"/.exec(text)?.[1] ?? null;
  const path = details.counterexamplePath ?? '';
  const executed = recordCommands(profile, opts.impl, [...prefix, ...commands]);
  const template = opts.reproduce ?? `runCheck({ profile: ${profile.name}, seed: {seed}, path: "{path}", replayPath: "{replayPath}", maxSteps: ${maxSteps} })`;
  const reproduce = template
    .replace('{seed}', String(details.seed))
    .replace('{path}', path)
    .replace('{replayPath}', replayPath ?? '');
  const cx = buildCounterexample({
    implName,
    profile,
    factory: opts.impl,
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
    files = { report: join(opts.outDir, 'counterexample.md'), trace: join(opts.outDir, 'counterexample.jsonl') };
    writeFileSync(files.report, cx.report);
    writeFileSync(files.trace, cx.trace);
  }
  return { ...common, ok: false, counterexample: { ...cx, files } };
}
