/**
 * What a reader may see while requests publish (spec/45-atomicity.md): the history of the
 * states published for an address space, and the check that one state of a reader's window
 * explains everything the reader saw. Linear and literal, like the rest of the model: every
 * candidate state is tried against every observation.
 */
import type { RuleId } from '../spec/rules.js';
import { gfnToHva, gfnToMemslot, idToMemslot, isVisibleGfn } from './lookup.js';
import { space, type VmState } from './state.js';
import { KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS, KVM_MEMSLOT_INVALID, hex, type Gfn, type HvaResult, type Memslot } from './types.js';

/** One answer a reader got, with the question it asked. */
export type ReadObservation =
  | { readonly kind: 'generation'; readonly answer: bigint }
  | { readonly kind: 'id'; readonly id: number; readonly answer: Memslot | null }
  | { readonly kind: 'gfn'; readonly gfn: Gfn; readonly answer: Memslot | null }
  | { readonly kind: 'hva'; readonly gfn: Gfn; readonly write: boolean; readonly answer: HvaResult }
  | { readonly kind: 'visible'; readonly gfn: Gfn; readonly answer: boolean }
  | { readonly kind: 'vcpu'; readonly vcpu: number; readonly gfn: Gfn; readonly answer: Memslot | null };

/**
 * The states of the history a reader may have dereferenced: `history[first..last]`. The swap
 * of `history[first]` was over when the reader entered; each later state may still have been
 * in its swap.
 */
export interface ReaderWindow {
  readonly first: number;
  readonly last: number;
}

/** The verdict on one reader: the index of a state that explains it, or the rule it breaks. */
export type ReaderVerdict =
  | { readonly ok: true; readonly state: number }
  | { readonly ok: false; readonly rule: RuleId; readonly detail: string };

/**
 * The states of address space `asId` that a request made current, in publish order: the
 * entries of its step's `published` list whose generation of `asId` differs from the one
 * before (a request publishes only in its own address space; internal slots, in each).
 * [MS-ATM-05] A DELETE or MOVE contributes its INVALID-copy state first: a reader may hold it.
 */
export function publishedStates(asId: number, before: VmState, published: readonly VmState[]): VmState[] {
  const out: VmState[] = [];
  let generation = space(before, asId).generation;
  for (const vm of published) {
    const g = space(vm, asId).generation;
    if (g !== generation) out.push(vm);
    generation = g;
  }
  return out;
}

/**
 * Decides whether one state of `history[window.first..window.last]` explains every
 * observation of a reader of `asId` (spec/45-atomicity.md, "What the oracle accepts").
 * @returns the first such state, or the most specific rule the observations break.
 */
