/**
 * Readers while a request publishes (spec/45-atomicity.md): MS-ATM-01 .. MS-ATM-06 through the
 * model's reader check, on the chapter's own example (a DELETE of slot 1, gfn 0x4, 2 pages, at
 * generation 6) and on a MOVE.
 */
import { describe, expect, it } from 'vitest';
import {
  KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS as IN_PROGRESS,
  KVM_MEMSLOT_INVALID,
  checkReader,
  createVm,
  publishedStates,
  setInternalMemslot,
  setUserMemoryRegion,
  type MemoryRegion,
  type Memslot,
  type ReadObservation,
  type ReaderVerdict,
  type VmState,
} from '../../model/index.js';
import type { RuleId } from '../../spec/rules.js';
import { GPA_LIMIT, NOSMM, PAGE, X86, at, build, del, expectTitleCites, gen, memslot, region, slotsOf } from './helpers.js';

const U = 0x11_0000n;
const R1 = region(1, 0x4000n, 2n * PAGE, U);
const S1 = memslot(0, 1, 4n, 2n, U);
const S1_INVALID = { ...S1, flags: KVM_MEMSLOT_INVALID };

/** Chapter 45's example VM: slot 1 at gfn 0x4, 2 pages, flags 0, generation 6. */
function atGeneration6(): VmState {
  const vm = build(NOSMM, [region(2, 0x1_0000n, PAGE, 0x20_0000n), R1, del(2), { ...R1, flags: 1 }, R1]);
  expect(gen(vm)).toBe(6n);
  expect(slotsOf(vm)).toEqual([S1]);
  return vm;
}

/** `h0` (before `r`) followed by the states `r` publishes in address space `asId`. */
function history(before: VmState, r: MemoryRegion, asId = 0): VmState[] {
  const s = setUserMemoryRegion(before, r);
  return [before, ...publishedStates(asId, before, s.published)];
}

const h0 = atGeneration6();
/** [h0, h1 (slot 1 INVALID, generation 7), h2 (no slot 1, generation 8)] */
const DELETE = history(h0, del(1));
/** [h0, h1 (slot 1 INVALID at gfn 4, generation 7), h2 (slot 1 at gfn 0x10, generation 8)] */
const MOVE = history(h0, { ...R1, guestPhysAddr: 0x1_0000n });
const S1_MOVED = { ...S1, baseGfn: 0x10n };

const g = (answer: bigint): ReadObservation => ({ kind: 'generation', answer });
const gfn = (n: bigint, answer: Memslot | null): ReadObservation => ({ kind: 'gfn', gfn: n, answer });
const byId = (id: number, answer: Memslot | null): ReadObservation => ({ kind: 'id', id, answer });
const hva = (n: bigint, ok: bigint | 'KVM_HVA_ERR_BAD'): ReadObservation => ({
  kind: 'hva',
  gfn: n,
  write: false,
  answer: ok === 'KVM_HVA_ERR_BAD' ? { ok: false, error: ok } : { ok: true, hva: ok },
});
const visible = (n: bigint, answer: boolean): ReadObservation => ({ kind: 'visible', gfn: n, answer });
const vcpu = (n: bigint, answer: Memslot | null): ReadObservation => ({ kind: 'vcpu', vcpu: 0, gfn: n, answer });

function expectAccepted(h: readonly VmState[], first: number, last: number, log: readonly ReadObservation[], state: number): void {
  expect(checkReader(h, 0, { first, last }, log)).toEqual({ ok: true, state });
}
/**
 * Rejection is exact; the rule a rejection names is the checker's best guess at the most
 * specific one (spec/45-atomicity.md, "What the oracle accepts"), so it must be an ATM rule
 * but need not be the one the title cites.
 */
function expectRejected(h: readonly VmState[], first: number, last: number, log: readonly ReadObservation[], rule: RuleId): void {
  const v: ReaderVerdict = checkReader(h, 0, { first, last }, log);
  expect(v.ok).toBe(false);
  if (!v.ok) expect(v.rule).toMatch(/^MS-ATM-0\d$/);
  expectTitleCites(rule);
}

