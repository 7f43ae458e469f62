/**
 * The two ways the matrix records a kernel's answers as a trace. main.ts picks one with a
 * single line (RECORDER there).
 *
 * - `recordWithOracle`: `memslot-oracle record --sut CMD --out FILE --seed S ...`, the oracle's
 *   own random sequences.
 * - `recordByReplay`: `memslot-oracle replay TRACE --sut CMD --record OUT` of the trace that
 *   gen-trace.ts writes (what the matrix did before `record` existed). It needs trace/lines.ts
 *   to open the trace only when iteration starts: with a readline interface made before the
 *   SUT's first reset is answered (~50 ms in the guest), the lines read meanwhile were lost.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { fillRequests } from './fill.js';
import { dirtyRandomRequests, dirtyRawRequests, type RawRequest } from './dirty.js';
import { formatProfileLine, formatTraceLine, type Op, type Request } from '../trace/trace.js';
import { profileFromJson, type Profile } from '../model/profiles.js';
import { SutClient } from '../sut/protocol.js';
import { ChildSut, splitCommand } from '../sut/child.js';
import path from 'node:path';
import { packageRoot } from '../sut/kvm-driver.js';
import { generateTrace } from './gen-trace.js';
import { SetupError } from './tools.js';

export type RecordPhase = 'random' | 'fill' | 'dirty';

export interface RecordOptions {
  /** The SUT command line (qemu-sut with its arguments) for a part of the recording (each part boots anew). */
  readonly sutFor: (phase: RecordPhase) => string;
  /** Where the recorded trace (JSON Lines, uncompressed) goes. */
  readonly out: string;
  /** Where the fill-to-the-limit part goes, for recorders that make one. */
  readonly fillOut?: string;
  readonly seed: number;
  /** Random steps wanted. */
  readonly steps: number;
  /** The oracle's per-request timeout (hello included: it waits for the boot). */
  readonly timeoutMs: number;
  /** A scratch folder. */
  readonly work: string;
  readonly log: (s: string) => void;
  /** Told when a part of the recording starts (for the progress line), with its request count when known. */
  readonly onPhase?: (phase: RecordPhase, requests?: number) => void;
}

/** Records; resolves with how (the exact oracle command, or what was replayed), for the report. */
export type Recorder = (o: RecordOptions) => Promise<{ how: string }>;

function oracleMain(): string {
  return path.join(packageRoot(), 'dist', 'cli', 'main.js');
}

