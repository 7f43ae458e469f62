/**
 * The library's entry point for checking an implementation: sync ones run the full stateful
 * suite in process (properties/run-check.ts); async ones (each method may return a promise)
 * run the same generators through the request path of `check --sut`.
 */
import type { MemslotImpl } from '../impl/interface.js';
import { PROFILES, type Profile } from '../model/profiles.js';
import { DEFAULT_MAX_STEPS, DEFAULT_RUNS, runCheck, type CheckResult } from '../properties/run-check.js';
import { outcomeAnswer, slotInfo } from '../trace/execute.js';
import { runSutCheck, type RequestTarget, type SutCheckResult } from './sut/check-sut.js';
import type { Answer, Op, Request } from '../trace/trace.js';

/** A MemslotImpl whose methods may return promises. */
export type AsyncMemslotImpl = { readonly [K in keyof MemslotImpl]: MemslotImpl[K] extends (...a: infer A) => infer R ? (...a: A) => R | Promise<R> : MemslotImpl[K] };

export interface CheckImplementationOptions {
  readonly profile?: Profile;
  readonly seed?: number;
  readonly runs?: number;
  readonly maxSteps?: number;
  /** For sync implementations: where to write the counterexample's report and trace. */
  readonly outDir?: string;
}

/** The request ops an implementation answers (every op of the trace format). */
const IMPL_OPS: ReadonlySet<Op> = new Set<Op>(['reset', 'set_user_memory_region', 'get_dirty_log', 'set_internal_memslot', 'get_slots', 'get_generation', 'gfn_to_memslot', 'hva_to_memslots']);

/** Sends protocol requests to an async implementation. */
export function asyncImplTarget(impl: AsyncMemslotImpl): RequestTarget {
  return { supports: (op) => IMPL_OPS.has(op), request: (r) => asyncImplStep(impl, r) };
}

/** implStep() for an implementation whose methods may return promises. */
async function asyncImplStep(impl: AsyncMemslotImpl, r: Request): Promise<Answer> {
  const slotNr = (s: { asId: number; id: number } | null): number | null => (s === null ? null : (s.asId << 16) | s.id);
  switch (r.op) {
    case 'reset':
      await impl.reset();
      return { kind: 'ok' };
    case 'set_user_memory_region':
      return outcomeAnswer(await impl.setUserMemoryRegion(r.region));
    case 'get_dirty_log':
      return outcomeAnswer(await impl.getDirtyLog(r.slot));
    case 'set_internal_memslot':
      return outcomeAnswer(await impl.setInternalMemslot(r.id, r.guestPhysAddr, r.memorySize, r.userspaceAddr));
    case 'get_slots':
      return { kind: 'slots', slots: (await impl.slots(r.asId)).map(slotInfo) };
    case 'get_generation':
      return { kind: 'generation', generation: await impl.generation(r.asId) };
    case 'gfn_to_memslot':
      return { kind: 'slot', slot: slotNr(await impl.gfnToMemslot(r.asId, r.gfn)) };
    case 'hva_to_memslots':
      return { kind: 'hva_hits', hits: (await impl.hvaRangeMemslots(r.start, r.end)).map((x) => ({ slot: (x.asId << 16) | x.id, gfnStart: x.gfnStart, gfnEnd: x.gfnEnd })) };
  }
}

/**
 * Checks an implementation against the model with the stateful suite.
 * @returns data: `{ ok: true, ... }`, or `{ ok: false, counterexample }` with the shrunk sequence.
 */
export async function checkImplementation(
  create: (profile: Profile) => MemslotImpl | AsyncMemslotImpl,
  opts: CheckImplementationOptions & { readonly async?: boolean } = {},
): Promise<CheckResult | SutCheckResult> {
  const profile = opts.profile ?? PROFILES['x86_64-nosmm']!;
  const seed = opts.seed ?? Math.floor(Math.random() * 0x7fff_ffff);
  if (opts.async !== true) {
    return runCheck({
      impl: (p) => create(p) as MemslotImpl,
      profile,
      seed,
      ...(opts.runs === undefined ? {} : { runs: opts.runs }),
      ...(opts.maxSteps === undefined ? {} : { maxSteps: opts.maxSteps }),
      ...(opts.outDir === undefined ? {} : { outDir: opts.outDir }),
    });
  }
  const target = asyncImplTarget(create(profile) as AsyncMemslotImpl);
  return runSutCheck({ sut: target, profile, seed, runs: opts.runs ?? DEFAULT_RUNS, maxSteps: opts.maxSteps ?? DEFAULT_MAX_STEPS, maxPages: null });
}
