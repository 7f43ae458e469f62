/**
 * Scheduled runs of one writer and many readers (spec/45-atomicity.md). Test-only
 * (properties/concurrency.test.ts): as a `*.fixture.ts` file it is not compiled into the
 * package (tsconfig.build.json).
 *
 * The writer applies its requests one after the other through `setUserMemoryRegionSteps()`:
 * after each publish it waits for the grace period (the implementation's SRCU bookkeeping)
 * and then for the scheduler. Each reader enters (srcuReadLock()), makes 2 to 5 lookups,
 * each behind a scheduler point, and leaves. fast-check's scheduler picks the order of all
 * those points, so readers enter before, between and after publishes, and overlap swaps.
 *
 * The model runs alongside: each request's published states extend the history of its
 * address space, and every reader's observations must be explained by one state of its
 * window (model/atomicity.ts). A failure throws an Error whose message is the verdict plus
 * the interleaving, in execution order, with every answer.
 */
import fc from 'fast-check';
import type { ConcurrentMemslotImpl, MemslotsReader } from '../../impl/interface.js';
import * as model from '../../model/index.js';
import {
  KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS,
  KVM_MEMSLOT_INVALID,
  KVM_MEM_READONLY,
  PAGE_SHIFT,
  generationText,
  hex,
  observationText,
  publishedStates,
  slotText,
  type Gfn,
  type MemoryRegion,
  type Profile,
  type ReadObservation,
  type ReaderWindow,
  type SetOutcome,
  type VmState,
} from '../../model/index.js';

/** A writer request on one of a few slots: create, move or change flags (`set`), or delete. */
export type WriterOp =
  | { readonly kind: 'set'; readonly asId: number; readonly id: number; readonly gfn: Gfn; readonly flags: number }
  | { readonly kind: 'delete'; readonly asId: number; readonly id: number };

/** One lookup of a reader. */
export type Lookup =
  | { readonly kind: 'generation' }
  | { readonly kind: 'id'; readonly id: number }
  | { readonly kind: 'gfn'; readonly gfn: Gfn }
  | { readonly kind: 'hva'; readonly gfn: Gfn; readonly write: boolean }
  | { readonly kind: 'visible'; readonly gfn: Gfn }
  | { readonly kind: 'vcpu'; readonly vcpu: number; readonly gfn: Gfn };

export interface ReaderPlan {
  readonly asId: number;
  readonly lookups: readonly Lookup[];
}

export interface Scenario {
  readonly ops: readonly WriterOp[];
  readonly readers: readonly ReaderPlan[];
}

/** Slot ids the writer uses; each id has a fixed size and host address, so re-issues move or re-flag. */
const IDS = 3;
/** Gfns 0..GFNS-1: a small space, so that slots collide and lookups hit them. */
const GFNS = 8n;

function npagesOf(id: number): bigint {
  return id === 1 ? 2n : 1n;
}

function uaddrOf(asId: number, id: number): bigint {
  return 0x10_0000n + BigInt(asId) * 0x10_0000n + BigInt(id) * 0x1_0000n;
}

/** The slots every run starts with: something to move, delete and look up from the first step. */
export function setupOps(profile: Profile): WriterOp[] {
  const ops: WriterOp[] = [
    { kind: 'set', asId: 0, id: 0, gfn: 0n, flags: 0 },
    { kind: 'set', asId: 0, id: 1, gfn: 4n, flags: KVM_MEM_LOG_DIRTY_PAGES },
  ];
  if (profile.addressSpaces > 1) ops.push({ kind: 'set', asId: 1, id: 0, gfn: 2n, flags: 0 });
  return ops;
}

export function regionOf(op: WriterOp): MemoryRegion {
  const slot = (op.asId << 16) | op.id;
  const userspaceAddr = uaddrOf(op.asId, op.id);
  if (op.kind === 'delete') return { slot, flags: 0, guestPhysAddr: 0n, memorySize: 0n, userspaceAddr };
  return { slot, flags: op.flags, guestPhysAddr: op.gfn << PAGE_SHIFT, memorySize: npagesOf(op.id) << PAGE_SHIFT, userspaceAddr };
}

export function opText(op: WriterOp): string {
  if (op.kind === 'delete') return `delete as${op.asId} slot ${op.id}`;
  return `set as${op.asId} slot ${op.id} gfn ${hex(op.gfn)}+${npagesOf(op.id)} flags ${hex(op.flags)}`;
}

