/**
 * The trace format and the SUT protocol's messages (spec/70-traces.md, spec/80-protocol.md).
 *
 * A trace is JSON Lines: each line is a request of the SUT protocol, optionally with the
 * answer expected for it under `expect`, or a `{"profile": ...}` line. Parsing is strict:
 * any defect is reported with its line number and field, never guessed around.
 */
import { match } from 'ts-pattern';
import { isErrno, type GmemRef } from '../model/types.js';
import { parseU64, profileFromJson, profileToJson, type Profile } from '../model/profiles.js';
import { CAP_NAMES, type CapName } from '../model/capabilities.js';
import type { EnableCapName } from '../model/dirty-log.js';
import { canonicalBitmap, canonicalTraceLine, canonicalTraceLineAt } from './canonical-line.js';
import { segmentLines } from './lines.js';
import { ENABLE_CAP_NAMES, OPS, type Answer, type Request, type TraceLine } from './types.js';

// The vocabulary lives in types.ts (which canonical-line.ts shares); its users import it from here.
export * from './types.js';

/** A defect in the input, with where it is. */
export class InputError extends Error {
  constructor(
    readonly line: number,
    readonly field: string | null,
    message: string,
    readonly source = 'trace',
  ) {
    super(`${source} line ${line}${field === null ? '' : `, field "${field}"`}: ${message}`);
    this.name = 'InputError';
  }
}

type Obj = Record<string, unknown>;

class Fields {
  constructor(
    readonly obj: Obj,
    readonly line: number,
    readonly source: string,
    readonly prefix = '',
  ) {}
  private err(field: string, msg: string): InputError {
    return new InputError(this.line, this.prefix + field, msg, this.source);
  }
  has(field: string): boolean {
    return Object.hasOwn(this.obj, field);
  }
  u32(field: string, max = 0xffff_ffff): number {
    if (!this.has(field)) throw this.err(field, 'missing');
    const v = this.obj[field];
    if (typeof v === 'string') throw this.err(field, `must be a JSON number, not a string (${JSON.stringify(v)})`);
    if (typeof v !== 'number' || !Number.isInteger(v)) throw this.err(field, `must be an integer, got ${JSON.stringify(v)}`);
    if (v < 0 || v > max) throw this.err(field, `must be from 0 to ${max}, got ${v}`);
    return v;
  }
  u64(field: string): bigint {
    if (!this.has(field)) throw this.err(field, 'missing');
    const v = this.obj[field];
    if (typeof v === 'number') throw this.err(field, `is a u64: write it as a string ("0x..."), not the JSON number ${v}`);
    if (typeof v !== 'string') throw this.err(field, `must be a u64 string, got ${JSON.stringify(v)}`);
    const parsed = shortHexU64(v) ?? parseU64(v);
    if (parsed === null) throw this.err(field, `must be a u64 as "0x..." hex or decimal, from 0 to 2^64-1, got ${JSON.stringify(v)}`);
    return parsed;
  }
  /** `guest_memfd` of a v2 request: a handle (u32) or one of the fd kinds of spec/80. */
  gmemRef(field: string): GmemRef {
    const v = this.obj[field];
    if (v === 'other_vm' || v === 'memfd' || v === 'closed') return v;
    if (typeof v === 'string') throw this.err(field, `must be a handle (a JSON number) or "other_vm", "memfd", "closed", got ${JSON.stringify(v)}`);
    return this.u32(field);
  }
  /** A bitmap: lowercase or uppercase hex digits, an even number of them (bytes in memory order). */
  hexBytes(field: string): string {
    if (!this.has(field)) throw this.err(field, 'missing');
    const v = this.obj[field];
    if (typeof v !== 'string' || v.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(v))
      throw this.err(field, `must be a string of hex byte pairs, got ${JSON.stringify(v)}`);
    return v.toLowerCase();
  }
  /** Refuses any key that is not in `allowed`, in `extra` or `also`. */
  only(allowed: readonly string[], extra: readonly string[] = [], also?: string): void {
    for (const key of Object.keys(this.obj)) {
      if (key !== also && !allowed.includes(key) && !extra.includes(key)) throw this.err(key, 'unknown field');
    }
  }
}

