#!/usr/bin/env node
/**
 * `npm run bench`: the memslot benchmarks of issue #7.
 *
 *   node dist/bench/main.js [--quick | --smoke] [--json FILE] [--model-max N]
 *                           [--only SCENARIO,...] [--impl model,legacy,scalable] [--n N,...]
 *                           [--clock cpu|wall] [--no-oracle]
 *
 * Prints a table, the oracle's throughput and the PASS/MISS lines of the project's figures;
 * with --json writes one record per (scenario, implementation, n) to FILE and the plot to FILE
 * with .svg. Exit status 0 when every measurement ran (a MISS is a finding, not an error),
 * 1 when one failed, 2 on bad usage.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { intOption } from '../cli/options.js';
import { UsageError } from '../cli/usage.js';
import { DEFAULT_PROFILE_NAME, PROFILES } from '../model/index.js';
import { CONFIGS, type Config, type ConfigName } from './config.js';
import { summarize } from './measure.js';
import { cellKey, measureCellInWorker, type CellResult } from './cell.js';
import { checkSplit, cliReplay, selftestReplay, type FigureOptions, type FigureResult } from './figures.js';
import { checkThroughput, protocolThroughput, replayThroughput, type ThroughputOptions } from './oracle.js';
import { ORACLE_SCENARIOS, gates, table, throughputTable, type BenchRecord, type Gate, type OracleScenarioId, type Skipped } from './report.js';
import { SCENARIOS, SCENARIO_IDS, type ScenarioId } from './scenarios.js';
import { plotSvg } from './svg.js';
import { TARGET_NAMES, type TargetName } from './targets.js';

const LIBRARY = 'tinybench 6.2.5';

export interface BenchOutput {
  readonly meta: Record<string, unknown>;
  readonly records: BenchRecord[];
  readonly skipped: Skipped[];
  readonly gates: Gate[];
  readonly errors: { scenario: string; implementation: string; n: number; message: string }[];
}

const USAGE = `usage: node dist/bench/main.js [--quick | --smoke] [--json FILE] [--model-max N]
                                [--only SCENARIO,...] [--impl model,legacy,scalable] [--n N,...]
                                [--clock cpu|wall] [--no-oracle]
scenarios: ${[...SCENARIO_IDS, ...ORACLE_SCENARIOS].join(', ')}`;

function list<T extends string>(v: string | undefined, all: readonly T[], what: string): T[] {
  if (v === undefined) return [...all];
  const items = v.split(',').map((s) => s.trim());
  for (const s of items) if (!(all as readonly string[]).includes(s)) throw new UsageError(`unknown ${what} "${s}" (known: ${all.join(', ')})`);
  return items as T[];
}

function log(s: string): void {
  process.stderr.write(`${s}\n`);
}

/** Runs the benchmarks; returns the exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args: [...argv],
      options: {
        quick: { type: 'boolean' },
        smoke: { type: 'boolean' },
        json: { type: 'string' },
        'model-max': { type: 'string' },
        only: { type: 'string' },
        impl: { type: 'string' },
        n: { type: 'string' },
        clock: { type: 'string' },
        'no-oracle': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let cfg: Config;
  let scenarios: (ScenarioId | OracleScenarioId)[];
  let impls: TargetName[];
  try {
    if (values.quick === true && values.smoke === true) throw new UsageError('--quick and --smoke exclude each other');
    const name: ConfigName = values.smoke === true ? 'smoke' : values.quick === true ? 'quick' : 'full';
    cfg = CONFIGS[name];
    if (values['model-max'] !== undefined) cfg = { ...cfg, maxN: { ...cfg.maxN, model: intOption('model-max', values['model-max'], 0, 3) } };
    if (values.n !== undefined) {
      const ns = values.n.split(',').map((x) => intOption('n', x.trim(), 0, 3, 32764));
      cfg = { ...cfg, ns: [...ns].sort((a, b) => a - b) };
    }
    if (values.clock !== undefined) {
      if (values.clock !== 'cpu' && values.clock !== 'wall') throw new UsageError(`--clock ${values.clock}: must be cpu or wall`);
      cfg = { ...cfg, clock: values.clock };
    }
    scenarios = list(values.only, [...SCENARIO_IDS, ...ORACLE_SCENARIOS], 'scenario');
    impls = list(values.impl, TARGET_NAMES, 'implementation');
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`bench: ${e.message}\n${USAGE}\n`);
      return 2;
    }
    throw e;
  }
  const out = await run(cfg, scenarios, impls, values['no-oracle'] !== true);
  process.stdout.write(render(out, cfg));
  if (values.json !== undefined) {
    const file = values.json;
    const svgFile = file.replace(/\.json$/i, '') + '.svg';
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
    writeFileSync(
      svgFile,
      plotSvg(out.records, {
        title: 'memslot-oracle: cost per operation vs number of memslots',
        subtitle: `${cfg.name} run, ${String(out.meta['date']).slice(0, 10)}, Node ${process.version}, ${String(out.meta['cpus'])} CPUs; model up to n = ${cfg.maxN.model}${cfg.maxN.legacy < 32764 ? `, legacy up to n = ${cfg.maxN.legacy}` : ''}`,
      }),
    );
    process.stdout.write(`\nwrote ${file} and ${svgFile}\n`);
  }
  return out.errors.length === 0 ? 0 : 1;
}

async function run(cfg: Config, scenarios: readonly (ScenarioId | OracleScenarioId)[], impls: readonly TargetName[], oracle: boolean): Promise<BenchOutput> {
  const profile = PROFILES[DEFAULT_PROFILE_NAME]!;
  const started = new Date();
  const load0 = loadavg();
  const records: BenchRecord[] = [];
  const skipped: Skipped[] = [];
  const errors: BenchOutput['errors'] = [];
  const how = new Map<string, string>();
  const elapsed = (): string => `[${((Date.now() - started.getTime()) / 1000).toFixed(0).padStart(4)} s]`;
  const ds = SCENARIO_IDS.filter((s) => scenarios.includes(s));
  log(
    `memslot-oracle bench (${cfg.name}): Node ${process.version}, ${cpus().length} CPUs, load average ${load0.map((x) => x.toFixed(2)).join(' ')}, ${LIBRARY}`,
  );

  // Scalable first: the figures compare against it, and it is the quickest. Every (target, n)
  // is measured once per round, each time in a fresh worker thread (./cell.ts: no target's or
  // size's JIT state leaks into another's), and the rounds' samples are pooled: load from
  // other processes that comes and goes then hits every cell alike, which keeps the ratios honest.
  const order = (['scalable', 'legacy', 'model'] as const).filter((t) => impls.includes(t));
  const pools = new Map<string, { target: TargetName; n: number; scenario: ScenarioId; samples: number[]; ops: number; extra?: Record<string, number> }>();
  const estimates: Record<string, number> = {};
  const failed = new Set<string>();
  let sink = 0;
  for (const t of order) {
    for (const n of cfg.ns) {
      if (n <= cfg.maxN[t]) continue;
      const reason =
        t === 'model'
          ? `this run measures the model up to n = ${cfg.maxN.model} (--model-max)`
          : `${cfg.name} run: legacy up to n = ${cfg.maxN[t]} (its O(n^2) setup takes 20+ s at 32764)`;
      for (const s of ds) skipped.push({ scenario: s, implementation: t, n, reason });
      log(`  ${t} n=${n}: skipped (${reason})`);
    }
  }
  for (let round = 1; round <= cfg.rounds; round++) {
    if (cfg.rounds > 1) log(`round ${round}/${cfg.rounds}`);
    for (const t of order) {
      for (const n of cfg.ns) {
        if (n > cfg.maxN[t]) continue;
        const todo = ds.filter((s) => !failed.has(cellKey(s, t, n)));
        if (todo.length === 0) continue;
        let cell: CellResult;
        try {
          cell = await measureCellInWorker({ cfg, target: t, n, scenarios: todo, estimates: { ...estimates }, startedMs: started.getTime() });
        } catch (e) {
          const message = e instanceof Error ? e.message : String(e);
          for (const s of todo) {
            errors.push({ scenario: s, implementation: t, n, message });
            failed.add(cellKey(s, t, n));
          }
          log(`  ${t} n=${n}: ERROR ${message}`);
          continue;
        }
        sink = (sink + cell.sink) & 0xfff_ffff;
        for (const e of cell.errors) {
          errors.push({ scenario: e.scenario, implementation: t, n, message: e.message });
          failed.add(cellKey(e.scenario, t, n));
        }
        for (const m of cell.measured) {
          const key = cellKey(m.scenario, t, n);
          estimates[key] = m.sampleMs;
          const pool = pools.get(key) ?? { target: t, n, scenario: m.scenario, samples: [], ops: m.opsPerSample };
          for (const x of m.nsPerOp) pool.samples.push(x);
          if (m.extra !== undefined) pool.extra = m.extra;
          pools.set(key, pool);
        }
      }
    }
  }
  for (const pool of pools.values()) {
    if (failed.has(`${pool.scenario}|${pool.target}|${pool.n}`)) continue;
    const st = summarize(pool.samples, pool.ops);
    records.push({
      scenario: pool.scenario,
      implementation: pool.target,
      n: pool.n,
      unit: 'ns/op',
      clock: cfg.clock,
      op: SCENARIOS[pool.scenario].op,
      median: st.medianNs,
      p25: st.p25Ns,
      p75: st.p75Ns,
      mad: st.madNs,
      min: st.minNs,
      samples: st.samples,
      opsPerSample: st.opsPerSample,
      opsPerSecond: st.medianNs > 0 ? 1e9 / st.medianNs : 0,
      ...(pool.extra !== undefined ? { extra: pool.extra } : {}),
    });
  }

  if (oracle) {
    const o: ThroughputOptions = {
      profile,
      clock: cfg.clock,
      replaySteps: cfg.replaySteps,
      checkRuns: cfg.checkRuns,
      checkMaxSteps: cfg.checkMaxSteps,
      protocolSteps: cfg.protocolSteps,
      budgetMs: cfg.oracleBudgetMs,
      warmupMs: cfg.warmupMs,
      minSamples: cfg.oracleMinSamples,
    };
    const f: FigureOptions = {
      profile,
      clock: cfg.clock,
      selftestSlots: cfg.selftestSlots,
      selftestLoops: cfg.selftestLoops,
      cliLines: cfg.cliLines,
      cliRuns: cfg.cliRuns,
      checkRuns: cfg.splitRuns,
      checkMaxSteps: cfg.splitMaxSteps,
      budgetMs: cfg.oracleBudgetMs,
      warmupMs: cfg.warmupMs,
      minSamples: cfg.oracleMinSamples,
    };
    // Each job measures one or two scenarios: [scenario, implementation] per result, in order.
    type Job = [readonly (readonly [OracleScenarioId, TargetName])[], () => Promise<readonly FigureResult[]>];
    const jobs: Job[] = [
      [[['oracle-replay', 'model']], async () => [await replayThroughput(o)]],
      [[['oracle-check', 'scalable']], async () => [await checkThroughput(o)]],
      [[['oracle-protocol', 'scalable']], async () => [await protocolThroughput(o)]],
      [[['oracle-selftest', 'model']], async () => [await selftestReplay(f)]],
      [
        [
          ['oracle-cli-replay', 'model'],
          ['oracle-read-parse', 'model'],
        ],
        async () => {
          const r = cliReplay(f);
          return [r.cli, r.readParse];
        },
      ],
      [
        [
          ['oracle-check-model', 'model'],
          ['oracle-check-impl', 'scalable'],
        ],
        async () => {
          const r = await checkSplit(f);
          return [r.model, r.impl];
        },
      ],
    ];
    for (const [what, job] of jobs) {
      if (!what.some(([s]) => scenarios.includes(s))) continue;
      const name = what.map(([s]) => s).join('+');
      try {
        const results = await job();
        for (const [k, r] of results.entries()) {
          const [s, t] = what[k]!;
          how.set(s, r.how);
          records.push(throughputRecord(s, t, r));
          log(`  ${elapsed()} ${s}: ${Math.round(1e9 / r.stats.medianNs).toLocaleString('en-US')} steps/s`);
        }
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        errors.push({ scenario: name, implementation: what[0]![1], n: 0, message });
        log(`  ${name}: ERROR ${message}`);
      }
    }
  }

  const load1 = loadavg();
  const meta = {
    tool: 'memslot-oracle bench',
    issue: 7,
    config: cfg.name,
    date: started.toISOString(),
    durationSeconds: Math.round((Date.now() - started.getTime()) / 1000),
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform} ${process.arch}`,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    loadAverageStart: load0,
    loadAverageEnd: load1,
    library: LIBRARY,
    profile: profile.name,
    ns: cfg.ns,
    maxN: cfg.maxN,
    rounds: cfg.rounds,
    clock:
      cfg.clock === 'cpu'
        ? 'cpu: process CPU time (user + system) per sample, which leaves out time given to other processes; oracle-protocol is timed on the wall clock'
        : 'wall: monotonic clock',
    units: 'median, p25, p75, mad and min are nanoseconds per operation (ns/op) or per oracle step (ns/step)',
    nMeaning: 'data-structure scenarios: the number of memslots; oracle-* scenarios: steps in one timed run',
    source: sourceVersion(),
    sink: sink % 1000,
  };
  return { meta, records, skipped, gates: gates(records), errors };
}

function throughputRecord(s: OracleScenarioId, t: TargetName, r: FigureResult): BenchRecord {
  return {
    scenario: s,
    implementation: t,
    n: r.stepsPerRun,
    unit: 'ns/step',
    clock: r.clock,
    op: r.how,
    median: r.stats.medianNs,
    p25: r.stats.p25Ns,
    p75: r.stats.p75Ns,
    mad: r.stats.madNs,
    min: r.stats.minNs,
    samples: r.stats.samples,
    opsPerSample: r.stats.opsPerSample,
    opsPerSecond: r.stats.medianNs > 0 ? 1e9 / r.stats.medianNs : 0,
    ...(r.extra !== undefined ? { extra: r.extra } : {}),
  };
}

/** The commit measured, and the files under impl/ and model/ that differ from it (read-only git). */
function sourceVersion(): { commit: string; modifiedImplAndModel: string[] } | null {
  try {
    const cwd = new URL('../..', import.meta.url);
    const git = (...args: string[]): string =>
      execFileSync('git', ['--no-optional-locks', ...args], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const commit = git('rev-parse', 'HEAD').trim();
    const modified = git('status', '--porcelain', '--', 'impl', 'model')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => l.slice(3));
    return { commit, modifiedImplAndModel: modified };
  } catch {
    return null;
  }
}