export function lookupText(l: Lookup): string {
  switch (l.kind) {
    case 'generation':
      return 'generation';
    case 'id':
      return `id_to_memslot(${l.id})`;
    case 'gfn':
      return `gfn_to_memslot(${hex(l.gfn)})`;
    case 'hva':
      return `gfn_to_hva(${hex(l.gfn)}, ${l.write ? 'write' : 'read'})`;
    case 'visible':
      return `is_visible_gfn(${hex(l.gfn)})`;
    case 'vcpu':
      return `vcpu${l.vcpu} gfn_to_memslot(${hex(l.gfn)})`;
  }
}

/** Scenarios for `profile`: mostly address space 0, where the setup put two slots. */
export function scenarioArb(profile: Profile, limits: { maxOps: number; maxReaders: number }): fc.Arbitrary<Scenario> {
  const asId = profile.addressSpaces > 1 ? fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(1) }) : fc.constant(0);
  const id = fc.integer({ min: 0, max: IDS - 1 });
  // Now and then the last gfn below the profile's limit: slot 1 (2 pages) there fails the
  // max-gfn check, so a MOVE publishes its INVALID copy and then restores it (MS-GEN-05);
  // a 1-page slot fits exactly.
  const gfn =
    profile.maxGfn === null
      ? fc.bigInt(0n, GFNS - 1n)
      : fc.oneof({ weight: 4, arbitrary: fc.bigInt(0n, GFNS - 1n) }, { weight: 1, arbitrary: fc.constant(profile.maxGfn) });
  const flags = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(0, KVM_MEM_LOG_DIRTY_PAGES) },
    { weight: 1, arbitrary: fc.constantFrom(KVM_MEM_READONLY, KVM_MEM_READONLY | KVM_MEM_LOG_DIRTY_PAGES) },
  );
  const op: fc.Arbitrary<WriterOp> = fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('set' as const), asId, id, gfn, flags }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), asId, id }) },
  );
  const lookup: fc.Arbitrary<Lookup> = fc.oneof(
    fc.constant({ kind: 'generation' as const }),
    fc.record({ kind: fc.constant('id' as const), id }),
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('gfn' as const), gfn }) },
    fc.record({ kind: fc.constant('hva' as const), gfn, write: fc.boolean() }),
    fc.record({ kind: fc.constant('visible' as const), gfn }),
    fc.record({ kind: fc.constant('vcpu' as const), vcpu: fc.integer({ min: 0, max: 1 }), gfn }),
  );
  const reader = fc.record({ asId, lookups: fc.array(lookup, { minLength: 2, maxLength: 5 }) });
  return fc.record({
    ops: fc.array(op, { minLength: 1, maxLength: limits.maxOps }),
    readers: fc.array(reader, { minLength: 1, maxLength: limits.maxReaders }),
  });
}

function outcomeText(o: SetOutcome): string {
  return o.ok ? o.change : o.errno;
}

function sameOutcome(a: SetOutcome, b: SetOutcome): boolean {
  return a.ok && b.ok ? a.change === b.change : !a.ok && !b.ok && a.errno === b.errno;
}

function observe(r: MemslotsReader, l: Lookup): ReadObservation {
  switch (l.kind) {
    case 'generation':
      return { kind: 'generation', answer: r.generation() };
    case 'id':
      return { kind: 'id', id: l.id, answer: r.idToMemslot(l.id) };
    case 'gfn':
      return { kind: 'gfn', gfn: l.gfn, answer: r.gfnToMemslot(l.gfn) };
    case 'hva':
      return { kind: 'hva', gfn: l.gfn, write: l.write, answer: r.gfnToHva(l.gfn, l.write) };
    case 'visible':
      return { kind: 'visible', gfn: l.gfn, answer: r.isVisibleGfn(l.gfn) };
    case 'vcpu':
      return { kind: 'vcpu', vcpu: l.vcpu, gfn: l.gfn, answer: r.vcpuGfnToMemslot(l.vcpu, l.gfn) };
  }
}

/** What the runs exercised, so that a test can tell an empty pass from a real one. */
export interface ConcurrencyCoverage {
  readers: number;
  /** Readers that entered while a request of their address space was running. */
  enteredDuringRequest: number;
  /** Readers inside while the writer published on their address space. */
  insideAcrossPublish: number;
  /** Grace periods that had to wait for a reader. */
  writerWaited: number;
  /** Generations read with bit 63 set. */
  sawInProgress: number;
  /** Slots read as their INVALID copy. */
  sawInvalid: number;
  /** vCPU lookups. */
  vcpuLookups: number;
}