describe('the history a request publishes', () => {
  it('[MS-ATM-05][MS-GEN-03] a DELETE adds two states: the INVALID copy (generation 7), then no slot (generation 8)', () => {
    expect(DELETE).toHaveLength(3);
    expect(DELETE.map((s) => gen(s))).toEqual([6n, 7n, 8n]);
    expect(slotsOf(at(DELETE, 1))).toEqual([S1_INVALID]);
    expect(slotsOf(at(DELETE, 2))).toEqual([]);
  });
  it('[MS-ATM-02][MS-GEN-04] a rejected or no-op request adds nothing to the history', () => {
    expect(history(h0, R1)).toEqual([h0]);
    expect(history(h0, del(9))).toEqual([h0]);
  });
  it('[MS-ATM-05][MS-GEN-05] a reverted MOVE adds the INVALID copy and then the slot unchanged', () => {
    const h = history(h0, { ...R1, guestPhysAddr: GPA_LIMIT });
    expect(h.map((s) => slotsOf(s))).toEqual([[S1], [S1_INVALID], [S1]]);
  });
  it('[MS-ATM-02][MS-INT-03] x86_64: an internal slot create publishes once per address space; each history has only its own', () => {
    const vm = createVm(X86);
    const s = setInternalMemslot(vm, 32765, 0xfee0_0000n, PAGE, U);
    const as0 = publishedStates(0, vm, s.published);
    const as1 = publishedStates(1, vm, s.published);
    expect(as0).toEqual([at(s.published, 0)]);
    expect(as1).toEqual([at(s.published, 1)]);
    expect([gen(at(as0, 0), 0), gen(at(as1, 0), 1)]).toEqual([2n, 3n]);
  });
});

describe('[MS-ATM-01] one state per reader', () => {
  it('[MS-ATM-01] a reader that entered before the DELETE sees slot 1 whole for its whole read section, whatever is published meanwhile', () => {
    const log = [gfn(5n, S1), hva(5n, U + PAGE), visible(5n, true), byId(1, S1), g(6n), gfn(4n, S1)];
    expectAccepted(DELETE, 0, 0, log, 0);
  });
  it('[MS-ATM-01] a reader that entered before the first publish and sees slot 1 whole, then no slot at gfn 0x5, breaks MS-ATM-01', () => {
    expectRejected(DELETE, 0, 0, [gfn(5n, S1), gfn(5n, null)], 'MS-ATM-01');
  });
  it('[MS-ATM-01] a reader of the whole DELETE window seeing the INVALID copy and then no slot at all is torn', () => {
    expectRejected(DELETE, 0, 2, [gfn(5n, S1_INVALID), byId(1, null)], 'MS-ATM-01');
  });
  it('[MS-ATM-01] during a MOVE, the slot at both places (old gfn and new gfn, each whole) is a torn read', () => {
    expectRejected(MOVE, 0, 2, [gfn(4n, S1), gfn(0x10n, S1_MOVED)], 'MS-ATM-01');
  });
  it('[MS-ATM-01] a window outside the history is a caller error', () => {
    expect(() => checkReader(DELETE, 0, { first: 0, last: 3 }, [])).toThrow(RangeError);
    expect(() => checkReader(DELETE, 0, { first: 2, last: 1 }, [])).toThrow(RangeError);
  });
});

describe('[MS-ATM-02] the state current at entry', () => {
  it('[MS-ATM-02] a reader that entered while the DELETE ran may see the INVALID copy (h1)', () => {
    expectAccepted(DELETE, 0, 2, [gfn(5n, S1_INVALID), hva(5n, 'KVM_HVA_ERR_BAD'), visible(5n, false)], 1);
  });
  it('[MS-ATM-02] a reader that entered while the DELETE ran may see any whole state of its window', () => {
    expectAccepted(DELETE, 0, 2, [gfn(5n, S1)], 0);
    expectAccepted(DELETE, 0, 2, [gfn(5n, null), byId(1, null)], 2);
  });
  it('[MS-ATM-02] a reader that entered before the DELETE (window h0) but sees the final state saw a state published after it entered', () => {
    expectRejected(DELETE, 0, 0, [gfn(5n, null), g(8n)], 'MS-ATM-02');
  });
  it('[MS-ATM-02] a reader that entered after the DELETE (window h2) but sees slot 1 whole saw a replaced state', () => {
    expectRejected(DELETE, 2, 2, [byId(1, S1), g(6n)], 'MS-ATM-02');
  });
});

