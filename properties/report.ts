/**
 * Counterexamples: re-run fast-check's shrunk sequence to see every step's answers, delete the
 * steps fast-check's command shrinker keeps needlessly (fast-check issue #254), and render the
 * result as a numbered list of kernel-style calls with the model's and the implementation's
 * answers, plus a trace that `memslot-oracle replay` reproduces through the model.
 */
import type fc from 'fast-check';
import { RULES, isRuleId } from '../spec/rules.js';
import { formatProfileLine, formatTraceLine, type Answer, type Request } from '../trace/trace.js';
import type { Profile } from '../model/index.js';
import { reproC, reproSteps } from '../trace/repro.js';
import { Disagreement, newBox, startRun, step, type ModelBox, type RecordedStep } from './harness.js';
import type { Op } from './ops.js';
import { stepBox, walkRequests } from './sequences.js';
import type { Target } from './target.js';

/** A fresh VM on a target for each run: a new implementation, or a SUT after `reset`. */
export type TargetFactory = (profile: Profile) => Promise<Target>;

/** A minimal failing sequence, as data. */
export interface Counterexample {
  readonly impl: string;
  readonly profile: string;
  /** fast-check's seed and path of the failing run, and the commands' replayPath. */
  readonly seed: number;
  readonly path: string;
  readonly replayPath: string | null;
  /** fast-check's shrunk counterexample, one command per entry (constructor arguments only). */
  readonly fastCheckCommands: readonly string[];
  /** The final sequence, one entry per step: "N. call -> model: X; impl: Y". */
  readonly steps: readonly string[];
  /** Steps of fast-check's shrunk counterexample that post-processing deleted (bulk steps split into single requests count as one each). */
  readonly removed: number;
  /** What disagreed at the last step. */
  readonly failure: string;
  /** The report (markdown): steps with both answers, seed, path, replayPath, how to reproduce. */
  readonly report: string;
  /** The trace (JSON Lines): profile, reset, every request with the model's answer as expect. */
  readonly trace: string;
  /** The trace's kernel-facing requests as a selftest-style C program for /dev/kvm. */
  readonly c: string;
  /** Where report, trace and C reproducer were written, when an output folder was given. */
  readonly files: { readonly report: string; readonly trace: string; readonly c: string } | null;
}

/** What running a list of ops gave: the recorded steps, and the index of the failing one (-1: none). */
interface Replay {
  readonly steps: RecordedStep[];
  readonly failedAt: number;
}

/** A re-run of commands: the ops they resolved to, and the commands that ran (check() passed). */
interface CommandReplay extends Replay {
  readonly ran: string[];
}

/** Runs ops on a fresh model and a fresh target. */
export async function runOps(profile: Profile, factory: TargetFactory, ops: readonly Op[]): Promise<Replay> {
  const box = newBox(profile);
  box.recorder = [];
  const target = await factory(profile);
  try {
    await startRun(box, target);
    box.recorder = [];
    for (const op of ops) await step(box, target, op);
  } catch (e) {
    if (!(e instanceof Disagreement)) throw e;
    return { steps: box.recorder, failedAt: box.recorder.length - 1 };
  }
  return { steps: box.recorder, failedAt: -1 };
}

/** Re-runs fast-check's commands (prefix first), recording the ops they resolved to. */
export async function recordCommands(profile: Profile, factory: TargetFactory, commands: Iterable<fc.AsyncCommand<ModelBox, Target>>): Promise<CommandReplay> {
  const box = newBox(profile);
  box.recorder = [];
  const target = await factory(profile);
  const ran: string[] = [];
  try {
    await startRun(box, target);
    box.recorder = [];
    for (const c of commands) {
      if (!c.check(box)) continue;
      ran.push(c.toString());
      await c.run(box, target);
    }
  } catch (e) {
    if (!(e instanceof Disagreement)) throw e;
    return { steps: box.recorder, failedAt: box.recorder.length - 1, ran };
  }
  return { steps: box.recorder, failedAt: -1, ran };
}

