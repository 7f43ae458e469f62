/**
 * What a reader may see while requests publish (spec/45-atomicity.md): the history of the
 * states published for an address space, and the check that one state of a reader's window
 * explains everything the reader saw. Literal: every candidate state is tried against every
 * observation.
 */
import type { RuleId } from '../spec/rules.js';
import { gfnToHva, gfnToMemslot, idToMemslot, isVisibleGfn } from './lookup.js';
import { memslots, space, type VmState } from './state.js';
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
export type ReaderVerdict = { readonly ok: true; readonly state: number } | { readonly ok: false; readonly rule: RuleId; readonly detail: string };

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
export function checkReader(history: readonly VmState[], asId: number, window: ReaderWindow, log: readonly ReadObservation[]): ReaderVerdict {
  if (window.first < 0 || window.last >= history.length || window.first > window.last) {
    throw new RangeError(`window [${window.first}, ${window.last}] outside a history of ${history.length} states`);
  }
  // [MS-ATM-04] Bit 63 is cleared once, at the end of the swap: it never comes back.
  const settledAt = log.findIndex((o) => o.kind === 'generation' && (o.answer & KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS) === 0n);
  // Stryker disable next-line EqualityOperator: observation settledAt itself is settled, so `>=` finds the same
  const backAt =
    settledAt < 0 ? -1 : log.findIndex((o, k) => k > settledAt && o.kind === 'generation' && (o.answer & KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS) !== 0n);
  // Stryker disable next-line EqualityOperator: backAt is never 0 (it comes after settledAt)
  if (backAt >= 0) {
    return fail('MS-ATM-04', `observation ${backAt + 1} reads an in-progress generation after observation ${settledAt + 1} read a settled one`, log);
  }

  // [MS-ATM-03] A state's in-progress generation is possible only while its swap may have been
  // running during the read section: not for history[first], whose swap ended before entry.
  // (States outside the window get both values: they serve only to name what went wrong.)
  const explains = (i: number, o: ReadObservation): boolean => mismatch(history, asId, i, i > 0 && i !== window.first, o) === null;
  const inWindow = range(window.first, window.last);

  // [MS-ATM-01] One state of the window explains every answer.
  const explained = inWindow.find((i) => log.every((o) => explains(i, o)));
  if (explained !== undefined) return { ok: true, state: explained };

  const why = inWindow.map((i) => `  state ${i} (${stateText(history, asId, i)}): ${firstMismatch(history, asId, i, i !== window.first, log)}`).join('\n');
  // Which states give each answer: before the window, in it, after it.
  const all = range(0, history.length - 1);
  const sources = log.map((o) => {
    const by = all.filter((i) => explains(i, o));
    // `before` is read only with !inside (any source then is before or after) or when no state gives the answer.
    // Stryker disable next-line ConditionalExpression,EqualityOperator: a state at window.first is inside too, and any source counts only when none is inside
    const before = by.some((i) => i < window.first);
    // Stryker disable next-line EqualityOperator: a state at window.last is inside too
    const after = by.some((i) => i > window.last);
    return { o, before, inside: by.some((i) => i >= window.first && i <= window.last), after };
  });
  // [MS-ATM-06] A vCPU answer that no state of the window or after it gives: a cached slot that
  // outlived the generation it was cached at.
  const stale = sources.find((x) => x.o.kind === 'vcpu' && !x.inside && !x.after);
  if (stale !== undefined) {
    return fail('MS-ATM-06', `${observationText(stale.o)}: no state of the window or after it gives this vCPU answer: a stale cached slot\n${why}`, log);
  }
  // [MS-ATM-03] [MS-ATM-04] A generation that no state of the history has, settled or in progress.
  const foreign = sources.find((x) => x.o.kind === 'generation' && !x.before && !x.inside && !x.after);
  // Stryker disable next-line ConditionalExpression: the kind test is for the type only: foreign is a generation
  if (foreign !== undefined && foreign.o.kind === 'generation') {
    const g = foreign.o.answer;
    // A state's in-progress value read after its swap was over breaks MS-ATM-04; any other
    // value with bit 63 is not the in-progress value MS-ATM-03 prescribes.
    const someInProgress = all.some((i) => i > 0 && g === (space(history[i - 1]!, asId).generation | KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS));
    const rule: RuleId = (g & KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS) !== 0n && !someInProgress ? 'MS-ATM-03' : 'MS-ATM-04';
    return fail(rule, `${observationText(foreign.o)}: no state of the history has this generation at this time\n${why}`, log);
  }
  // [MS-ATM-02] The reader saw a state published after it entered, or one replaced before.
  // Stryker disable next-line ConditionalExpression,EqualityOperator: no state of the window explains every answer (tried above)
  const outside = all.find((i) => (i < window.first || i > window.last) && log.every((o) => explains(i, o)));
  if (outside !== undefined) {
    const it = `state ${outside} (${stateText(history, asId, outside)})`;
    return fail('MS-ATM-02', `${it}, outside the window [${window.first}, ${window.last}], explains every answer\n${why}`, log);
  }
  const elsewhere = sources.find((x) => !x.inside && (x.before || x.after));
  if (elsewhere !== undefined) {
    const when = elsewhere.after ? 'published after the reader entered' : 'replaced before the reader entered';
    return fail('MS-ATM-02', `${observationText(elsewhere.o)}: only states ${when} give this answer\n${why}`, log);
  }
  // [MS-ATM-05] A slot that no published state has whole: half changed.
  const stray = log.find((o) => {
    const slot = slotOf(o);
    return slot !== null && !history.some((vm) => memslots(vm, asId).some((s) => sameSlot(s, slot)));
  });
  if (stray !== undefined) {
    return fail('MS-ATM-05', `${observationText(stray)}: no published state has this slot\n${why}`, log);
  }
  // [MS-ATM-01] Otherwise no one state gives every answer: a torn set.
  return fail('MS-ATM-01', `no single state of the window [${window.first}, ${window.last}] gives every answer\n${why}`, log);
}

