/**
 * spec/45-atomicity.md under fast-check's scheduler: one writer (create, delete, move, flags on
 * a few slots in a small gfn space) and many readers (enter, 2 to 5 lookups with scheduler
 * points between, leave), in random interleavings, on both implementations. Every reader must
 * be explained by one state of the model's history in its window (model/atomicity.ts).
 *
 * Planted bugs (properties/concurrency/planted.ts) show the check can fail, each with a shrunk,
 * readable interleaving. Set PRINT_COUNTEREXAMPLES=1 to print them.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LegacyMemslots } from '../impl/legacy/legacy-impl.js';
import { ScalableMemslots } from '../impl/scalable/scalable-impl.js';
import type { ConcurrentMemslotImpl } from '../impl/interface.js';
import * as model from '../model/index.js';
import {
  KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS,
  KVM_MEMSLOT_INVALID,
  PROFILES,
  checkReader,
  type Memslot,
  type Profile,
  type ReadObservation,
} from '../model/index.js';
import { LEGACY_BUGS, SCALABLE_BUGS, type PlantedBug } from './concurrency/planted.js';
import { ScheduledRunFailure, regionOf, runScenario, scenarioArb, setupOps, type Scenario } from './concurrency/scenario.js';

const SCALABLE_PROFILE = PROFILES['x86_64']!;
const LEGACY_PROFILE = PROFILES['linux-5.10-x86_64']!;
const LIMITS = { maxOps: 5, maxReaders: 6 };
const NUM_RUNS = Number(process.env['NUM_RUNS'] ?? 150);

function property(profile: Profile, make: (p: Profile) => ConcurrentMemslotImpl): fc.IAsyncPropertyWithHooks<[fc.Scheduler, Scenario]> {
  return fc.asyncProperty(fc.scheduler(), scenarioArb(profile, LIMITS), (s, scenario) => runScenario(s, make(profile), scenario));
}

describe('atomic swap under concurrent readers', () => {
  it('[MS-ATM-01][MS-ATM-02][MS-ATM-03][MS-ATM-04][MS-ATM-05][MS-ATM-06] scalable: every reader is explained by one state of its window', async () => {
    await fc.assert(property(SCALABLE_PROFILE, (p) => new ScalableMemslots(p)), { numRuns: NUM_RUNS });
  });

  it('[MS-ATM-01][MS-ATM-02][MS-ATM-03][MS-ATM-04][MS-ATM-05] legacy: every reader is explained by one state of its window', async () => {
    await fc.assert(property(LEGACY_PROFILE, (p) => new LegacyMemslots(p)), { numRuns: NUM_RUNS });
  });
});