/**
 * The common u64 of a trace, "0x" and 1 to 13 hex digits (below 2^52, so exact as a double),
 * read without parseU64()'s regular expression and BigInt's string parser, which took a third of
 * a replay's parsing (--cpu-prof); null for anything else, which parseU64() then decides.
 */
export function shortHexU64(s: string): bigint | null {
  const n = s.length;
  if (n < 3 || n > 15 || s.charCodeAt(0) !== 0x30 || s.charCodeAt(1) !== 0x78) return null;
  let v = 0;
  for (let i = 2; i < n; i++) {
    const c = s.charCodeAt(i);
    const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
    if (d < 0) return null;
    v = v * 16 + d;
  }
  return BigInt(v);
}

function parseJsonObject(text: string, line: number, source: string): Obj {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new InputError(line, null, `not valid JSON (${(e as Error).message}): ${quote(text)}`, source);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new InputError(line, null, `must be a JSON object: ${quote(text)}`, source);
  }
  return v as Obj;
}

/** A line quoted for an error message, cut to a readable length. */
export function quote(text: string, max = 200): string {
  const t = text.length > max ? `${text.slice(0, max)}...` : text;
  return JSON.stringify(t);
}

/** Parses one request object (without `expect`). */
export function parseRequest(f: Fields, extra: readonly string[] = []): Request {
  const op = f.obj['op'];
  if (typeof op !== 'string') throw new InputError(f.line, 'op', op === undefined ? 'missing' : 'must be a string', f.source);
  // No list spread per line: building ['op', ...fields, ...extra] was a tenth of a replay's parsing.
  const allow = (...fields: string[]): void => f.only(fields, extra, 'op');
  switch (op) {
    case 'reset':
      allow('vm_type');
      return f.has('vm_type') ? { op, vmType: f.u32('vm_type') } : { op };
    case 'set_user_memory_region2': {
      allow('slot', 'flags', 'guest_phys_addr', 'memory_size', 'userspace_addr', 'guest_memfd_offset', 'guest_memfd');
      const flags = f.u32('flags');
      // With KVM_MEM_GUEST_MEMFD the kernel reads both fields, so the trace must say them (spec/80).
      const needed = (flags & 4) !== 0;
      return {
        op,
        region: {
          slot: f.u32('slot'),
          flags,
          guestPhysAddr: f.u64('guest_phys_addr'),
          memorySize: f.u64('memory_size'),
          userspaceAddr: f.u64('userspace_addr'),
          guestMemfdOffset: needed || f.has('guest_memfd_offset') ? f.u64('guest_memfd_offset') : 0n,
          guestMemfd: needed || f.has('guest_memfd') ? f.gmemRef('guest_memfd') : 'closed',
        },
      };
    }
    case 'create_guest_memfd':
      allow('size', 'flags');
      return { op, size: f.u64('size'), flags: f.u64('flags') };
    case 'set_memory_attributes':
      allow('address', 'size', 'attributes', 'flags');
      return { op, address: f.u64('address'), size: f.u64('size'), attributes: f.u64('attributes'), flags: f.u64('flags') };
    case 'clear_dirty_log': {
      allow('slot', 'first_page', 'num_pages', 'bitmap');
      const numPages = f.u32('num_pages');
      const bitmap = f.hexBytes('bitmap');
      // The kernel copies ALIGN(num_pages, 64) / 8 bytes: a longer buffer says something the call does not.
      if (bitmap.length / 2 > Math.ceil(numPages / 64) * 8) {
        throw new InputError(
          f.line,
          'bitmap',
          `holds ${bitmap.length / 2} bytes, more than the ${Math.ceil(numPages / 64) * 8} the kernel reads for num_pages ${numPages}`,
          f.source,
        );
      }
      return { op, clear: { slot: f.u32('slot'), firstPage: f.u64('first_page'), numPages, bitmap } };
    }
    case 'enable_cap': {
      allow('cap', 'args0', 'flags');
      const cap = f.obj['cap'];
      if (!(ENABLE_CAP_NAMES as readonly unknown[]).includes(cap))
        throw new InputError(f.line, 'cap', `must be one of ${ENABLE_CAP_NAMES.map((c) => `"${c}"`).join(', ')}, got ${JSON.stringify(cap)}`, f.source);
      return { op, cap: cap as EnableCapName, args0: f.u64('args0'), flags: f.u32('flags') };
    }
    case 'harvest_dirty_ring':
    case 'reset_dirty_rings':
      allow();
      return { op };
    case 'write':
      allow('as_id', 'gpa');
      return { op, asId: f.u32('as_id', 0xffff), gpa: f.u64('gpa') };
    case 'check_extension': {
      allow('cap', 'fd');
      const cap = f.obj['cap'];
      if (!f.has('cap')) throw new InputError(f.line, 'cap', 'missing', f.source);
      if (typeof cap !== 'string' || !(CAP_NAMES as readonly string[]).includes(cap)) {
        throw new InputError(f.line, 'cap', `must be one of ${CAP_NAMES.join(', ')}, got ${JSON.stringify(cap)}`, f.source);
      }
      const fd = f.obj['fd'];
      if (fd !== 'vm' && fd !== 'system') throw new InputError(f.line, 'fd', `must be "vm" or "system", got ${JSON.stringify(fd)}`, f.source);
      return { op, cap: cap as CapName, fd };
    }
    case 'set_user_memory_region':
      allow('slot', 'flags', 'guest_phys_addr', 'memory_size', 'userspace_addr');
      return {
        op,
        region: {
          slot: f.u32('slot'),
          flags: f.u32('flags'),
          guestPhysAddr: f.u64('guest_phys_addr'),
          memorySize: f.u64('memory_size'),
          userspaceAddr: f.u64('userspace_addr'),
        },
      };
    case 'get_dirty_log':
      allow('slot');
      return { op, slot: f.u32('slot') };
    case 'set_internal_memslot':
      allow('id', 'guest_phys_addr', 'memory_size', 'userspace_addr');
      return { op, id: f.u32('id', 0xffff), guestPhysAddr: f.u64('guest_phys_addr'), memorySize: f.u64('memory_size'), userspaceAddr: f.u64('userspace_addr') };
    case 'get_slots':
      allow('as_id');
      return { op, asId: f.u32('as_id', 0xffff) };
    case 'get_generation':
      allow('as_id');
      return { op, asId: f.u32('as_id', 0xffff) };
    case 'gfn_to_memslot':
      allow('as_id', 'gfn');
      return { op, asId: f.u32('as_id', 0xffff), gfn: f.u64('gfn') };
    case 'hva_to_memslots':
      allow('start', 'end');
      return { op, start: f.u64('start'), end: f.u64('end') };
    default:
      throw new InputError(f.line, 'op', `unknown op ${JSON.stringify(op)} (known: ${OPS.join(', ')})`, f.source);
  }
}

