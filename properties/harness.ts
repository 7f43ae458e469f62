/**
 * The step: apply one resolved op to the model and the implementation, compare the answers,
 * compare the whole observable state, check the invariants on the implementation's state, and
 * count the rules that fired. Every command's run() is `step(box, impl, this.resolve(box))`.
 */
import { match } from 'ts-pattern';
import * as model from '../model/index.js';
import { InvariantError, type Gfn, type Memslot, type ObservableState, type Profile } from '../model/index.js';
import type { RuleId } from '../spec/rules.js';
import type { MemslotImpl } from '../impl/interface.js';
import { Coverage } from './coverage.js';
import { hitsText, hvaText, opCall, slotText, type Op } from './ops.js';

const INV_RULES: readonly RuleId[] = ['MS-INV-01', 'MS-INV-02', 'MS-INV-03', 'MS-INV-04', 'MS-INV-05', 'MS-INV-06', 'MS-INV-07'];

/** What a vCPU looked up last: the suite re-asks these gfns after later changes ([MS-LKP-07]). */
export interface VcpuMemory {
  gfns: Gfn[];
  asId: number;
  generation: bigint;
}

/** What one request did: the model's answer and every rule that fired on the way. */
export interface Applied<R> {
  readonly result: R;
  readonly fired: readonly RuleId[];
}

/** The fast-check model: the model's VM (the state after the last request) plus the run's bookkeeping. */
export interface ModelBox {
  readonly profile: Profile;
  vm: model.VmState;
  /** Shared by every run of one check. */
  readonly coverage: Coverage;
  readonly bitmaps: BitmapMatch;
  readonly vcpus: Map<number, VcpuMemory>;
  /** The gfns last looked up VM-wide per address space: re-asked so a stale last_used_slot shows. */
  readonly gfnHistory: Map<number, Gfn[]>;
  /** The implementation's observable state after the previous step (monotonic generations). */
  prev: ObservableState | null;
  /** When set, every step is appended here (for reports). */
  recorder: RecordedStep[] | null;
  /** Steps run so far, shared by every run of one check. */
  readonly counter: { steps: number };
}

/** One executed step, as the report shows it. */
export interface RecordedStep {
  readonly op: Op;
  readonly call: string;
  /** The model's answer (with the deciding rule when there is one). */
  readonly expected: string;
  readonly actual: string;
  readonly agree: boolean;
  /** Why the step failed, when it did. */
  readonly failure: string | null;
}

/** The implementation disagreed with the model (or broke an invariant, or threw). */
export class Disagreement extends Error {
  constructor(readonly step: RecordedStep) {
    super(`${step.call}\n  model: ${step.expected}\n  impl:  ${step.actual}\n  ${step.failure ?? ''}`);
    this.name = 'Disagreement';
  }
}

/**
 * Dirty bitmap identity up to renaming: the model numbers bitmaps 0, 1, 2, ...; an
 * implementation may number them as it likes, but a bitmap the model keeps ([MS-DLG-06]) must
 * keep its number, and a fresh one ([MS-DLG-07]) must get a number never seen before.
 */
export class BitmapMatch {
  private readonly modelToImpl = new Map<number, number>();
  private readonly implToModel = new Map<number, number>();

  /** Whether the pair is consistent with every pair seen so far; records a new pair. */
  same(m: number | null, i: number | null): boolean {
    if (m === null || i === null) return m === i;
    const known = this.modelToImpl.get(m);
    if (known !== undefined) return known === i;
    if (this.implToModel.has(i)) return false;
    this.modelToImpl.set(m, i);
    this.implToModel.set(i, m);
    return true;
  }

  /** The model's number for an implementation's bitmap, for messages. */
  name(i: number | null): string | null {
    if (i === null) return null;
    const m = this.implToModel.get(i);
    return m === undefined ? `impl#${i} (no model counterpart)` : `#${m}`;
  }
}

export function newBox(profile: Profile, coverage = new Coverage(), counter = { steps: 0 }): ModelBox {
  return { profile, vm: model.createVm(profile), coverage, bitmaps: new BitmapMatch(), vcpus: new Map(), gfnHistory: new Map(), prev: null, recorder: null, counter };
}

/**
 * Makes the step's state the box's state.
 * @returns the model's answer and the rules that fired.
 */
