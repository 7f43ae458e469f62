/**
 * The conformance gate: every implementation, under every built-in profile, agrees with the
 * model after every step of random command sequences (properties/commands/), at scale up to
 * the slot limits, and the sequences exercise every rule of spec/rules.ts.
 *
 * MEMSLOT_RUNS / MEMSLOT_DEPTH=deep scale the number of sequences; MEMSLOT_SEED fixes the seed (test/knobs.ts).
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { IMPLEMENTATIONS } from '../impl/index.js';
import * as model from '../model/index.js';
import { PROFILES, U64_MAX, acceptedVmTypes, withParams, type Profile, type RingCap } from '../model/index.js';
import { ResetVmType } from './commands/reset-vm-type.js';
import { ringPrefix } from './commands/dirty-ring.js';
import { RULE_IDS } from '../spec/rules.js';
import type { ImplFactory } from '../impl/interface.js';
import { BulkCreate, BulkFill, type MemslotCommand } from './commands/index.js';
import { COVERAGE_EXEMPT, COVERED_ELSEWHERE, Coverage, formatCoverageTable } from './coverage.js';
import { randomSeed, runCheck, type CheckOptions } from './run-check.js';
import { UNDER_MUTATION } from '../test/mutation/mode.js';
import { DEEP, runs, seed } from '../test/knobs.js';

const RUNS = runs(UNDER_MUTATION ? 10 : 30);
const SEED = seed(randomSeed);
const MAX_STEPS = 200;

/**
 * Kernel lines and VM types where the 6.8+ memory API (spec/28) decides differently from the
 * pinned 6.18 of PROFILES: 7.3 (the already-bound check after the arch checks), 6.12 (guest_memfd
 * slots only with private memory, EINVAL for a bound range, no guest_memfd flags), and two
 * source-only 7.3 profiles with private-memory VM types (SW_PROTECTED; TDX with its shared bit).
 */
const MEMORY_API_PROFILES = ['linux-7.3-x86_64', 'linux-6.12-x86_64', 'linux-7.3-x86_64-sw-protected', 'linux-7.3-x86_64-intel-tdx'];
const MEMORY_API_RUNS = runs(UNDER_MUTATION ? 5 : 20);

/**
 * Dirty rings (spec/25): a few runs that start with the smallest ring (4096 bytes) and a logged
 * slot of 256 pages. Under x86_64 (64 reserved entries: soft limit 192, which write bursts
 * reach), and under x86_64-nosmm with 250 reserved entries (a soft limit of 6: the ring is full
 * often, as on a host whose CPU dirty log reserves many entries; Intel PML reserves 576).
 */
const RING_PROFILES: readonly { readonly profile: Profile; readonly cap: RingCap }[] = [
  { profile: PROFILES['x86_64']!, cap: 'DIRTY_LOG_RING' },
  {
    profile: profile('x86_64-nosmm,dirty_ring_rsvd_entries=250'),
    cap: 'DIRTY_LOG_RING_ACQ_REL',
  },
];
const RING_RUNS = runs(UNDER_MUTATION ? 3 : 6);

const coverage = new Coverage();
const expectedChecks = Object.keys(IMPLEMENTATIONS).length * (Object.keys(PROFILES).length + MEMORY_API_PROFILES.length + RING_PROFILES.length);
let checksRun = 0;

function profile(name: string): Profile {
  const p = withParams(name);
  if (p === null || typeof p === 'string') throw new Error(`no built-in profile ${name}`);
  return p;
}

/** Runs the check and fails the test with the counterexample report (also written under reports/counterexamples/). */
async function conform(opts: CheckOptions): Promise<void> {
  const outDir = join('reports', 'counterexamples', `${opts.implName ?? 'impl'}-${opts.profile.name}-seed-${opts.seed ?? 'random'}`);
  const r = await runCheck({ minimiseMs: 10_000, outDir, ...opts });
  coverage.merge(r.coverage);
  if (!r.ok) {
    const files = r.counterexample.files === null ? '' : `\nreport: ${r.counterexample.files.report}\ntrace:  ${r.counterexample.files.trace}`;
    expect.fail(`${r.counterexample.report}${files}\n(${r.runs} runs, ${r.steps} steps; rerun with MEMSLOT_SEED=${r.seed})`);
  }
  expect(r.steps).toBeGreaterThan(0);
}

afterAll(() => {
  console.log(
    `\nRule coverage of properties/conformance.test.ts (seed ${SEED}, ${RUNS} runs per implementation and profile):\n${formatCoverageTable(coverage)}\n`,
  );
});

describe('stateful conformance: implementation vs model', () => {
  for (const [implName, factory] of Object.entries(IMPLEMENTATIONS) as [string, ImplFactory][]) {
    for (const p of Object.values(PROFILES)) {
      // The title says what is checked; which rules the sequences reached is asserted by the
      // coverage gate below, over every implementation and profile.
      it(`${implName} agrees with the model after every step under ${p.name}`, async () => {
        await conform({ impl: factory, implName, profile: p, seed: SEED, runs: RUNS, maxSteps: MAX_STEPS });
        checksRun++;
      });
    }
  }
});

describe('stateful conformance under the memory API profiles (spec/28)', () => {
  for (const [implName, factory] of Object.entries(IMPLEMENTATIONS) as [string, ImplFactory][]) {
    for (const name of MEMORY_API_PROFILES) {
      it(`${implName} agrees with the model after every step under ${name}`, async () => {
        const p = profile(name);
        // Where the kernel offers VM types besides DEFAULT, every run starts in one of them (later resets still vary the type).
        const prefix = acceptedVmTypes(p) > 1 ? [new ResetVmType({ kind: 'offered', pick: 0 })] : [];
        await conform({ impl: factory, implName, profile: p, seed: SEED, runs: MEMORY_API_RUNS, maxSteps: MAX_STEPS, prefix });
        checksRun++;
      });
    }
  }
});