describe('[MS-ATM-03][MS-ATM-04] generations', () => {
  const bit = (n: bigint) => n | IN_PROGRESS;
  it('[MS-ATM-03] a reader of h1 during its swap reads 6 | 2^63, then (swap over) 7', () => {
    expectAccepted(DELETE, 0, 2, [g(bit(6n)), gfn(5n, S1_INVALID), g(7n)], 1);
  });
  it('[MS-ATM-03] a reader of h2 during its swap reads 7 | 2^63', () => {
    expectAccepted(DELETE, 0, 2, [gfn(5n, null), g(bit(7n)), g(8n)], 2);
  });
  it('[MS-ATM-03] a reader that entered between requests (window h0) cannot read an in-progress generation', () => {
    expectRejected(DELETE, 0, 0, [g(bit(6n))], 'MS-ATM-03');
    expectRejected(DELETE, 0, 0, [g(bit(5n)), gfn(5n, S1)], 'MS-ATM-03');
  });
  it('[MS-ATM-03] the wrong in-progress value for the state seen (6 | 2^63 with h2 answers) is rejected', () => {
    expectRejected(DELETE, 0, 2, [gfn(5n, null), g(bit(6n))], 'MS-ATM-03');
  });
  it('[MS-ATM-04] a reader that entered after the DELETE reads only 8', () => {
    expectAccepted(DELETE, 2, 2, [g(8n), byId(1, null)], 2);
    expectRejected(DELETE, 2, 2, [g(7n), byId(1, null)], 'MS-ATM-04');
  });
  it('[MS-ATM-04] a reader that read the settled 7 never reads 6 | 2^63 afterwards', () => {
    expectRejected(DELETE, 0, 2, [g(7n), g(bit(6n))], 'MS-ATM-04');
  });
  it('[MS-ATM-04] a settled generation of another state than the answers (7 with h0 answers) is rejected', () => {
    expectRejected(DELETE, 0, 2, [gfn(5n, S1), g(7n)], 'MS-ATM-04');
  });
});

describe('[MS-ATM-05] INVALID, never half-moved', () => {
  it('[MS-ATM-05] during a MOVE a reader may see slot 1 whole at gfn 4, INVALID at gfn 4, or whole at gfn 0x10', () => {
    expectAccepted(MOVE, 0, 2, [byId(1, S1), gfn(4n, S1)], 0);
    expectAccepted(MOVE, 0, 2, [byId(1, S1_INVALID), gfn(4n, S1_INVALID), hva(4n, 'KVM_HVA_ERR_BAD'), visible(4n, false)], 1);
    expectAccepted(MOVE, 0, 2, [byId(1, S1_MOVED), gfn(0x10n, S1_MOVED), gfn(4n, null), hva(0x11n, U + PAGE)], 2);
  });
  it('[MS-ATM-05] the INVALID copy is never at the new place: a half-moved slot is rejected', () => {
    expectRejected(MOVE, 0, 2, [byId(1, { ...S1_MOVED, flags: KVM_MEMSLOT_INVALID })], 'MS-ATM-05');
  });
  it('[MS-ATM-05] a moved slot with the old base and the new size of another slot (a field mix) is rejected', () => {
    expectRejected(MOVE, 0, 2, [gfn(4n, { ...S1, npages: 12n })], 'MS-ATM-05');
  });
  it('[MS-ATM-05][MS-ATM-01] during a DELETE the INVALID copy translates to KVM_HVA_ERR_BAD; a host address next to it is a torn read', () => {
    expectRejected(DELETE, 1, 1, [gfn(5n, S1_INVALID), hva(5n, U + PAGE)], 'MS-ATM-01');
  });
});

describe('[MS-ATM-06] vCPU cache across publishes', () => {
  it('[MS-ATM-06] a vCPU lookup answers like gfn_to_memslot on the reader state, across the swap (bit 63 cleared)', () => {
    expectAccepted(MOVE, 0, 2, [g(6n | IN_PROGRESS), vcpu(4n, S1_INVALID), g(7n), vcpu(4n, S1_INVALID)], 1);
    expectAccepted(MOVE, 2, 2, [vcpu(4n, null), vcpu(0x10n, S1_MOVED)], 2);
  });
  it('[MS-ATM-06] a vCPU that kept the slot cached under h0 after the MOVE (window h2) is rejected', () => {
    expectRejected(MOVE, 2, 2, [gfn(0x10n, S1_MOVED), vcpu(4n, S1)], 'MS-ATM-06');
  });
  it('[MS-ATM-06] a vCPU that kept the slot cached while the generation only lost bit 63 is rejected', () => {
    expectRejected(MOVE, 0, 2, [g(6n | IN_PROGRESS), gfn(4n, S1_INVALID), g(7n), vcpu(4n, S1)], 'MS-ATM-06');
  });
});
