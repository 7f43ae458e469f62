/**
 * `memslot-oracle replay`: streams a trace through the model (and optionally a SUT) and
 * compares every answer.
 */
import { RULES, type RuleId } from '../spec/rules.js';
import * as model from '../model/index.js';
import { judge, modelStep, requestDefect } from './execute.js';
import { InputError, answerText, requestText, type Answer, type Request, type TraceLine } from './trace.js';

export interface Mismatch {
  readonly line: number;
  readonly request: Request;
  readonly expected: Answer | undefined;
  readonly model: Answer;
  readonly sut: Answer | undefined;
  readonly rule: RuleId | null;
  /** Which side disagreed: the trace's expect with the model, or the SUT with the model. */
  readonly who: 'expect' | 'sut' | 'expect+sut';
}

export interface ReplaySummary {
  readonly steps: number;
  readonly mismatches: number;
  /** Steps whose followed answer was ENOMEM where the model accepts (MS-RES-01). */
  readonly resourceSteps: number;
  /** The first mismatches, up to the report limit. */
  readonly first: readonly Mismatch[];
  /** How often each rule decided a request. */
  readonly ruleCounts: ReadonlyMap<RuleId, number>;
  /** How often each rule fired at all (deciding or not: MS-DLG-07 and MS-DLB-01 of a create, say). */
  readonly firedCounts: ReadonlyMap<RuleId, number>;
}

export interface ReplayOptions {
  readonly profile: model.Profile;
  /** Sends a request to the SUT and returns its answer (already validated for the op). */
  readonly sut?: (r: Request, line: number) => Promise<Answer>;
  /** Whether the SUT offers this request's op; requests it does not are checked against expect only. */
  readonly sutSupports?: (r: Request) => boolean;
  readonly reportLimit?: number;
  /** Called with the model's state whenever it is reset (the start, reset lines, profile lines). */
  readonly onReset?: (profile: model.Profile) => Promise<void>;
  /** Called with every request once the model has answered it (how `lint/`'s VMM checks watch a replay). */
  readonly onStep?: (step: ReplayStep) => void;
}

/** One replayed request: the model's states before and after it and the answer it followed. */
export interface ReplayStep {
  readonly line: number;
  readonly request: Request;
  readonly before: model.VmState;
  readonly after: model.VmState;
  readonly answer: Answer;
}

/**
 * Replays parsed trace lines, one at a time or in batches (readTraceBatches()). Throws
 * InputError on a defect of the input.
 */
export async function replay(lines: AsyncIterable<TraceLine | readonly TraceLine[]>, opts: ReplayOptions): Promise<ReplaySummary> {
  const input = lines[Symbol.asyncIterator]();
  try {
    return await replayFrom(input, opts);
  } finally {
    // As for-await does: the input is closed however the replay ends (a file stream, say).
    await input.return?.();
  }
}

