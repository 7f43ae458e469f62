/**
 * spec/45-atomicity.md under fast-check's scheduler: one writer (create, delete, move, flags on
 * a few slots in a small gfn space) and many readers (enter, 2 to 5 lookups with scheduler
 * points between, leave), in random interleavings, on both implementations. Every reader must
 * be explained by one state of the model's history in its window (model/atomicity.ts).
 *
 * Planted bugs (properties/concurrency/planted.fixture.ts) show the check can fail, each with a shrunk,
 * readable interleaving. MEMSLOT_VERBOSE=1 prints them; MEMSLOT_RUNS or MEMSLOT_DEPTH=deep set the depth (test/knobs.ts).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ConcurrentMemslotImpl } from '../impl/interface.js';
import { LegacyMemslots } from '../impl/legacy/legacy-impl.js';
import { ScalableMemslots } from '../impl/scalable/scalable-impl.js';
import * as model from '../model/index.js';
import {
  KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS,
  KVM_MEMSLOT_INVALID,
  PROFILES,
  checkReader,
  type Profile,
  type ReadObservation,
  type VmState,
} from '../model/index.js';
import { LEGACY_BUGS, SCALABLE_BUGS, type PlantedBug } from './concurrency/planted.fixture.js';
import { UNDER_MUTATION } from '../test/mutation/mode.js';
import {
  emptyCoverage,
  opText,
  regionOf,
  runScenario,
  scenarioArb,
  setupOps,
  type ConcurrencyCoverage,
  type Scenario,
  type WriterOp,
} from './concurrency/scenario.fixture.js';

import { VERBOSE, runs } from '../test/knobs.js';

const SCALABLE_PROFILE = PROFILES['x86_64']!;
const LEGACY_PROFILE = PROFILES['linux-5.10-x86_64']!;
const LIMITS = { maxOps: 5, maxReaders: 6 };
const NUM_RUNS = runs(UNDER_MUTATION ? 30 : 150);

function property(
  profile: Profile,
  make: (p: Profile) => ConcurrentMemslotImpl,
  coverage?: ConcurrencyCoverage,
): fc.IAsyncPropertyWithHooks<[fc.Scheduler, Scenario]> {
  return fc.asyncProperty(fc.scheduler(), scenarioArb(profile, LIMITS), (s, scenario) => runScenario(s, make(profile), scenario, coverage));
}

/** The runs must have reached the cases the rules are about, or a pass means little. */
function expectCovered(c: ConcurrencyCoverage, vcpuCache: boolean): void {
  expect(c.enteredDuringRequest, 'readers entering while a request runs').toBeGreaterThan(0);
  expect(c.insideAcrossPublish, 'readers inside across a publish').toBeGreaterThan(0);
  expect(c.writerWaited, 'grace periods that waited for a reader').toBeGreaterThan(0);
  expect(c.sawInProgress, 'in-progress generations read').toBeGreaterThan(0);
  expect(c.sawInvalid, 'INVALID copies read').toBeGreaterThan(0);
  if (vcpuCache) expect(c.vcpuLookups, 'vCPU lookups').toBeGreaterThan(0);
}

describe('atomic swap under concurrent readers', () => {
  it('[MS-ATM-01][MS-ATM-02][MS-ATM-03][MS-ATM-04][MS-ATM-05][MS-ATM-06] scalable: every reader is explained by one state of its window', async () => {
    const coverage = emptyCoverage();
    await fc.assert(
      property(SCALABLE_PROFILE, (p) => new ScalableMemslots(p), coverage),
      { numRuns: NUM_RUNS },
    );
    expectCovered(coverage, true);
  });

  it('[MS-ATM-01][MS-ATM-02][MS-ATM-03][MS-ATM-04][MS-ATM-05] legacy: every reader is explained by one state of its window', async () => {
    const coverage = emptyCoverage();
    await fc.assert(
      property(LEGACY_PROFILE, (p) => new LegacyMemslots(p), coverage),
      { numRuns: NUM_RUNS },
    );
    expectCovered(coverage, false);
  });

  it('[MS-ATM-01][MS-ATM-05][MS-GEN-05] legacy under x86_64 (a max gfn, so MOVEs that are published and reverted): every reader is explained', async () => {
    const coverage = emptyCoverage();
    await fc.assert(
      property(SCALABLE_PROFILE, (p) => new LegacyMemslots(p), coverage),
      { numRuns: Math.ceil(NUM_RUNS / 2) },
    );
    expectCovered(coverage, false);
  });
});

