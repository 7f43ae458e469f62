/**
 * The step: apply one resolved op to the model and the target, compare the answers, compare
 * the state the target shows, check the invariants on it, and count the rules that fired. Every
 * command's run() is `step(box, target, this.resolve(box))`. A target is an implementation in
 * process or a SUT over the protocol (properties/target.ts); an op it does not offer is skipped.
 */
import { match } from 'ts-pattern';
import * as model from '../model/index.js';
import { InvariantError, type Gfn, type Memslot, type ObservableState, type Profile } from '../model/index.js';
import type { RuleId } from '../spec/rules.js';
import { Coverage } from './coverage.js';
import { asIdBeyond, hitsText, hvaText, mutates, opCall, slotText, type Op } from './ops.js';
import { SutError } from '../sut/child.js';
import type { SlotRef, Target, TargetSetOutcome, TargetState } from './target.js';

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
  /** The kernel's profile; the current VM's own (its type applied, [MS-VM-02]) is `vm.profile`. */
  readonly profile: Profile;
  vm: model.VmState;
  /** Shared by every run of one check. */
  readonly coverage: Coverage;
  readonly bitmaps: BitmapMatch;
  readonly vcpus: Map<number, VcpuMemory>;
  /** The gfns last looked up VM-wide per address space: re-asked so a stale last_used_slot shows. */
  readonly gfnHistory: Map<number, Gfn[]>;
  /** The target's observable state after the previous step (monotonic generations), when it shows all of it. */
  prev: ObservableState | null;
  /** Whether the target's slots carry dirty bitmap identities (false over the protocol). */
  bitmapsShown: boolean;
  /** Answers of ENOMEM the model followed (MS-RES-01), shared by every run of one check. */
  readonly resource: { steps: number };
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

/**
 * An op that cannot be asked in this state: a handle the VM has not created (spec/80: a defect of
 * the trace, never sent). Commands never resolve to one; a minimiser that deleted the step
 * creating the file gets this, and the candidate is no counterexample.
 */
