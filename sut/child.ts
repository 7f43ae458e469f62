/**
 * A generic JSON-Lines child-process transport for systems under test.
 *
 * The child reads one request per line on stdin and writes one answer per line on stdout,
 * in order. This module knows nothing about the ops: it writes lines, reads lines, and turns
 * every way a child can misbehave into a `SutError` with a kind:
 *
 * - `spawn`: the command could not be started (ENOENT, EACCES, ...);
 * - `crash`: the child exited or closed its stdout while a request was pending (or before a
 *   request was sent);
 * - `timeout`: no answer within the per-request timeout; the child is killed;
 * - `protocol`: an answer line that is not a JSON object, or a line nobody asked for;
 * - `setup`: the environment is not fit to run the SUT (used by drivers such as kvm-driver.ts).
 *
 * No process of the SUT's outlives its ChildSut. The child leads a process group of its own,
 * and the whole group is killed on close(), on any fatal error, and by a process 'exit' handler;
 * its pipes are destroyed then, so a background process that still holds them (a wrapper's
 * helper, a daemon) cannot keep the oracle from exiting. A process that left the group
 * (`setsid`) is found by a token in its inherited environment (Linux, /proc) and killed too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';

export type SutErrorKind = 'spawn' | 'crash' | 'timeout' | 'protocol' | 'setup';

export class SutError extends Error {
  override readonly name = 'SutError';
  readonly kind: SutErrorKind;

  constructor(message: string, kind: SutErrorKind) {
    super(message);
    this.kind = kind;
  }
}

export interface ChildSutOptions {
  /** Per-request timeout in milliseconds (default 5000). */
  readonly timeoutMs?: number;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

export interface SutReply {
  /** The answer line as received, without the line terminator. */
  readonly line: string;
  /** `JSON.parse(line)`; always a non-null, non-array object. */
  readonly value: unknown;
}

const DEFAULT_TIMEOUT_MS = 5000;
const STDERR_TAIL_CHARS = 4096;
const QUOTE_CHARS = 200;
/** How long close() waits for the child to exit on its own after stdin is closed. */
const CLOSE_GRACE_MS = 500;
/** How long a child may keep running after closing its stdout before it counts as crashed. */
const STDOUT_EOF_GRACE_MS = 250;
/** How long after the child's exit its pipes may stay open before the exit is reported anyway. */
const EXIT_CLOSE_GRACE_MS = 200;

/**
 * Quotes s for an error message: truncated to `max` characters, control characters escaped,
 * inner quotes left as they are (they are mostly JSON's own, and readable that way).
 */
function quote(s: string, max = QUOTE_CHARS): string {
  const t = s.length > max ? `${s.slice(0, max)}…` : s;
  // eslint-disable-next-line no-control-regex
  return `"${t.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1))}"`;
}

/** The environment variable that marks every process a SUT starts (its value: one token per SUT). */
export const SUT_TOKEN_VAR = 'MEMSLOT_ORACLE_SUT_TOKEN';

/** A started SUT's process group and token: what it takes to end everything it started. */
interface Group {
  readonly pgid: number;
  readonly token: string;
}

// SUT groups not yet ended, killed if Node exits while they run.
const liveGroups = new Set<Group>();
let exitHandlerInstalled = false;

function track(group: Group): void {
  if (!exitHandlerInstalled) {
    exitHandlerInstalled = true;
    process.on('exit', () => {
      for (const g of liveGroups) endGroup(g);
    });
  }
  liveGroups.add(group);
}

/**
 * SIGKILLs the group and every process that carries its token. Synchronous, so the 'exit'
 * handler can call it.
 */
function endGroup(group: Group): void {
  liveGroups.delete(group);
  try {
    process.kill(-group.pgid, 'SIGKILL');
  } catch {
    // No process is left in the group.
  }
  for (const pid of pidsWithToken(group.token)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
}

/** The processes whose environment holds `SUT_TOKEN_VAR=token` (none where /proc is absent). */
function pidsWithToken(token: string): number[] {
  const needle = `${SUT_TOKEN_VAR}=${token}\0`;
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const e of entries) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (`${readFileSync(`/proc/${e}/environ`, 'latin1')}\0`.includes(needle)) pids.push(Number(e));
    } catch {
      // Gone, or not ours to read.
    }
  }
  return pids;
}

interface Pending {
  readonly line: string;
  /** This request's timeout, when it differs from the SUT's. */
  readonly timeoutMs?: number;
  readonly resolve: (reply: SutReply) => void;
  readonly reject: (err: unknown) => void;
}

export class ChildSut {
  readonly command: readonly string[];
  /** The child's pid (for tests and diagnostics). */
  readonly pid: number;

  readonly #child: ChildProcess;
  readonly #group: Group;
  readonly #timeoutMs: number;
  #stdoutBuffer = '';
  #stderrTail = '';
  /** The request written to the child and not yet answered. */
  #inFlight: Pending | null = null;
  #timer: NodeJS.Timeout | null = null;
  readonly #queue: Pending[] = [];
  /** Set once the child is unusable; every later request rejects with it. */
  #fatal: SutError | null = null;
  #exited = false;
  readonly #exitedPromise: Promise<void>;
  #closePromise: Promise<void> | null = null;