export function render(out: BenchOutput, cfg: Config): string {
  const lines: string[] = [];
  lines.push('');
  lines.push(`Cost per operation (median over samples, ±MAD as % of the median); ${cfg.name} run, Node ${process.version}`);
  lines.push('');
  lines.push(table(out.records, out.skipped, cfg.ns));
  const reasons = [...new Set(out.skipped.map((s) => `${s.implementation} n=${s.n}: ${s.reason}`))];
  if (reasons.length > 0) {
    lines.push('');
    for (const r of reasons) lines.push(`skipped: ${r}`);
  }
  const how = new Map<string, string>(out.records.filter((r) => r.unit === 'ns/step').map((r) => [r.scenario, r.op]));
  if (how.size > 0) {
    lines.push('');
    lines.push('Oracle throughput');
    lines.push(throughputTable(out.records, how));
  }
  if (out.errors.length > 0) {
    lines.push('');
    for (const e of out.errors) lines.push(`ERROR ${e.scenario} ${e.implementation} n=${e.n}: ${e.message}`);
  }
  lines.push('');
  lines.push('Figures (ratios within this run)');
  for (const g of out.gates) lines.push(`${g.status.padEnd(4)} ${g.text}`);
  return `${lines.join('\n')}\n`;
}

const invoked = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (invoked) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`bench: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