export function emptyCoverage(): ConcurrencyCoverage {
  return { readers: 0, enteredDuringRequest: 0, insideAcrossPublish: 0, writerWaited: 0, sawInProgress: 0, sawInvalid: 0, vcpuLookups: 0 };
}

/** How the implementation's address space differs from the model's, or null. */
function differences(impl: ConcurrentMemslotImpl, vm: VmState, asId: number): string | null {
  const generation = model.space(vm, asId).generation;
  const want = model.memslots(vm, asId);
  const have = impl.slots(asId);
  const same = have.length === want.length && have.every((x, i) => model.sameSlot(x, want[i]!));
  if (same && impl.generation(asId) === generation) return null;
  return `impl left as${asId} gen ${impl.generation(asId)} [${have.map(slotText).join('; ')}], model gen ${generation} [${want.map(slotText).join('; ')}]`;
}

/** The whole story of a failing run: what broke, the setup, and the interleaving. */
export class ScheduledRunFailure extends Error {
  constructor(
    readonly verdict: string,
    readonly interleaving: readonly string[],
  ) {
    const story =
      interleaving.length === 0
        ? '(no interleaving: this happened before the writer and the readers started)'
        : `interleaving (execution order):\n${interleaving.map((l) => `  ${l}`).join('\n')}`;
    super(`${verdict}\n${story}`);
    this.name = 'ScheduledRunFailure';
  }
}

/**
 * Runs `scenario` on a fresh `impl` under the scheduler `s`. Throws ScheduledRunFailure when
 * a reader saw something no state of its window explains, when the writer's answers or state
 * differ from the model's, or when anything throws.
 */
