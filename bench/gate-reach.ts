#!/usr/bin/env node
/**
 * `npm run gate-reach -- [--seeds FIRST..LAST] [--runs profiles,memoryApi,rings] [--top N]`:
 * how reliably the conformance gate's small-state checks (properties/conformance-plan.ts)
 * reach every rule when the seed is random, as it is in `npm test`.
 *
 * For each seed it runs the plan once, against the scalable implementation (the commands are
 * drawn against the model, so which rules fire does not depend on the implementation), and
 * counts every rule's hits. It prints the rarest rules: the fewest hits under any seed, on how
 * many seeds a rule was never hit (each such seed is a run of `npm test` whose coverage gate
 * fails), and the mean. The scale checks of the gate are left out: they add hits, never remove them.
 * Exit status 0 when every rule was hit under every seed, 1 when one was not, 2 on bad usage.
 */
import { parseArgs } from 'node:util';
import { intOption } from '../cli/options.js';
import { UsageError } from '../cli/usage.js';
import { pathToFileURL } from 'node:url';
import { IMPLEMENTATIONS } from '../impl/index.js';
import { RULE_IDS, type RuleId } from '../spec/rules.js';
import { COVERAGE_EXEMPT, COVERED_ELSEWHERE } from '../properties/coverage.js';
import { DEFAULT_RUNS, conformancePlan, type PlanRuns } from '../properties/conformance-plan.js';
import { runCheck } from '../properties/run-check.js';

const USAGE = 'usage: node dist/bench/gate-reach.js [--seeds FIRST..LAST] [--runs PROFILES,MEMORY_API,RINGS] [--top N]';

export interface RuleReach {
  readonly rule: RuleId;
  readonly min: number;
  readonly zeroSeeds: number;
  readonly mean: number;
}

/** Hits per rule under each seed of [first, last], rarest first. */
export async function gateReach(first: number, last: number, runs: PlanRuns, onSeed?: (seed: number) => void): Promise<RuleReach[]> {
  const counted = RULE_IDS.filter((r) => COVERAGE_EXEMPT[r] === undefined && COVERED_ELSEWHERE[r] === undefined);
  const hits = new Map<RuleId, number[]>(counted.map((r) => [r, []]));
  for (let seed = first; seed <= last; seed++) {
    const total = new Map<RuleId, number>();
    for (const c of conformancePlan(runs)) {
      const r = await runCheck({
        impl: IMPLEMENTATIONS.scalable,
        implName: 'scalable',
        profile: c.profile,
        seed,
        runs: c.runs,
        maxSteps: c.maxSteps,
        minimiseMs: 1000,
        ...(c.prefix && { prefix: c.prefix }),
        ...(c.focus && { focus: c.focus }),
      });
      // A disagreement is the conformance test's finding, not this measurement's: its coverage still counts.
      for (const [rule, n] of Object.entries(r.coverage) as [RuleId, number][]) total.set(rule, (total.get(rule) ?? 0) + n);
    }
    for (const r of counted) hits.get(r)!.push(total.get(r) ?? 0);
    onSeed?.(seed);
  }
  return counted
    .map((rule) => {
      const xs = hits.get(rule)!;
      return { rule, min: Math.min(...xs), zeroSeeds: xs.filter((x) => x === 0).length, mean: xs.reduce((a, b) => a + b, 0) / xs.length };
    })
    .sort((a, b) => a.min - b.min || a.mean - b.mean);
}

async function main(argv: readonly string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args: [...argv],
      options: { seeds: { type: 'string' }, runs: { type: 'string' }, top: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    }).values;
  } catch (e) {
    process.stderr.write(`gate-reach: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let first: number;
  let last: number;
  let runs: PlanRuns;
  let top: number;
  try {
    const seeds = /^(\d+)\.\.(\d+)$/.exec(values.seeds ?? '1..20');
    if (seeds === null) throw new UsageError(`--seeds ${values.seeds}: takes FIRST..LAST`);
    first = intOption('seeds', seeds[1], 0);
    last = intOption('seeds', seeds[2], 0);
    if (last < first) throw new UsageError(`--seeds ${values.seeds}: FIRST must not be above LAST`);
    const r = values.runs?.split(',');
    if (r !== undefined && r.length !== 3) throw new UsageError(`--runs ${values.runs}: takes three integers`);
    runs = r === undefined ? DEFAULT_RUNS : { profiles: intOption('runs', r[0], 0), memoryApi: intOption('runs', r[1], 0), rings: intOption('runs', r[2], 0) };
    top = intOption('top', values.top, 20);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`gate-reach: ${e.message}\n${USAGE}\n`);
    return 2;
  }
  const t0 = Date.now();
  const reach = await gateReach(first, last, runs, (s) => process.stderr.write(`seed ${s} done (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`));
  const n = last - first + 1;
  process.stdout.write(`seeds ${first}..${last} (${n}), runs per check: profiles ${runs.profiles}, memory API ${runs.memoryApi}, dirty rings ${runs.rings}\n`);
  process.stdout.write(`${'rule'.padEnd(10)} ${'min'.padStart(5)} ${'unhit on'.padStart(9)} ${'mean'.padStart(7)}\n`);
  for (const r of reach.slice(0, top))
    process.stdout.write(`${r.rule.padEnd(10)} ${String(r.min).padStart(5)} ${`${r.zeroSeeds}/${n}`.padStart(9)} ${r.mean.toFixed(1).padStart(7)}\n`);
  const failing = reach.filter((r) => r.zeroSeeds > 0);
  process.stdout.write(failing.length === 0 ? `every rule hit under every seed\n` : `${failing.length} rules unhit under some seed\n`);
  return failing.length === 0 ? 0 : 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) process.exitCode = await main(process.argv.slice(2));
