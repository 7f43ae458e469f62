/**
 * `memslot-oracle check --sut kvm|CMD`: the stateful suite driven over the SUT protocol.
 *
 * fast-check draws command sequences with the suite's generators (properties/commands); each
 * command is resolved against the model into concrete requests, which go to the SUT (after a
 * reset) and to the model. The first disagreement fails the run; fast-check shrinks the
 * sequence, then the failing requests are cut further one step at a time while the
 * disagreement persists (fast-check issue #254). A bulk command counts as one step.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { PAGE_SHIFT, type Profile } from '../../model/index.js';
import { RULES, type RuleId } from '../../spec/rules.js';
import { commandArbs, type MemslotCommand } from '../../properties/commands/index.js';
import { newBox } from '../../properties/harness.js';
import { opCall, traceRequests, type Op } from '../../properties/ops.js';
import { judge, modelStep } from '../../trace/execute.js';
import { reproC, reproSteps } from '../../trace/repro.js';
import { answerText, formatProfileLine, formatTraceLine, requestText, type Answer, type Request } from '../../trace/trace.js';
import { SutError } from '../../sut/child.js';
import type { Op as RequestOp } from '../../trace/trace.js';

/** Anything requests can be sent to: a SUT over the protocol, or an implementation in process. */
export interface RequestTarget {
  supports(op: RequestOp): boolean;
  request(r: Request): Promise<Answer>;
}
import * as model from '../../model/index.js';

/** One step: what a command resolved to, as the requests the SUT supports. */
export interface SutStep {
  readonly call: string;
  readonly requests: readonly Request[];
}

export interface StepResult {
  readonly request: Request;
  readonly model: Answer;
  readonly rule: RuleId | null;
  readonly sut: Answer;
}

export interface SutCounterexample {
  readonly seed: number;
  readonly path: string;
  /** Steps fast-check's shrinking left, before the one-at-a-time deletion. */
  readonly shrunkSteps: number;
  readonly steps: readonly SutStep[];
  /** The answers of the final sequence, per step, the last one disagreeing. */
  readonly results: readonly (readonly StepResult[])[];
  readonly text: string;
  readonly trace: string;
}

/** `resourceSteps`: answers of ENOMEM where the model accepts (MS-RES-01), accepted and followed. */
export type SutCheckResult =
  | { readonly ok: true; readonly runs: number; readonly requests: number; readonly resourceSteps: number; readonly seed: number }
  | {
      readonly ok: false;
      readonly runs: number;
      readonly requests: number;
      readonly resourceSteps: number;
      readonly seed: number;
      readonly counterexample: SutCounterexample;
    };

export interface SutCheckOptions {
  readonly sut: RequestTarget;
  readonly profile: Profile;
  readonly seed: number;
  readonly runs: number;
  readonly maxSteps: number;
  /** The largest bulk step: above a SUT's slot limit to find limits (509 and such). */
  readonly maxBulk?: number;
  /**
   * Creates the model would accept above this many pages are not sent (null: no limit). The
   * kernel allocates per page: an accepted slot of 2^31 - 1 pages costs Linux 6.18 about 21 GB.
   */
  readonly maxPages: bigint | null;
}

/** Runs steps on a fresh SUT VM and a fresh model; stops at the first disagreement. */
async function runSteps(
  sut: RequestTarget,
  profile: Profile,
  steps: readonly SutStep[],
): Promise<{ results: StepResult[][]; failedAt: number; requests: number; resourceSteps: number }> {
  let vm = model.createVm(profile);
  await sut.request({ op: 'reset' });
  const results: StepResult[][] = [];
  let requests = 1;
  let resourceSteps = 0;
  for (let i = 0; i < steps.length; i++) {
    const out: StepResult[] = [];
    results.push(out);
    for (const r of steps[i]!.requests) {
      const a = await sut.request(r);
      const judged = judge(vm, r, modelStep(vm, r), a);
      const m = judged.step;
      vm = m.state;
      requests++;
      if (judged.resource) resourceSteps++;
      out.push({ request: r, model: m.answer, rule: m.rule, sut: a });
      if (!judged.allows(a)) return { results, failedAt: i, requests, resourceSteps };
    }
  }
  return { results, failedAt: -1, requests, resourceSteps };
}

/** Resolves fast-check's commands into steps, against the generators' model. */
function resolveCommands(sut: RequestTarget, profile: Profile, cmds: Iterable<fc.Command<object, object>>, maxPages: bigint | null): SutStep[] {
  const box = newBox(profile);
  const steps: SutStep[] = [];
  for (const c of cmds) {
    const cmd = ((c as { cmd?: MemslotCommand }).cmd ?? c) as MemslotCommand;
    if (!cmd.check(box)) continue;
    const op: Op = cmd.resolve(box);
    const requests = traceRequests(profile, op).requests.filter((r) => sut.supports(r.op) && !tooBig(box.vm, r, maxPages));
    if (requests.length === 0) continue;
    for (const r of requests) box.vm = modelStep(box.vm, r).state;
    steps.push({ call: opCall(profile, op), requests });
  }
  return steps;
}

/** A create or move the model would accept, of more pages than the SUT can afford. */
function tooBig(vm: model.VmState, r: Request, maxPages: bigint | null): boolean {
  if (maxPages === null || r.op !== 'set_user_memory_region' || r.region.memorySize >> PAGE_SHIFT <= maxPages) return false;
  return modelStep(vm, r).answer.kind === 'ret';
}