function shellText(args: readonly string[]): string {
  return `node ${args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a}'`)).join(' ')}`;
}

/**
 * Runs the oracle CLI, its output line by line through `log`; its exit status 1 (a
 * disagreement with the model) still means a complete recording.
 */
async function runOracle(args: readonly string[], what: string, log: (s: string) => void): Promise<void> {
  const code = await new Promise<number>((resolve, reject) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    // An interrupted matrix takes the oracle (and so qemu-sut and QEMU) with it.
    const stop = (sig: NodeJS.Signals): void => {
      p.kill('SIGTERM');
      process.exit(sig === 'SIGINT' ? 130 : 143);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    p.on('close', () => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
    });
    for (const s of [p.stdout, p.stderr]) {
      let buf = '';
      s.setEncoding('utf8');
      s.on('data', (d: string) => {
        buf += d;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          log(`  ${buf.slice(0, nl)}`);
          buf = buf.slice(nl + 1);
        }
      });
      s.on('end', () => {
        if (buf !== '') log(`  ${buf}`);
      });
    }
    p.on('error', reject);
    p.on('close', (c, sig) => resolve(c ?? (sig ? 128 : 2)));
  });
  if (code !== 0 && code !== 1) throw new SetupError(`memslot-oracle ${what} exited with status ${code}`);
}

/**
 * Sequences of up to 1000 commands each (`--steps` of record); such a sequence sends about 500
 * requests (measured: 100 sequences, 49,767 to 50,555 requests depending on kernel and npt), so
 * `steps / 475` of them: at least `steps` requests (52,000 to 53,000 for 50,000).
 */
const RECORD_COMMANDS_PER_SEQUENCE = 1000;
const RECORD_REQUESTS_PER_SEQUENCE = 475;

/** `memslot-oracle record`, with about `steps` requests. */
export const recordWithOracle: Recorder = async (o) => {
  const args = [
    oracleMain(),
    'record',
    '--sut',
    o.sutFor('random'),
    '--out',
    o.out,
    '--seed',
    String(o.seed),
    '--sequences',
    String(Math.max(1, Math.ceil(o.steps / RECORD_REQUESTS_PER_SEQUENCE))),
    '--steps',
    String(RECORD_COMMANDS_PER_SEQUENCE),
    '--timeout',
    String(o.timeoutMs),
  ];
  const how = shellText(args);
  o.log(`running: ${how}`);
  await runOracle(args, 'record', o.log);
  return { how };
};

/** `memslot-oracle replay TRACE --sut CMD --record OUT` of gen-trace.ts's trace. */
export const recordByReplay: Recorder = async (o) => {
  const handpickedFile = path.join(packageRoot(), 'test', 'ground-truth', 'kernel-handpicked.jsonl');
  const trace = path.join(o.work, 'requests.jsonl');
  writeFileSync(trace, generateTrace(handpickedFile, o.seed, o.steps));
  const args = [oracleMain(), 'replay', trace, '--sut', o.sutFor('random'), '--timeout', String(o.timeoutMs), '--record', o.out];
  const how = `${shellText(args)} (TRACE: hand-picked requests, their address-space-1 twins, ${o.steps} random steps with seed ${o.seed})`;
  o.log(`running: ${how}`);
  await runOracle(args, 'replay', o.log);
  return { how };
};

/**
 * What the matrix records for each kernel: `memslot-oracle record` (about `steps` random
 * requests) into `out`, then, in a second boot, `replay --sut --record` of the
 * fill-to-the-limit sequence (fill.ts) made from the profile the kernel reported in the first,
 * into `fillOut` (a trace of its own: its first line is that profile).
 */
export const recordRandomThenFill: Recorder = async (o) => {
  o.onPhase?.('random', o.steps);
  const r = await recordWithOracle(o);
  if (o.fillOut === undefined) return r;
  const text = readFileSync(o.out, 'utf8');
  const first = text.slice(0, text.indexOf('\n'));
  const parsed = profileFromJson((JSON.parse(first) as { profile?: unknown }).profile, `${o.out} line 1`);
  if (!parsed.ok) throw new SetupError(`the recorded trace does not start with a profile line: ${parsed.error}`);
  const requests = fillRequests(parsed.profile);
  const n = requests.length;
  o.onPhase?.('fill', n);
  o.log(`sending the fill-to-the-limit sequence (${n} requests) to ${o.sutFor('fill')}`);
  await sendAndRecord(o.sutFor('fill'), requests, o.fillOut, o.timeoutMs);
  return { how: `${r.how}; then the fill-to-the-limit sequence of kernel-matrix/fill.ts for the kernel's profile, sent as is` };
};

/** What `sendAndRecord` did: requests answered, and those skipped (an op the SUT does not list), by op. */
export interface SendResult {
  readonly answered: number;
  readonly skipped: ReadonlyMap<string, number>;
}

/**
 * Sends `requests` to the SUT as they are and writes its answers as a trace: the profile line
 * of its hello, then each request with the SUT's answer as `expect`. No model runs alongside
 * (the matrix replays the trace afterwards): replay --sut --record would run the model in
 * lockstep, and a fill of 32,764 slots in both address spaces costs it minutes. `requests` may
 * be a function of the profile the SUT declares (the memory-API scenario needs its max gfn). A
 * request the SUT cannot be asked (an op it does not list, a typed reset without
 * `reset_vm_type`) is skipped, and counted in the result.
 */