export function checkReader(
  history: readonly VmState[],
  asId: number,
  window: ReaderWindow,
  log: readonly ReadObservation[],
): ReaderVerdict {
  if (window.first < 0 || window.last >= history.length || window.first > window.last) {
    throw new RangeError(`window [${window.first}, ${window.last}] outside a history of ${history.length} states`);
  }
  // [MS-ATM-04] Bit 63 is cleared once, at the end of the swap: it never comes back.
  const settledAt = log.findIndex((o) => o.kind === 'generation' && (o.answer & KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS) === 0n);
  const backAt = settledAt < 0 ? -1 : log.findIndex((o, k) => k > settledAt && o.kind === 'generation' && (o.answer & KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS) !== 0n);
  if (backAt >= 0) {
    return fail('MS-ATM-04', `observation ${backAt + 1} reads an in-progress generation after observation ${settledAt + 1} read a settled one`, log);
  }

  const inWindow = range(window.first, window.last);
  const judge = (i: number, keep: (o: ReadObservation) => boolean): string | null =>
    firstMismatch(history, asId, i, i > window.first, log, keep);

  // [MS-ATM-01] One state explains every answer.
  const all = (): boolean => true;
  const explained = inWindow.find((i) => judge(i, all) === null);
  if (explained !== undefined) return { ok: true, state: explained };

  const why = inWindow.map((i) => `  state ${i} (${stateText(history, asId, i)}): ${judge(i, all)}`).join('\n');
  // [MS-ATM-06] Only the vCPU answers are wrong: a cached slot outlived its generation.
  if (inWindow.some((i) => judge(i, (o) => o.kind !== 'vcpu') === null)) {
    return fail('MS-ATM-06', `a vCPU lookup answered from a stale cache; no state of the window gives its answer\n${why}`, log);
  }
  // [MS-ATM-03] [MS-ATM-04] Only the generations are wrong.
  if (inWindow.some((i) => judge(i, (o) => o.kind !== 'generation') === null)) {
    const inProgress = log.some((o) => o.kind === 'generation' && (o.answer & KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS) !== 0n);
    const rule: RuleId = inProgress ? 'MS-ATM-03' : 'MS-ATM-04';
    return fail(rule, `the answers fit a state of the window, the generations do not\n${why}`, log);
  }
  // [MS-ATM-02] A state outside the window explains everything: the reader saw the wrong one.
  const outside = range(0, history.length - 1).find((i) => (i < window.first || i > window.last) && judge(i, all) === null);
  if (outside !== undefined) {
    return fail('MS-ATM-02', `state ${outside}, outside the window [${window.first}, ${window.last}], explains every answer\n${why}`, log);
  }
  // [MS-ATM-05] A slot that no state of the window has: half changed.
  const stray = log.find((o) => {
    const slot = slotOf(o);
    return slot !== null && !inWindow.some((i) => space(history[i]!, asId).slots.some((s) => sameSlot(s, slot)));
  });
  if (stray !== undefined) {
    return fail('MS-ATM-05', `${observationText(stray)}: no state of the window has this slot\n${why}`, log);
  }
  // [MS-ATM-01] Every answer exists in some state, but no one state gives them all: a torn set.
  return fail('MS-ATM-01', `no single state of the window [${window.first}, ${window.last}] gives every answer\n${why}`, log);
}

/**
 * The first observation (among those `keep` selects) that `history[i]` does not explain, as
 * text, or null when it explains them all. `inSwapPossible`: the reader may have read the
 * generation of `history[i]` while its swap was in progress.
 */
function firstMismatch(
  history: readonly VmState[],
  asId: number,
  i: number,
  inSwapPossible: boolean,
  log: readonly ReadObservation[],
  keep: (o: ReadObservation) => boolean,
): string | null {
  const vm = history[i]!;
  for (const [k, o] of log.entries()) {
    if (!keep(o)) continue;
    let expected: string;
    switch (o.kind) {
      case 'generation': {
        // [MS-ATM-04] The final generation.
        const settled = space(vm, asId).generation;
        if (o.answer === settled) continue;
        // [MS-ATM-03] During the swap: the replaced state's generation with bit 63.
        const during = i > 0 && inSwapPossible ? space(history[i - 1]!, asId).generation | KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS : null;
        if (o.answer === during) continue;
        expected = during === null ? generationText(settled) : `${generationText(settled)} or ${generationText(during)}`;
        break;
      }
      case 'id': {
        const want = idToMemslot(vm, asId, o.id);
        if (sameSlotOrNone(o.answer, want)) continue;
        expected = slotText(want);
        break;
      }
      case 'gfn': {
        const want = gfnToMemslot(vm, asId, o.gfn);
        if (sameSlotOrNone(o.answer, want)) continue;
        expected = slotText(want);
        break;
      }
      case 'vcpu': {
        // [MS-ATM-06] The vCPU's cache never changes the answer of the state it looks up.
        const want = gfnToMemslot(vm, asId, o.gfn);
        if (sameSlotOrNone(o.answer, want)) continue;
        expected = slotText(want);
        break;
      }
      case 'hva': {
        // [MS-ATM-05] An INVALID copy gives KVM_HVA_ERR_BAD (MS-LKP-09).
        const want = gfnToHva(vm, asId, o.gfn, o.write);
        if (sameHva(o.answer, want)) continue;
        expected = hvaText(want);
        break;
      }
      case 'visible': {
        // [MS-ATM-05] An INVALID copy is not visible (MS-LKP-08).
        const want = isVisibleGfn(vm, asId, o.gfn);
        if (o.answer === want) continue;
        expected = String(want);
        break;
      }
    }
    return `observation ${k + 1} (${observationText(o)}) should be ${expected}`;
  }
  return null;
}

