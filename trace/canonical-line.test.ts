import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ERRNOS } from '../model/index.js';
import { runs } from '../test/knobs.js';
import { canonicalTraceLine } from './canonical-line.js';
import { formatTraceLine, InputError, parseTraceLine, strictTraceLine, type Answer, type Request } from './trace.js';

const u32 = fc.oneof(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 0xffff_ffff }), fc.constantFrom(0xffff_ffff, 0x1_0000));
/** Up to 2^64 - 1: the fast path reads 1 to 13 hex digits and leaves longer ones to the strict parser. */
const u64 = fc.oneof(fc.bigInt({ min: 0n, max: 0xfffn }), fc.bigInt({ min: 0n, max: (1n << 52n) - 1n }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }));
const asId = fc.oneof(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 0, max: 0x1_0000 }));

const request: fc.Arbitrary<Request> = fc.oneof(
  fc
    .record({ slot: u32, flags: u32, guestPhysAddr: u64, memorySize: u64, userspaceAddr: u64 })
    .map((region): Request => ({ op: 'set_user_memory_region', region })),
  u32.map((slot): Request => ({ op: 'get_dirty_log', slot })),
  fc.record({ asId, gfn: u64 }).map((x): Request => ({ op: 'gfn_to_memslot', ...x })),
  fc.record({ start: u64, end: u64 }).map((x): Request => ({ op: 'hva_to_memslots', ...x })),
  asId.map((a): Request => ({ op: 'get_slots', asId: a })),
  asId.map((a): Request => ({ op: 'get_generation', asId: a })),
  // Ops the fast path leaves to the strict parser.
  fc.record({ asId, gpa: u64 }).map((x): Request => ({ op: 'write', ...x })),
  fc.constant<Request>({ op: 'reset' }),
);

const hexDigits = fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), maxLength: 12 });
const answer: fc.Arbitrary<Answer> = fc.oneof(
  fc.constant<Answer>({ kind: 'ret' }),
  hexDigits.map((bitmap): Answer => ({ kind: 'ret', bitmap })),
  fc.constantFrom(...ERRNOS).map((errno): Answer => ({ kind: 'errno', errno })),
  fc.oneof(u32, fc.constant(null)).map((slot): Answer => ({ kind: 'slot', slot })),
  fc
    .array(fc.record({ slot: u32, flags: u32, guestPhysAddr: u64, memorySize: u64, userspaceAddr: u64 }), { maxLength: 3 })
    .map((slots): Answer => ({ kind: 'slots', slots })),
  fc.array(fc.record({ slot: u32, gfnStart: u64, gfnEnd: u64 }), { maxLength: 3 }).map((hits): Answer => ({ kind: 'hva_hits', hits })),
  u64.map((generation): Answer => ({ kind: 'generation', generation })),
  fc.constant<Answer>({ kind: 'mmio' }),
  fc.constant<Answer>({ kind: 'ok' }),
);

const line = fc.tuple(request, fc.option(answer, { nil: undefined })).map(([r, a]) => formatTraceLine(r, a));

/** What the strict parser makes of `text`: the parsed line, or the InputError it reports. */
function strict(text: string): unknown {
  try {
    return strictTraceLine(text, 3);
  } catch (e) {
    if (e instanceof InputError) return e;
    throw e;
  }
}