/**
 * Deletes steps while the implementation still disagrees somewhere; a bulk step is first cut
 * to its shortest failing prefix and, once small, split into single requests.
 * @returns the shorter op list (ending with the failing op).
 */
export async function minimise(profile: Profile, factory: TargetFactory, ops: readonly Op[], deadline: number): Promise<Op[]> {
  let cur = [...ops];
  const failsAt = async (cand: readonly Op[]): Promise<number> => {
    try {
      return (await runOps(profile, factory, cand)).failedAt;
    } catch (e) {
      // A SUT that breaks while being minimised is broken, not a smaller counterexample.
      if (e instanceof Error && e.name === 'SutError') throw e;
      return -1;
    }
  };
  const accept = async (cand: Op[]): Promise<boolean> => {
    const at = await failsAt(cand);
    if (at < 0) return false;
    cur = cand.slice(0, at + 1);
    return true;
  };
  let changed = true;
  while (changed && Date.now() < deadline) {
    changed = false;
    // Bulk steps: shortest failing prefix by halving, then split small ones into single requests.
    for (let i = 0; i < cur.length && Date.now() < deadline; i++) {
      const op = cur[i]!;
      if (op.kind !== 'bulk') continue;
      let n = op.regions.length;
      while (n > 1 && Date.now() < deadline) {
        const half = Math.floor(n / 2);
        const cand = [...cur.slice(0, i), { ...op, regions: op.regions.slice(0, half) }, ...cur.slice(i + 1)];
        if (!(await accept(cand))) break;
        n = half;
        changed = true;
      }
      const now = cur[i];
      if (now !== undefined && now.kind === 'bulk' && now.regions.length <= 8) {
        const singles: Op[] = now.regions.map((region) => ({ kind: 'set', region }));
        if (await accept([...cur.slice(0, i), ...singles, ...cur.slice(i + 1)])) changed = true;
      }
    }
    // Steps: delete one at a time, from the end backwards (later steps depend on earlier ones).
    for (let i = cur.length - 2; i >= 0 && Date.now() < deadline; i--) {
      if (i >= cur.length - 1) continue;
      if (await accept([...cur.slice(0, i), ...cur.slice(i + 1)])) changed = true;
    }
  }
  return cur;
}