/**
 * Parses the answer to `request` from its JSON object. `field` is where it sits (`expect`, or
 * the SUT's reply line). Throws InputError when the answer does not fit the op.
 */
export function parseAnswer(request: Request, obj: unknown, line: number, source: string, field = ''): Answer {
  const at = field === '' ? null : field;
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw new InputError(line, at, `the answer must be a JSON object, got ${JSON.stringify(obj)}`, source);
  }
  const f = new Fields(obj as Obj, line, source, field === '' ? '' : `${field}.`);
  const keys = Object.keys(obj);
  const one = (name: string): boolean => keys.length === 1 && keys[0] === name;
  const shape = (want: string): InputError =>
    new InputError(line, at, `the answer to ${request.op} must be ${want}, got ${quote(JSON.stringify(obj))}`, source);
  const errnoAnswer = (): Answer | null => {
    if (!one('errno')) return null;
    const e = (obj as Obj)['errno'];
    if (!isErrno(e)) {
      throw new InputError(
        line,
        `${field === '' ? '' : `${field}.`}errno`,
        `${JSON.stringify(e)} is not an errno name of Linux's uapi (asm-generic/errno-base.h, errno.h)`,
        source,
      );
    }
    return { kind: 'errno', errno: e };
  };
  // A switch rather than ts-pattern: this runs for every trace line (replay's hot path).
  switch (request.op) {
    case 'reset': {
      if (one('ok') && (obj as Obj)['ok'] === true) return { kind: 'ok' };
      // Only a typed reset can fail ([MS-VM-01]).
      const e = request.vmType !== undefined ? errnoAnswer() : null;
      if (e !== null) return e;
      throw shape(request.vmType !== undefined ? '{"ok":true} or {"errno":"NAME"}' : '{"ok":true}');
    }
    case 'check_extension': {
      const v = (obj as Obj)['value'];
      if (!one('value') || typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0x7fff_ffff) {
        throw shape('{"value":N} (N a non-negative int)');
      }
      return { kind: 'value', value: v };
    }
    case 'write': {
      if (one('exit') && (obj as Obj)['exit'] === 'mmio') return { kind: 'mmio' };
      if (one('exit') && (obj as Obj)['exit'] === 'dirty_ring_full') return { kind: 'dirty_ring_full' };
      if (one('ret') && (obj as Obj)['ret'] === 0) return { kind: 'ret' };
      throw shape('{"ret":0}, {"exit":"mmio"} or {"exit":"dirty_ring_full"}');
    }
    case 'harvest_dirty_ring': {
      if (!one('entries') || !Array.isArray((obj as Obj)['entries'])) throw shape('{"entries":[...]}');
      const entries = ((obj as Obj)['entries'] as unknown[]).map((e, i) => {
        const name = `${field === '' ? '' : `${field}.`}entries[${i}]`;
        if (typeof e !== 'object' || e === null || Array.isArray(e)) throw new InputError(line, name, 'must be an object', source);
        const g = new Fields(e as Obj, line, source, `${name}.`);
        g.only(['slot', 'offset']);
        return { slot: g.u32('slot'), offset: g.u64('offset') };
      });
      return { kind: 'entries', entries };
    }
    case 'reset_dirty_rings': {
      const v = (obj as Obj)['ret'];
      if (one('ret')) {
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0x7fff_ffff)
          throw new InputError(
            line,
            `${field === '' ? '' : `${field}.`}ret`,
            `must be a non-negative int (the entries reset), got ${JSON.stringify(v)}`,
            source,
          );
        return { kind: 'count', count: v };
      }
      const e = errnoAnswer();
      if (e !== null) return e;
      throw shape('{"ret":N} or {"errno":"NAME"}');
    }
    case 'get_dirty_log': {
      if (keys.length === 2 && Object.hasOwn(obj, 'ret') && Object.hasOwn(obj, 'bitmap')) {
        if ((obj as Obj)['ret'] !== 0) throw new InputError(line, `${field === '' ? '' : `${field}.`}ret`, 'must be 0 (failures are {"errno":"NAME"})', source);
        return { kind: 'ret', bitmap: canonicalBitmap(f.hexBytes('bitmap')) };
      }
      if (one('ret')) {
        if ((obj as Obj)['ret'] !== 0) throw new InputError(line, `${field === '' ? '' : `${field}.`}ret`, 'must be 0 (failures are {"errno":"NAME"})', source);
        return { kind: 'ret' };
      }
      const e = errnoAnswer();
      if (e !== null) return e;
      throw shape('{"ret":0}, {"ret":0,"bitmap":"HEX"} or {"errno":"NAME"}');
    }
    case 'set_user_memory_region':
    case 'set_user_memory_region2':
    case 'create_guest_memfd':
    case 'set_memory_attributes':
    case 'clear_dirty_log':
    case 'enable_cap':
    case 'set_internal_memslot': {
      if (one('ret')) {
        if ((obj as Obj)['ret'] !== 0) throw new InputError(line, `${field === '' ? '' : `${field}.`}ret`, 'must be 0 (failures are {"errno":"NAME"})', source);
        return { kind: 'ret' };
      }
      const e = errnoAnswer();
      if (e !== null) return e;
      throw shape('{"ret":0} or {"errno":"NAME"}');
    }
    case 'get_slots': {
      if (!one('slots') || !Array.isArray((obj as Obj)['slots'])) throw shape('{"slots":[...]}');
      const slots = ((obj as Obj)['slots'] as unknown[]).map((s, i) => {
        const name = `${field === '' ? '' : `${field}.`}slots[${i}]`;
        if (typeof s !== 'object' || s === null || Array.isArray(s)) throw new InputError(line, name, 'must be an object', source);
        const g = new Fields(s as Obj, line, source, `${name}.`);
        g.only(['slot', 'flags', 'guest_phys_addr', 'memory_size', 'userspace_addr']);
        return {
          slot: g.u32('slot'),
          flags: g.u32('flags'),
          guestPhysAddr: g.u64('guest_phys_addr'),
          memorySize: g.u64('memory_size'),
          userspaceAddr: g.u64('userspace_addr'),
        };
      });
      return { kind: 'slots', slots };
    }
    case 'get_generation': {
      if (!one('generation')) throw shape('{"generation":"0x..."}');
      return { kind: 'generation', generation: f.u64('generation') };
    }
    case 'gfn_to_memslot': {
      if (!one('slot')) throw shape('{"slot":N} or {"slot":null}');
      return { kind: 'slot', slot: (obj as Obj)['slot'] === null ? null : f.u32('slot') };
    }
    case 'hva_to_memslots': {
      if (!one('slots') || !Array.isArray((obj as Obj)['slots'])) throw shape('{"slots":[...]}');
      const hits = ((obj as Obj)['slots'] as unknown[]).map((s, i) => {
        const name = `${field === '' ? '' : `${field}.`}slots[${i}]`;
        if (typeof s !== 'object' || s === null || Array.isArray(s)) throw new InputError(line, name, 'must be an object', source);
        const g = new Fields(s as Obj, line, source, `${name}.`);
        g.only(['slot', 'gfn_start', 'gfn_end']);
        return { slot: g.u32('slot'), gfnStart: g.u64('gfn_start'), gfnEnd: g.u64('gfn_end') };
      });
      return { kind: 'hva_hits', hits };
    }
  }
}