/** The first observation of `log` that `history[i]` does not explain, as text. */
function firstMismatch(history: readonly VmState[], asId: number, i: number, inSwapPossible: boolean, log: readonly ReadObservation[]): string {
  for (const [k, o] of log.entries()) {
    // Stryker disable next-line ConditionalExpression,EqualityOperator: state 0 is only ever window.first, so inSwapPossible is false there
    const m = mismatch(history, asId, i, i > 0 && inSwapPossible, o);
    if (m !== null) return `observation ${k + 1} (${observationText(o)}) should be ${m}`;
  }
  // Stryker disable next-line StringLiteral: unreachable, called only for window states that do not explain every answer
  return 'explains every answer';
}

/**
 * What `history[i]` answers to the question of `o`, as text, when that is not what the reader
 * got; null when it is. `inSwapPossible`: the reader may have read the generation while the
 * swap of `history[i]` was in progress.
 */
function mismatch(history: readonly VmState[], asId: number, i: number, inSwapPossible: boolean, o: ReadObservation): string | null {
  const vm = history[i]!;
  switch (o.kind) {
    case 'generation': {
      // [MS-ATM-04] The final generation.
      const settled = space(vm, asId).generation;
      // [MS-ATM-03] During the swap: the replaced state's generation with bit 63.
      const during = inSwapPossible ? space(history[i - 1]!, asId).generation | KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS : null;
      if (o.answer === settled || o.answer === during) return null;
      return during === null ? generationText(settled) : `${generationText(settled)} or ${generationText(during)}`;
    }
    case 'id': {
      const want = idToMemslot(vm, asId, o.id);
      return sameSlotOrNone(o.answer, want) ? null : slotText(want);
    }
    case 'gfn':
    // [MS-ATM-06] The vCPU's cache never changes the answer of the state it looks up.
    case 'vcpu': {
      const want = gfnToMemslot(vm, asId, o.gfn);
      return sameSlotOrNone(o.answer, want) ? null : slotText(want);
    }
    case 'hva': {
      // [MS-ATM-05] An INVALID copy gives KVM_HVA_ERR_BAD (MS-LKP-09).
      const want = gfnToHva(vm, asId, o.gfn, o.write);
      return sameHva(o.answer, want) ? null : hvaText(want);
    }
    case 'visible': {
      // [MS-ATM-05] An INVALID copy is not visible (MS-LKP-08).
      const want = isVisibleGfn(vm, asId, o.gfn);
      return o.answer === want ? null : String(want);
    }
  }
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
  // Stryker disable next-line ConditionalExpression,StringLiteral: a vCPU answer no state gives is named MS-ATM-06 first
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
  return a.ok ? b.ok && a.hva === b.hva : !b.ok && a.error === b.error;
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
  const slots = memslots(history[i]!, asId).map(slotText).join('; ');
  return `gen ${sp.generation}: ${slots === '' ? 'no slots' : slots}`;
}
