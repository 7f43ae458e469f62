/**
 * A fast path of parseTraceLine() for the lines this project writes itself: a request and its
 * `expect` exactly as formatTraceLine() prints them (the keys in its order, no whitespace,
 * u64 fields as "0x" and 1 to 13 hex digits, integers in plain decimal), for the ops a trace
 * holds most. Such a line is read without JSON.parse() and the generic field checks after it,
 * which were most of a replay's time (--cpu-prof).
 *
 * It never reports anything: any line not in that exact form, with a value out of its range or
 * an answer that does not fit the op, gives null, and parseTraceLine() then parses it strictly
 * and reports its defect with the line number and the field. So a line read here is one the
 * strict parser accepts, and it gets the same request and answer (canonical-line.test.ts
 * checks both on random and on mutated lines).
 *
 * Each form is one sticky regular expression, matched where the line starts in whatever string
 * holds it. V8 compiles a regular expression to machine code on its second use, while a
 * character loop in JavaScript runs interpreted for the first ten thousand lines or more and
 * then costs its optimizing compile: a replay runs once per process, and the loops (a literal
 * check per key) cost about as much CPU time in that start as in all the lines after it.
 */
import { isErrno } from '../model/errno.js';
import type { Answer, HvaHitInfo, Request, SlotInfo, TraceLine } from './types.js';

/** A JSON integer in plain decimal (no sign, fraction, exponent or leading zero), at most ten digits; its range is checked after. */
const DEC = '(0|[1-9][0-9]{0,9})';
/** A u64 as shortHexU64() reads it: "0x" and 1 to 13 hex digits, either case (below 2^53: parseInt() is exact). */
const U64 = '"0x([0-9a-fA-F]{1,13})"';
/** An errno name: capital letters and digits (isErrno() is checked after). */
const NAME = '"([A-Z0-9]*)"';
/** A bitmap: hex digits (an even number is checked after). */
const HEX = '"([0-9a-fA-F]*)"';

/** A line of one op: the request, then (optionally) `,"expect":` and an answer, then the closing brace. */
function form(request: string, answers: string): RegExp {
  return new RegExp(`\\{"op":"${request}(?:,"expect":\\{(?:${answers})\\})?\\}`, 'y');
}

const SLOT_ITEM = `\\{"slot":${DEC},"flags":${DEC},"guest_phys_addr":${U64},"memory_size":${U64},"userspace_addr":${U64}\\}`;
const HIT_ITEM = `\\{"slot":${DEC},"gfn_start":${U64},"gfn_end":${U64}\\}`;
/** A list answer; the empty group says that the line has one. */
const list = (item: string): string => `"slots":\\[()(?:${item}(?:,${item})*)?\\]`;

// The groups of each form, in order: the request's fields, then the answer's. An empty group
// marks an alternative without a value of its own (it matched: '', else undefined).
const SET = form(
  `set_user_memory_region","slot":${DEC},"flags":${DEC},"guest_phys_addr":${U64},"memory_size":${U64},"userspace_addr":${U64}`,
  `"ret":0()|"errno":${NAME}`,
);
const GFN = form(`gfn_to_memslot","as_id":${DEC},"gfn":${U64}`, `"slot":(?:null()|${DEC})`);
const DIRTY = form(`get_dirty_log","slot":${DEC}`, `"ret":0()|"ret":0,"bitmap":${HEX}|"errno":${NAME}`);
const HVA = form(`hva_to_memslots","start":${U64},"end":${U64}`, list(HIT_ITEM));
const SLOTS = form(`get_slots","as_id":${DEC}`, list(SLOT_ITEM));
const GENERATION = form(`get_generation","as_id":${DEC}`, `"generation":${U64}`);
const SLOT_ITEM_AT = new RegExp(`${SLOT_ITEM},?`, 'y');
const HIT_ITEM_AT = new RegExp(`${HIT_ITEM},?`, 'y');

const RET: Answer = { kind: 'ret' };
const U32_MAX = 0xffff_ffff;
const U16_MAX = 0xffff;

/** The match of `re` at `from` if it ends at `end`, else null. */
function matchAt(re: RegExp, s: string, from: number, end: number): RegExpExecArray | null {
  re.lastIndex = from;
  const m = re.exec(s);
  return m !== null && re.lastIndex === end ? m : null;
}

const u64 = (hex: string): bigint => BigInt(parseInt(hex, 16));

/** The errno answer of `name`, or null for a name Linux does not have. */
function errno(name: string): Answer | null {
  return isErrno(name) ? { kind: 'errno', errno: name } : null;
}

/** The trace line `text` if it is in formatTraceLine()'s exact form (and one of the ops above), else null. */
export function canonicalTraceLine(text: string, line: number): TraceLine | null {
  return canonicalTraceLineAt(text, 0, text.length, line);
}

/** canonicalTraceLine() of the line `s[from, end)`, read in place (`s` may hold other lines around it). */
export function canonicalTraceLineAt(s: string, from: number, end: number, line: number): TraceLine | null {
  // The op is told apart by a character or two; its form checks all of it.
  switch (s.charCodeAt(from + 7)) {
    case 0x73: // s
      return setRegion(s, from, end, line);
    case 0x67: // g
      if (s.charCodeAt(from + 8) === 0x66) return gfnToMemslot(s, from, end, line);
      switch (s.charCodeAt(from + 11)) {
        case 0x64:
          return getDirtyLog(s, from, end, line);
        case 0x73:
          return getSlots(s, from, end, line);
        case 0x67:
          return getGeneration(s, from, end, line);
      }
      return null;
    case 0x68: // h
      return hvaToMemslots(s, from, end, line);
  }
  return null;
}