export function advance<R>(box: ModelBox, step: model.Step<R>): Applied<R> {
  box.vm = step.state;
  return { result: step.result, fired: step.fired };
}

function sameSlot(box: ModelBox, m: Memslot | null, i: Memslot | null): boolean {
  if (m === null || i === null) return m === i;
  return (
    m.asId === i.asId &&
    m.id === i.id &&
    m.baseGfn === i.baseGfn &&
    m.npages === i.npages &&
    m.flags === i.flags &&
    m.userspaceAddr === i.userspaceAddr &&
    box.bitmaps.same(m.dirtyBitmap, i.dirtyBitmap)
  );
}

function implSlotText(box: ModelBox, s: Memslot | null): string {
  return slotText(s, s === null ? null : box.bitmaps.name(s.dirtyBitmap));
}

interface Outcome {
  readonly expected: string;
  readonly actual: string;
  readonly agree: boolean;
  readonly fired: readonly RuleId[];
  readonly failure?: string;
}

const setText = (r: { ok: true; change: string } | { ok: false; errno: string }): string => (r.ok ? `ok ${r.change}` : r.errno);

/** Runs the op on both sides and compares the answers. */
function execute(box: ModelBox, impl: MemslotImpl, op: Op): Outcome {
  const p = box.profile;
  return match(op)
    .with({ kind: 'reset' }, (): Outcome => {
      box.vm = model.createVm(p);
      impl.reset();
      box.vcpus.clear();
      box.gfnHistory.clear();
      box.prev = null;
      return { expected: 'fresh VM', actual: 'fresh VM', agree: true, fired: ['MS-GEN-01'] };
    })
    .with({ kind: 'set' }, ({ region }): Outcome => {
      const want = advance(box, model.setUserMemoryRegion(box.vm, region));
      const got = impl.setUserMemoryRegion(region);
      const expected = `${setText(want.result)} [${want.result.rule}]`;
      return { expected, actual: setText(got), agree: setText(want.result) === setText(got), fired: want.fired };
    })
    .with({ kind: 'bulk' }, ({ regions }): Outcome => {
      const fired: RuleId[] = [];
      const counts = new Map<string, number>();
      for (const [i, region] of regions.entries()) {
        const want = advance(box, model.setUserMemoryRegion(box.vm, region));
        const got = impl.setUserMemoryRegion(region);
        fired.push(...want.fired);
        if (setText(want.result) !== setText(got)) {
          return {
            expected: `request ${i + 1} of ${regions.length}: ${setText(want.result)} [${want.result.rule}]`,
            actual: `request ${i + 1} of ${regions.length}: ${setText(got)}`,
            agree: false,
            fired,
            failure: `answers differ at request ${i + 1}: ${opCall(p, { kind: 'set', region })}`,
          };
        }
        const key = `${setText(want.result)} [${want.result.rule}]`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      const summary = [...counts].map(([k, n]) => `${n} x ${k}`).join(', ') || 'nothing';
      return { expected: summary, actual: 'the same', agree: true, fired };
    })
    .with({ kind: 'internal' }, (x): Outcome => {
      const want = advance(box, model.setInternalMemslot(box.vm, x.id, x.gpa, x.size, x.hva));
      const got = impl.setInternalMemslot(x.id, x.gpa, x.size, x.hva);
      const expected = `${setText(want.result)} [${want.result.rule}]`;
      return { expected, actual: setText(got), agree: setText(want.result) === setText(got), fired: want.fired };
    })
    .with({ kind: 'dirtyLog' }, ({ slot }): Outcome => {
      const want = advance(box, model.getDirtyLog(box.vm, slot));
      const got = impl.getDirtyLog(slot);
      const t = (r: { ok: boolean; errno?: string }): string => (r.ok ? 'ok' : (r.errno ?? '?'));
      return { expected: `${t(want.result)} [${want.result.rule}]`, actual: t(got), agree: t(want.result) === t(got), fired: want.fired };
    })
    .with({ kind: 'idLookup' }, ({ asId, id }): Outcome => {
      const want = model.idToMemslot(box.vm, asId, id);
      const got = impl.idToMemslot(asId, id);
      return lookup(sameSlot(box, want, got), slotText(want), implSlotText(box, got), ['MS-LKP-01']);
    })
    .with({ kind: 'gfnLookup' }, ({ asId, gfns }): Outcome => {
      const vm = box.vm;
      const want: string[] = [];
      const got: string[] = [];
      let ok = true;
      for (const gfn of gfns) {
        const w = model.gfnToMemslot(vm, asId, gfn);
        const g = impl.gfnToMemslot(asId, gfn);
        ok &&= sameSlot(box, w, g);
        want.push(slotText(w));
        got.push(implSlotText(box, g));
      }
      box.gfnHistory.set(asId, [...new Set(gfns)].slice(-4));
      return lookup(ok, want.join(' then '), got.join(' then '), ['MS-LKP-02']);
    })
    .with({ kind: 'approxLookup' }, ({ asId, gfn }): Outcome => {
      const candidates = model.gfnToMemslotApproxCandidates(box.vm, asId, gfn);
      const got = impl.gfnToMemslotApprox(asId, gfn);
      const ok = candidates.length === 0 ? got === null : candidates.some((c) => sameSlot(box, c, got));
      const expected = candidates.length === 0 ? 'none' : `one of ${candidates.map((c) => slotText(c)).join(' | ')}`;
      return lookup(ok, expected, implSlotText(box, got), ['MS-LKP-03']);
    })
    .with({ kind: 'gfnRange' }, ({ asId, start, end }): Outcome => {
      const want = model.gfnRangeMemslots(box.vm, asId, start, end);
      const got = impl.gfnRangeMemslots(asId, start, end);
      const ok = want.length === got.length && want.every((s, i) => sameSlot(box, s, got[i] ?? null));
      return lookup(ok, `[${want.map((s) => slotText(s)).join(', ')}]`, `[${got.map((s) => implSlotText(box, s)).join(', ')}]`, ['MS-LKP-04']);
    })
    .with({ kind: 'hvaRange' }, ({ start, end }): Outcome => {
      const want = hitsText(model.hvaRangeMemslots(box.vm, start, end));
      const got = hitsText(impl.hvaRangeMemslots(start, end));
      return lookup(want === got, want, got, ['MS-LKP-05']);
    })
    .with({ kind: 'vcpu' }, ({ vcpu, inSmm, gfns }): Outcome => {
      const vm = box.vm;
      const asId = model.vcpuAsId(vm, inSmm);
      const generation = model.space(vm, asId).generation;
      const memory = box.vcpus.get(vcpu);
      const fired: RuleId[] = ['MS-LKP-06'];
      // [MS-LKP-07] exercised: this vCPU looked up before, and the generation it saw is gone.
      if (memory !== undefined && (memory.asId !== asId || memory.generation !== generation)) fired.push('MS-LKP-07');
      const want: string[] = [];
      const got: string[] = [];
      let ok = true;
      for (const gfn of gfns) {
        const w = model.vcpuGfnToMemslot(vm, inSmm, gfn);
        const g = impl.vcpuGfnToMemslot(vcpu, inSmm, gfn);
        ok &&= sameSlot(box, w, g);
        want.push(slotText(w));
        got.push(implSlotText(box, g));
      }
      box.vcpus.set(vcpu, { gfns: [...new Set(gfns)].slice(-4), asId, generation });
      return lookup(ok, want.join(' then '), got.join(' then '), fired);
    })
    .with({ kind: 'visible' }, ({ asId, gfn }): Outcome => {
      const want = model.isVisibleGfn(box.vm, asId, gfn);
      const got = impl.isVisibleGfn(asId, gfn);
      return lookup(want === got, String(want), String(got), ['MS-LKP-08']);
    })
    .with({ kind: 'gfnToHva' }, ({ asId, gfn, write }): Outcome => {
      const want = model.gfnToHva(box.vm, asId, gfn, write);
      const got = impl.gfnToHva(asId, gfn, write);
      const rule: RuleId = want.ok ? 'MS-LKP-11' : want.error === 'KVM_HVA_ERR_RO_BAD' ? 'MS-LKP-10' : 'MS-LKP-09';
      return lookup(hvaText(want) === hvaText(got), `${hvaText(want)} [${rule}]`, hvaText(got), [rule]);
    })
    .exhaustive();
}

/** A lookup's outcome; its rules count only when the implementation agreed. */
function lookup(agree: boolean, expected: string, actual: string, rules: readonly RuleId[]): Outcome {
  return { expected, actual, agree, fired: agree ? rules : [] };
}

/** The implementation's observable state. */
export function observe(impl: MemslotImpl, profile: Profile): ObservableState {
  const spaces = [];
  for (let asId = 0; asId < profile.addressSpaces; asId++) spaces.push({ asId, generation: impl.generation(asId), slots: impl.slots(asId) });
  return { spaces, nrMemslotPages: impl.nrMemslotPages() };
}

/**
 * The first difference between the model's state and the implementation's, or null.
 * Full-state equality after every step is also the frame condition: the model changes only the
 * request's target, so every other slot of the implementation must be unchanged too.
 */
function stateDifference(box: ModelBox, now: ObservableState): string | null {
  const vm = box.vm;
  for (const sp of now.spaces) {
    const want = model.space(vm, sp.asId).generation;
    if (sp.generation !== want) return `as ${sp.asId}: generation: model ${want}, impl ${sp.generation}`;
    const ms = model.memslots(vm, sp.asId);
    const n = Math.max(ms.length, sp.slots.length);
    for (let i = 0; i < n; i++) {
      const a = ms[i] ?? null;
      const b = sp.slots[i] ?? null;
      if (!sameSlot(box, a, b)) {
        return `as ${sp.asId}: slot #${i} in gfn order (model has ${ms.length} slots, impl ${sp.slots.length}): model ${slotText(a)}, impl ${implSlotText(box, b)}`;
      }
    }
  }
  if (now.nrMemslotPages !== vm.nrMemslotPages) return `nr_memslot_pages: model ${vm.nrMemslotPages}, impl ${now.nrMemslotPages}`;
  return null;
}

function describeError(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/**
 * Runs one op on both sides and checks everything; throws Disagreement on the first problem.
 * @returns the recorded step.
 */
export function step(box: ModelBox, impl: MemslotImpl, op: Op): RecordedStep {
  const call = opCall(box.profile, op);
  const fail = (expected: string, actual: string, failure: string): never => {
    const rec: RecordedStep = { op, call, expected, actual, agree: false, failure };
    box.recorder?.push(rec);
    throw new Disagreement(rec);
  };
  box.counter.steps++;
  let out: Outcome;
  try {
    out = execute(box, impl, op);
  } catch (e) {
    if (e instanceof Disagreement) throw e;
    return fail('(see failure)', `threw ${describeError(e)}`, `the call threw: ${describeError(e)}`);
  }
  if (!out.agree) return fail(out.expected, out.actual, out.failure ?? 'the answers differ');
  let now: ObservableState;
  try {
    now = observe(impl, box.profile);
  } catch (e) {
    return fail(out.expected, out.actual, `reading the implementation's state threw: ${describeError(e)}`);
  }
  const diff = stateDifference(box, now);
  if (diff !== null) return fail(out.expected, out.actual, `the state differs after the step: ${diff}`);
  try {
    model.checkInvariants(box.profile, now, box.prev ?? undefined);
  } catch (e) {
    if (!(e instanceof InvariantError)) throw e;
    return fail(out.expected, out.actual, `invariant broken on the implementation's state: ${e.message}`);
  }
  box.coverage.hitAll(out.fired);
  box.coverage.hitAll(INV_RULES);
  box.prev = now;
  const rec: RecordedStep = { op, call, expected: out.expected, actual: out.actual, agree: true, failure: null };
  box.recorder?.push(rec);
  return rec;
}

/** A fresh VM on both sides, compared before any request ([MS-GEN-01]). */
export function startRun(box: ModelBox, impl: MemslotImpl): void {
  const now = observe(impl, box.profile);
  const diff = stateDifference(box, now);
  if (diff !== null) {
    const rec: RecordedStep = { op: { kind: 'reset' }, call: 'kvm_create_vm()', expected: 'fresh VM', actual: 'differs', agree: false, failure: `the fresh VM differs: ${diff}` };
    box.recorder?.push(rec);
    throw new Disagreement(rec);
  }
  box.coverage.hit('MS-GEN-01');
  box.prev = now;
}