/** The trace: profile line, reset, each op's requests with the model's answers, then the final state. */
export function traceOf(profile: Profile, ops: readonly Op[]): { lines: string[]; stepLines: number[]; exact: boolean[] } {
  const box = newBox(profile);
  const lines = [formatProfileLine(profile), formatTraceLine({ op: 'reset' }, { kind: 'ok' })];
  const stepLines: number[] = [];
  const exact: boolean[] = [];
  const answer = (r: Request): Answer => stepBox(box, r).answer;
  for (const t of walkRequests(box, ops)) {
    stepLines.push(lines.length + 1);
    exact.push(t.exact);
    for (const r of t.requests) lines.push(formatTraceLine(r, answer(r)));
  }
  for (let asId = 0; asId < box.vm.profile.addressSpaces; asId++) {
    for (const r of [{ op: 'get_generation', asId } as const, { op: 'get_slots', asId } as const]) lines.push(formatTraceLine(r, answer(r)));
  }
  return { lines, stepLines, exact };
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function ruleNote(expected: string): string {
  const m = /\[(MS-[A-Z0-9]+-\d+)\]/.exec(expected);
  const id = m?.[1];
  return id !== undefined && isRuleId(id) ? ` (${RULES[id]})` : '';
}

export interface ReportInput {
  readonly implName: string;
  readonly profile: Profile;
  readonly factory: TargetFactory;
  readonly seed: number;
  readonly path: string;
  readonly replayPath: string | null;
  readonly fastCheckCommands: readonly string[];
  /** The recorded re-run of fast-check's counterexample. */
  readonly recorded: Replay;
  /** The fast-check error, for when the re-run does not fail. */
  readonly error: unknown;
  readonly reproduce: string;
  readonly minimiseMs: number;
}

/** Minimises the recorded failing run and renders it. */
export async function buildCounterexample(input: ReportInput): Promise<Omit<Counterexample, 'files'>> {
  const { profile, factory } = input;
  const recorded = input.recorded;
  let final: Replay = recorded;
  if (recorded.failedAt >= 0) {
    const ops = recorded.steps.slice(0, recorded.failedAt + 1).map((s) => s.op);
    const shorter = await minimise(profile, factory, ops, Date.now() + input.minimiseMs);
    const again = await runOps(profile, factory, shorter);
    if (again.failedAt >= 0) final = again;
  }
  const failing = final.failedAt >= 0 ? final.steps[final.failedAt] : undefined;
  const ops = final.steps.slice(0, final.failedAt >= 0 ? final.failedAt + 1 : final.steps.length).map((s) => s.op);
  const fcSteps = recorded.failedAt >= 0 ? recorded.failedAt + 1 : recorded.steps.length;
  const removed = Math.max(0, fcSteps - ops.length);
  const steps = final.steps
    .slice(0, ops.length)
    .map((s, i) => `${i + 1}. ${s.call} -> model: ${s.expected}; impl: ${s.actual}${s.agree ? '' : '   <-- DISAGREES'}`);
  const failure = failing?.failure ?? `fast-check reported a failure the re-run did not reproduce: ${String(input.error)}`;
  const { lines, stepLines, exact } = traceOf(profile, ops);

  const md: string[] = [];
  md.push(`# memslot-oracle check: counterexample`, '');
  md.push(`${input.implName} disagrees with the model under profile ${profile.name}.`, '');
  md.push(`- seed: ${input.seed}, path: "${input.path}", replayPath: ${input.replayPath === null ? '(none)' : `"${input.replayPath}"`}`);
  md.push(
    `- fast-check's shrunk counterexample ran ${plural(input.fastCheckCommands.length, 'command')} (${plural(fcSteps, 'step')}); deleting needless steps (fast-check #254) and splitting bulk steps left ${plural(ops.length, 'step')}.`,
  );
  md.push(`- reproduce: \`${input.reproduce}\``);
  md.push(
    `- the trace replays through the model with \`memslot-oracle replay counterexample.jsonl\`: its \`expect\` fields are the model's answers, so it replays clean; the implementation's answers are below.`,
  );
  md.push(`- \`cc -O2 -o repro repro.c && ./repro\` sends the trace's ioctls to \`/dev/kvm\` and checks the kernel gives the model's answers.`);
  md.push('', `## Steps (model = expected, impl = actual)`, '');
  final.steps.slice(0, ops.length).forEach((s, i) => {
    const where = exact[i] === false ? `trace line ${stepLines[i] ?? '?'}, stood in for by the nearest protocol request` : `trace line ${stepLines[i] ?? '?'}`;
    md.push(`${i + 1}. \`${s.call}\`${s.agree ? '' : '  **<-- disagrees**'}  (${where})`);
    md.push(`   - model: ${s.expected}${ruleNote(s.expected)}`);
    md.push(`   - impl:  ${s.actual}`);
    if (s.failure !== null) md.push(`   - ${s.failure}`);
  });
  md.push('', `## Failure`, '', failure);
  md.push('', `## fast-check's shrunk counterexample (commands, before post-processing)`, '');
  input.fastCheckCommands.forEach((c, i) => md.push(`${i + 1}. ${c}`));
  if (lines.length <= 200) md.push('', '## Trace', '', '```jsonl', ...lines, '```');
  else md.push('', `## Trace`, '', `${lines.length} lines, written next to this report.`);
  return {
    impl: input.implName,
    profile: profile.name,
    seed: input.seed,
    path: input.path,
    replayPath: input.replayPath,
    fastCheckCommands: input.fastCheckCommands,
    steps,
    removed,
    failure,
    report: `${md.join('\n')}\n`,
    trace: `${lines.join('\n')}\n`,
    c: reproC((await reproSteps(lines, profile, 'counterexample.jsonl')).steps, 'counterexample.jsonl'),
  };
}
