/**
 * model/atomicity.ts, verdict by verdict (found by mutation testing, docs/mutation.md).
 *
 * test/rules/atomicity.test.ts checks that a bad reader is rejected with some MS-ATM rule; the
 * concurrency suite only ever feeds the checker readers of correct implementations and of a
 * few planted bugs. Neither pins which rule the checker names, nor the report it writes, so
 * mutants of the rule choice (which branch decides), of field-by-field slot and hva comparison,
 * and of every text helper survived. Here each branch of checkReader() is reached on purpose,
 * and the whole verdict is pinned: rule and detail. The detail is what a concurrency
 * counterexample prints; its wording is pinned on purpose (change it here with the wording).
 */
import { describe, expect, it } from 'vitest';
import {
  KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS as IN_PROGRESS,
  KVM_MEMSLOT_INVALID,
  checkReader,
  generationText,
  observationText,
  publishedStates,
  sameSlot,
  setUserMemoryRegion,
  slotText,
  type MemoryRegion,
  type Memslot,
  type ReadObservation,
  type ReaderVerdict,
  type VmState,
} from './index.js';
import { NOSMM, PAGE, build, del, memslot, region } from '../test/rules/helpers.js';

const U = 0x11_0000n;
const R1 = region(1, 0x4000n, 2n * PAGE, U);
const S1 = memslot(0, 1, 4n, 2n, U);
const S1_MOVED: Memslot = { ...S1, baseGfn: 0x10n };

/** Chapter 45's example VM: slot 1 at gfn 0x4, 2 pages, generation 6. */
const h0 = build(NOSMM, [region(2, 0x1_0000n, PAGE, 0x20_0000n), R1, del(2), { ...R1, flags: 1 }, R1]);

function history(before: VmState, r: MemoryRegion): VmState[] {
  return [before, ...publishedStates(0, before, setUserMemoryRegion(before, r).published)];
}

/** [h0 (gen 6, slot 1), h1 (gen 7, slot 1 INVALID), h2 (gen 8, no slots)] */
const DELETE = history(h0, del(1));
/** [h0 (gen 6, slot 1 at 0x4), h1 (gen 7, INVALID at 0x4), h2 (gen 8, slot 1 at 0x10)] */
const MOVE = history(h0, { ...R1, guestPhysAddr: 0x1_0000n });
/** [h0, h1 (gen 7, slot 1 and slot 2)] */
const CREATE = history(h0, region(2, 0x1_0000n, PAGE, 0x20_0000n));

const g = (answer: bigint): ReadObservation => ({ kind: 'generation', answer });
const gfn = (n: bigint, answer: Memslot | null): ReadObservation => ({ kind: 'gfn', gfn: n, answer });
const byId = (id: number, answer: Memslot | null): ReadObservation => ({ kind: 'id', id, answer });
const hva = (n: bigint, answer: bigint | 'KVM_HVA_ERR_BAD' | 'KVM_HVA_ERR_RO_BAD', write = false): ReadObservation => ({
  kind: 'hva',
  gfn: n,
  write,
  answer: typeof answer === 'bigint' ? { ok: true, hva: answer } : { ok: false, error: answer },
});
const visible = (n: bigint, answer: boolean): ReadObservation => ({ kind: 'visible', gfn: n, answer });
const vcpu = (n: bigint, answer: Memslot | null): ReadObservation => ({ kind: 'vcpu', vcpu: 1, gfn: n, answer });

function verdict(h: readonly VmState[], first: number, last: number, log: readonly ReadObservation[]): ReaderVerdict {
  return checkReader(h, 0, { first, last }, log);
}

const T0 = 'gen 6: slot 1 gfn 0x4+2 flags 0x0 uaddr 0x110000';
const T1 = 'gen 7: slot 1 gfn 0x4+2 flags 0x0 INVALID uaddr 0x110000';
const S1_TEXT = 'slot 1 gfn 0x4+2 flags 0x0 uaddr 0x110000';
const S1_INVALID_TEXT = 'slot 1 gfn 0x4+2 flags 0x0 INVALID uaddr 0x110000';

