/**
 * A fast path of parseTraceLine() for the lines this project writes itself: a request and its
 * `expect` exactly as formatTraceLine() prints them (the keys in its order, no whitespace,
 * u64 fields as "0x" and 1 to 13 hex digits, integers in plain decimal), for the ops a trace
 * holds most. Such a line is read in one pass over its characters, without JSON.parse() and
 * the generic field checks after it, which were most of a replay's time (--cpu-prof).
 *
 * It never reports anything: any line not in that exact form, with a value out of its range or
 * an answer that does not fit the op, gives null, and parseTraceLine() then parses it strictly
 * and reports its defect with the line number and the field. So a line read here is one the
 * strict parser accepts, and it gets the same request and answer (canonical-line.test.ts
 * checks both on random and on mutated lines).
 */
import { isErrno } from '../model/errno.js';
import { canonicalBitmap, type Answer, type HvaHitInfo, type Request, type SlotInfo, type TraceLine } from './trace.js';

/** The line being read and the position in it. */
class Reader {
  at = 0;
  /** Set by u64() and u32(): whether the value just read was well formed. */
  ok = true;
  constructor(readonly s: string) {}

  /** Reads `l` at the position. */
  lit(l: string): boolean {
    // A loop of charCodeAt(): String.prototype.startsWith() took twice as long here.
    const s = this.s;
    const at = this.at;
    const n = l.length;
    for (let k = 0; k < n; k++) if (s.charCodeAt(at + k) !== l.charCodeAt(k)) return false;
    this.at = at + n;
    return true;
  }

  /** A JSON integer from 0 to `max` in plain decimal (no sign, fraction, exponent or leading zero); sets `ok`. */
  u32(max: number): number {
    const s = this.s;
    let at = this.at;
    let c = s.charCodeAt(at);
    if (c < 0x30 || c > 0x39) return this.fail();
    at++;
    let v = c - 0x30;
    // A leading zero ends the number: "01" then fails at the next literal.
    if (v !== 0) {
      for (let digits = 1; ; digits++) {
        c = s.charCodeAt(at);
        if (c < 0x30 || c > 0x39) break;
        // Stryker disable next-line EqualityOperator: an 11th digit exceeds every max (at most 0xffffffff) either way
        if (digits === 10) return this.fail();
        v = v * 10 + (c - 0x30);
        at++;
      }
    }
    this.at = at;
    this.ok = v <= max;
    return v;
  }

  /** A u64 string as shortHexU64() reads it ("0x" and 1 to 13 hex digits, either case); sets `ok`. */
  u64(): bigint {
    if (!this.lit('"0x')) {
      this.ok = false;
      return 0n;
    }
    const s = this.s;
    const from = this.at;
    let at = from;
    let v = 0;
    for (;;) {
      const c = s.charCodeAt(at);
      const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
      if (d < 0) break;
      v = v * 16 + d;
      at++;
    }
    this.ok = at > from && at - from <= 13 && s.charCodeAt(at) === 0x22;
    this.at = at + 1;
    return BigInt(v);
  }

  /** A string of capital letters and digits (an errno name has nothing else), after its opening quote; null if none. */
  name(): string | null {
    const s = this.s;
    const from = this.at;
    let at = from;
    for (;;) {
      const c = s.charCodeAt(at);
      if (c === 0x22) break;
      if (!((c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39))) return null;
      at++;
    }
    this.at = at + 1;
    return s.slice(from, at);
  }

  /** Hex digits up to the closing quote (consumed); null at any other character. */
  hex(): string | null {
    const s = this.s;
    const from = this.at;
    let at = from;
    for (;;) {
      const c = s.charCodeAt(at);
      if (c === 0x22) break;
      if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46))) return null;
      at++;
    }
    this.at = at + 1;
    return s.slice(from, at);
  }

  private fail(): number {
    this.ok = false;
    return 0;
  }
}

const RET: Answer = { kind: 'ret' };

/** `{"ret":0}` or `{"errno":"NAME"}`, the answer of every ioctl whose success is a plain 0. */
function retOrErrno(p: Reader): Answer | null {
  if (p.lit('{"ret":0}')) return RET;
  if (!p.lit('{"errno":"')) return null;
  const e = p.name();
  return e !== null && isErrno(e) && p.lit('}') ? { kind: 'errno', errno: e } : null;
}

/** `open`, then items separated by commas, then `]}`: the items, or null where the text differs. */
function list<T>(p: Reader, open: string, item: () => T | null): T[] | null {
  if (!p.lit(open)) return null;
  const out: T[] = [];
  if (p.lit(']}')) return out;
  do {
    const x = item();
    if (x === null) return null;
    out.push(x);
  } while (p.lit(','));
  return p.lit(']}') ? out : null;
}