  private constructor(command: readonly string[], child: ChildProcess, group: Group, timeoutMs: number) {
    this.command = command;
    this.#child = child;
    this.#group = group;
    this.#timeoutMs = timeoutMs;
    this.pid = child.pid ?? -1;
    this.#exitedPromise = new Promise<void>((resolve) => {
      child.once('exit', (code: number | null, signal: NodeJS.Signals | null) => {
        this.#exited = true;
        resolve();
        // 'close' follows once stdout and stderr are drained, and reports with the full stderr
        // tail. If something else (a grandchild) keeps the pipes open, report without waiting.
        setTimeout(() => this.#onClose(code, signal), EXIT_CLOSE_GRACE_MS).unref();
      });
      child.once('close', (code: number | null, signal: NodeJS.Signals | null) => this.#onClose(code, signal));
    });

    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => this.#onStdout(chunk));
    child.stdout?.on('end', () => this.#onStdoutEnd());
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      this.#stderrTail = (this.#stderrTail + chunk).slice(-STDERR_TAIL_CHARS);
    });
    // Writes to a child that has died fail with EPIPE; the 'close' handler reports the crash.
    child.stdin?.on('error', () => {});
    child.on('error', () => {});
  }

  /**
   * Starts `command[0]` with arguments `command[1..]` (no shell) and resolves once the process
   * is running. Rejects with SutError 'spawn' if it cannot be started.
   */
  static async start(command: string[], opts: ChildSutOptions = {}): Promise<ChildSut> {
    const [file, ...args] = command;
    if (file === undefined || file === '') {
      throw new SutError('cannot start the SUT: empty command', 'spawn');
    }
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(timeoutMs > 0)) {
      throw new RangeError(`timeoutMs must be positive, got ${timeoutMs}`);
    }
    const token = randomUUID();
    let child: ChildProcess;
    try {
      child = spawn(file, args, {
        stdio: ['pipe', 'pipe', 'pipe'],
        // A process group of its own (pgid = its pid), so that ending the SUT ends its helpers.
        detached: true,
        env: { ...(opts.env ?? process.env), [SUT_TOKEN_VAR]: token },
        ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
      });
    } catch (err) {
      throw new SutError(`cannot start the SUT ${quote(command.join(' '))}: ${errorText(err)}`, 'spawn');
    }
    await new Promise<void>((resolve, reject) => {
      const onSpawn = (): void => {
        child.off('error', onError);
        resolve();
      };
      const onError = (err: Error): void => {
        child.off('spawn', onSpawn);
        reject(new SutError(`cannot start the SUT ${quote(command.join(' '))}: ${errorText(err)}`, 'spawn'));
      };
      child.once('spawn', onSpawn);
      child.once('error', onError);
    });
    const group = { pgid: child.pid!, token };
    track(group);
    return new ChildSut([...command], child, group, timeoutMs);
  }

  /** Sends `JSON.stringify(obj)` as one line. Objects holding bigints must use requestLine. */
  request(obj: Record<string, unknown>): Promise<SutReply> {
    let line: string | undefined;
    try {
      line = JSON.stringify(obj) as string | undefined;
    } catch (err) {
      return Promise.reject(err);
    }
    if (typeof line !== 'string') return Promise.reject(new TypeError('the request does not serialise to JSON'));
    return this.requestLine(line);
  }

  /**
   * Sends one pre-serialised request line (without the newline) and resolves with the answer.
   * Requests are answered one at a time; concurrent calls are queued in call order.
   */
  requestLine(line: string, timeoutMs?: number): Promise<SutReply> {
    if (line.includes('\n') || line.includes('\r')) {
      return Promise.reject(new TypeError(`a request line must not contain a line break: ${quote(line)}`));
    }
    return new Promise<SutReply>((resolve, reject) => {
      if (this.#fatal) {
        reject(this.#fatal);
        return;
      }
      this.#queue.push(timeoutMs === undefined ? { line, resolve, reject } : { line, timeoutMs, resolve, reject });
      this.#pump();
    });
  }

  /** The last ~4 KiB of the child's stderr. */
  stderrTail(): string {
    return this.#stderrTail;
  }

  /**
   * Ends the child's stdin, waits briefly for it to exit, then SIGKILLs it and everything it
   * started, and lets go of its pipes. Pending and queued requests reject with SutError 'crash'.
   * Idempotent.
   */
  close(): Promise<void> {
    if (this.#closePromise) return this.#closePromise;
    this.#closePromise = (async () => {
      this.#fail(new SutError(`the SUT ${quote(this.command.join(' '))} was closed`, 'crash'), false);
      if (!this.#exited) {
        this.#child.stdin?.end();
        const grace = new Promise<void>((resolve) => {
          const t = setTimeout(resolve, CLOSE_GRACE_MS);
          void this.#exitedPromise.then(() => {
            clearTimeout(t);
            resolve();
          });
        });
        await grace;
        if (!this.#exited) {
          this.#kill();
          await this.#exitedPromise;
        }
      }
      this.#release();
    })();
    return this.#closePromise;
  }

  #pump(): void {
    if (this.#inFlight || this.#fatal) return;
    const next = this.#queue.shift();
    if (!next) return;
    this.#inFlight = next;
    this.#timer = setTimeout(() => {
      this.#fail(
        new SutError(
          `the SUT did not answer within ${next.timeoutMs ?? this.#timeoutMs} ms; request: ${quote(next.line)}` + stderrSuffix(this.#stderrTail),
          'timeout',
        ),
        true,
      );
    }, next.timeoutMs ?? this.#timeoutMs);
    this.#child.stdin?.write(`${next.line}\n`);
  }

  #onStdout(chunk: string): void {
    this.#stdoutBuffer += chunk;
    let nl: number;
    while ((nl = this.#stdoutBuffer.indexOf('\n')) >= 0) {
      let line = this.#stdoutBuffer.slice(0, nl);
      this.#stdoutBuffer = this.#stdoutBuffer.slice(nl + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      this.#onLine(line);
      if (this.#fatal) return;
    }
  }

  #onLine(line: string): void {
    const pending = this.#inFlight;
    if (this.#fatal) return;
    if (!pending) {
      this.#fail(new SutError(`the SUT wrote a line nobody asked for: ${quote(line)}`, 'protocol'), true);
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      this.#fail(new SutError(`the SUT answered with a line that is not JSON: ${quote(line)}; request: ${quote(pending.line)}`, 'protocol'), true);
      return;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.#fail(new SutError(`the SUT answered with JSON that is not an object: ${quote(line)}; request: ${quote(pending.line)}`, 'protocol'), true);
      return;
    }
    this.#clearTimer();
    this.#inFlight = null;
    pending.resolve({ line, value });
    this.#pump();
  }

  #onStdoutEnd(): void {
    if (this.#exited || this.#fatal) return;
    // The child closed its stdout. If it exits promptly, the 'close' handler reports the exit
    // status; otherwise it can never answer again.
    setTimeout(() => {
      if (this.#exited || this.#fatal) return;
      this.#fail(new SutError(`the SUT ${quote(this.command.join(' '))} closed its stdout but kept running` + stderrSuffix(this.#stderrTail), 'crash'), true);
    }, STDOUT_EOF_GRACE_MS).unref();
  }

  #onClose(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#fatal) return;
    const how = signal ? `was killed by ${signal}` : `exited with code ${code ?? '?'}`;
    const during = this.#inFlight ? ` while answering ${quote(this.#inFlight.line)}` : '';
    this.#fail(new SutError(`the SUT ${quote(this.command.join(' '))} ${how}${during}` + stderrSuffix(this.#stderrTail), 'crash'), false);
  }

  /** Makes the SUT unusable: rejects the in-flight and queued requests, optionally kills it. */
  #fail(err: SutError, kill: boolean): void {
    if (this.#fatal) return;
    this.#fatal = err;
    this.#clearTimer();
    const pending = this.#inFlight;
    this.#inFlight = null;
    pending?.reject(err);
    for (const q of this.#queue.splice(0)) q.reject(err);
    if (kill) this.#kill();
  }

  #kill(): void {
    endGroup(this.#group);
  }

  /** Ends what is left of the SUT's processes and stops reading pipes they may still hold. */
  #release(): void {
    endGroup(this.#group);
    this.#child.stdin?.destroy();
    this.#child.stdout?.destroy();
    this.#child.stderr?.destroy();
  }

  #clearTimer(): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
  }
}

