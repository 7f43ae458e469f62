#!/usr/bin/env node
/**
 * `npm run bench`: the memslot benchmarks of issue #7.
 *
 *   node dist/bench/main.js [--quick | --smoke] [--json FILE] [--model-max N]
 *                           [--only SCENARIO,...] [--impl model,legacy,scalable] [--n N,...] [--no-oracle]
 *
 * Prints a table, the oracle's throughput and the PASS/MISS lines of the project's figures;
 * with --json writes one record per (scenario, implementation, n) to FILE and the plot to FILE
 * with .svg. Exit status 0 when every measurement ran (a MISS is a finding, not an error),
 * 1 when one failed, 2 on bad usage.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_PROFILE_NAME, PROFILES } from '../model/index.js';
import { CONFIGS, type Config, type ConfigName } from './config.js';
import { layout } from './layout.js';
import { measure } from './measure.js';
import { checkThroughput, protocolThroughput, replayThroughput, type ThroughputOptions, type ThroughputResult } from './oracle.js';
import { ORACLE_SCENARIOS, fmtNs, gates, table, throughputTable, type BenchRecord, type Gate, type OracleScenarioId, type Skipped } from './report.js';
import { SCENARIOS, SCENARIO_IDS, fill, prepare, sinkValue, type ScenarioId } from './scenarios.js';
import { plotSvg } from './svg.js';
import { TARGET_NAMES, createTarget, type TargetName } from './targets.js';

const LIBRARY = 'tinybench 6.2.5';

export interface BenchOutput {
  readonly meta: Record<string, unknown>;
  readonly records: BenchRecord[];
  readonly skipped: Skipped[];
  readonly gates: Gate[];
  readonly errors: { scenario: string; implementation: string; n: number; message: string }[];
}

const USAGE = `usage: node dist/bench/main.js [--quick | --smoke] [--json FILE] [--model-max N]
                                [--only SCENARIO,...] [--impl model,legacy,scalable] [--n N,...] [--no-oracle]
scenarios: ${[...SCENARIO_IDS, ...ORACLE_SCENARIOS].join(', ')}`;

class UsageError extends Error {}

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
    if (values['model-max'] !== undefined) {
      const m = Number(values['model-max']);
      if (!Number.isInteger(m) || m < 3) throw new UsageError(`--model-max ${values['model-max']}: must be an integer >= 3`);
      cfg = { ...cfg, maxN: { ...cfg.maxN, model: m } };
    }
    if (values.n !== undefined) {
      const ns = values.n.split(',').map((x) => Number(x.trim()));
      for (const x of ns) if (!Number.isInteger(x) || x < 3 || x > 32764) throw new UsageError(`--n ${values.n}: slot counts must be integers from 3 to 32764`);
      cfg = { ...cfg, ns: [...ns].sort((a, b) => a - b) };
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
  const ds = SCENARIO_IDS.filter((s) => scenarios.includes(s));
  log(`memslot-oracle bench (${cfg.name}): Node ${process.version}, ${cpus().length} CPUs, load average ${load0.map((x) => x.toFixed(2)).join(' ')}, ${LIBRARY}`);

  // Scalable first: the figures compare against it, and it is the quickest.
  const order = (['scalable', 'legacy', 'model'] as const).filter((t) => impls.includes(t));
  for (const t of order) {
    for (const n of cfg.ns) {
      if (n > cfg.maxN[t]) {
        const reason =
          t === 'model'
            ? `the model's slot setup is O(n^2) (10+ s at 32764); this run measures the model up to n = ${cfg.maxN.model} (--model-max)`
            : `${cfg.name} run: legacy up to n = ${cfg.maxN[t]} (its O(n^2) setup takes ~20 s at 32764)`;
        for (const s of ds) skipped.push({ scenario: s, implementation: t, n, reason });
        log(`  ${t} n=${n}: skipped (${reason})`);
        continue;
      }
      const target = createTarget(t, profile);
      const lay = layout(n);
      let filled = false;
      for (const s of ds) {
        try {
          if (s !== 'setup' && !filled) {
            fill(target, lay);
            filled = true;
          }
          const p = prepare(s, target, n, { sampleMs: cfg.sampleMs, maxBatch: cfg.maxBatch });
          const isSetup = s === 'setup';
          const stats = await measure({
            name: `${s} ${t} n=${n}`,
            fn: p.fn,
            ...(p.beforeEach !== undefined ? { beforeEach: p.beforeEach } : {}),
            opsPerSample: p.opsPerSample,
            budgetMs: isSetup ? cfg.setupBudgetMs : cfg.budgetMs,
            warmupMs: cfg.warmupMs,
            minSamples: isSetup ? cfg.setupMinSamples : cfg.minSamples,
          });
          if (isSetup) filled = true; // the last sample left the n slots in place
          const extra = p.extra?.();
          records.push({
            scenario: s,
            implementation: t,
            n,
            unit: 'ns/op',
            op: SCENARIOS[s].op,
            median: stats.medianNs,
            p25: stats.p25Ns,
            p75: stats.p75Ns,
            mad: stats.madNs,
            min: stats.minNs,
            samples: stats.samples,
            opsPerSample: stats.opsPerSample,
            opsPerSecond: stats.medianNs > 0 ? 1e9 / stats.medianNs : 0,
            ...(extra !== undefined ? { extra } : {}),
          });
          log(`  ${t} n=${n} ${s}: ${fmtNs(stats.medianNs)}/op (${stats.samples} samples of ${stats.opsPerSample} ops)`);
        } catch (e) {
          const message = e instanceof Error ? e.message : String(e);
          errors.push({ scenario: s, implementation: t, n, message });
          log(`  ${t} n=${n} ${s}: ERROR ${message}`);
          filled = false;
        }
      }
    }
  }

  if (oracle) {
    const o: ThroughputOptions = {
      profile,
      replaySteps: cfg.replaySteps,
      checkRuns: cfg.checkRuns,
      checkMaxSteps: cfg.checkMaxSteps,
      protocolSteps: cfg.protocolSteps,
      budgetMs: cfg.oracleBudgetMs,
      warmupMs: cfg.warmupMs,
      minSamples: cfg.oracleMinSamples,
    };
    const jobs: [OracleScenarioId, TargetName, (o: ThroughputOptions) => Promise<ThroughputResult>][] = [
      ['oracle-replay', 'model', replayThroughput],
      ['oracle-check', 'scalable', checkThroughput],
      ['oracle-protocol', 'scalable', protocolThroughput],
    ];
    for (const [s, t, job] of jobs) {
      if (!scenarios.includes(s)) continue;
      try {
        const r = await job(o);
        how.set(s, r.how);
        records.push({
          scenario: s,
          implementation: t,
          n: r.stepsPerRun,
          unit: 'ns/step',
          op: r.how,
          median: r.stats.medianNs,
          p25: r.stats.p25Ns,
          p75: r.stats.p75Ns,
          mad: r.stats.madNs,
          min: r.stats.minNs,
          samples: r.stats.samples,
          opsPerSample: r.stats.opsPerSample,
          opsPerSecond: r.stats.medianNs > 0 ? 1e9 / r.stats.medianNs : 0,
        });
        log(`  ${s}: ${Math.round(1e9 / r.stats.medianNs).toLocaleString('en-US')} steps/s`);
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        errors.push({ scenario: s, implementation: t, n: 0, message });
        log(`  ${s}: ERROR ${message}`);
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
    units: 'median, p25, p75, mad and min are nanoseconds per operation (ns/op) or per oracle step (ns/step)',
    nMeaning: 'data-structure scenarios: the number of memslots; oracle-* scenarios: steps in one timed run',
    sink: sinkValue() % 1000,
  };
  return { meta, records, skipped, gates: gates(records), errors };
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