/** The line of `request`, with `expect` when the line has one (`has`) and null when it has one that is no answer. */
function traceLine(line: number, request: Request, has: boolean, expect: Answer | null): TraceLine | null {
  if (!has) return { kind: 'request', line, request };
  return expect === null ? null : { kind: 'request', line, request, expect };
}

function setRegion(s: string, from: number, end: number, line: number): TraceLine | null {
  const m = matchAt(SET, s, from, end);
  if (m === null) return null;
  const slot = +m[1]!;
  const flags = +m[2]!;
  if (slot > U32_MAX || flags > U32_MAX) return null;
  const request: Request = {
    op: 'set_user_memory_region',
    region: { slot, flags, guestPhysAddr: u64(m[3]!), memorySize: u64(m[4]!), userspaceAddr: u64(m[5]!) },
  };
  return traceLine(line, request, m[6] !== undefined || m[7] !== undefined, m[6] !== undefined ? RET : m[7] !== undefined ? errno(m[7]) : null);
}

function gfnToMemslot(s: string, from: number, end: number, line: number): TraceLine | null {
  const m = matchAt(GFN, s, from, end);
  if (m === null) return null;
  const asId = +m[1]!;
  const slot = m[4] === undefined ? null : +m[4];
  if (asId > U16_MAX || (slot !== null && slot > U32_MAX)) return null;
  return traceLine(line, { op: 'gfn_to_memslot', asId, gfn: u64(m[2]!) }, m[3] !== undefined || slot !== null, { kind: 'slot', slot });
}

function getDirtyLog(s: string, from: number, end: number, line: number): TraceLine | null {
  const m = matchAt(DIRTY, s, from, end);
  if (m === null) return null;
  const slot = +m[1]!;
  if (slot > U32_MAX) return null;
  const bitmap = m[3];
  const expect =
    m[2] !== undefined
      ? RET
      : bitmap !== undefined
        ? bitmap.length % 2 === 0
          ? { kind: 'ret' as const, bitmap: canonicalBitmap(bitmap.toLowerCase()) }
          : null
        : m[4] !== undefined
          ? errno(m[4])
          : null;
  return traceLine(line, { op: 'get_dirty_log', slot }, m[2] !== undefined || bitmap !== undefined || m[4] !== undefined, expect);
}

function getGeneration(s: string, from: number, end: number, line: number): TraceLine | null {
  const m = matchAt(GENERATION, s, from, end);
  if (m === null) return null;
  const asId = +m[1]!;
  if (asId > U16_MAX) return null;
  return traceLine(line, { op: 'get_generation', asId }, m[2] !== undefined, m[2] === undefined ? null : { kind: 'generation', generation: u64(m[2]) });
}

// A list answer's items: the form has checked the whole list; the items are read one by one
// from the list's `[` (the request before it has none), up to the `]}}` that ends the line.

function hvaToMemslots(s: string, from: number, end: number, line: number): TraceLine | null {
  const m = matchAt(HVA, s, from, end);
  if (m === null) return null;
  const request: Request = { op: 'hva_to_memslots', start: u64(m[1]!), end: u64(m[2]!) };
  if (m[3] === undefined) return traceLine(line, request, false, null);
  const hits: HvaHitInfo[] = [];
  HIT_ITEM_AT.lastIndex = s.indexOf('[', from) + 1;
  for (let i; HIT_ITEM_AT.lastIndex < end - 3 && (i = HIT_ITEM_AT.exec(s)) !== null;) {
    const slot = +i[1]!;
    if (slot > U32_MAX) return null;
    hits.push({ slot, gfnStart: u64(i[2]!), gfnEnd: u64(i[3]!) });
  }
  return traceLine(line, request, true, { kind: 'hva_hits', hits });
}

function getSlots(s: string, from: number, end: number, line: number): TraceLine | null {
  const m = matchAt(SLOTS, s, from, end);
  if (m === null) return null;
  const asId = +m[1]!;
  if (asId > U16_MAX) return null;
  const request: Request = { op: 'get_slots', asId };
  if (m[2] === undefined) return traceLine(line, request, false, null);
  const slots: SlotInfo[] = [];
  SLOT_ITEM_AT.lastIndex = s.indexOf('[', from) + 1;
  for (let i; SLOT_ITEM_AT.lastIndex < end - 3 && (i = SLOT_ITEM_AT.exec(s)) !== null;) {
    const slot = +i[1]!;
    const flags = +i[2]!;
    if (slot > U32_MAX || flags > U32_MAX) return null;
    slots.push({ slot, flags, guestPhysAddr: u64(i[3]!), memorySize: u64(i[4]!), userspaceAddr: u64(i[5]!) });
  }
  return traceLine(line, request, true, { kind: 'slots', slots });
}

/** A bitmap in its canonical form: lowercase, trailing zero bytes dropped. */
export function canonicalBitmap(hex: string): string {
  let end = hex.length;
  while (end >= 2 && hex[end - 1] === '0' && hex[end - 2] === '0') end -= 2;
  return hex.slice(0, end);
}
