/**
 * The oracle's side of the SUT protocol (spec/80-protocol.md): start a SUT, say hello, send
 * requests and check that every answer is a valid answer to that request. A SUT that breaks
 * the protocol raises SutError; it never becomes a conformance verdict.
 */
import { profileDiff, profileFromJson, type Profile } from '../model/profiles.js';
import { InputError, OPS, REQUIRED_OPS, RESET_VM_TYPE, parseAnswer, quote, requestText, type Answer, type Op, type Request } from '../trace/trace.js';
import { ChildSut, SutError, splitCommand } from './child.js';
import { kvmDriverPath } from './kvm-driver.js';

export const PROTOCOL_VERSION = 1;
/** The least time a SUT gets to answer hello, whatever --timeout says. */
export const HELLO_TIMEOUT_MS = 60_000;

export interface Hello {
  readonly name: string;
  readonly profile: Profile | null;
  readonly ops: ReadonlySet<Op>;
  /** The SUT listed `reset_vm_type`: its reset takes `vm_type` (spec/80). */
  readonly resetVmType: boolean;
}

export interface SutOptions {
  readonly timeoutMs?: number;
}

export class SutClient {
  private constructor(
    private readonly child: ChildSut,
    readonly hello: Hello,
    readonly description: string,
  ) {}

  /** Starts `kvm` (the bundled /dev/kvm driver) or a command line, and says hello. */
  static async start(sut: string, opts: SutOptions = {}): Promise<SutClient> {
    const command = sut === 'kvm' ? [await kvmDriverPath()] : splitCommand(sut);
    if (command.length === 0) throw new SutError('--sut is empty', 'setup');
    const child = await ChildSut.start(command, opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs });
    try {
      // A SUT may need time to start (a kernel booting under QEMU): hello gets at least HELLO_TIMEOUT_MS.
      const reply = await child.requestLine(JSON.stringify({ op: 'hello', protocol: PROTOCOL_VERSION }), Math.max(opts.timeoutMs ?? 0, HELLO_TIMEOUT_MS));
      const hello = parseHello(reply.value, reply.line);
      return new SutClient(child, hello, sut === 'kvm' ? `kvm (${hello.name})` : `${sut} (${hello.name})`);
    } catch (e) {
      await child.close();
      throw withStderr(e, child);
    }
  }

  supports(op: Op): boolean {
    return this.hello.ops.has(op);
  }

  /** Whether a `reset` with `vm_type` may be sent. */
  get supportsResetVmType(): boolean {
    return this.hello.resetVmType;
  }

  /** Whether the SUT can be asked `r` (an op it lists; a typed reset only if it lists reset_vm_type). */
  supportsRequest(r: Request): boolean {
    return r.op === 'reset' && r.vmType !== undefined ? this.hello.resetVmType : this.supports(r.op);
  }

  /** Sends one request and returns the SUT's answer, checked against the request's op. */
  async request(r: Request): Promise<Answer> {
    const text = requestText(r);
    let reply;
    try {
      reply = await this.child.requestLine(text);
    } catch (e) {
      throw withStderr(e, this.child);
    }
    const v = reply.value as Record<string, unknown>;
    if (Object.hasOwn(v, 'error')) {
      throw new SutError(`the SUT refused ${quote(text)}: ${JSON.stringify(v['error'])}`, 'protocol');
    }
    try {
      const a = parseAnswer(r, v, 0, 'sut');
      // A SUT that runs guest writes knows its bits, and must say them (spec/80).
      if (r.op === 'get_dirty_log' && a.kind === 'ret' && a.bitmap === undefined && this.supports('write')) {
        throw new SutError(`the SUT lists "write" but answered ${quote(reply.line)} to ${quote(text)} without "bitmap"`, 'protocol');
      }
      return a;
    } catch (e) {
      if (e instanceof InputError) {
        throw new SutError(
          `the SUT's answer ${quote(reply.line)} to ${quote(text)} is not valid: ${e.message.replace(/^sut line 0(, )?(: )?/, '')}`,
          'protocol',
        );
      }
      throw e;
    }
  }

  /**
   * The profile to model this SUT with: the one it declares, or `explicit` (an error names the
   * first field where an explicit profile and a declared one differ).
   */
  resolveProfile(explicit: Profile | null, fallback: Profile): Profile {
    const declared = this.hello.profile;
    if (declared !== null && explicit !== null) {
      // write_drops_mappings is a fact of the SUT's vCPU, not of the kernel a profile names: the SUT's word is taken.
      explicit = { ...explicit, writeDropsMappings: declared.writeDropsMappings };
      const d = profileDiff(declared, explicit);
      if (d !== null) {
        throw new SutError(
          `--profile ${explicit.name} disagrees with the profile the SUT declares: field "${d.field}" is ${JSON.stringify(d.b)} in --profile but ${JSON.stringify(d.a)} in the SUT's hello`,
          'setup',
        );
      }
    }
    return explicit ?? declared ?? fallback;
  }

  stderrTail(): string {
    return this.child.stderrTail();
  }

  close(): Promise<void> {
    return this.child.close();
  }
}

function withStderr(e: unknown, child: ChildSut): unknown {
  if (e instanceof SutError && e.kind !== 'crash') {
    const tail = child.stderrTail().trim();
    if (tail !== '') return new SutError(`${e.message}\nSUT stderr (last lines):\n${tail.split('\n').slice(-10).join('\n')}`, e.kind);
  }
  return e;
}

/** A SUT's hello answer line, checked as the client checks it (SutError 'protocol' when it is not valid). */
export function parseHelloLine(line: string): Hello {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new SutError(`the SUT's hello answer ${quote(line)} is not JSON`, 'protocol');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new SutError(`the SUT's hello answer ${quote(line)} is not a JSON object`, 'protocol');
  return parseHello(v, line);
}

function parseHello(value: unknown, line: string): Hello {
  const bad = (why: string): SutError => new SutError(`the SUT's hello answer ${quote(line)} is not valid: ${why}`, 'protocol');
  const v = value as Record<string, unknown>;
  if (Object.hasOwn(v, 'error')) throw bad(`it refused hello: ${JSON.stringify(v['error'])}`);
  if (v['protocol'] !== PROTOCOL_VERSION) throw bad(`field "protocol" must be ${PROTOCOL_VERSION}`);
  if (typeof v['name'] !== 'string' || v['name'] === '') throw bad('field "name" must be a non-empty string');
  const opsField = v['ops'];
  if (!Array.isArray(opsField) || !opsField.every((o) => typeof o === 'string')) throw bad('field "ops" must be an array of op names');
  const ops = new Set<Op>();
  let resetVmType = false;
  for (const o of opsField as string[]) {
    if (o === RESET_VM_TYPE) {
      resetVmType = true;
      continue;
    }
    if (o === 'hello') continue;
    if (!(OPS as readonly string[]).includes(o)) throw bad(`field "ops" names an unknown op ${JSON.stringify(o)}`);
    ops.add(o as Op);
  }
  for (const o of REQUIRED_OPS) if (!ops.has(o)) throw bad(`field "ops" must list "${o}"`);
  let profile: Profile | null = null;
  if (Object.hasOwn(v, 'profile')) {
    const p = profileFromJson(v['profile'], `${String(v['name'])} (declared)`);
    if (!p.ok) throw bad(`field "profile": ${p.error}`);
    profile = p.profile;
  }
  for (const key of Object.keys(v)) {
    if (!['protocol', 'name', 'ops', 'profile'].includes(key)) throw bad(`unknown field "${key}"`);
  }
  return { name: v['name'], profile, ops, resetVmType };
}