export async function runSutCheck(opts: SutCheckOptions): Promise<SutCheckResult> {
  const { sut, profile } = opts;
  const config = { profile, maxBulk: opts.maxBulk ?? 600, fill: false };
  const arb = fc.commands(commandArbs(config), { maxCommands: opts.maxSteps, size: 'max' });
  let sutError: unknown = null;
  let requests = 0;
  let resourceSteps = 0;
  let runs = 0;
  const details = await fc.check(
    fc.asyncProperty(arb, async (cmds) => {
      if (sutError !== null) return true;
      runs++;
      try {
        const r = await runSteps(sut, profile, resolveCommands(sut, profile, cmds, opts.maxPages));
        requests += r.requests;
        resourceSteps += r.resourceSteps;
        return r.failedAt < 0;
      } catch (e) {
        sutError = e;
        return true;
      }
    }),
    { seed: opts.seed, numRuns: opts.runs },
  );
  if (sutError !== null) throw sutError;
  if (!details.failed || details.counterexample === null) return { ok: true, runs, requests, resourceSteps, seed: opts.seed };
  const shrunk = resolveCommands(sut, profile, details.counterexample[0], opts.maxPages);
  const steps = await minimise(sut, profile, shrunk);
  const final = await runSteps(sut, profile, steps);
  if (final.failedAt < 0) throw new SutError('the SUT answered the shrunk sequence differently on a rerun: it is not deterministic', 'protocol');
  const kept = steps.slice(0, final.failedAt + 1);
  const counterexample: SutCounterexample = {
    seed: opts.seed,
    path: details.counterexamplePath ?? '',
    shrunkSteps: shrunk.length,
    steps: kept,
    results: final.results,
    text: describe(kept, final.results),
    trace: traceText(profile, kept, final.results),
  };
  return { ok: false, runs, requests, resourceSteps, seed: opts.seed, counterexample };
}

/** Deletes steps one at a time while the disagreement persists. */
async function minimise(sut: RequestTarget, profile: Profile, steps: SutStep[]): Promise<SutStep[]> {
  let current = steps;
  const first = await runSteps(sut, profile, current);
  if (first.failedAt >= 0) current = current.slice(0, first.failedAt + 1);
  for (let i = current.length - 2; i >= 0; i--) {
    const candidate = [...current.slice(0, i), ...current.slice(i + 1)];
    const r = await runSteps(sut, profile, candidate);
    if (r.failedAt >= 0) current = candidate.slice(0, r.failedAt + 1);
  }
  return current;
}

function describe(steps: readonly SutStep[], results: readonly (readonly StepResult[])[]): string {
  const out: string[] = [];
  steps.forEach((s, i) => {
    const res = results[i] ?? [];
    const last = res.at(-1);
    const bad = last !== undefined && answerText(last.sut) !== answerText(last.model);
    const bulk = s.requests.length > 1 ? ` (${s.requests.length} requests)` : '';
    out.push(`${String(i + 1).padStart(3)}. ${s.call}${bulk}`);
    if (last !== undefined) {
      const why = last.rule === null ? '' : `   [${last.rule}] ${RULES[last.rule]}`;
      out.push(`     model: ${answerText(last.model)}${why}`);
      out.push(`     sut:   ${answerText(last.sut)}${bad ? '   <- disagrees' : ''}`);
      if (bad && s.requests.length > 1) out.push(`     (request ${res.length} of the step: ${requestText(last.request)})`);
    }
  });
  return out.join('\n');
}

function traceText(profile: Profile, steps: readonly SutStep[], results: readonly (readonly StepResult[])[]): string {
  const lines = [formatProfileLine(profile), formatTraceLine({ op: 'reset' }, { kind: 'ok' })];
  steps.forEach((_, i) => {
    for (const r of results[i] ?? []) lines.push(formatTraceLine(r.request, r.model));
  });
  return `${lines.join('\n')}\n`;
}

/** Writes the counterexample: trace (model's expect), C reproducer, markdown report. */
export async function writeSutCounterexample(dir: string, cx: SutCounterexample, sutName: string, profile: Profile, rerun: string): Promise<{ trace: string; c: string; report: string }> {
  mkdirSync(dir, { recursive: true });
  const trace = join(dir, 'counterexample.jsonl');
  writeFileSync(trace, cx.trace);
  const { steps } = await reproSteps(cx.trace.split('\n'), profile, 'counterexample.jsonl');
  const c = join(dir, 'repro.c');
  writeFileSync(c, reproC(steps, 'counterexample.jsonl'));
  const last = cx.results.at(-1)?.at(-1);
  const report = join(dir, 'report.md');
  writeFileSync(
    report,
    `# memslot-oracle: ${sutName} disagrees with the model

Profile \`${profile.name}\`, fast-check seed ${cx.seed}, path \`${cx.path}\`. The shrunk
sequence had ${cx.shrunkSteps} steps; deleting steps one at a time left ${cx.steps.length}.

## What was sent, what the model says, what the SUT answered

\`\`\`
${cx.text}
\`\`\`

${last === undefined || last.rule === null ? '' : `The model's answer to the last request is decided by **[${last.rule}]**: ${RULES[last.rule]} (see spec/).\n`}
## Reproduce

- \`memslot-oracle replay counterexample.jsonl --sut "${sutName}"\`: the trace carries the model's answers as \`expect\`.
- \`cc -O2 -o repro repro.c && ./repro\`: the same requests as ioctls against \`/dev/kvm\`.
- \`${rerun}\`: the same random search again.
`,
  );
  return { trace, c, report };
}
