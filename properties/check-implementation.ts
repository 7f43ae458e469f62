/**
 * The library's entry point for checking an implementation: the runner of `check`, in process,
 * over an implementation whose methods return values or promises.
 */
import type { AsyncMemslotImpl, MemslotImpl } from '../impl/interface.js';
import { PROFILES, type Profile } from '../model/profiles.js';
import { runCheck, type CheckResult } from './run-check.js';
import { implTarget } from './target.js';

export interface CheckImplementationOptions {
  readonly profile?: Profile;
  readonly seed?: number;
  readonly runs?: number;
  readonly maxSteps?: number;
  /** Where to write the counterexample's report, trace and C reproducer. */
  readonly outDir?: string;
}

/**
 * Checks an implementation against the model with the stateful suite.
 * @returns data: `{ ok: true, ... }`, or `{ ok: false, counterexample }` with the shrunk sequence.
 */
export async function checkImplementation(
  create: (profile: Profile) => MemslotImpl | AsyncMemslotImpl,
  opts: CheckImplementationOptions = {},
): Promise<CheckResult> {
  return runCheck({
    target: async (p) => implTarget(create(p)),
    profile: opts.profile ?? PROFILES['x86_64-nosmm']!,
    ...(opts.seed === undefined ? {} : { seed: opts.seed }),
    ...(opts.runs === undefined ? {} : { runs: opts.runs }),
    ...(opts.maxSteps === undefined ? {} : { maxSteps: opts.maxSteps }),
    ...(opts.outDir === undefined ? {} : { outDir: opts.outDir }),
  });
}