/** Parses one line of a trace. Returns null for a blank line. */
export function parseTraceLine(text: string, line: number, source = 'trace'): TraceLine | null {
  // A line in formatTraceLine()'s exact form is read in one pass (canonical-line.ts); any other
  // line, and every defect, is left to the strict parser.
  return canonicalTraceLine(text, line) ?? strictTraceLine(text, line, source);
}

/** parseTraceLine() without its fast path: JSON.parse() and every field checked. */
export function strictTraceLine(text: string, line: number, source = 'trace'): TraceLine | null {
  if (text.trim() === '') return null;
  const obj = parseJsonObject(text, line, source);
  if (Object.hasOwn(obj, 'profile')) {
    const extra = Object.keys(obj).find((k) => k !== 'profile');
    if (extra !== undefined) throw new InputError(line, extra, 'a profile line holds only "profile"', source);
    const p = profileFromJson(obj['profile'], `line ${line}`);
    if (!p.ok) throw new InputError(line, 'profile', p.error, source);
    return { kind: 'profile', line, profile: p.profile };
  }
  const f = new Fields(obj, line, source);
  const request = parseRequest(f, ['expect']);
  if (!Object.hasOwn(obj, 'expect')) return { kind: 'request', line, request };
  return { kind: 'request', line, request, expect: parseAnswer(request, obj['expect'], line, source, 'expect') };
}