export async function runScenario(
  s: fc.Scheduler,
  impl: ConcurrentMemslotImpl,
  scenario: Scenario,
  coverage: ConcurrencyCoverage = emptyCoverage(),
): Promise<void> {
  const profile = impl.profile;
  impl.reset();
  let vm: VmState = model.createVm(profile);
  /**
   * What happened, in execution order. `who` is W or the reader; `private` marks an answer
   * that only its reader's verdict needs (a vCPU lookup is not private: the cache is shared).
   */
  const events: { who: string; private: boolean; text: string }[] = [];
  const note = (who: string, text: string, isPrivate = false): void => {
    events.push({ who, private: isPrivate, text });
  };
  for (const op of setupOps(profile)) {
    const step = model.setUserMemoryRegion(vm, regionOf(op));
    const got = impl.setUserMemoryRegion(regionOf(op));
    vm = step.state;
    const wrong = sameOutcome(got, step.result) ? differences(impl, vm, op.asId) : `impl answered ${outcomeText(got)}, model ${outcomeText(step.result)}`;
    if (wrong !== null) throw new ScheduledRunFailure(`[writer] setup ${opText(op)}, run alone: ${wrong}`, []);
  }
  note('W', `setup: ${vm.spaces.map((sp) => `as${sp.asId} gen ${sp.generation} [${model.memslots(vm, sp.asId).map(slotText).join('; ')}]`).join(', ')}`);

  /** Per address space: h0 (after the setup), then every published state. */
  const history: VmState[][] = vm.spaces.map(() => [vm]);
  /** Per address space: the index of the last state of the last completed request. */
  const settled: number[] = vm.spaces.map(() => 0);
  /** The request in flight, and the index of the last state it publishes. */
  let inFlight: { asId: number; last: number } | null = null;
  /** What went wrong, by whom, and how many events had happened by then. */
  const failures: { who: string; at: number; text: string }[] = [];
  const failed = (who: string, text: string): void => {
    failures.push({ who, at: events.length, text });
  };
  /** Publishes the writer reported so far, per address space, and the readers inside (name -> count at entry). */
  const publishes: number[] = vm.spaces.map(() => 0);
  const inside: Map<string, { asId: number; publishes: number }> = new Map();

  const writer = async (): Promise<void> => {
    for (const [k, op] of scenario.ops.entries()) {
      const w = `W${k + 1}`;
      await s.schedule(Promise.resolve(), `${w} ${opText(op)}`);
      const mem = regionOf(op);
      const step = model.setUserMemoryRegion(vm, mem);
      const hist = history[op.asId]!;
      const first = hist.length;
      hist.push(...publishedStates(op.asId, vm, step.published));
      inFlight = { asId: op.asId, last: hist.length - 1 };
      const states = hist.length > first ? `publishes h${first}..h${hist.length - 1}` : 'publishes nothing';
      note('W', `${w} ${opText(op)}: model ${outcomeText(step.result)}, ${states}`);
      const steps = impl.setUserMemoryRegionSteps(mem);
      let r = steps.next();
      while (r.done !== true) {
        const p = r.value;
        publishes[p.asId]!++;
        if ([...inside.values()].some((x) => x.asId === p.asId && x.publishes < publishes[p.asId]!)) coverage.writerWaited++;
        note('W', `${w}   published as${p.asId} #${p.epoch}, active gen ${generationText(impl.generation(p.asId))}; synchronize_srcu`);
        await impl.gracePeriod(p);
        await s.schedule(Promise.resolve(), `${w} grace period over (as${p.asId} #${p.epoch})`);
        note('W', `${w}   grace period over (as${p.asId} #${p.epoch})`);
        // The writer resumes in this same turn, up to its next publish or the end of the request.
        r = steps.next();
      }
      const got = r.value;
      settled[op.asId] = inFlight.last;
      inFlight = null;
      vm = step.state;
      note('W', `${w} done: ${outcomeText(got)}, gen ${impl.generation(op.asId)}`);
      if (!sameOutcome(got, step.result)) {
        failed('W', `[writer] ${w} ${opText(op)}: impl answered ${outcomeText(got)}, model ${outcomeText(step.result)}`);
        return;
      }
      const wrong = differences(impl, vm, op.asId);
      if (wrong !== null) {
        failed('W', `[writer] ${w} ${opText(op)}: ${wrong}`);
        return;
      }
    }
  };

  const reader = async (k: number, plan: ReaderPlan): Promise<void> => {
    const name = `R${k + 1}`;
    await s.schedule(Promise.resolve(), `${name} enter as${plan.asId}`);
    const handle = impl.srcuReadLock(plan.asId);
    const here = settled[plan.asId]!;
    const flight = inFlight;
    const window: ReaderWindow = { first: here, last: flight !== null && flight.asId === plan.asId ? flight.last : here };
    const entered = publishes[plan.asId]!;
    inside.set(name, { asId: plan.asId, publishes: entered });
    coverage.readers++;
    if (window.last > window.first) coverage.enteredDuringRequest++;
    note(name, `${name} enter as${plan.asId}: window h${window.first}..h${window.last}`);
    const log: ReadObservation[] = [];
    for (const l of plan.lookups) {
      await s.schedule(Promise.resolve(), `${name} ${lookupText(l)}`);
      const o = observe(handle, l);
      log.push(o);
      note(name, `${name}   ${observationText(o)}`, o.kind !== 'vcpu');
      if (o.kind === 'generation' && (o.answer & KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS) !== 0n) coverage.sawInProgress++;
      if ((o.kind === 'gfn' || o.kind === 'id' || o.kind === 'vcpu') && o.answer !== null && (o.answer.flags & KVM_MEMSLOT_INVALID) !== 0)
        coverage.sawInvalid++;
      if (o.kind === 'vcpu') coverage.vcpuLookups++;
    }
    await s.schedule(Promise.resolve(), `${name} leave`);
    if (publishes[plan.asId]! > entered) coverage.insideAcrossPublish++;
    inside.delete(name);
    impl.srcuReadUnlock(handle);
    note(name, `${name} leave`);
    const verdict = model.checkReader(history[plan.asId]!, plan.asId, window, log);
    if (!verdict.ok) failed(name, `[${verdict.rule}] reader ${name} of as${plan.asId}: ${verdict.detail}`);
  };

  const all = Promise.all([writer(), ...scenario.readers.map((plan, k) => reader(k, plan))]);
  try {
    await s.waitFor(all);
  } catch (e) {
    const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    throw new ScheduledRunFailure(
      `[throws] ${what}`,
      events.map((e) => e.text),
    );
  }
  const first = failures[0];
  if (first === undefined) return;
  // The story of the first failure: everything up to it, but of the other readers only their
  // entries, exits (they hold up grace periods) and vCPU lookups (they fill the shared cache).
  const story = events.slice(0, first.at).filter((e) => !e.private || e.who === first.who);
  const hidden = first.at - story.length;
  const later = events.length - first.at;
  const tail = hidden + later > 0 ? [`(not shown: ${hidden} answers of other readers, ${later} later events; the scheduler report lists every task)`] : [];
  const more = failures.length > 1 ? `\n(${failures.length - 1} more failures in this run)` : '';
  throw new ScheduledRunFailure(first.text + more, [...story.map((e) => e.text), ...tail]);
}