describe('checkReader: which branch decides, and what it reports', () => {
  it('a window outside the history, below 0 too, is a caller error naming the window', () => {
    expect(() => verdict(DELETE, -1, 0, [])).toThrow(new RangeError('window [-1, 0] outside a history of 3 states'));
    expect(() => verdict(DELETE, 0, 3, [])).toThrow(new RangeError('window [0, 3] outside a history of 3 states'));
    expect(() => verdict(DELETE, 2, 1, [])).toThrow(new RangeError('window [2, 1] outside a history of 3 states'));
  });

  it('[MS-ATM-04] an in-progress generation after a settled one names both observations', () => {
    expect(verdict(DELETE, 0, 2, [g(7n), visible(5n, false), g(6n | IN_PROGRESS)])).toEqual({
      ok: false,
      rule: 'MS-ATM-04',
      detail: [
        'observation 3 reads an in-progress generation after observation 1 read a settled one',
        'the reader saw:',
        '  1. generation -> 7',
        '  2. is_visible_gfn(0x5) -> false',
        '  3. generation -> 6|IN_PROGRESS',
      ].join('\n'),
    });
  });

  it('[MS-ATM-03][MS-ATM-04] an in-progress generation after a non-generation answer is no return of bit 63', () => {
    // State 1 (the INVALID copy) gives both: not visible, and 6|IN_PROGRESS while its swap runs.
    expect(verdict(DELETE, 0, 2, [visible(5n, false), g(6n | IN_PROGRESS)])).toEqual({ ok: true, state: 1 });
    // Two in-progress reads: neither is settled.
    expect(verdict(DELETE, 0, 2, [g(6n | IN_PROGRESS), g(6n | IN_PROGRESS)])).toEqual({ ok: true, state: 1 });
  });

  it('[MS-ATM-02] answers all given by a state replaced before entry: that state is named, with what each window state says instead', () => {
    expect(verdict(DELETE, 2, 2, [byId(1, S1), g(6n)])).toEqual({
      ok: false,
      rule: 'MS-ATM-02',
      detail: [
        `state 0 (${T0}), outside the window [2, 2], explains every answer`,
        `  state 2 (gen 8: no slots): observation 1 (id_to_memslot(1) -> ${S1_TEXT}) should be none`,
        'the reader saw:',
        `  1. id_to_memslot(1) -> ${S1_TEXT}`,
        '  2. generation -> 6',
      ].join('\n'),
    });
  });

  it('[MS-ATM-02] answers all given by a state published after entry: that state is named', () => {
    expect(verdict(DELETE, 0, 0, [gfn(5n, null)])).toEqual({
      ok: false,
      rule: 'MS-ATM-02',
      detail: [
        'state 2 (gen 8: no slots), outside the window [0, 0], explains every answer',
        `  state 0 (${T0}): observation 1 (gfn_to_memslot(0x5) -> none) should be ${S1_TEXT}`,
        'the reader saw:',
        '  1. gfn_to_memslot(0x5) -> none',
      ].join('\n'),
    });
  });

  it('[MS-ATM-02][MS-ATM-03] the window state a reader entered at has no in-progress generation; a later one has', () => {
    expect(verdict(DELETE, 1, 2, [g(6n)])).toEqual({
      ok: false,
      rule: 'MS-ATM-02',
      detail: [
        `state 0 (${T0}), outside the window [1, 2], explains every answer`,
        `  state 1 (${T1}): observation 1 (generation -> 6) should be 7`,
        '  state 2 (gen 8: no slots): observation 1 (generation -> 6) should be 8 or 7|IN_PROGRESS',
        'the reader saw:',
        '  1. generation -> 6',
      ].join('\n'),
    });
  });

  it('[MS-ATM-02] one answer only a replaced state gives, the others from the window: that answer is named', () => {
    expect(verdict(DELETE, 1, 2, [byId(1, S1), g(8n)])).toEqual({
      ok: false,
      rule: 'MS-ATM-02',
      detail: [
        `id_to_memslot(1) -> ${S1_TEXT}: only states replaced before the reader entered give this answer`,
        `  state 1 (${T1}): observation 1 (id_to_memslot(1) -> ${S1_TEXT}) should be ${S1_INVALID_TEXT}`,
        `  state 2 (gen 8: no slots): observation 1 (id_to_memslot(1) -> ${S1_TEXT}) should be none`,
        'the reader saw:',
        `  1. id_to_memslot(1) -> ${S1_TEXT}`,
        '  2. generation -> 8',
      ].join('\n'),
    });
  });

  it('[MS-ATM-02] one answer only a later state gives, the other from the window state (and a replaced one): the later one is named', () => {
    const moved = 'slot 1 gfn 0x10+2 flags 0x0 uaddr 0x110000';
    expect(verdict(MOVE, 1, 1, [gfn(0x10n, null), byId(1, S1_MOVED)])).toEqual({
      ok: false,
      rule: 'MS-ATM-02',
      detail: [
        `id_to_memslot(1) -> ${moved}: only states published after the reader entered give this answer`,
        `  state 1 (${T1}): observation 2 (id_to_memslot(1) -> ${moved}) should be ${S1_INVALID_TEXT}`,
        'the reader saw:',
        '  1. gfn_to_memslot(0x10) -> none',
        `  2. id_to_memslot(1) -> ${moved}`,
      ].join('\n'),
    });
  });

  it('[MS-ATM-04] a settled generation no state has is named even after an answer no state gives', () => {
    const stray = 'slot 7 gfn 0x4+2 flags 0x0 uaddr 0x110000';
    expect(verdict(DELETE, 0, 2, [gfn(5n, { ...S1, id: 7 }), g(9n)])).toEqual({
      ok: false,
      rule: 'MS-ATM-04',
      detail: [
        'generation -> 9: no state of the history has this generation at this time',
        `  state 0 (${T0}): observation 1 (gfn_to_memslot(0x5) -> ${stray}) should be ${S1_TEXT}`,
        `  state 1 (${T1}): observation 1 (gfn_to_memslot(0x5) -> ${stray}) should be ${S1_INVALID_TEXT}`,
        `  state 2 (gen 8: no slots): observation 1 (gfn_to_memslot(0x5) -> ${stray}) should be none`,
        'the reader saw:',
        `  1. gfn_to_memslot(0x5) -> ${stray}`,
        '  2. generation -> 9',
      ].join('\n'),
    });
  });

  it("[MS-ATM-03][MS-ATM-04] a bit-63 value no swap produces breaks MS-ATM-03; a swap's in-progress value read after it breaks MS-ATM-04", () => {
    const r3 = verdict(DELETE, 0, 0, [g(5n | IN_PROGRESS)]);
    expect(r3.ok ? null : [r3.rule, r3.detail.split('\n')[0]]).toEqual([
      'MS-ATM-03',
      'generation -> 5|IN_PROGRESS: no state of the history has this generation at this time',
    ]);
    const r4 = verdict(DELETE, 1, 2, [g(6n | IN_PROGRESS)]);
    expect(r4.ok ? null : [r4.rule, r4.detail.split('\n')[0]]).toEqual([
      'MS-ATM-04',
      'generation -> 6|IN_PROGRESS: no state of the history has this generation at this time',
    ]);
  });

  it('[MS-ATM-06] a vCPU answer no window state or later one gives is a stale cache, named with the vCPU', () => {
    const moved = 'slot 1 gfn 0x10+2 flags 0x0 uaddr 0x110000';
    expect(verdict(MOVE, 2, 2, [gfn(0x10n, S1_MOVED), vcpu(4n, S1)])).toEqual({
      ok: false,
      rule: 'MS-ATM-06',
      detail: [
        `vcpu1 gfn_to_memslot(0x4) -> ${S1_TEXT}: no state of the window or after it gives this vCPU answer: a stale cached slot`,
        `  state 2 (gen 8: ${moved}): observation 2 (vcpu1 gfn_to_memslot(0x4) -> ${S1_TEXT}) should be none`,
        'the reader saw:',
        `  1. gfn_to_memslot(0x10) -> ${moved}`,
        `  2. vcpu1 gfn_to_memslot(0x4) -> ${S1_TEXT}`,
      ].join('\n'),
    });
  });

  it('[MS-ATM-05] a gfn answer with a slot no state has (another host address) is a half-changed slot', () => {
    const bad = 'slot 1 gfn 0x4+2 flags 0x0 uaddr 0x111000';
    const v = verdict(DELETE, 0, 2, [gfn(5n, { ...S1, userspaceAddr: U + PAGE })]);
    expect(v.ok ? null : [v.rule, v.detail.split('\n')[0]]).toEqual(['MS-ATM-05', `gfn_to_memslot(0x5) -> ${bad}: no published state has this slot`]);
  });

  it('[MS-ATM-05] slots are compared field by field: another address space, id, host address or bitmap is another slot', () => {
    for (const other of [
      { ...S1, asId: 1 },
      { ...S1, id: 2 },
      { ...S1, userspaceAddr: U + PAGE },
      { ...S1, dirtyBitmap: 0 },
      { ...S1, npages: 3n },
      { ...S1, flags: 1 },
    ]) {
      expect(
        sameSlot(S1, other),
        JSON.stringify(other, (_k, x: unknown) => (typeof x === 'bigint' ? String(x) : x)),
      ).toBe(false);
      const v = verdict(DELETE, 0, 2, [byId(1, other)]);
      expect(v.ok ? 'ok' : v.rule).toBe('MS-ATM-05');
    }
    expect(sameSlot(S1, { ...S1 })).toBe(true);
  });

  it('[MS-ATM-05][MS-LKP-08] a visibility answer is compared: not visible before the DELETE published is a later state', () => {
    expect(verdict(DELETE, 0, 0, [visible(5n, false)])).toEqual({
      ok: false,
      rule: 'MS-ATM-02',
      detail: [
        `state 1 (${T1}), outside the window [0, 0], explains every answer`,
        `  state 0 (${T0}): observation 1 (is_visible_gfn(0x5) -> false) should be true`,
        'the reader saw:',
        '  1. is_visible_gfn(0x5) -> false',
      ].join('\n'),
    });
  });

  it('[MS-ATM-05][MS-LKP-09][MS-LKP-10][MS-LKP-11] hva answers are compared by address and by error', () => {
    // The INVALID copy gives KVM_HVA_ERR_BAD: the read-only error is another answer.
    expect(verdict(DELETE, 1, 1, [hva(5n, 'KVM_HVA_ERR_RO_BAD', true)])).toEqual({
      ok: false,
      rule: 'MS-ATM-01',
      detail: [
        'no single state of the window [1, 1] gives every answer',
        `  state 1 (${T1}): observation 1 (gfn_to_hva(0x5, write) -> KVM_HVA_ERR_RO_BAD) should be KVM_HVA_ERR_BAD`,
        'the reader saw:',
        '  1. gfn_to_hva(0x5, write) -> KVM_HVA_ERR_RO_BAD',
      ].join('\n'),
    });
    // A host address off by a page is another answer.
    expect(verdict(DELETE, 0, 0, [hva(5n, U)])).toEqual({
      ok: false,
      rule: 'MS-ATM-01',
      detail: [
        'no single state of the window [0, 0] gives every answer',
        `  state 0 (${T0}): observation 1 (gfn_to_hva(0x5, read) -> 0x110000) should be 0x111000`,
        'the reader saw:',
        '  1. gfn_to_hva(0x5, read) -> 0x110000',
      ].join('\n'),
    });
    expect(verdict(DELETE, 0, 0, [hva(5n, U + PAGE), hva(4n, U, true)])).toEqual({ ok: true, state: 0 });
  });

  it('a state with several slots is listed slot by slot', () => {
    const v = verdict(CREATE, 1, 1, [byId(2, null)]);
    expect(v.ok ? null : v.detail.split('\n').slice(0, 2)).toEqual([
      `state 0 (${T0}), outside the window [1, 1], explains every answer`,
      `  state 1 (gen 7: ${S1_TEXT}; slot 2 gfn 0x10+1 flags 0x0 uaddr 0x200000): observation 1 (id_to_memslot(2) -> none) should be slot 2 gfn 0x10+1 flags 0x0 uaddr 0x200000`,
    ]);
  });
});