const h = (v: bigint): string => `0x${v.toString(16)}`;

/** The request as a JSON object of the protocol (u64 fields as 0x-hex strings). */
export function requestToJson(r: Request): Obj {
  return match(r)
    .with({ op: 'reset' }, ({ vmType }) => (vmType === undefined ? { op: 'reset' } : { op: 'reset', vm_type: vmType }))
    .with({ op: 'set_user_memory_region2' }, ({ region: m }) => ({
      op: 'set_user_memory_region2',
      slot: m.slot,
      flags: m.flags,
      guest_phys_addr: h(m.guestPhysAddr),
      memory_size: h(m.memorySize),
      userspace_addr: h(m.userspaceAddr),
      guest_memfd_offset: h(m.guestMemfdOffset),
      guest_memfd: m.guestMemfd,
    }))
    .with({ op: 'create_guest_memfd' }, ({ size, flags }) => ({ op: 'create_guest_memfd', size: h(size), flags: h(flags) }))
    .with({ op: 'set_memory_attributes' }, (x) => ({
      op: 'set_memory_attributes',
      address: h(x.address),
      size: h(x.size),
      attributes: h(x.attributes),
      flags: h(x.flags),
    }))
    .with({ op: 'check_extension' }, ({ cap, fd }) => ({ op: 'check_extension', cap, fd }))
    .with({ op: 'clear_dirty_log' }, ({ clear: c }) => ({
      op: 'clear_dirty_log',
      slot: c.slot,
      first_page: h(c.firstPage),
      num_pages: c.numPages,
      bitmap: c.bitmap,
    }))
    .with({ op: 'enable_cap' }, ({ cap, args0, flags }) => ({ op: 'enable_cap', cap, args0: h(args0), flags }))
    .with({ op: 'write' }, ({ asId, gpa }) => ({ op: 'write', as_id: asId, gpa: h(gpa) }))
    .with({ op: 'harvest_dirty_ring' }, () => ({ op: 'harvest_dirty_ring' }))
    .with({ op: 'reset_dirty_rings' }, () => ({ op: 'reset_dirty_rings' }))
    .with({ op: 'set_user_memory_region' }, ({ region: m }) => ({
      op: 'set_user_memory_region',
      slot: m.slot,
      flags: m.flags,
      guest_phys_addr: h(m.guestPhysAddr),
      memory_size: h(m.memorySize),
      userspace_addr: h(m.userspaceAddr),
    }))
    .with({ op: 'get_dirty_log' }, ({ slot }) => ({ op: 'get_dirty_log', slot }))
    .with({ op: 'set_internal_memslot' }, (x) => ({
      op: 'set_internal_memslot',
      id: x.id,
      guest_phys_addr: h(x.guestPhysAddr),
      memory_size: h(x.memorySize),
      userspace_addr: h(x.userspaceAddr),
    }))
    .with({ op: 'get_slots' }, ({ asId }) => ({ op: 'get_slots', as_id: asId }))
    .with({ op: 'get_generation' }, ({ asId }) => ({ op: 'get_generation', as_id: asId }))
    .with({ op: 'gfn_to_memslot' }, ({ asId, gfn }) => ({ op: 'gfn_to_memslot', as_id: asId, gfn: h(gfn) }))
    .with({ op: 'hva_to_memslots' }, ({ start, end }) => ({ op: 'hva_to_memslots', start: h(start), end: h(end) }))
    .exhaustive();
}

