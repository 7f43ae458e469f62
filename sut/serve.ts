/**
 * The oracle as the kernel (spec/80-protocol.md, "The oracle as the kernel"): a session takes
 * protocol request lines, as a SUT does, and answers each from the model exactly as the kernel
 * would. It can also forward every request to a real SUT and report where the two differ, write
 * the exchange as trace lines, and feed it to the VMM checks.
 *
 * A session is one VM. It knows no transport: `handle()` takes a line and returns the answer
 * line. Requests are parsed by trace/trace.ts and answered by trace/execute.ts (`modelStep`),
 * so every request kind those know is served here without change. A malformed line is an
 * answer (`{"error": ...}` naming the line and the field), never an exception.
 */
import { RULES, type RuleId } from '../spec/rules.js';
import * as model from '../model/index.js';
import { profileToJson, type Profile } from '../model/profiles.js';
import { judge, modelStep, requestDefect } from '../trace/execute.js';
import {
  InputError,
  OPS,
  RESET_VM_TYPE,
  answerText,
  formatTraceLine,
  parseJsonObject,
  parseTraceLine,
  requestText,
  type Answer,
  type Op,
  type Request,
} from '../trace/trace.js';
import { VmmLinter, type Finding } from '../lint/vmm-lint.js';
import { PROTOCOL_VERSION } from './protocol.js';

/** The real SUT a session checks its answers against (a SutClient). */
export interface Checked {
  readonly description: string;
  supports(op: Op): boolean;
  request(r: Request): Promise<Answer>;
}

/** A request where the checked SUT's answer is not one the kernel could give. */
export interface Difference {
  readonly source: string;
  readonly line: number;
  readonly request: Request;
  readonly model: Answer;
  readonly sut: Answer;
  readonly rule: RuleId | null;
}

export interface SessionOptions {
  readonly profile: Profile;
  /** The name hello reports. */
  readonly name: string;
  /** Where the lines come from, for error answers and reports ("stdin", "socket client 2"). */
  readonly source: string;
  readonly checkAgainst?: Checked;
  /** Called at once for each difference with the checked SUT. */
  readonly onDifference?: (d: Difference) => void;
  /** Called for what the operator should know that is not a difference (a request the checked SUT cannot take). */
  readonly onNote?: (text: string) => void;
  /** Receives each answered request as a trace line (spec/70), without the newline. */
  readonly record?: (line: string) => void;
  /** Run the VMM checks (lint/) over the session. */
  readonly lint?: boolean;
}

export class ServeSession {
  readonly #opts: SessionOptions;
  #vm: model.VmState;
  #line = 0;
  #checking: boolean;
  readonly #linter: VmmLinter | null;
  requests = 0;
  malformed = 0;
  differences = 0;
  /** The checked SUT could not take a request that changes the VM: the rest went unchecked. */
  uncheckable = false;

  constructor(opts: SessionOptions) {
    this.#opts = opts;
    this.#vm = model.createVm(opts.profile);
    this.#checking = opts.checkAgainst !== undefined;
    this.#linter = opts.lint === true ? new VmmLinter(opts.profile) : null;
  }

  /** Starts the checked SUT's VM afresh, as this session's is. */
  async start(): Promise<void> {
    if (this.#opts.checkAgainst !== undefined) await this.#opts.checkAgainst.request({ op: 'reset' });
  }

  /**
   * The answer line to one request line, or null for a blank line. Rejects only when the
   * checked SUT breaks (SutError): the session's own answers are values.
   */
  async handle(text: string): Promise<string | null> {
    this.#line++;
    if (text.trim() === '') return null;
    const line = this.#line;
    let request: Request;
    try {
      if (text.includes('"hello"')) {
        const obj = parseJsonObject(text, line, this.#opts.source);
        if (obj['op'] === 'hello') return this.#hello(obj);
      }
      const parsed = parseTraceLine(text, line, this.#opts.source);
      if (parsed === null) return null;
      if (parsed.kind === 'profile') {
        throw new InputError(
          line,
          'profile',
          'a profile line belongs to a trace; start serve with --profile (each connection, and reset, is a fresh VM of that profile)',
          this.#opts.source,
        );
      }
      request = parsed.request;
      const defect = requestDefect(this.#vm, request);
      if (defect !== null) throw new InputError(line, defect.field, defect.message, this.#opts.source);
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      this.malformed++;
      return JSON.stringify({ error: e.message });
    }
    return answerText(await this.#answer(line, request));
  }

  /** The VMM checks' findings (with `lint`), the open run and VM judged: call once, at the end. */
  finish(): readonly Finding[] {
    return this.#linter?.finish() ?? [];
  }

  #hello(obj: Record<string, unknown>): string {
    if (obj['protocol'] !== PROTOCOL_VERSION) {
      this.malformed++;
      return JSON.stringify({
        error: `${this.#opts.source} line ${this.#line}, field "protocol": this oracle speaks protocol ${PROTOCOL_VERSION}, got ${JSON.stringify(obj['protocol'])}`,
      });
    }
    return JSON.stringify({
      protocol: PROTOCOL_VERSION,
      name: this.#opts.name,
      ops: ['hello', ...OPS, RESET_VM_TYPE],
      profile: profileToJson(this.#vm.kernel),
    });
  }

  async #answer(line: number, r: Request): Promise<Answer> {
    const before = this.#vm;
    const m = modelStep(before, r);
    let observed: Answer | undefined;
    const sut = this.#opts.checkAgainst;
    if (this.#checking && sut !== undefined) {
      if (sut.supports(r.op)) {
        observed = await sut.request(r);
      } else if (m.state !== before) {
        this.#checking = false;
        this.uncheckable = true;
        this.#opts.onNote?.(
          `${this.#opts.source} line ${line}: ${sut.description} does not list ${r.op}, which changes the VM: the rest of this session is not checked`,
        );
      }
    }
    // The checked SUT's answer decides which branch the model follows where MS-RES-01 allows an ENOMEM.
    const judged = judge(before, r, m, observed);
    const step = judged.step;
    if (observed !== undefined && !judged.allows(observed)) {
      this.differences++;
      this.#opts.onDifference?.({ source: this.#opts.source, line, request: r, model: step.answer, sut: observed, rule: step.rule });
    }
    this.#vm = step.state;
    this.requests++;
    this.#opts.record?.(formatTraceLine(r, step.answer));
    this.#linter?.step({ line, request: r, before, after: step.state, answer: step.answer });
    return step.answer;
  }
}

/** A difference as the operator reads it (several lines, no trailing newline). */
export function formatDifference(d: Difference, sutName: string): string {
  const why = d.rule === null ? '' : `   [${d.rule}] ${RULES[d.rule]}`;
  return [
    `difference at ${d.source} line ${d.line}: ${requestText(d.request)}`,
    `  ${sutName}: ${answerText(d.sut)}`,
    `  model: ${answerText(d.model)}${why}`,
  ].join('\n');
}