/** Seeds fixed so that each planted bug's shrunk interleaving is the same on every run. */
const PLANTED: readonly (PlantedBug & { profile: Profile; seed: number })[] = [
  ...SCALABLE_BUGS.map((b) => ({ ...b, profile: SCALABLE_PROFILE, seed: 1 })),
  ...LEGACY_BUGS.map((b) => ({ ...b, profile: LEGACY_PROFILE, seed: 1 })),
];

describe('planted bugs are caught with a readable interleaving', () => {
  it.each(PLANTED.map((b) => [`${b.name}, which ${b.what},`, b] as const))('[MS-ATM-01][MS-ATM-02] %s fails the scheduled property', async (_, bug) => {
    const result = await fc.check(property(bug.profile, bug.make), { numRuns: 1000, seed: bug.seed });
    expect(result.failed, `${bug.name} was not caught in ${result.numRuns} runs`).toBe(true);
    const error = result.errorInstance;
    expect(error).toBeInstanceOf(Error);
    const message = (error as Error).message;
    const schedule = String(result.counterexample?.[0]);
    if (message.startsWith('[writer] setup')) {
      // Wrong even with no reader at all: the run stops at the setup request that went wrong.
      expect(bug.sequentiallyCorrect).toBe(false);
    } else {
      // The verdict names a rule (or the writer's disagreement, or what threw), then the story.
      expect(message).toMatch(bug.sequentiallyCorrect ? /^\[MS-ATM-0\d\]/ : /^\[(MS-ATM-0\d|writer|throws)\]/);
      expect(message).toMatch(/\ninterleaving \(execution order\):\n {2}setup: .*\n(.*\n)* {2}W1 /);
      // The scheduler's report: the order in which it released the tasks.
      expect(schedule).toContain('schedulerFor()');
      expect(schedule).toMatch(/promise::W1 .* resolved/);
      expect(schedule).toMatch(/promise::R\d+ enter as\d resolved/);
    }
    if (VERBOSE) console.log(`--- ${bug.name}: ${bug.what} (${result.numShrinks} shrinks)\n${schedule}\n${message}\n`);
  });

  it('planted bugs (a)-(c) answer exactly as the model when no reader runs during a request', () => {
    const sequential = PLANTED.filter((b) => b.sequentiallyCorrect);
    for (const bug of sequential) {
      fc.assert(
        fc.property(scenarioArb(bug.profile, { maxOps: 12, maxReaders: 1 }), (scenario) => {
          const impl = bug.make(bug.profile);
          let vm = model.createVm(bug.profile);
          const ops: readonly WriterOp[] = [...setupOps(bug.profile), ...scenario.ops];
          for (const op of ops) {
            const step = model.setUserMemoryRegion(vm, regionOf(op));
            const { rule: _rule, ...want } = step.result;
            expect(impl.setUserMemoryRegion(regionOf(op)), `${bug.name}: ${opText(op)}`).toEqual(want);
            vm = step.state;
            for (const sp of vm.spaces) {
              expect(impl.slots(sp.asId)).toEqual(model.memslots(vm, sp.asId));
              expect(impl.generation(sp.asId)).toBe(sp.generation);
            }
          }
        }),
        { numRuns: 25 },
      );
    }
  });
});

/*
 * The checker on hand-made histories: a DELETE of slot 1 (gfn 0x4, 2 pages) in a VM with one
 * address space, the example of spec/45-atomicity.md.
 */
