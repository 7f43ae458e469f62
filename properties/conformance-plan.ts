/**
 * The small-state part of the conformance gate (properties/conformance.test.ts): which profiles,
 * prefixes and focus each check runs with, and how many sequences. One list, so that the test
 * and the measurement of the coverage gate's reach (bench/gate-reach.ts) run the same checks.
 *
 * The gate runs on a fresh random seed each time, so the rarest rules must fire under every
 * seed, not only the pinned one: `npm run gate-reach` counts, over many seeds, how often each
 * rule fired, and its minimum over the seeds is what the run counts below were sized by.
 */
import { PROFILES, acceptedVmTypes, withParams, type Profile, type RingCap } from '../model/index.js';
import { ResetVmType } from './commands/reset-vm-type.js';
import { ringPrefix } from './commands/dirty-ring.js';
import type { MemslotCommand } from './commands/index.js';

export interface PlannedCheck {
  readonly group: 'profiles' | 'memory-api' | 'dirty-rings';
  /** What the test title says besides the implementation. */
  readonly title: string;
  readonly profile: Profile;
  readonly runs: number;
  readonly maxSteps: number;
  readonly prefix?: readonly MemslotCommand[];
  readonly focus?: 'dirty-rings';
}

/** Sequences per check, by group. */
export interface PlanRuns {
  readonly profiles: number;
  readonly memoryApi: number;
  readonly rings: number;
}

/**
 * Sequences per check in `npm test`. At 30, 20 and 6, over seeds 1..100, MS-GMS-06 went unhit
 * under 4 seeds, MS-GMB-05 under 3 and MS-RNG-04 under 1 (and MS-RNG-03 under 4 of 30 before
 * its sizes were widened); at these counts none under seeds 201..260 and 300..359.
 */
export const DEFAULT_RUNS: PlanRuns = { profiles: 50, memoryApi: 50, rings: 12 };
/** Under mutation (about 15 times slower) the gate is off (docs/mutation.md). */
export const MUTATION_RUNS: PlanRuns = { profiles: 10, memoryApi: 5, rings: 3 };

export const MAX_STEPS = 200;

/**
 * Kernel lines and VM types where the 6.8+ memory API (spec/28) decides differently from the
 * pinned 6.18 of PROFILES: 7.3 (the already-bound check after the arch checks), 6.12 (guest_memfd
 * slots only with private memory, EINVAL for a bound range, no guest_memfd flags), and two
 * source-only 7.3 profiles with private-memory VM types (SW_PROTECTED; TDX with its shared bit).
 */
export const MEMORY_API_PROFILES = ['linux-7.3-x86_64', 'linux-6.12-x86_64', 'linux-7.3-x86_64-sw-protected', 'linux-7.3-x86_64-intel-tdx'];

/**
 * Dirty rings (spec/25): runs that start with the smallest ring (4096 bytes) and a logged slot
 * of 256 pages. Under x86_64 (64 reserved entries: soft limit 192, which write bursts reach),
 * and under x86_64-nosmm with 250 reserved entries (a soft limit of 6: the ring is full often,
 * as on a host whose CPU dirty log reserves many entries; Intel PML reserves 576).
 */
export const RING_PROFILES: readonly { readonly profile: string; readonly cap: RingCap }[] = [
  { profile: 'x86_64', cap: 'DIRTY_LOG_RING' },
  { profile: 'x86_64-nosmm,dirty_ring_rsvd_entries=250', cap: 'DIRTY_LOG_RING_ACQ_REL' },
];

export function builtInProfile(name: string): Profile {
  const p = withParams(name);
  if (p === null || typeof p === 'string') throw new Error(`no built-in profile ${name}`);
  return p;
}

/**
 * What a run starts with under `p`: where the kernel offers VM types besides DEFAULT, a reset
 * into one of them (later resets still vary the type), since only there do guest_memfd and
 * private memory decide.
 */
export function startPrefix(p: Profile): MemslotCommand[] {
  return acceptedVmTypes(p) > 1 ? [new ResetVmType({ kind: 'offered', pick: 0 })] : [];
}

/** Every small-state check of the gate, for one implementation. */
export function conformancePlan(runs: PlanRuns): PlannedCheck[] {
  const out: PlannedCheck[] = [];
  for (const p of Object.values(PROFILES)) out.push({ group: 'profiles', title: `under ${p.name}`, profile: p, runs: runs.profiles, maxSteps: MAX_STEPS });
  for (const name of MEMORY_API_PROFILES) {
    const p = builtInProfile(name);
    out.push({ group: 'memory-api', title: `under ${name}`, profile: p, runs: runs.memoryApi, maxSteps: MAX_STEPS, prefix: startPrefix(p) });
  }
  for (const { profile, cap } of RING_PROFILES) {
    const p = builtInProfile(profile);
    out.push({
      group: 'dirty-rings',
      title: `under ${p.name}, starting with a ${cap} of 4096 bytes and a logged slot`,
      profile: p,
      runs: runs.rings,
      maxSteps: MAX_STEPS,
      prefix: ringPrefix(cap),
      focus: 'dirty-rings',
    });
  }
  return out;
}