function stderrSuffix(tail: string): string {
  const t = tail.trimEnd();
  return t === '' ? '' : `; stderr tail:\n${t}`;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Splits a command line the way a POSIX shell splits words, without expansions: whitespace
 * separates words; '...' is literal; "..." honours backslash before " \ $ ` and newline;
 * outside quotes a backslash quotes the next character (backslash-newline is removed).
 * Throws SutError 'setup' on an unterminated quote or a trailing backslash.
 */
export function splitCommand(cmd: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  while (i < cmd.length) {
    const c = cmd[i]!;
    if (c === ' ' || c === '\t' || c === '\n') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i++;
    } else if (c === "'") {
      const end = cmd.indexOf("'", i + 1);
      if (end < 0) throw new SutError(`unterminated ' in command ${quote(cmd)}`, 'setup');
      word += cmd.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      inWord = true;
      i++;
      for (;;) {
        if (i >= cmd.length) throw new SutError(`unterminated " in command ${quote(cmd)}`, 'setup');
        const d = cmd[i]!;
        if (d === '"') {
          i++;
          break;
        }
        if (d === '\\' && i + 1 < cmd.length && '"\\$`\n'.includes(cmd[i + 1]!)) {
          if (cmd[i + 1] !== '\n') word += cmd[i + 1];
          i += 2;
        } else {
          word += d;
          i++;
        }
      }
    } else if (c === '\\') {
      if (i + 1 >= cmd.length) throw new SutError(`trailing backslash in command ${quote(cmd)}`, 'setup');
      if (cmd[i + 1] !== '\n') {
        word += cmd[i + 1];
        inWord = true;
      }
      i += 2;
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}