describe('the atomicity checker (model/atomicity.ts)', () => {
  const profile = PROFILES['x86_64-nosmm']!;
  const slot1 = { slot: 1, flags: 0, guestPhysAddr: 0x4000n, memorySize: 0x2000n, userspaceAddr: 0x11_0000n };
  let vm: VmState = model.createVm(profile);
  for (let i = 0; i < 5; i++) vm = model.setUserMemoryRegion(vm, { ...slot1, guestPhysAddr: BigInt(i % 2) * 0x4000n + 0x4000n }).state;
  const del = model.setUserMemoryRegion(vm, { ...slot1, memorySize: 0n });
  const history: VmState[] = [vm, ...model.publishedStates(0, vm, del.published)];
  const [h0, h1, h2] = [0, 1, 2].map((i) => model.space(history[i]!, 0));
  const whole = model.gfnToMemslot(history[0]!, 0, 5n);
  const invalid = model.gfnToMemslot(history[1]!, 0, 5n);
  const during = { first: 0, last: 2 };
  const check = (window: { first: number; last: number }, log: ReadObservation[]): string =>
    ((v) => (v.ok ? `ok h${v.state}` : v.rule))(checkReader(history, 0, window, log));
  const gen = (g: bigint): ReadObservation => ({ kind: 'generation', answer: g });
  const ip = (g: bigint): bigint => g | KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS;

  it('[MS-ATM-01] the history of a DELETE has the INVALID copy, then no slot; generations grow by N', () => {
    expect([h0!.generation, h1!.generation, h2!.generation]).toEqual([h0!.generation, h0!.generation + 1n, h0!.generation + 2n]);
    expect(whole?.flags).toBe(0);
    expect(invalid?.flags).toBe(model.KVM_MEMSLOT_INVALID);
    expect(model.gfnToMemslot(history[2]!, 0, 5n)).toBeNull();
  });

  it('[MS-ATM-01] answers that all come from one state pass; a mix of two fails', () => {
    expect(
      check(during, [
        { kind: 'gfn', gfn: 5n, answer: whole },
        { kind: 'id', id: 1, answer: whole },
      ]),
    ).toBe('ok h0');
    expect(
      check(during, [
        { kind: 'gfn', gfn: 5n, answer: whole },
        { kind: 'gfn', gfn: 5n, answer: null },
      ]),
    ).toBe('MS-ATM-01');
  });

  it('[MS-ATM-02] a reader that entered before the request cannot see what it publishes', () => {
    expect(check({ first: 0, last: 0 }, [{ kind: 'gfn', gfn: 5n, answer: null }])).toBe('MS-ATM-02');
    expect(check({ first: 2, last: 2 }, [{ kind: 'id', id: 1, answer: whole }])).toBe('MS-ATM-02');
  });

  it("[MS-ATM-03] the in-progress generation is the replaced state's with bit 63, only for a state the request published", () => {
    expect(check(during, [gen(ip(h0!.generation)), { kind: 'id', id: 1, answer: invalid }])).toBe('ok h1');
    expect(check(during, [gen(ip(h1!.generation)), { kind: 'id', id: 1, answer: null }])).toBe('ok h2');
    expect(check(during, [gen(ip(h1!.generation)), { kind: 'id', id: 1, answer: whole }])).toBe('MS-ATM-01');
    expect(check(during, [gen(ip(h2!.generation))])).toBe('MS-ATM-03');
  });

  it('[MS-ATM-04] after the swap the final generation, and never bit 63 again', () => {
    expect(check(during, [gen(ip(h0!.generation)), gen(h1!.generation)])).toBe('ok h1');
    expect(check(during, [gen(h1!.generation), gen(ip(h0!.generation))])).toBe('MS-ATM-04');
    expect(check(during, [gen(h2!.generation + 1n)])).toBe('MS-ATM-04');
    // h2's swap was over before this reader entered: its in-progress value is no longer possible.
    expect(check({ first: 2, last: 2 }, [gen(ip(h1!.generation))])).toBe('MS-ATM-04');
  });

  it('[MS-ATM-05] the INVALID copy has no host address and is not visible; a half-moved slot fails', () => {
    const refused: ReadObservation[] = [
      { kind: 'hva', gfn: 5n, write: false, answer: { ok: false, error: 'KVM_HVA_ERR_BAD' } },
      { kind: 'visible', gfn: 5n, answer: false },
      { kind: 'id', id: 1, answer: invalid },
    ];
    expect(check(during, refused)).toBe('ok h1');
    const halfMoved = { ...whole!, baseGfn: 0x6n };
    expect(check(during, [{ kind: 'id', id: 1, answer: halfMoved }])).toBe('MS-ATM-05');
  });

  it('[MS-ATM-06] a vCPU answer from before the window is a stale cache', () => {
    expect(check({ first: 2, last: 2 }, [{ kind: 'vcpu', vcpu: 0, gfn: 5n, answer: null }])).toBe('ok h2');
    expect(check({ first: 2, last: 2 }, [gen(h2!.generation), { kind: 'vcpu', vcpu: 0, gfn: 5n, answer: whole }])).toBe('MS-ATM-06');
  });
});