/** The answer as a JSON object of the protocol. */
export function answerToJson(a: Answer): Obj {
  return match(a)
    .with({ kind: 'ok' }, () => ({ ok: true }))
    .with({ kind: 'ret' }, ({ bitmap }) => (bitmap === undefined ? { ret: 0 } : { ret: 0, bitmap }))
    .with({ kind: 'mmio' }, () => ({ exit: 'mmio' }))
    .with({ kind: 'dirty_ring_full' }, () => ({ exit: 'dirty_ring_full' }))
    .with({ kind: 'entries' }, ({ entries }) => ({ entries: entries.map((e) => ({ slot: e.slot, offset: h(e.offset) })) }))
    .with({ kind: 'count' }, ({ count }) => ({ ret: count }))
    .with({ kind: 'errno' }, ({ errno }) => ({ errno }))
    .with({ kind: 'slots' }, ({ slots }) => ({
      slots: slots.map((s) => ({
        slot: s.slot,
        flags: s.flags,
        guest_phys_addr: h(s.guestPhysAddr),
        memory_size: h(s.memorySize),
        userspace_addr: h(s.userspaceAddr),
      })),
    }))
    .with({ kind: 'generation' }, ({ generation }) => ({ generation: h(generation) }))
    .with({ kind: 'slot' }, ({ slot }) => ({ slot }))
    .with({ kind: 'hva_hits' }, ({ hits }) => ({ slots: hits.map((x) => ({ slot: x.slot, gfn_start: h(x.gfnStart), gfn_end: h(x.gfnEnd) })) }))
    .with({ kind: 'value' }, ({ value }) => ({ value }))
    .exhaustive();
}

/**
 * Whether two answers are the same (as their answerText() would be), field by field: this runs
 * for every replayed line, where building both texts cost a third of the replay (--cpu-prof).
 */