/** The answer to `r` as answerToJson() writes it, or null. */
function answer(p: Reader, r: Request): Answer | null {
  switch (r.op) {
    case 'set_user_memory_region':
      return retOrErrno(p);
    case 'get_dirty_log': {
      if (!p.lit('{"ret":0,"bitmap":"')) return retOrErrno(p);
      const hex = p.hex();
      return hex !== null && hex.length % 2 === 0 && p.lit('}') ? { kind: 'ret', bitmap: canonicalBitmap(hex.toLowerCase()) } : null;
    }
    case 'gfn_to_memslot': {
      if (p.lit('{"slot":null}')) return { kind: 'slot', slot: null };
      if (!p.lit('{"slot":')) return null;
      const slot = p.u32(0xffff_ffff);
      return p.ok && p.lit('}') ? { kind: 'slot', slot } : null;
    }
    case 'hva_to_memslots': {
      const hits = list(p, '{"slots":[', (): HvaHitInfo | null => {
        if (!p.lit('{"slot":')) return null;
        const slot = p.u32(0xffff_ffff);
        if (!p.ok || !p.lit(',"gfn_start":')) return null;
        const gfnStart = p.u64();
        if (!p.ok || !p.lit(',"gfn_end":')) return null;
        const gfnEnd = p.u64();
        return p.ok && p.lit('}') ? { slot, gfnStart, gfnEnd } : null;
      });
      return hits === null ? null : { kind: 'hva_hits', hits };
    }
    case 'get_slots': {
      const slots = list(p, '{"slots":[', (): SlotInfo | null => {
        if (!p.lit('{"slot":')) return null;
        const slot = p.u32(0xffff_ffff);
        if (!p.ok || !p.lit(',"flags":')) return null;
        const flags = p.u32(0xffff_ffff);
        if (!p.ok || !p.lit(',"guest_phys_addr":')) return null;
        const guestPhysAddr = p.u64();
        if (!p.ok || !p.lit(',"memory_size":')) return null;
        const memorySize = p.u64();
        if (!p.ok || !p.lit(',"userspace_addr":')) return null;
        const userspaceAddr = p.u64();
        return p.ok && p.lit('}') ? { slot, flags, guestPhysAddr, memorySize, userspaceAddr } : null;
      });
      return slots === null ? null : { kind: 'slots', slots };
    }
    case 'get_generation': {
      if (!p.lit('{"generation":')) return null;
      const generation = p.u64();
      return p.ok && p.lit('}') ? { kind: 'generation', generation } : null;
    }
    default:
      return null;
  }
}

/** The request after `{"op":"`, up to its last field, as requestToJson() writes it; null for any other form or op. */
function request(p: Reader): Request | null {
  if (p.lit('set_user_memory_region","slot":')) {
    const slot = p.u32(0xffff_ffff);
    if (!p.ok || !p.lit(',"flags":')) return null;
    const flags = p.u32(0xffff_ffff);
    if (!p.ok || !p.lit(',"guest_phys_addr":')) return null;
    const guestPhysAddr = p.u64();
    if (!p.ok || !p.lit(',"memory_size":')) return null;
    const memorySize = p.u64();
    if (!p.ok || !p.lit(',"userspace_addr":')) return null;
    const userspaceAddr = p.u64();
    return p.ok ? { op: 'set_user_memory_region', region: { slot, flags, guestPhysAddr, memorySize, userspaceAddr } } : null;
  }
  if (p.lit('gfn_to_memslot","as_id":')) {
    const asId = p.u32(0xffff);
    if (!p.ok || !p.lit(',"gfn":')) return null;
    const gfn = p.u64();
    return p.ok ? { op: 'gfn_to_memslot', asId, gfn } : null;
  }
  if (p.lit('get_dirty_log","slot":')) {
    const slot = p.u32(0xffff_ffff);
    return p.ok ? { op: 'get_dirty_log', slot } : null;
  }
  if (p.lit('hva_to_memslots","start":')) {
    const start = p.u64();
    if (!p.ok || !p.lit(',"end":')) return null;
    const end = p.u64();
    return p.ok ? { op: 'hva_to_memslots', start, end } : null;
  }
  if (p.lit('get_slots","as_id":')) {
    const asId = p.u32(0xffff);
    return p.ok ? { op: 'get_slots', asId } : null;
  }
  if (p.lit('get_generation","as_id":')) {
    const asId = p.u32(0xffff);
    return p.ok ? { op: 'get_generation', asId } : null;
  }
  return null;
}

/** The trace line `text` if it is in formatTraceLine()'s exact form (and one of the ops above), else null. */
export function canonicalTraceLine(text: string, line: number): TraceLine | null {
  const p = new Reader(text);
  if (!p.lit('{"op":"')) return null;
  const r = request(p);
  if (r === null) return null;
  if (p.lit('}')) return p.at === text.length ? { kind: 'request', line, request: r } : null;
  if (!p.lit(',"expect":')) return null;
  const expect = answer(p, r);
  return expect !== null && p.lit('}') && p.at === text.length ? { kind: 'request', line, request: r, expect } : null;
}