describe('stateful conformance from a dirty ring (spec/25)', () => {
  for (const [implName, factory] of Object.entries(IMPLEMENTATIONS) as [string, ImplFactory][]) {
    for (const { profile: p, cap } of RING_PROFILES) {
      it(`${implName} agrees with the model after every step under ${p.name}, starting with a ${cap} of 4096 bytes and a logged slot`, async () => {
        await conform({ impl: factory, implName, profile: p, seed: SEED, runs: RING_RUNS, maxSteps: MAX_STEPS, prefix: ringPrefix(cap), focus: 'dirty-rings' });
        checksRun++;
      });
    }
  }
});

describe('scale: thousands of live slots, up to the limits', () => {
  const small = { maxBulk: 64, fill: false, maxSteps: 15 } as const;
  const scale = async (implName: string, p: Profile, prefix: MemslotCommand[], runs: number, maxSteps: number = small.maxSteps): Promise<void> => {
    const factory = (IMPLEMENTATIONS as Record<string, ImplFactory>)[implName]!;
    await conform({ impl: factory, implName, profile: p, seed: SEED, runs, ...small, maxSteps, prefix, minimiseMs: 30_000 });
  };

  // Under mutation the two scalable fills are left to impl/fill-max-slots.test.ts (the same
  // 32764 creates, then id 32764), and legacy gets 1000 slots instead of 4000.
  it.skipIf(UNDER_MUTATION)(
    '[MS-CRT-02][MS-VAL-02] scalable: all 32764 user slots of x86_64-nosmm, then id 32764 fails, then random commands at the limit',
    async () => {
      await scale('scalable', profile('x86_64-nosmm'), [new BulkFill(0)], DEEP ? 10 : 1, 25);
    },
  );

  it.skipIf(UNDER_MUTATION)('[MS-CRT-02][MS-VAL-02][MS-OVL-01] scalable: x86_64 with address space 1 full and 2000 slots in address space 0', async () => {
    await scale('scalable', profile('x86_64'), [new BulkCreate(0, 2000, 1n, 1n, 3, false), new BulkFill(1)], DEEP ? 5 : 1);
  });

  it('[MS-CRT-02][MS-VAL-02] linux-5.10-x86_64: both address spaces at the 509 limit and the first id past it, then random commands', async () => {
    for (const implName of Object.keys(IMPLEMENTATIONS))
      await scale(implName, profile('linux-5.10-x86_64'), [new BulkFill(0), new BulkFill(1)], DEEP ? 50 : 8, 60);
  });

  it('[MS-CRT-02][MS-DEL-02] legacy: thousands of live slots under x86_64-nosmm (all 32764 with MEMSLOT_DEPTH=deep)', async () => {
    const prefix = DEEP ? [new BulkFill(0)] : [new BulkCreate(0, UNDER_MUTATION ? 1000 : 4000, 1n, 0n, 3, false)];
    await scale('legacy', profile('x86_64-nosmm'), prefix, DEEP ? 3 : 2);
  });
});

describe('rules no request sequence reaches', () => {
  it('[MS-CRT-01] a create whose pages would overflow the u64 nr_memslot_pages fails with EINVAL (crafted state)', () => {
    // No request can get here: 2 x 32767 slots of at most 2^31 - 1 pages (internal ones at most
    // 2^52) stay far below 2^64 pages. So the state is crafted: a VM that already counts
    // 2^64 - 2 pages.
    const p = profile('x86_64-nosmm');
    const vm: model.VmState = { ...model.createVm(p), nrMemslotPages: U64_MAX - 1n };
    const step = model.setUserMemoryRegion(vm, { slot: 0, flags: 0, guestPhysAddr: 0n, memorySize: 0x2000n, userspaceAddr: 0x7f00_0000_0000n });
    expect(step.result).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-CRT-01' });
    expect(step.state).toBe(vm);
    const fits = model.setUserMemoryRegion(vm, { slot: 0, flags: 0, guestPhysAddr: 0n, memorySize: 0x1000n, userspaceAddr: 0x7f00_0000_0000n });
    expect(fits.result).toEqual({ ok: true, change: 'CREATE', rule: 'MS-CRT-02' });
    coverage.hit('MS-CRT-01');
  });
});

describe('coverage gate', () => {
  // Under mutation (10 sequences, not 30) the pinned seed no longer reaches every rule, and the
  // gate measures the generators' reach, not the code a mutant changes: Stryker's dry run failed on it.
  it.skipIf(UNDER_MUTATION)('every rule of spec/rules.ts fired at least once, except the listed exemptions', (ctx) => {
    // Only meaningful when every conformance property ran (not under a -t filter).
    if (checksRun < expectedChecks) ctx.skip();
    const missing = coverage.missing();
    expect(missing, `rules never hit by the conformance suite:\n${missing.join('\n')}\n\n${formatCoverageTable(coverage)}`).toEqual([]);
    // Exemptions stay honest: an exempt rule that the suite does hit should lose its exemption.
    const hitAnyway = RULE_IDS.filter(
      (r) => (COVERAGE_EXEMPT[r] !== undefined || COVERED_ELSEWHERE[r] !== undefined) && coverage.count(r) > 0 && r !== 'MS-CRT-01',
    );
    expect(hitAnyway, 'exempt rules that the sequences hit: drop their exemption').toEqual([]);
  });
});