function fail(rule: RuleId, detail: string, log: readonly ReadObservation[]): ReaderVerdict {
  const seen = log.map((o, k) => `  ${k + 1}. ${observationText(o)}`).join('\n');
  return { ok: false, rule, detail: `${detail}\nthe reader saw:\n${seen}` };
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i <= to; i++) out.push(i);
  return out;
}

function slotOf(o: ReadObservation): Memslot | null {
  return o.kind === 'id' || o.kind === 'gfn' || o.kind === 'vcpu' ? o.answer : null;
}

/** Field by field: implementations hand out their own slot objects. */
export function sameSlot(a: Memslot, b: Memslot): boolean {
  return (
    a.asId === b.asId &&
    a.id === b.id &&
    a.baseGfn === b.baseGfn &&
    a.npages === b.npages &&
    a.flags === b.flags &&
    a.userspaceAddr === b.userspaceAddr &&
    a.dirtyBitmap === b.dirtyBitmap
  );
}

function sameSlotOrNone(a: Memslot | null, b: Memslot | null): boolean {
  return a === null || b === null ? a === b : sameSlot(a, b);
}

function sameHva(a: HvaResult, b: HvaResult): boolean {
  if (a.ok && b.ok) return a.hva === b.hva;
  if (!a.ok && !b.ok) return a.error === b.error;
  return false;
}

/** A slot in one line: `slot 1 gfn 0x4+2 flags 0x1 INVALID uaddr 0x110000 bitmap 0`. */
export function slotText(s: Memslot | null): string {
  if (s === null) return 'none';
  const invalid = (s.flags & KVM_MEMSLOT_INVALID) !== 0 ? ' INVALID' : '';
  const flags = s.flags & ~KVM_MEMSLOT_INVALID;
  const bitmap = s.dirtyBitmap === null ? '' : ` bitmap ${s.dirtyBitmap}`;
  return `slot ${s.id} gfn ${hex(s.baseGfn)}+${s.npages} flags ${hex(flags)}${invalid} uaddr ${hex(s.userspaceAddr)}${bitmap}`;
}

function hvaText(r: HvaResult): string {
  return r.ok ? hex(r.hva) : r.error;
}

/** An observation in one line: the question, an arrow, the answer. */
export function observationText(o: ReadObservation): string {
  switch (o.kind) {
    case 'generation':
      return `generation -> ${generationText(o.answer)}`;
    case 'id':
      return `id_to_memslot(${o.id}) -> ${slotText(o.answer)}`;
    case 'gfn':
      return `gfn_to_memslot(${hex(o.gfn)}) -> ${slotText(o.answer)}`;
    case 'vcpu':
      return `vcpu${o.vcpu} gfn_to_memslot(${hex(o.gfn)}) -> ${slotText(o.answer)}`;
    case 'hva':
      return `gfn_to_hva(${hex(o.gfn)}, ${o.write ? 'write' : 'read'}) -> ${hvaText(o.answer)}`;
    case 'visible':
      return `is_visible_gfn(${hex(o.gfn)}) -> ${o.answer}`;
  }
}

/** A generation, with bit 63 spelled out: `6`, or `6|IN_PROGRESS`. */
export function generationText(g: bigint): string {
  return (g & KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS) !== 0n ? `${g & ~KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS}|IN_PROGRESS` : `${g}`;
}

function stateText(history: readonly VmState[], asId: number, i: number): string {
  const sp = space(history[i]!, asId);
  const slots = sp.slots.map(slotText).join('; ');
  return `gen ${sp.generation}: ${slots === '' ? 'no slots' : slots}`;
}