describe('canonical trace lines (the fast path of parseTraceLine)', () => {
  it('reads a line formatTraceLine() wrote exactly as the strict parser does, or leaves it to it', () => {
    let read = 0;
    fc.assert(
      fc.property(line, (text) => {
        const fast = canonicalTraceLine(text, 3);
        if (fast !== null) read++;
        if (fast !== null) expect(fast).toStrictEqual(strict(text));
      }),
      { numRuns: runs(3000) },
    );
    // The fast path is taken (not merely always declined).
    expect(read).toBeGreaterThan(runs(3000) / 10);
  });

  it('takes no line the strict parser refuses or reads otherwise: random edits of written lines', () => {
    const edited = fc
      .tuple(line, fc.nat(), fc.constantFrom('insert', 'delete', 'replace'), fc.constantFrom(...' 0123456789abcdefxX",:{}[]-.eE+nulrtSOPWVAs_\\'))
      .map(([text, at, how, c]) => {
        const i = at % (text.length + 1);
        return how === 'insert'
          ? text.slice(0, i) + c + text.slice(i)
          : how === 'delete'
            ? text.slice(0, i) + text.slice(i + 1)
            : text.slice(0, i) + c + text.slice(i + 1);
      });
    fc.assert(
      fc.property(edited, (text) => {
        const fast = canonicalTraceLine(text, 3);
        if (fast !== null) expect(fast).toStrictEqual(strict(text));
      }),
      { numRuns: runs(5000) },
    );
  });

  it('reads the lines of the ops it knows, with and without expect', () => {
    const lines = [
      '{"op":"set_user_memory_region","slot":65536,"flags":1,"guest_phys_addr":"0x100000","memory_size":"0x2000","userspace_addr":"0x7f0000000000","expect":{"ret":0}}',
      '{"op":"set_user_memory_region","slot":0,"flags":0,"guest_phys_addr":"0x0","memory_size":"0x0","userspace_addr":"0x0","expect":{"errno":"E2BIG"}}',
      '{"op":"get_dirty_log","slot":4294967295,"expect":{"ret":0,"bitmap":"0F00"}}',
      '{"op":"get_dirty_log","slot":3,"expect":{"errno":"ENOENT"}}',
      '{"op":"gfn_to_memslot","as_id":65535,"gfn":"0x1ffffffffffff","expect":{"slot":null}}',
      '{"op":"gfn_to_memslot","as_id":0,"gfn":"0xA","expect":{"slot":7}}',
      '{"op":"hva_to_memslots","start":"0x7f0000000000","end":"0x7f0000001000","expect":{"slots":[]}}',
      '{"op":"hva_to_memslots","start":"0x1","end":"0x2","expect":{"slots":[{"slot":1,"gfn_start":"0x10","gfn_end":"0x11"},{"slot":2,"gfn_start":"0x0","gfn_end":"0x1"}]}}',
      '{"op":"get_slots","as_id":1,"expect":{"slots":[{"slot":65537,"flags":2,"guest_phys_addr":"0x1000","memory_size":"0x1000","userspace_addr":"0x7f0000000000"}]}}',
      '{"op":"get_generation","as_id":0,"expect":{"generation":"0x2a"}}',
      '{"op":"get_generation","as_id":0}',
    ];
    for (const text of lines) {
      const fast = canonicalTraceLine(text, 3);
      expect(fast, text).not.toBeNull();
      expect(fast).toStrictEqual(strict(text));
    }
  });

  it('leaves every other form to the strict parser, which still names the line and the field', () => {
    const others = [
      '{"op":"get_slots","as_id":1.0}', // a JSON integer written otherwise
      '{"op":"get_slots","as_id":01}', // not JSON at all
      '{"op":"get_slots","as_id":65536}', // out of range
      '{"op":"get_slots","as_id":0,"as_id":1}', // a key twice (JSON.parse keeps the last)
      '{"op":"get_slots", "as_id":0}', // whitespace
      '{"op":"get_slots","as_id":0} ', // trailing whitespace
      '{"as_id":0,"op":"get_slots"}', // another key order
      '{"op":"get_dirty_log","slot":1,"expect":{"ret":0,"bitmap":"abc"}}', // an odd number of digits
      '{"op":"get_dirty_log","slot":1,"expect":{"errno":"EBOGUS"}}', // no errno of Linux
      '{"op":"set_user_memory_region","slot":0,"flags":0,"guest_phys_addr":"0x10000000000000","memory_size":"0x0","userspace_addr":"0x0"}', // 14 digits
      '{"op":"set_user_memory_region","slot":0,"flags":0,"guest_phys_addr":"0x","memory_size":"0x0","userspace_addr":"0x0"}', // no digit
      '{"op":"gfn_to_memslot","as_id":0,"gfn":"0x1","expect":{"slot":4294967296}}',
      '{"op":"gfn_to_memslot","as_id":0,"gfn":"0x1","expect":{"ret":0}}', // an answer of another op
      '{"op":"get_generation","as_id":0,"expect":{"generation":"0x1"},"extra":1}',
      '{"op":"get_slots","as_id":0,"expect":{"slots":[{"slot":1,"flags":0,"guest_phys_addr":"0x0","memory_size":"0x1000","userspace_addr":"0x0"},]}}',
      '{"op":"write","as_id":0,"gpa":"0x1000"}', // an op it does not read
      '',
    ];
    for (const text of others) expect(canonicalTraceLine(text, 3), text).toBeNull();
    expect(() => parseTraceLine('{"op":"get_slots","as_id":65536}', 9)).toThrow('line 9, field "as_id"');
    expect(() => parseTraceLine('{"op":"gfn_to_memslot","as_id":0,"gfn":"0x1","expect":{"slot":4294967296}}', 9)).toThrow('line 9, field "expect.slot"');
    expect(parseTraceLine('{"op":"get_slots","as_id":1.0}', 9)).toStrictEqual({ kind: 'request', line: 9, request: { op: 'get_slots', asId: 1 } });
  });
});