export function answersEqual(a: Answer, b: Answer): boolean {
  switch (a.kind) {
    case 'ok':
    case 'mmio':
    case 'dirty_ring_full':
      return b.kind === a.kind;
    case 'count':
      return b.kind === 'count' && a.count === b.count;
    case 'entries':
      return (
        b.kind === 'entries' &&
        a.entries.length === b.entries.length &&
        a.entries.every((x, i) => x.slot === b.entries[i]!.slot && x.offset === b.entries[i]!.offset)
      );
    case 'ret':
      // A bitmap is compared where both answers carry one (an older trace records none).
      return b.kind === 'ret' && (a.bitmap === undefined || b.bitmap === undefined || a.bitmap === b.bitmap);
    case 'errno':
      return b.kind === 'errno' && a.errno === b.errno;
    case 'generation':
      return b.kind === 'generation' && a.generation === b.generation;
    case 'slot':
      return b.kind === 'slot' && a.slot === b.slot;
    case 'value':
      return b.kind === 'value' && a.value === b.value;
    case 'slots':
      return (
        b.kind === 'slots' &&
        a.slots.length === b.slots.length &&
        a.slots.every((x, i) => {
          const y = b.slots[i]!;
          return (
            x.slot === y.slot &&
            x.flags === y.flags &&
            x.guestPhysAddr === y.guestPhysAddr &&
            x.memorySize === y.memorySize &&
            x.userspaceAddr === y.userspaceAddr
          );
        })
      );
    case 'hva_hits':
      return (
        b.kind === 'hva_hits' &&
        a.hits.length === b.hits.length &&
        a.hits.every((x, i) => {
          const y = b.hits[i]!;
          return x.slot === y.slot && x.gfnStart === y.gfnStart && x.gfnEnd === y.gfnEnd;
        })
      );
  }
}

/** The answer in its canonical one-line form: equal answers give equal strings. */
export function answerText(a: Answer): string {
  return JSON.stringify(answerToJson(a));
}

export function requestText(r: Request): string {
  return JSON.stringify(requestToJson(r));
}

/** One trace line for a request, with `expect` when given. */
export function formatTraceLine(r: Request, expect?: Answer): string {
  const obj = requestToJson(r);
  if (expect !== undefined) obj['expect'] = answerToJson(expect);
  return JSON.stringify(obj);
}

export function formatProfileLine(p: Profile): string {
  return JSON.stringify({ profile: profileToJson(p) });
}

/** Reads a trace from lines of text (a file, a stream) lazily, one parsed line at a time. */
export async function* readTrace(lines: AsyncIterable<string> | Iterable<string>, source = 'trace'): AsyncGenerator<TraceLine> {
  let n = 0;
  for await (const text of lines) {
    n++;
    const parsed = parseTraceLine(text, n, source);
    if (parsed !== null) yield parsed;
  }
}

/** readTrace() a batch at a time: one promise per batch of lines rather than per line. */
export async function* readTraceBatches(batches: AsyncIterable<readonly string[]>, source = 'trace'): AsyncGenerator<readonly TraceLine[]> {
  let n = 0;
  for await (const texts of batches) {
    const out: TraceLine[] = [];
    for (const text of texts) {
      n++;
      const parsed = parseTraceLine(text, n, source);
      if (parsed !== null) out.push(parsed);
    }
    if (out.length > 0) yield out;
  }
}

/**
 * readTraceBatches() of text in pieces of whole lines (lines.ts fileText()), a batch per piece:
 * a canonical line is read where it stands in the piece, without a string of its own; any other
 * line (a lone `\r` splits it, as readline does) goes through parseTraceLine(), which reports
 * its defects with the line number.
 */
export async function* readTraceText(pieces: AsyncIterable<string>, source = 'trace'): AsyncGenerator<readonly TraceLine[]> {
  let n = 0;
  const parts: string[] = [];
  for await (const s of pieces) {
    const out: TraceLine[] = [];
    for (let from = 0; from < s.length;) {
      let nl = s.indexOf('\n', from);
      if (nl === -1) nl = s.length;
      // A `\r` before the `\n` belongs to the `\r\n`.
      const end = nl > from && s.charCodeAt(nl - 1) === 0x0d ? nl - 1 : nl;
      const fast = canonicalTraceLineAt(s, from, end, n + 1);
      if (fast !== null) {
        n++;
        out.push(fast);
      } else {
        parts.length = 0;
        segmentLines(s.slice(from, nl), parts);
        for (const text of parts) {
          n++;
          const parsed = parseTraceLine(text, n, source);
          if (parsed !== null) out.push(parsed);
        }
      }
      from = nl + 1;
    }
    if (out.length > 0) yield out;
  }
}

export { Fields as RequestFields, parseJsonObject };