async function replayFrom(input: AsyncIterator<TraceLine | readonly TraceLine[]>, opts: ReplayOptions): Promise<ReplaySummary> {
  const limit = opts.reportLimit ?? 10;
  let vm = model.createVm(opts.profile);
  let steps = 0;
  let mismatches = 0;
  let resourceSteps = 0;
  const first: Mismatch[] = [];
  const ruleCounts = new Map<RuleId, number>();
  const firedCounts = new Map<RuleId, number>();
  if (opts.onReset !== undefined) await opts.onReset(opts.profile);
  // Nothing below awaits without a SUT: the lines of a batch replay without a promise each.
  let batch: readonly TraceLine[] = [];
  let next = 0;
  for (;;) {
    if (next === batch.length) {
      const r = await input.next();
      if (r.done === true) break;
      batch = isBatch(r.value) ? r.value : [r.value];
      next = 0;
      continue;
    }
    const t = batch[next++]!;
    if (t.kind === 'profile') {
      vm = model.createVm(t.profile);
      if (opts.onReset !== undefined) await opts.onReset(t.profile);
      continue;
    }
    const defect = requestDefect(vm, t.request);
    if (defect !== null) throw new InputError(t.line, defect.field, defect.message);
    const supported = opts.sutSupports?.(t.request) ?? true;
    if (opts.sut !== undefined && !supported && changesState(t.request)) {
      // Skipping a request that changes the state would blame every later difference on the SUT.
      const what = t.request.op === 'reset' ? 'reset_vm_type' : t.request.op;
      throw new InputError(t.line, 'op', `the SUT does not list ${what}, which changes the state: the rest of the trace cannot be compared`);
    }
    const askSut = opts.sut !== undefined && supported;
    const sut = askSut ? await opts.sut!(t.request, t.line) : undefined;
    // The live answer decides which branch the model follows: the SUT's, else the trace's.
    const judged = judge(vm, t.request, modelStep(vm, t.request), sut ?? t.expect);
    const m = judged.step;
    opts.onStep?.({ line: t.line, request: t.request, before: vm, after: m.state, answer: m.answer });
    vm = m.state;
    steps++;
    if (judged.resource) resourceSteps++;
    if (m.rule !== null) ruleCounts.set(m.rule, (ruleCounts.get(m.rule) ?? 0) + 1);
    // Each rule once per step (a rule may fire twice in one request); no Set built per step.
    const fired = m.fired;
    for (let i = 0; i < fired.length; i++) {
      const r = fired[i]!;
      if (fired.indexOf(r) === i) firedCounts.set(r, (firedCounts.get(r) ?? 0) + 1);
    }
    const expectBad = t.expect !== undefined && !judged.allows(t.expect);
    const sutBad = sut !== undefined && !judged.allows(sut);
    if (expectBad || sutBad) {
      mismatches++;
      if (first.length < limit) {
        first.push({
          line: t.line,
          request: t.request,
          expected: t.expect,
          model: m.answer,
          sut,
          rule: m.rule,
          who: expectBad && sutBad ? 'expect+sut' : expectBad ? 'expect' : 'sut',
        });
      }
    }
  }
  return { steps, mismatches, resourceSteps, first, ruleCounts, firedCounts };
}

function isBatch(x: TraceLine | readonly TraceLine[]): x is readonly TraceLine[] {
  return Array.isArray(x);
}

/** The human-readable report: the summary line first, then the first mismatches. */
export function formatReplay(s: ReplaySummary, withSut: boolean): string {
  const out = [`${s.steps} steps, ${s.mismatches} mismatches${resourceNote(s.resourceSteps)}`];
  for (const m of s.first) {
    out.push('');
    out.push(`line ${m.line}: ${requestText(m.request)}`);
    if (m.expected !== undefined) out.push(`  expected: ${answerText(m.expected)}${m.who.includes('expect') ? '   <- disagrees with the model' : ''}`);
    if (withSut && m.sut !== undefined) out.push(`  sut:      ${answerText(m.sut)}${m.who.includes('sut') ? '   <- disagrees with the model' : ''}`);
    const why = m.rule === null ? '' : `   [${m.rule}] ${RULES[m.rule]}`;
    out.push(`  model:    ${answerText(m.model)}${why}`);
  }
  if (s.mismatches > s.first.length) out.push('', `(${s.mismatches - s.first.length} more mismatches not shown)`);
  return out.join('\n');
}

/** How many answers took the resource branch (MS-RES-01), when any did: the tail of a summary line. */
export function resourceNote(n: number): string {
  return n === 0 ? '' : `; ${n} answered ENOMEM where the model accepts (the resource branch, MS-RES-01)`;
}

/** Whether a request can change the VM (so a SUT that cannot take it cannot follow the trace). */
function changesState(r: Request): boolean {
  return r.op === 'set_internal_memslot' || r.op === 'set_user_memory_region2' || r.op === 'create_guest_memfd' || (r.op === 'reset' && r.vmType !== undefined);
}
