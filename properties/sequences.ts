/**
 * Random request sequences without a runner: the suite's generators sampled (fc.sample), each
 * sequence walked command by command against its own box. `record` sends them to a SUT and
 * `vectors` writes them with the model's answers, both through walkRequests(), as a
 * counterexample's trace is written (report.ts traceOf()).
 */
import type { Focus } from './arbitraries.js';
import fc from 'fast-check';
import type { Profile } from '../model/index.js';
import { commandArbs, type MemslotCommand } from './commands/index.js';
import { newBox, type ModelBox } from './harness.js';
import type { Request } from '../trace/trace.js';
import { modelStep, type ModelAnswer } from '../trace/execute.js';
import { traceRequests, type Op } from './ops.js';

export interface WalkOptions {
  readonly seed: number;
  /** Sequences to draw. */
  readonly count: number;
  readonly maxCommands: number;
  readonly maxBulk: number;
  readonly size: fc.SizeForArbitrary;
  /** Commands each sequence starts with (a ring and a slot to fill it, say). */
  readonly prefix?: readonly MemslotCommand[];
  /** Commands drawn more often (ArbConfig.focus). */
  readonly focus?: Focus;
}

/** One sequence: its box, and its ops, each resolved when the walk reaches it. */
export interface Walk {
  readonly box: ModelBox;
  readonly ops: Iterable<Op>;
}

export function* walks(profile: Profile, o: WalkOptions): Generator<Walk> {
  const cfg = { profile, maxBulk: o.maxBulk, fill: false, ...(o.focus !== undefined ? { focus: o.focus } : {}) };
  const arb = fc.commands(commandArbs(cfg), { maxCommands: o.maxCommands, size: o.size });
  for (const sequence of fc.sample(arb, { seed: o.seed, numRuns: o.count })) {
    const box = newBox(profile);
    yield { box, ops: resolve(box, [...(o.prefix ?? []), ...sequence]) };
  }
}

function* resolve(box: ModelBox, sequence: Iterable<unknown>): Generator<Op> {
  for (const c of sequence) {
    // fc.commands() yields wrappers around the suite's commands (fast-check's CommandWrapper).
    const cmd = ((c as { cmd?: MemslotCommand }).cmd ?? c) as MemslotCommand;
    if (cmd.check(box)) yield cmd.resolve(box);
  }
}

/** One op of a walk, and the requests it makes at the state the walk has reached. */
export interface WalkOp {
  readonly op: Op;
  readonly requests: readonly Request[];
  /** Whether the requests say all the op does (traceRequests()). */
  readonly exact: boolean;
}

/**
 * The one loop that turns commands into requests while the generator's model keeps in step:
 * each op of `ops` (a walk's ops are resolved against `box` when reached) with its requests
 * (traceRequests()). Before taking the next op the caller moves `box.vm` on by each request it
 * made: stepBox() for the model's own step, or a step judged against a SUT's answer.
 */
export function* walkRequests(box: ModelBox, ops: Iterable<Op>): Generator<WalkOp> {
  for (const op of ops) {
    const { requests, exact } = traceRequests(box.vm.profile, op);
    yield { op, requests, exact };
  }
}

/** The model's step for `r` at the box's state, which moves on to it. */
export function stepBox(box: ModelBox, r: Request): ModelAnswer {
  const m = modelStep(box.vm, r);
  box.vm = m.state;
  return m;
}
