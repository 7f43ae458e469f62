/**
 * `memslot-oracle record --sut kvm|CMD --out FILE`: random request sequences, drawn with the
 * stateful suite's own generators (properties/commands, biased to the edges), sent to a SUT;
 * its answers are written as a trace with `expect`, and compared with the model on the way.
 */
import { createWriteStream } from 'node:fs';
import { parseArgs } from 'node:util';
import { PAGE_SHIFT, type Profile } from '../../model/index.js';
import { walkRequests, walks } from '../../properties/sequences.js';
import { judge, modelStep, requestDefect } from '../../trace/execute.js';
import { resourceNote } from '../../trace/replay.js';
import { resolveProfile } from '../profile-arg.js';
import { answerText, formatProfileLine, formatTraceLine, requestText, type Answer, type Request } from '../../trace/trace.js';
import { UsageError } from '../usage.js';
import { intOption, parseTimeout, seedOption } from '../options.js';
import { SutClient } from '../../sut/protocol.js';

/**
 * The largest slot a recording lets the SUT create. The kernel allocates metadata per page: an
 * accepted slot of 2^31 - 1 pages cost Linux 6.18 about 21 GB and 36 s (measured), so creates
 * and moves the model would accept above this size are not sent (they are counted).
 */
export const RECORD_MAX_PAGES = 1n << 18n;

export interface RecordOptions {
  readonly sut: SutClient;
  readonly profile: Profile;
  readonly seed: number;
  readonly sequences: number;
  readonly steps: number;
  /** Long sequences over hundreds of live slots. */
  readonly wide: boolean;
  /** Receives every trace line. */
  readonly write: (line: string) => void;
  readonly onMismatch?: (m: RecordMismatch) => void;
}

export interface RecordMismatch {
  readonly line: number;
  readonly request: Request;
  readonly sut: Answer;
  readonly model: Answer;
  readonly rule: string | null;
}

export interface RecordSummary {
  readonly requests: number;
  readonly mismatches: number;
  readonly skippedHuge: number;
  /** Answers of ENOMEM where the model accepts (MS-RES-01), accepted and followed. */
  readonly resourceSteps: number;
  readonly first: readonly RecordMismatch[];
}

/** Records `sequences` random sequences of up to `steps` commands each. */
export async function record(opts: RecordOptions): Promise<RecordSummary> {
  const { sut, profile } = opts;
  let line = 0;
  let requests = 0;
  let mismatches = 0;
  let skippedHuge = 0;
  let resourceSteps = 0;
  const first: RecordMismatch[] = [];
  const write = (text: string): void => {
    line++;
    opts.write(text);
  };
  write(formatProfileLine(profile));
  const sequences = walks(profile, {
    seed: opts.seed,
    count: opts.sequences,
    maxCommands: opts.steps,
    maxBulk: opts.wide ? 400 : 24,
    size: opts.wide ? 'max' : 'large',
  });
  // Each box's model follows what the SUT answered (MS-RES-01 lets it differ from the model's).
  for (const { box, ops } of sequences) {
    const reset = await sut.request({ op: 'reset' });
    write(formatTraceLine({ op: 'reset' }, reset));
    requests++;
    for (const { requests: reqs } of walkRequests(box, ops)) {
      for (const r of reqs) {
        if (!sut.supportsRequest(r) || requestDefect(box.vm, r) !== null) continue;
        const accepted = modelStep(box.vm, r);
        if (
          (r.op === 'set_user_memory_region' || r.op === 'set_user_memory_region2') &&
          r.region.memorySize >> PAGE_SHIFT > RECORD_MAX_PAGES &&
          accepted.answer.kind === 'ret'
        ) {
          skippedHuge++;
          continue;
        }
        const answer = await sut.request(r);
        const judged = judge(box.vm, r, accepted, answer);
        const m = judged.step;
        box.vm = m.state;
        if (judged.resource) resourceSteps++;
        write(formatTraceLine(r, answer));
        requests++;
        if (!judged.allows(answer)) {
          mismatches++;
          const mm = { line, request: r, sut: answer, model: m.answer, rule: m.rule };
          if (first.length < 10) first.push(mm);
          opts.onMismatch?.(mm);
        }
      }
    }
  }
  return { requests, mismatches, skippedHuge, resourceSteps, first };
}

export async function recordCli(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      sut: { type: 'string' },
      out: { type: 'string' },
      seed: { type: 'string' },
      sequences: { type: 'string' },
      steps: { type: 'string' },
      wide: { type: 'boolean' },
      profile: { type: 'string' },
      timeout: { type: 'string' },
    },
  });
  const dashDash = args.indexOf('--');
  if (positionals.length > 0 && (dashDash < 0 || args.length - dashDash - 1 !== positionals.length))
    throw new UsageError(`record: unexpected argument ${JSON.stringify(positionals[0])}; a VMM to record comes after --: record --out FILE -- CMD ARGS`);
  if (values.out === undefined) throw new UsageError('record needs --out FILE');
  if (dashDash >= 0) {
    if (values.sut !== undefined) throw new UsageError('record: --sut (random requests to a SUT) and -- CMD (a VMM under the recorder) exclude each other');
    if (positionals.length === 0) throw new UsageError('record -- needs a command: record --out FILE -- CMD ARGS');
    for (const o of ['seed', 'sequences', 'steps', 'wide'] as const)
      if (values[o] !== undefined) throw new UsageError(`record: --${o} is for random requests (--sut), not for recording a VMM (-- CMD)`);
    const { recordVmm } = await import('./record-vmm.js');
    return recordVmm({ command: positionals, out: values.out, profile: values.profile, timeoutMs: parseTimeout(values.timeout) });
  }
  if (values.sut === undefined) throw new UsageError('record needs --sut kvm|"CMD ARGS" (random requests to a SUT) or -- CMD ARGS (a VMM under the recorder)');
  const seed = seedOption(values.seed);
  const wide = values.wide === true;
  const sequences = intOption('sequences', values.sequences, wide ? 5 : 100);
  const steps = intOption('steps', values.steps, wide ? 2000 : 100);
  const sut = await SutClient.start(values.sut, { timeoutMs: parseTimeout(values.timeout) });
  const out = createWriteStream(values.out);
  try {
    const profile = sut.resolveProfile(values.profile === undefined ? null : resolveProfile(values.profile), resolveProfile(undefined));
    const summary = await record({ sut, profile, seed, sequences, steps, wide, write: (l) => out.write(`${l}\n`) });
    process.stdout.write(
      `record: ${sut.description}, profile ${profile.name}, seed ${seed}: ${sequences} sequences, ${summary.requests} requests, ${summary.mismatches} mismatches with the model` +
        `${summary.skippedHuge > 0 ? `, ${summary.skippedHuge} oversized creates not sent` : ''}${resourceNote(summary.resourceSteps)}\nwrote ${values.out}\n`,
    );
    for (const m of summary.first) {
      process.stdout.write(
        `\nline ${m.line}: ${requestText(m.request)}\n  sut:   ${answerText(m.sut)}\n  model: ${answerText(m.model)}${m.rule === null ? '' : `   [${m.rule}]`}\n`,
      );
    }
    return summary.mismatches === 0 ? 0 : 1;
  } finally {
    await sut.close();
    await new Promise<void>((resolve) => out.end(resolve));
  }
}