describe('the text helpers of reports', () => {
  it('slotText: none, flags without the INVALID bit and INVALID spelled out, the bitmap when there is one', () => {
    expect(slotText(null)).toBe('none');
    expect(slotText(S1)).toBe(S1_TEXT);
    expect(slotText({ ...S1, flags: KVM_MEMSLOT_INVALID | 3 })).toBe('slot 1 gfn 0x4+2 flags 0x3 INVALID uaddr 0x110000');
    expect(slotText({ ...S1, flags: 1, dirtyBitmap: 4 })).toBe('slot 1 gfn 0x4+2 flags 0x1 uaddr 0x110000 bitmap 4');
  });

  it('generationText spells out bit 63', () => {
    expect(generationText(6n)).toBe('6');
    expect(generationText(0n)).toBe('0');
    expect(generationText(6n | IN_PROGRESS)).toBe('6|IN_PROGRESS');
  });

  it('observationText: one line per kind of question', () => {
    expect(observationText(g(7n))).toBe('generation -> 7');
    expect(observationText(byId(3, null))).toBe('id_to_memslot(3) -> none');
    expect(observationText(gfn(0x1fn, S1))).toBe(`gfn_to_memslot(0x1f) -> ${S1_TEXT}`);
    expect(observationText({ kind: 'vcpu', vcpu: 2, gfn: 0xan, answer: null })).toBe('vcpu2 gfn_to_memslot(0xa) -> none');
    expect(observationText(hva(0x5n, 0x111000n))).toBe('gfn_to_hva(0x5, read) -> 0x111000');
    expect(observationText(hva(0x5n, 'KVM_HVA_ERR_RO_BAD', true))).toBe('gfn_to_hva(0x5, write) -> KVM_HVA_ERR_RO_BAD');
    expect(observationText(visible(0x5n, true))).toBe('is_visible_gfn(0x5) -> true');
  });
});