export class OpDefect extends Error {
  override readonly name = 'OpDefect';
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

export function newBox(profile: Profile, coverage = new Coverage(), counter = { steps: 0 }, resource = { steps: 0 }): ModelBox {
  return {
    profile,
    vm: model.createVm(profile),
    coverage,
    bitmaps: new BitmapMatch(),
    vcpus: new Map(),
    gfnHistory: new Map(),
    prev: null,
    bitmapsShown: true,
    resource,
    recorder: null,
    counter,
  };
}

/**
 * Makes the step's state the box's state.
 * @returns the model's answer and the rules that fired.
 */
export function advance<R>(box: ModelBox, step: model.Step<R>): Applied<R> {
  box.vm = step.state;
  return { result: step.result, fired: step.fired };
}

/** A protocol lookup names a slot only by id (a SlotRef): then the ids must agree. */
function isMemslot(s: Memslot | SlotRef): s is Memslot {
  return 'baseGfn' in s;
}

function sameSlot(box: ModelBox, m: Memslot | null, i: Memslot | SlotRef | null): boolean {
  if (m === null || i === null) return m === i;
  if (!isMemslot(i)) return m.asId === i.asId && m.id === i.id;
  return (
    m.asId === i.asId &&
    m.id === i.id &&
    m.baseGfn === i.baseGfn &&
    m.npages === i.npages &&
    m.flags === i.flags &&
    m.userspaceAddr === i.userspaceAddr &&
    (!box.bitmapsShown || (box.bitmaps.same(m.dirtyBitmap, i.dirtyBitmap) && m.gmem?.file === i.gmem?.file && m.gmem?.pgoff === i.gmem?.pgoff))
  );
}

function implSlotText(box: ModelBox, s: Memslot | SlotRef | null): string {
  if (s !== null && !isMemslot(s)) return `slot ${s.asId}:${s.id}`;
  return slotText(s, s === null || !box.bitmapsShown ? null : box.bitmaps.name(s.dirtyBitmap));
}

interface Outcome {
  readonly expected: string;
  readonly actual: string;
  readonly agree: boolean;
  readonly fired: readonly RuleId[];
  readonly failure?: string;
  /** The target does not offer this op: nothing was compared. */
  readonly skipped?: boolean;
}

const setText = (r: TargetSetOutcome): string => (r.ok ? (r.change === undefined ? 'ok' : `ok ${r.change}`) : r.errno);

/** Whether the target's answer is the model's (a target over the protocol shows no change kind). */
function sameSet(want: TargetSetOutcome, got: TargetSetOutcome): boolean {
  if (want.ok && got.ok) return got.change === undefined || got.change === want.change;
  return !want.ok && !got.ok && want.errno === got.errno;
}

const SKIPPED: Outcome = { expected: '(not offered)', actual: '(not offered)', agree: true, fired: [], skipped: true };

/**
 * One set-memory-region request (v1, or v2 when `region` carries the v2 tail) on both sides: the
 * model's step, or the resource branch when the target answered ENOMEM where MS-RES-01 allows
 * it. Null: not sent (over the target's page limit, or a v2 request the target does not offer).
 */
async function setRegion(
  box: ModelBox,
  target: Target,
  region: model.MemoryRegion | model.MemoryRegion2,
): Promise<{ want: Applied<model.SetResult>; got: TargetSetOutcome } | null> {
  const v2 = 'guestMemfd' in region;
  if (v2 && target.setUserMemoryRegion2 === undefined) return null;
  const accepted = v2 ? model.setUserMemoryRegion2(box.vm, region) : model.setUserMemoryRegion(box.vm, region);
  if (target.maxPages !== null && accepted.result.ok && region.memorySize >> model.PAGE_SHIFT > target.maxPages) return null;
  const got = v2 ? await target.setUserMemoryRegion2!(region) : await target.setUserMemoryRegion(region);
  if (target.mayFailAllocation && !got.ok && got.errno === 'ENOMEM') {
    const noMem = v2 ? model.setUserMemoryRegion2NoMem(box.vm, region) : model.setUserMemoryRegionNoMem(box.vm, region);
    if (noMem !== null) {
      box.resource.steps++;
      return { want: advance(box, noMem), got };
    }
  }
  return { want: advance(box, accepted), got };
}

const ioctlText = (r: model.IoctlOutcome): string => (r.ok ? 'ok' : r.errno);

/** An ioctl whose success is a plain 0, on both sides. */
function ioctl(want: Applied<model.IoctlResult>, got: model.IoctlOutcome): Outcome {
  return {
    expected: `${ioctlText(want.result)} [${want.result.rule}]`,
    actual: ioctlText(got),
    agree: ioctlText(want.result) === ioctlText(got),
    fired: want.fired,
  };
}

const writeText = (o: model.WriteOutcome): string => (o === 'ret' ? 'lands' : o === 'mmio' ? 'MMIO exit' : 'dirty ring full exit');

/** A harvest as a sequence of (slot, offset). */
function entriesText(entries: readonly model.RingEntry[]): string {
  if (entries.length === 0) return 'no entries';
  return entries.map((e) => `(as ${e.slot >>> 16} id ${e.slot & 0xffff}, +${e.offset})`).join(' ');
}

/**
 * A write the model cannot answer ([MS-RNG-11]: logging switched on under INITIALLY_SET with a
 * ring): commands never aim at one; a minimiser's candidate that gets here is no counterexample.
 */
function unknownRingSlot(box: ModelBox, asId: number, gpa: model.Gpa): void {
  if (model.inUnknownRingSlot(box.vm, asId, gpa)) throw new OpDefect(`a write at ${model.hex(gpa)} into a slot whose pushes the model cannot tell (MS-RNG-11)`);
}

/** Runs the op on both sides and compares the answers. */
async function execute(box: ModelBox, target: Target, op: Op): Promise<Outcome> {
  const p = box.profile;
  // A lookup of an address space this VM lacks (a type with one, [MS-VM-02]) asks nothing real.
  if (asIdBeyond(op, box.vm.profile.addressSpaces)) return SKIPPED;
  if (op.kind === 'set2' && typeof op.region.guestMemfd === 'number' && op.region.guestMemfd >= box.vm.gmems.length) {
    throw new OpDefect(`guest_memfd handle ${op.region.guestMemfd} names no file of this VM (it has ${box.vm.gmems.length})`);
  }
  return match(op)
    .with({ kind: 'reset' }, async (): Promise<Outcome> => {
      box.vm = model.createVm(p);
      await target.reset();
      box.vcpus.clear();
      box.gfnHistory.clear();
      box.prev = null;
      return { expected: 'fresh VM', actual: 'fresh VM', agree: true, fired: ['MS-GEN-01'] };
    })
    .with({ kind: 'set' }, { kind: 'set2' }, async ({ region }): Promise<Outcome> => {
      const r = await setRegion(box, target, region);
      if (r === null) return SKIPPED;
      const expected = `${setText(r.want.result)} [${r.want.result.rule}]`;
      return { expected, actual: setText(r.got), agree: sameSet(r.want.result, r.got), fired: r.want.fired };
    })
    .with({ kind: 'bulk' }, async ({ regions }): Promise<Outcome> => {
      const fired: RuleId[] = [];
      const counts = new Map<string, number>();
      for (const [i, region] of regions.entries()) {
        const r = await setRegion(box, target, region);
        if (r === null) continue;
        const { want, got } = r;
        fired.push(...want.fired);
        if (!sameSet(want.result, got)) {
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
    .with({ kind: 'internal' }, async (x): Promise<Outcome> => {
      // A target without internal slots cannot follow the model past one: the run would compare nothing real.
      if (target.setInternalMemslot === undefined) return SKIPPED;
      const want = advance(box, model.setInternalMemslot(box.vm, x.id, x.gpa, x.size, x.hva));
      const got = await target.setInternalMemslot(x.id, x.gpa, x.size, x.hva);
      const expected = `${setText(want.result)} [${want.result.rule}]`;
      return { expected, actual: setText(got), agree: sameSet(want.result, got), fired: want.fired };
    })
    .with({ kind: 'dirtyLog' }, async ({ slot }): Promise<Outcome> => {
      const want = advance(box, model.getDirtyLog(box.vm, slot));
      const got = await target.getDirtyLog(slot);
      const t = (r: { ok: boolean; errno?: string; bitmap?: string | undefined }): string =>
        r.ok ? (r.bitmap === undefined ? 'ok' : `ok bitmap=${r.bitmap === '' ? '0' : r.bitmap}`) : (r.errno ?? '?');
      // [MS-DLB-02] The bits are compared where the target shows them (a SUT without `write` need not).
      const shown = got.ok && got.bitmap === undefined ? { ...want.result, bitmap: undefined } : want.result;
      return { expected: `${t(want.result)} [${want.result.rule}]`, actual: t(got), agree: t(shown) === t(got), fired: want.fired };
    })
    .with({ kind: 'write' }, async ({ asId, gpa }): Promise<Outcome> => {
      if (target.guestWrite === undefined) return SKIPPED;
      unknownRingSlot(box, asId, gpa);
      const want = advance(box, model.guestWrite(box.vm, asId, gpa));
      const got = await target.guestWrite(asId, gpa);
      return {
        expected: `${writeText(want.result.outcome)} [${want.result.rule}]`,
        actual: writeText(got),
        agree: want.result.outcome === got,
        fired: want.fired,
      };
    })
    .with({ kind: 'writes' }, async ({ asId, gpas }): Promise<Outcome> => {
      if (target.guestWrite === undefined) return SKIPPED;
      const fired: RuleId[] = [];
      const counts = new Map<string, number>();
      for (const [i, gpa] of gpas.entries()) {
        unknownRingSlot(box, asId, gpa);
        const want = advance(box, model.guestWrite(box.vm, asId, gpa));
        const got = await target.guestWrite(asId, gpa);
        fired.push(...want.fired);
        const key = `${writeText(want.result.outcome)} [${want.result.rule}]`;
        if (want.result.outcome !== got) {
          return {
            expected: `write ${i + 1} of ${gpas.length}: ${key}`,
            actual: `write ${i + 1} of ${gpas.length}: ${writeText(got)}`,
            agree: false,
            fired,
            failure: `answers differ at write ${i + 1}: ${opCall(p, { kind: 'write', asId, gpa })}`,
          };
        }
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      const summary = [...counts].map(([k, n]) => `${n} x ${k}`).join(', ') || 'nothing';
      return { expected: summary, actual: 'the same', agree: true, fired };
    })
    .with({ kind: 'harvest' }, async (): Promise<Outcome> => {
      if (target.harvestDirtyRing === undefined) return SKIPPED;
      const h = model.harvestDirtyRing(box.vm);
      box.vm = h.state;
      const got = await target.harvestDirtyRing();
      // [MS-RNG-12] The entries as a sequence: same slots, same offsets, same order.
      const want = entriesText(h.entries);
      return { expected: `${want} [${h.rule}]`, actual: entriesText(got), agree: want === entriesText(got), fired: [h.rule] };
    })
    .with({ kind: 'resetRings' }, async (): Promise<Outcome> => {
      if (target.resetDirtyRings === undefined) return SKIPPED;
      const want = advance(box, model.resetDirtyRings(box.vm));
      const got = await target.resetDirtyRings();
      const t = (r: { ok: true; count: number } | { ok: false; errno: string }): string => (r.ok ? `${r.count} reset` : r.errno);
      return { expected: `${t(want.result)} [${want.result.rule}]`, actual: t(got), agree: t(want.result) === t(got), fired: want.fired };
    })
    .with({ kind: 'clearLog' }, async ({ clear }): Promise<Outcome> => {
      if (target.clearDirtyLog === undefined) return SKIPPED;
      const want = advance(box, model.clearDirtyLog(box.vm, clear));
      const got = await target.clearDirtyLog(clear);
      const t = (r: { ok: boolean; errno?: string }): string => (r.ok ? 'ok' : (r.errno ?? '?'));
      return { expected: `${t(want.result)} [${want.result.rule}]`, actual: t(got), agree: t(want.result) === t(got), fired: want.fired };
    })
    .with({ kind: 'enableCap' }, async ({ cap, args0, flags }): Promise<Outcome> => {
      if (target.enableCap === undefined) return SKIPPED;
      const want = advance(box, model.enableCap(box.vm, cap, args0, flags));
      const got = await target.enableCap(cap, args0, flags);
      const t = (r: { ok: boolean; errno?: string }): string => (r.ok ? 'ok' : (r.errno ?? '?'));
      return { expected: `${t(want.result)} [${want.result.rule}]`, actual: t(got), agree: t(want.result) === t(got), fired: want.fired };
    })
    .with({ kind: 'idLookup' }, async ({ asId, id }): Promise<Outcome> => {
      if (target.idToMemslot === undefined) return SKIPPED;
      const want = model.idToMemslot(box.vm, asId, id);
      const got = await target.idToMemslot(asId, id);
      return lookup(sameSlot(box, want, got), slotText(want), implSlotText(box, got), ['MS-LKP-01']);
    })
    .with({ kind: 'gfnLookup' }, async ({ asId, gfns }): Promise<Outcome> => {
      if (target.gfnToMemslot === undefined) return SKIPPED;
      const vm = box.vm;
      const want: string[] = [];
      const got: string[] = [];
      let ok = true;
      for (const gfn of gfns) {
        const w = model.gfnToMemslot(vm, asId, gfn);
        const g = await target.gfnToMemslot(asId, gfn);
        ok &&= sameSlot(box, w, g);
        want.push(slotText(w));
        got.push(implSlotText(box, g));
      }
      box.gfnHistory.set(asId, [...new Set(gfns)].slice(-4));
      return lookup(ok, want.join(' then '), got.join(' then '), ['MS-LKP-02']);
    })
    .with({ kind: 'approxLookup' }, async ({ asId, gfn }): Promise<Outcome> => {
      if (target.gfnToMemslotApprox === undefined) return SKIPPED;
      const candidates = model.gfnToMemslotApproxCandidates(box.vm, asId, gfn);
      const got = await target.gfnToMemslotApprox(asId, gfn);
      const ok = candidates.length === 0 ? got === null : candidates.some((c) => sameSlot(box, c, got));
      const expected = candidates.length === 0 ? 'none' : `one of ${candidates.map((c) => slotText(c)).join(' | ')}`;
      return lookup(ok, expected, implSlotText(box, got), ['MS-LKP-03']);
    })
    .with({ kind: 'gfnRange' }, async ({ asId, start, end }): Promise<Outcome> => {
      if (target.gfnRangeMemslots === undefined) return SKIPPED;
      const want = model.gfnRangeMemslots(box.vm, asId, start, end);
      const got = await target.gfnRangeMemslots(asId, start, end);
      const ok = want.length === got.length && want.every((s, i) => sameSlot(box, s, got[i] ?? null));
      return lookup(ok, `[${want.map((s) => slotText(s)).join(', ')}]`, `[${got.map((s) => implSlotText(box, s)).join(', ')}]`, ['MS-LKP-04']);
    })
    .with({ kind: 'hvaRange' }, async ({ start, end }): Promise<Outcome> => {
      if (target.hvaRangeMemslots === undefined) return SKIPPED;
      const want = hitsText(model.hvaRangeMemslots(box.vm, start, end));
      const got = hitsText(await target.hvaRangeMemslots(start, end));
      return lookup(want === got, want, got, ['MS-LKP-05']);
    })
    .with({ kind: 'vcpu' }, async ({ vcpu, inSmm, gfns }): Promise<Outcome> => {
      if (target.vcpuGfnToMemslot === undefined) return SKIPPED;
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
        const g = await target.vcpuGfnToMemslot(vcpu, inSmm, gfn);
        ok &&= sameSlot(box, w, g);
        want.push(slotText(w));
        got.push(implSlotText(box, g));
      }
      box.vcpus.set(vcpu, { gfns: [...new Set(gfns)].slice(-4), asId, generation });
      return lookup(ok, want.join(' then '), got.join(' then '), fired);
    })
    .with({ kind: 'visible' }, async ({ asId, gfn }): Promise<Outcome> => {
      if (target.isVisibleGfn === undefined) return SKIPPED;
      const want = model.isVisibleGfn(box.vm, asId, gfn);
      const got = await target.isVisibleGfn(asId, gfn);
      return lookup(want === got, String(want), String(got), ['MS-LKP-08']);
    })
    .with({ kind: 'gfnToHva' }, async ({ asId, gfn, write }): Promise<Outcome> => {
      if (target.gfnToHva === undefined) return SKIPPED;
      const want = model.gfnToHva(box.vm, asId, gfn, write);
      const got = await target.gfnToHva(asId, gfn, write);
      const rule: RuleId = want.ok ? 'MS-LKP-11' : want.error === 'KVM_HVA_ERR_RO_BAD' ? 'MS-LKP-10' : 'MS-LKP-09';
      return lookup(hvaText(want) === hvaText(got), `${hvaText(want)} [${rule}]`, hvaText(got), [rule]);
    })
    .with({ kind: 'createVm' }, async ({ vmType }): Promise<Outcome> => {
      if (target.createVm === undefined) return SKIPPED;
      const want = advance(box, model.createVmOfType(box.vm, vmType));
      const got = await target.createVm(vmType);
      if (want.result.ok) {
        box.vcpus.clear();
        box.gfnHistory.clear();
        box.prev = null;
      }
      return ioctl(want, got);
    })
    .with({ kind: 'createGmem' }, async ({ size, flags }): Promise<Outcome> => {
      if (target.createGuestMemfd === undefined) return SKIPPED;
      const want = advance(box, model.createGuestMemfd(box.vm, size, flags));
      return ioctl(want, await target.createGuestMemfd(size, flags));
    })
    .with({ kind: 'attrs' }, async (x): Promise<Outcome> => {
      if (target.setMemoryAttributes === undefined) return SKIPPED;
      const want = advance(box, model.setMemoryAttributes(box.vm, x.address, x.size, x.attributes, x.flags));
      return ioctl(want, await target.setMemoryAttributes(x.address, x.size, x.attributes, x.flags));
    })
    .with({ kind: 'cap' }, async ({ cap, fd }): Promise<Outcome> => {
      if (target.checkExtension === undefined) return SKIPPED;
      const want = model.checkExtension(box.vm, cap, fd);
      const got = await target.checkExtension(cap, fd);
      return { expected: `${want.value} [${want.rule}]`, actual: String(got), agree: want.value === got, fired: [want.rule] };
    })
    .exhaustive();
}

/** A lookup's outcome; its rules count only when the implementation agreed. */
function lookup(agree: boolean, expected: string, actual: string, rules: readonly RuleId[]): Outcome {
  return { expected, actual, agree, fired: agree ? rules : [] };
}

/** The target's whole state, when it shows all of it (the invariants are checked on that). */
function whole(now: TargetState, dirtyRing: boolean): ObservableState | null {
  if (now.nrMemslotPages === null || !now.bitmaps) return null;
  const spaces = [];
  for (const sp of now.spaces) {
    if (sp.generation === null || sp.slots === null) return null;
    spaces.push({ asId: sp.asId, generation: sp.generation, slots: sp.slots });
  }
  return { spaces, nrMemslotPages: now.nrMemslotPages, dirtyRing };
}

/**
 * The model's slots of `sp` as an array, built once per address space value: the model's
 * states are immutable, and a lookup step leaves the same one in place.
 */
const slotArrays = new WeakMap<model.AddressSpace, readonly Memslot[]>();
function slotsInGfnOrder(sp: model.AddressSpace): readonly Memslot[] {
  let a = slotArrays.get(sp);
  if (a === undefined) {
    a = sp.byGfn.valuesArray();
    slotArrays.set(sp, a);
  }
  return a;
}

/**
 * The first difference between the model's state and the implementation's, or null.
 * Full-state equality after every step is also the frame condition: the model changes only the
 * request's target, so every other slot of the implementation must be unchanged too.
 */
function stateDifference(box: ModelBox, now: TargetState): string | null {
  const vm = box.vm;
  for (const sp of now.spaces) {
    const want = model.space(vm, sp.asId).generation;
    if (sp.generation !== null && sp.generation !== want) return `as ${sp.asId}: generation: model ${want}, impl ${sp.generation}`;
    if (sp.slots === null) continue;
    const ms = slotsInGfnOrder(model.space(vm, sp.asId));
    const n = Math.max(ms.length, sp.slots.length);
    for (let i = 0; i < n; i++) {
      const a = ms[i] ?? null;
      const b = sp.slots[i] ?? null;
      if (!sameSlot(box, a, b)) {
        return `as ${sp.asId}: slot #${i} in gfn order (model has ${ms.length} slots, impl ${sp.slots.length}): model ${slotText(a)}, impl ${implSlotText(box, b)}`;
      }
    }
  }
  if (now.nrMemslotPages !== null && now.nrMemslotPages !== vm.nrMemslotPages)
    return `nr_memslot_pages: model ${vm.nrMemslotPages}, impl ${now.nrMemslotPages}`;
  return null;
}

function describeError(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/**
 * Runs one op on both sides and checks everything; throws Disagreement on the first problem.
 * A SUT that breaks the protocol (SutError) is not a disagreement: that error goes through.
 * @returns the recorded step, or null when the target does not offer the op.
 */
export async function step(box: ModelBox, target: Target, op: Op): Promise<RecordedStep | null> {
  const call = opCall(box.profile, op);
  const fail = (expected: string, actual: string, failure: string): never => {
    const rec: RecordedStep = { op, call, expected, actual, agree: false, failure };
    box.recorder?.push(rec);
    throw new Disagreement(rec);
  };
  let out: Outcome;
  try {
    out = await execute(box, target, op);
  } catch (e) {
    if (e instanceof Disagreement || e instanceof SutError || e instanceof OpDefect) throw e;
    return fail('(see failure)', `threw ${describeError(e)}`, `the call threw: ${describeError(e)}`);
  }
  if (out.skipped === true) return null;
  box.counter.steps++;
  if (!out.agree) return fail(out.expected, out.actual, out.failure ?? 'the answers differ');
  const observe = target.observeAfter === 'every-step' || mutates(op);
  const now = observe ? await observeTarget(box, target, (e) => fail(out.expected, out.actual, `reading the target's state threw: ${describeError(e)}`)) : null;
  if (now !== null) {
    const diff = stateDifference(box, now);
    if (diff !== null) return fail(out.expected, out.actual, `the state differs after the step: ${diff}`);
    // Whether the VM has a ring is the model's: a target that disagrees is caught by its answers.
    const all = whole(now, box.vm.ring.size !== 0);
    if (all !== null) {
      try {
        model.checkInvariants(box.vm.profile, all, box.prev ?? undefined);
      } catch (e) {
        if (!(e instanceof InvariantError)) throw e;
        return fail(out.expected, out.actual, `invariant broken on the implementation's state: ${e.message}`);
      }
      box.coverage.hitAll(INV_RULES);
      box.prev = all;
    }
  }
  box.coverage.hitAll(out.fired);
  const rec: RecordedStep = { op, call, expected: out.expected, actual: out.actual, agree: true, failure: null };
  box.recorder?.push(rec);
  return rec;
}

async function observeTarget(box: ModelBox, target: Target, onError: (e: unknown) => never): Promise<TargetState | null> {
  if (target.observe === undefined) return null;
  try {
    const now = await target.observe(box.vm.profile);
    box.bitmapsShown = now.bitmaps;
    return now;
  } catch (e) {
    if (e instanceof SutError) throw e;
    return onError(e);
  }
}

/** A fresh VM on both sides, compared before any request ([MS-GEN-01]). */
export async function startRun(box: ModelBox, target: Target): Promise<void> {
  const failed = (failure: string): never => {
    const rec: RecordedStep = { op: { kind: 'reset' }, call: 'kvm_create_vm()', expected: 'fresh VM', actual: 'differs', agree: false, failure };
    box.recorder?.push(rec);
    throw new Disagreement(rec);
  };
  const now = await observeTarget(box, target, (e) => failed(`reading the fresh VM threw: ${describeError(e)}`));
  if (now !== null) {
    const diff = stateDifference(box, now);
    if (diff !== null) failed(`the fresh VM differs: ${diff}`);
    box.prev = whole(now, false);
  }
  box.coverage.hit('MS-GEN-01');
}
