/**
 * The conformance gate: every implementation, under every built-in profile, agrees with the
 * model after every step of random command sequences (properties/commands/), at scale up to
 * the slot limits, and the sequences exercise every rule of spec/rules.ts.
 *
 * The small-state checks come from properties/conformance-plan.ts (shared with `npm run
 * gate-reach`, which measures how reliably a random seed reaches every rule).
 * MEMSLOT_RUNS / MEMSLOT_DEPTH=deep scale the number of sequences; MEMSLOT_SEED fixes the seed (test/knobs.ts).
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { IMPLEMENTATIONS } from '../impl/index.js';
import * as model from '../model/index.js';
import { U64_MAX, type Profile } from '../model/index.js';
import { RULE_IDS } from '../spec/rules.js';
import type { ImplFactory } from '../impl/interface.js';
import { BulkCreate, BulkFill, type MemslotCommand } from './commands/index.js';
import { COVERAGE_EXEMPT, COVERED_ELSEWHERE, Coverage, formatCoverageTable } from './coverage.js';
import { randomSeed, runCheck, type CheckOptions } from './run-check.js';
import { DEFAULT_RUNS, MUTATION_RUNS, builtInProfile, conformancePlan, type PlannedCheck } from './conformance-plan.js';
import { UNDER_MUTATION } from '../test/mutation/mode.js';
import { DEEP, runs, seed } from '../test/knobs.js';

const PLAN_RUNS = UNDER_MUTATION ? MUTATION_RUNS : DEFAULT_RUNS;
const RUNS = runs(PLAN_RUNS.profiles);
const SEED = seed(randomSeed);
const PLAN = conformancePlan({ profiles: RUNS, memoryApi: runs(PLAN_RUNS.memoryApi), rings: runs(PLAN_RUNS.rings) });

const coverage = new Coverage();
const expectedChecks = Object.keys(IMPLEMENTATIONS).length * PLAN.length;
let checksRun = 0;

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

const GROUP_TITLES: Record<PlannedCheck['group'], string> = {
  profiles: 'stateful conformance: implementation vs model',
  'memory-api': 'stateful conformance under the memory API profiles (spec/28)',
  'dirty-rings': 'stateful conformance from a dirty ring (spec/25)',
};

for (const [group, title] of Object.entries(GROUP_TITLES)) {
  describe(title, () => {
    for (const [implName, factory] of Object.entries(IMPLEMENTATIONS) as [string, ImplFactory][]) {
      for (const c of PLAN.filter((x) => x.group === group)) {
        // The title says what is checked; which rules the sequences reached is asserted by the
        // coverage gate below, over every implementation and profile.
        it(`${implName} agrees with the model after every step ${c.title}`, async () => {
          const { profile, runs: n, maxSteps, prefix, focus } = c;
          await conform({ impl: factory, implName, profile, seed: SEED, runs: n, maxSteps, ...(prefix && { prefix }), ...(focus && { focus }) });
          checksRun++;
        });
      }
    }
  });
}

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
      await scale('scalable', builtInProfile('x86_64-nosmm'), [new BulkFill(0)], DEEP ? 10 : 1, 25);
    },
  );

  it.skipIf(UNDER_MUTATION)('[MS-CRT-02][MS-VAL-02][MS-OVL-01] scalable: x86_64 with address space 1 full and 2000 slots in address space 0', async () => {
    await scale('scalable', builtInProfile('x86_64'), [new BulkCreate(0, 2000, 1n, 1n, 3, false), new BulkFill(1)], DEEP ? 5 : 1);
  });

  it('[MS-CRT-02][MS-VAL-02] linux-5.10-x86_64: both address spaces at the 509 limit and the first id past it, then random commands', async () => {
    for (const implName of Object.keys(IMPLEMENTATIONS))
      await scale(implName, builtInProfile('linux-5.10-x86_64'), [new BulkFill(0), new BulkFill(1)], DEEP ? 50 : 8, 60);
  });

  it('[MS-CRT-02][MS-DEL-02] legacy: thousands of live slots under x86_64-nosmm (all 32764 with MEMSLOT_DEPTH=deep)', async () => {
    const prefix = DEEP ? [new BulkFill(0)] : [new BulkCreate(0, UNDER_MUTATION ? 1000 : 4000, 1n, 0n, 3, false)];
    await scale('legacy', builtInProfile('x86_64-nosmm'), prefix, DEEP ? 3 : 2);
  });
});

describe('rules no request sequence reaches', () => {
  it('[MS-CRT-01] a create whose pages would overflow the u64 nr_memslot_pages fails with EINVAL (crafted state)', () => {
    // No request can get here: 2 x 32767 slots of at most 2^31 - 1 pages (internal ones at most
    // 2^52) stay far below 2^64 pages. So the state is crafted: a VM that already counts
    // 2^64 - 2 pages.
    const p = builtInProfile('x86_64-nosmm');
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