export async function sendAndRecord(
  sutCmd: string,
  requests: readonly Request[] | ((p: Profile) => readonly Request[]),
  out: string,
  timeoutMs: number,
  need: readonly Op[] = [],
): Promise<SendResult> {
  // Written as it goes: a guest that dies midway leaves every answer it gave.
  writeFileSync(out, '');
  const sut = await SutClient.start(sutCmd, { timeoutMs });
  let pending: string[] = [];
  const flush = (): void => {
    if (pending.length > 0) appendFileSync(out, `${pending.join('\n')}\n`);
    pending = [];
  };
  const skipped = new Map<string, number>();
  let answered = 0;
  try {
    if (sut.hello.profile === null) throw new SetupError(`${sut.description} declares no profile in its hello`);
    const missing = need.filter((op) => !sut.supports(op));
    if (missing.length > 0) throw new SetupError(`${sut.description} does not list ${missing.join(', ')} in its hello (the driver says why on stderr)`);
    pending.push(formatProfileLine(sut.hello.profile));
    for (const r of typeof requests === 'function' ? requests(sut.hello.profile) : requests) {
      if (!sut.supportsRequest(r)) {
        const what = r.op === 'reset' ? 'reset_vm_type' : r.op;
        skipped.set(what, (skipped.get(what) ?? 0) + 1);
        continue;
      }
      pending.push(formatTraceLine(r, await sut.request(r)));
      answered++;
      if (pending.length >= 1000) flush();
    }
  } finally {
    flush();
    await sut.close();
  }
  return { answered, skipped };
}

/** The ops the dirty-bits scenario (dirty.ts) needs: a SUT without them cannot record it. */
export const DIRTY_OPS: readonly string[] = ['write', 'get_dirty_log', 'clear_dirty_log', 'enable_cap'];

/** The seed and length of the random dirty-bits part (dirty.ts dirtyRandomRequests). */
export const DIRTY_RANDOM_SEED = 1;
export const DIRTY_RANDOM_STEPS = 500;

/**
 * Sends raw protocol requests and writes the answers as a trace (the profile line of the
 * hello as the SUT wrote it, then each request with its answer as `expect`), written as it
 * goes. Raw, through ChildSut rather than SutClient: the requests go as the scenario wrote them
 * (the ring ops to a kernel whose hello does not list them, 5.10), whatever the trace layer
 * knows, and the answers are recorded as the SUT wrote them.
 */
async function sendRaw(child: ChildSut, profile: unknown, requests: readonly RawRequest[], out: string): Promise<number> {
  writeFileSync(out, `${JSON.stringify({ profile })}\n`);
  let pending: string[] = [];
  const flush = (): void => {
    if (pending.length > 0) appendFileSync(out, `${pending.join('\n')}\n`);
    pending = [];
  };
  try {
    for (const r of requests) {
      const reply = await child.request(r);
      const v = reply.value as Record<string, unknown>;
      if (Object.hasOwn(v, 'error')) throw new SetupError(`the SUT answered ${reply.line} to ${JSON.stringify(r)}`);
      pending.push(JSON.stringify({ ...r, expect: v }));
      if (pending.length >= 200) flush();
    }
  } finally {
    flush();
  }
  return requests.length;
}

/**
 * Records the dirty-bits scenario (dirty.ts: the bitmap part, then the ring part, made from the
 * SUT's own hello profile) into `out`, and in the same boot the random dirty-bits sequence into
 * `randomOut`.
 */
export async function recordDirty(sutCmd: string, out: string, timeoutMs: number, randomOut?: string): Promise<void> {
  const child = await ChildSut.start(splitCommand(sutCmd), { timeoutMs });
  try {
    const hello = (await child.requestLine(JSON.stringify({ op: 'hello', protocol: 1 }), Math.max(timeoutMs, 120_000))).value as {
      ops?: unknown;
      profile?: unknown;
      name?: unknown;
    };
    const ops = Array.isArray(hello.ops) ? (hello.ops as string[]) : [];
    const missing = DIRTY_OPS.filter((op) => !ops.includes(op));
    if (missing.length > 0) throw new SetupError(`${sutCmd} does not list ${missing.join(', ')} in its hello (the driver says why on stderr)`);
    const parsed = profileFromJson(hello.profile, `${String(hello.name)} (declared)`);
    if (!parsed.ok) throw new SetupError(`the SUT's hello profile is not valid: ${parsed.error}`);
    await sendRaw(child, hello.profile, dirtyRawRequests(parsed.profile), out);
    if (randomOut !== undefined) await sendRaw(child, hello.profile, dirtyRandomRequests(parsed.profile, DIRTY_RANDOM_SEED, DIRTY_RANDOM_STEPS), randomOut);
  } catch (e) {
    const tail = child.stderrTail() === '' ? '' : `\nSUT stderr (end):\n${child.stderrTail()}`;
    if (e instanceof SetupError) throw new SetupError(`${e.message}${tail}`);
    throw e instanceof Error ? new Error(`${e.message}${tail}`) : e;
  } finally {
    await child.close();
  }
}
