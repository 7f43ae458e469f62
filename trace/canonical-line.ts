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
 *
 * Each form is data, a template of literal text and fields, read by one small loop (scan()):
 * a replay runs once per process, and V8 compiled the earlier hand-written reader, a call per
 * literal inlined into a few large functions, in about as much CPU time as it then ran (the
 * optimizing compiler's thread, `--trace-opt`), after running it unoptimized for the first
 * twenty thousand lines.
 */
import { isErrno } from '../model/errno.js';
import { canonicalBitmap, type Answer, type HvaHitInfo, type Request, type SlotInfo, type TraceLine } from './trace.js';

/** The fields of a template: a literal is a string, a field one of these. */
const U32 = 0; // a JSON integer from 0 to 2^32 - 1 in plain decimal (no sign, fraction, exponent or leading zero)
const U16 = 1; // the same, at most 0xffff (an as_id)
const U64 = 2; // a string "0x" and 1 to 13 hex digits, either case, as shortHexU64() reads it
const NAME = 3; // capital letters and digits up to a closing quote (an errno name has nothing else); two entries: from, to
const HEX = 4; // hex digits up to a closing quote; two entries: from, to
type Token = string | typeof U32 | typeof U16 | typeof U64 | typeof NAME | typeof HEX;

/**
 * The values scan() read, in template order (a u64 as a double: 13 hex digits are below 2^53,
 * so it is exact); NAME and HEX leave the offsets of their text. One array for every line.
 */
const vals: number[] = [];
let nvals = 0;

/** Reads `tpl` in `s` from `at`: the position after it, or -1 where the text differs. */
function scan(s: string, at: number, tpl: readonly Token[]): number {
  for (let i = 0; i < tpl.length; i++) {
    const t = tpl[i]!;
    if (typeof t === 'string') {
      // A loop of charCodeAt(): String.prototype.startsWith() took twice as long here.
      const n = t.length;
      for (let k = 0; k < n; k++) if (s.charCodeAt(at + k) !== t.charCodeAt(k)) return -1;
      at += n;
    } else if (t === U64) {
      if (s.charCodeAt(at) !== 0x22 || s.charCodeAt(at + 1) !== 0x30 || s.charCodeAt(at + 2) !== 0x78) return -1;
      const from = (at += 3);
      let v = 0;
      for (;;) {
        const c = s.charCodeAt(at);
        const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
        if (d < 0) break;
        v = v * 16 + d;
        at++;
      }
      if (at === from || at - from > 13 || s.charCodeAt(at) !== 0x22) return -1;
      at++;
      vals[nvals++] = v;
    } else if (t === U32 || t === U16) {
      let c = s.charCodeAt(at);
      if (c < 0x30 || c > 0x39) return -1;
      at++;
      let v = c - 0x30;
      // A leading zero ends the number: "01" then fails at the next literal.
      if (v !== 0) {
        for (let digits = 1; ; digits++) {
          c = s.charCodeAt(at);
          if (c < 0x30 || c > 0x39) break;
          // Stryker disable next-line EqualityOperator: an 11th digit exceeds every max (at most 0xffffffff) either way
          if (digits === 10) return -1;
          v = v * 10 + (c - 0x30);
          at++;
        }
      }
      if (v > (t === U16 ? 0xffff : 0xffff_ffff)) return -1;
      vals[nvals++] = v;
    } else {
      const from = at;
      for (;;) {
        const c = s.charCodeAt(at);
        if (c === 0x22) break;
        const ok =
          t === NAME ? (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) : (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
        if (!ok) return -1;
        at++;
      }
      vals[nvals++] = from;
      vals[nvals++] = at;
      at++;
    }
  }
  return at;
}

const RET: Answer = { kind: 'ret' };

/** An answer's template (through the `}` that closes the line) and what its values make; null: not an answer. */
interface AnswerForm {
  readonly tpl: readonly Token[];
  readonly build: (s: string, v: readonly number[]) => Answer | null;
}

/** A list answer, `{"slots":[`, items separated by commas, then `]}}`. */
interface ListForm {
  readonly item: readonly Token[];
  readonly build: (v: readonly number[], items: number) => Answer;
}

interface OpForm {
  /** The request from `{"op":"` to its last field. */
  readonly tpl: readonly Token[];
  readonly build: (v: readonly number[]) => Request;
  /** The answers answerToJson() writes for the op, tried in turn (they differ within a few characters). */
  readonly answers: readonly AnswerForm[];
  readonly list: ListForm | null;
}

const retForm: AnswerForm = { tpl: ['{"ret":0}}'], build: () => RET };
const errnoForm: AnswerForm = {
  tpl: ['{"errno":"', NAME, '}}'],
  build: (s, v) => {
    const e = s.slice(v[0], v[1]);
    return isErrno(e) ? { kind: 'errno', errno: e } : null;
  },
};

const setRegion: OpForm = {
  tpl: ['{"op":"set_user_memory_region","slot":', U32, ',"flags":', U32, ',"guest_phys_addr":', U64, ',"memory_size":', U64, ',"userspace_addr":', U64],
  build: (v) => ({
    op: 'set_user_memory_region',
    region: { slot: v[0]!, flags: v[1]!, guestPhysAddr: BigInt(v[2]!), memorySize: BigInt(v[3]!), userspaceAddr: BigInt(v[4]!) },
  }),
  answers: [retForm, errnoForm],
  list: null,
};

const gfnToMemslot: OpForm = {
  tpl: ['{"op":"gfn_to_memslot","as_id":', U16, ',"gfn":', U64],
  build: (v) => ({ op: 'gfn_to_memslot', asId: v[0]!, gfn: BigInt(v[1]!) }),
  answers: [
    { tpl: ['{"slot":null}}'], build: () => ({ kind: 'slot', slot: null }) },
    { tpl: ['{"slot":', U32, '}}'], build: (_, v) => ({ kind: 'slot', slot: v[0]! }) },
  ],
  list: null,
};

const getDirtyLog: OpForm = {
  tpl: ['{"op":"get_dirty_log","slot":', U32],
  build: (v) => ({ op: 'get_dirty_log', slot: v[0]! }),
  answers: [
    retForm,
    {
      tpl: ['{"ret":0,"bitmap":"', HEX, '}}'],
      build: (s, v) => ((v[1]! - v[0]!) % 2 === 0 ? { kind: 'ret', bitmap: canonicalBitmap(s.slice(v[0], v[1]).toLowerCase()) } : null),
    },
    errnoForm,
  ],
  list: null,
};

const hvaToMemslots: OpForm = {
  tpl: ['{"op":"hva_to_memslots","start":', U64, ',"end":', U64],
  build: (v) => ({ op: 'hva_to_memslots', start: BigInt(v[0]!), end: BigInt(v[1]!) }),
  answers: [],
  list: {
    item: ['{"slot":', U32, ',"gfn_start":', U64, ',"gfn_end":', U64, '}'],
    build: (v, items) => {
      const hits: HvaHitInfo[] = [];
      for (let i = 0; i < items * 3; i += 3) hits.push({ slot: v[i]!, gfnStart: BigInt(v[i + 1]!), gfnEnd: BigInt(v[i + 2]!) });
      return { kind: 'hva_hits', hits };
    },
  },
};

const getSlots: OpForm = {
  tpl: ['{"op":"get_slots","as_id":', U16],
  build: (v) => ({ op: 'get_slots', asId: v[0]! }),
  answers: [],
  list: {
    item: ['{"slot":', U32, ',"flags":', U32, ',"guest_phys_addr":', U64, ',"memory_size":', U64, ',"userspace_addr":', U64, '}'],
    build: (v, items) => {
      const slots: SlotInfo[] = [];
      for (let i = 0; i < items * 5; i += 5) {
        slots.push({ slot: v[i]!, flags: v[i + 1]!, guestPhysAddr: BigInt(v[i + 2]!), memorySize: BigInt(v[i + 3]!), userspaceAddr: BigInt(v[i + 4]!) });
      }
      return { kind: 'slots', slots };
    },
  },
};

const getGeneration: OpForm = {
  tpl: ['{"op":"get_generation","as_id":', U16],
  build: (v) => ({ op: 'get_generation', asId: v[0]! }),
  answers: [{ tpl: ['{"generation":', U64, '}}'], build: (_, v) => ({ kind: 'generation', generation: BigInt(v[0]!) }) }],
  list: null,
};

/** The form whose op name starts at `at` (after `{"op":"`), told apart by a character or two; its template checks the rest. */
function formAt(s: string, at: number): OpForm | null {
  switch (s.charCodeAt(at)) {
    case 0x73: // s
      return setRegion;
    case 0x68: // h
      return hvaToMemslots;
    case 0x67: // g
      if (s.charCodeAt(at + 1) === 0x66) return gfnToMemslot;
      switch (s.charCodeAt(at + 4)) {
        case 0x64: // get_dirty_log
          return getDirtyLog;
        case 0x73: // get_slots
          return getSlots;
        case 0x67: // get_generation
          return getGeneration;
      }
      return null;
  }
  return null;
}

/** The trace line `text` if it is in formatTraceLine()'s exact form (and one of the ops above), else null. */
export function canonicalTraceLine(text: string, line: number): TraceLine | null {
  return canonicalTraceLineAt(text, 0, text.length, line);
}

/** canonicalTraceLine() of the line `s[from, end)`, read in place. */
export function canonicalTraceLineAt(s: string, from: number, end: number, line: number): TraceLine | null {
  const f = formAt(s, from + 7);
  if (f === null) return null;
  nvals = 0;
  let at = scan(s, from, f.tpl);
  if (at < 0) return null;
  const request = f.build(vals);
  if (s.charCodeAt(at) === 0x7d) return at + 1 === end ? { kind: 'request', line, request } : null;
  at = scan(s, at, EXPECT);
  if (at < 0) return null;
  const expect = f.list !== null ? list(s, at, end, f.list) : answer(s, at, end, f.answers);
  return expect === null ? null : { kind: 'request', line, request, expect };
}

const EXPECT: readonly Token[] = [',"expect":'];

/** The first of `forms` that reads `s[at, end)` whole, or null. */
function answer(s: string, at: number, end: number, forms: readonly AnswerForm[]): Answer | null {
  for (let i = 0; i < forms.length; i++) {
    const f = forms[i]!;
    nvals = 0;
    if (scan(s, at, f.tpl) === end) return f.build(s, vals);
  }
  return null;
}

const OPEN_LIST: readonly Token[] = ['{"slots":['];
const CLOSE_LIST: readonly Token[] = [']}}'];
const COMMA: readonly Token[] = [','];

/** The list answer of `f` if it reads `s[at, end)` whole, else null. */
function list(s: string, at: number, end: number, f: ListForm): Answer | null {
  nvals = 0;
  at = scan(s, at, OPEN_LIST);
  if (at < 0) return null;
  if (scan(s, at, CLOSE_LIST) === end) return f.build(vals, 0);
  for (let items = 1; ; items++) {
    at = scan(s, at, f.item);
    if (at < 0) return null;
    const next = scan(s, at, COMMA);
    if (next < 0) return scan(s, at, CLOSE_LIST) === end ? f.build(vals, items) : null;
    at = next;
  }
}