describe('the SRCU read side', () => {
  it('[MS-ATM-01] a reader keeps its set across a request, and a synchronous writer refuses to wait for it', () => {
    for (const impl of [new ScalableMemslots(SCALABLE_PROFILE), new LegacyMemslots(LEGACY_PROFILE)]) {
      const [create, move] = [
        { kind: 'set', asId: 0, id: 0, gfn: 0n, flags: 0 },
        { kind: 'set', asId: 0, id: 0, gfn: 3n, flags: 0 },
      ] as const;
      impl.setUserMemoryRegion(regionOf(create));
      const before = impl.srcuReadLock(0);
      // The synchronous API would wait for `before` forever: it throws instead, after the first publish.
      expect(() => impl.setUserMemoryRegion(regionOf(move))).toThrow(/deadlock/);
      impl.srcuReadUnlock(before);
      expect(() => before.gfnToMemslot(0n)).toThrow(/after srcu_read_unlock/);
      expect(() => impl.srcuReadUnlock(before)).toThrow(/not inside/);
    }
  });

  it('[MS-ATM-01][MS-ATM-03][MS-ATM-04] a concurrent writer waits for the reader that entered before its publish', async () => {
    for (const impl of [new ScalableMemslots(SCALABLE_PROFILE), new LegacyMemslots(LEGACY_PROFILE)]) {
      impl.setUserMemoryRegion(regionOf({ kind: 'set', asId: 0, id: 0, gfn: 0n, flags: 0 }));
      const g0 = impl.generation(0);
      const old = impl.srcuReadLock(0);
      const steps = impl.setUserMemoryRegionSteps(regionOf({ kind: 'set', asId: 0, id: 0, gfn: 3n, flags: 0 }));
      const first = steps.next();
      expect(first.done).toBe(false);
      const point = first.value as { asId: number; epoch: number };
      const fresh = impl.srcuReadLock(0);
      expect(fresh.generation()).toBe(g0 | KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS);
      expect(fresh.gfnToHva(0n, false)).toEqual({ ok: false, error: 'KVM_HVA_ERR_BAD' });
      let over = false;
      const grace = impl.gracePeriod(point).then(() => (over = true));
      await Promise.resolve();
      expect(over).toBe(false);
      expect(old.gfnToMemslot(0n)?.flags).toBe(0);
      impl.srcuReadUnlock(old);
      await grace;
      // The writer resumes: it finishes the first swap (N = 2), then publishes the final set.
      let r = steps.next();
      expect(fresh.generation()).toBe(g0 + 2n);
      expect(r.done).toBe(false);
      impl.srcuReadUnlock(fresh);
      while (r.done !== true) {
        await impl.gracePeriod(r.value);
        r = steps.next();
      }
      expect(r.value).toEqual({ ok: true, change: 'MOVE' });
      expect(impl.generation(0)).toBe(g0 + 4n);
      expect(impl.gfnToMemslot(0, 3n)?.baseGfn).toBe(3n);
    }
  });

  it('[MS-GEN-05][MS-ATM-05] a MOVE past the max gfn: a reader between its two publishes sees the INVALID copy, then the slot is back', () => {
    for (const impl of [new ScalableMemslots(SCALABLE_PROFILE), new LegacyMemslots(SCALABLE_PROFILE)]) {
      const slot1 = { kind: 'set', asId: 0, id: 1, gfn: 0n, flags: 0 } as const;
      impl.setUserMemoryRegion(regionOf(slot1));
      const g0 = impl.generation(0);
      // Slot 1 has 2 pages: at the last gfn below the limit it crosses it.
      const steps = impl.setUserMemoryRegionSteps(regionOf({ ...slot1, gfn: SCALABLE_PROFILE.maxGfn! }));
      let r = steps.next();
      expect(r.done).toBe(false);
      const between = impl.srcuReadLock(0);
      expect(between.idToMemslot(1)?.flags).toBe(KVM_MEMSLOT_INVALID);
      expect(between.gfnToHva(0n, false)).toEqual({ ok: false, error: 'KVM_HVA_ERR_BAD' });
      expect(between.isVisibleGfn(1n)).toBe(false);
      impl.srcuReadUnlock(between);
      while (r.done !== true) r = steps.next();
      expect(r.value).toEqual({ ok: false, errno: 'EINVAL' });
      expect(impl.idToMemslot(0, 1)).toMatchObject({ baseGfn: 0n, flags: 0 });
      expect(impl.generation(0)).toBe(g0 + 4n);
    }
  });
});
