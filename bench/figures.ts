/**
 * The measurements behind issue 14's figures for the one model:
 *
 * - `oracle-selftest`: `replay()` (trace/replay.ts) of a trace in the shapes of the kernel's
 *   set_memory_region_test.c (bench/selftest-trace.ts: 32764 slots filled, then move and delete
 *   loops at full occupancy), model only, with the model's answers as `expect`; CPU time;
 * - `oracle-cli-replay` and `oracle-read-parse`: a 130,000-line small-state trace written to a
 *   file, then `node dist/cli/main.js replay FILE` against a `node` that reads the same file
 *   line by line (readline, as the CLI does) and `JSON.parse`s every line: each a child
 *   process, timed in its own CPU time (user + system, read at exit), Node's start included in
 *   both;
 * - `oracle-check-model` and `oracle-check-impl`: where `runCheck()` (properties/run-check.ts)
 *   spends its CPU time against the scalable implementation: V8's sampling profiler
 *   (node:inspector, 100 µs), each sample counted for the model when a frame of its stack is in
 *   model/ (sorted-btree included), for the implementation when one is in impl/ (the two never
 *   call each other), the run's CPU time shared out by those counts; the rest is fast-check,
 *   the harness and garbage collection. Invariant checks of the implementation's state
 *   (model/invariants.ts) count for the model.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Profile } from '../model/index.js';
import { IMPLEMENTATIONS } from '../impl/index.js';
import { replay } from '../trace/replay.js';
import { formatProfileLine, formatTraceLine } from '../trace/trace.js';
import { runCheck } from '../properties/run-check.js';
import { clockMs, measure, summarize, type Clock } from './measure.js';
import { smallStateRequests, streamOf, traceWithExpect } from './requests.js';
import { selftestTrace } from './selftest-trace.js';
import type { ThroughputResult } from './oracle.js';

export interface FigureOptions {
  readonly profile: Profile;
  readonly clock: Clock;
  readonly selftestSlots: number;
  readonly selftestLoops: number;
  readonly cliLines: number;
  readonly cliRuns: number;
  readonly checkRuns: number;
  readonly checkMaxSteps: number;
  readonly budgetMs: number;
  readonly warmupMs: number;
  readonly minSamples: number;
}

/** A measurement, plus what the figures need besides its statistics. */
export type FigureResult = ThroughputResult & { readonly extra?: Readonly<Record<string, number>> };

/** `oracle-selftest`: the set_memory_region_test.c trace through the model. */
export async function selftestReplay(o: FigureOptions): Promise<FigureResult> {
  const lines = traceWithExpect(o.profile, selftestTrace(o.selftestSlots, o.selftestLoops));
  let lastSteps = 0;
  // The first replay in this process, before any warm-up: what a one-off `replay` pays.
  const t0 = clockMs(o.clock);
  const first = await replay(streamOf(lines), { profile: o.profile });
  const coldMs = clockMs(o.clock) - t0;
  if (first.mismatches !== 0) throw new Error(`selftest trace: ${first.mismatches} mismatches on the model's own answers`);
  const raw = await measure({
    name: 'oracle-selftest',
    clock: o.clock,
    async: true,
    fn: async () => {
      const s = await replay(streamOf(lines), { profile: o.profile });
      if (s.mismatches !== 0) throw new Error(`selftest trace: ${s.mismatches} mismatches on the model's own answers`);
      lastSteps = s.steps;
    },
    opsPerSample: () => lastSteps,
    budgetMs: o.budgetMs,
    warmupMs: o.warmupMs,
    minSamples: o.minSamples,
  });
  return {
    stats: summarize(raw.nsPerOp, raw.opsPerSample),
    stepsPerRun: lastSteps,
    how: `replay() of the set_memory_region_test.c trace: ${o.selftestSlots} slots filled, ${o.selftestLoops} move and delete loops at full occupancy, ${lines.length} requests, model only`,
    clock: o.clock,
    extra: { slots: o.selftestSlots, coldMs },
  };
}

/**
 * Prints the process's CPU time (µs) on stderr at exit, and, on Linux, its main thread's
 * (clock ticks of /proc/self/task/PID/stat): the rest is V8's helper threads (concurrent
 * compiles, parallel garbage collection). Loaded into a child with --import.
 */
const CPU_AT_EXIT = `data:text/javascript,import{readFileSync}from'node:fs';process.on('exit',()=>{const u=process.cpuUsage();let m=-1;try{const f=readFileSync('/proc/self/task/'+process.pid+'/stat','utf8');const x=f.slice(f.lastIndexOf(')')+2).split(' ');m=(Number(x[11])+Number(x[12]))*1e4}catch{}process.stderr.write('memslot-bench-cpu-us '+(u.user+u.system)+' '+m+'\\n')})`;

interface ChildTimes {
  /** User + system time of every thread. */
  readonly cpuMs: number;
  /** The main thread's, or NaN where /proc does not say (it counts in 10 ms ticks). */
  readonly mainMs: number;
  readonly wallMs: number;
}

/** Runs `node args`, returns its times in ms; throws unless it exits 0. */
function childTimes(args: readonly string[]): ChildTimes {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--import', CPU_AT_EXIT, ...args], { encoding: 'utf8', maxBuffer: 1 << 24 });
  const wallMs = performance.now() - t0;
  const m = /memslot-bench-cpu-us (\d+) (-?\d+)/.exec(r.stderr);
  if (r.status !== 0 || m === null) throw new Error(`node ${args.join(' ')}: exit ${r.status}\n${r.stderr.slice(0, 2000)}`);
  const main = Number(m[2]);
  return { cpuMs: Number(m[1]) / 1000, mainMs: main < 0 ? NaN : main / 1000, wallMs };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Writes a small-state trace of `lines` lines (the profile line included) to `file`. */
function writeSmallStateTrace(o: FigureOptions, file: string, lines: number): void {
  const trace = traceWithExpect(o.profile, smallStateRequests(lines - 1, 17));
  const text = [formatProfileLine(o.profile), ...trace.map((t) => (t.kind === 'request' ? formatTraceLine(t.request, t.expect) : ''))];
  writeFileSync(file, `${text.join('\n')}\n`);
}

/** `node` reading `file` with readline and JSON.parse on every line: the figure's yardstick. */
function readParseArgs(file: string, lines: number): string[] {
  return [
    '--input-type=module',
    '-e',
    `import { createReadStream } from 'node:fs'; import { createInterface } from 'node:readline';
     let n = 0; for await (const l of createInterface({ input: createReadStream(${JSON.stringify(file)}), crlfDelay: Infinity })) if (l !== '') { JSON.parse(l); n++; }
     if (n !== ${lines}) throw new Error('read ' + n + ' lines');`,
  ];
}

/**
 * `oracle-cli-replay` and `oracle-read-parse`, measured in alternation, each also on a trace
 * LONG times as long: from the two medians, the CPU time per line beyond the first
 * `cliLines` (the marginal cost) and the rest of the time at `cliLines` (the fixed cost:
 * Node's start, loading the modules, compiling the hot code), for the report to say where a
 * miss comes from. The gate itself is the ratio at `cliLines` lines, as issue 14 states it.
 */
export function cliReplay(o: FigureOptions): { cli: FigureResult; readParse: FigureResult } {
  const dir = mkdtempSync(join(tmpdir(), 'memslot-bench-cli-'));
  try {
    const LONG = 3;
    const lines = o.cliLines;
    const file = join(dir, 'small-state.jsonl');
    const long = join(dir, 'small-state-long.jsonl');
    writeSmallStateTrace(o, file, lines);
    writeSmallStateTrace(o, long, LONG * lines);
    const main = fileURLToPath(new URL('../cli/main.js', import.meta.url));
    const cli: ChildTimes[] = [];
    const base: ChildTimes[] = [];
    const cliLong: number[] = [];
    const baseLong: number[] = [];
    for (let i = 0; i < o.cliRuns; i++) {
      base.push(childTimes(readParseArgs(file, lines)));
      cli.push(childTimes([main, 'replay', file]));
      baseLong.push(childTimes(readParseArgs(long, LONG * lines)).cpuMs);
      cliLong.push(childTimes([main, 'replay', long]).cpuMs);
    }
    const cliMs = cli.map((t) => t.cpuMs);
    const baseMs = base.map((t) => t.cpuMs);
    // Not the gate: where the CPU time went, and what a user waits (medians of the runs).
    const extra = (ts: readonly ChildTimes[], longMs: readonly number[]): Record<string, number> => {
      const ms = median(ts.map((t) => t.cpuMs));
      const perLineMs = (median(longMs) - ms) / ((LONG - 1) * lines);
      return {
        mainThreadMs: median(ts.map((t) => t.mainMs)),
        wallMs: median(ts.map((t) => t.wallMs)),
        perLineNs: perLineMs * 1e6,
        fixedMs: ms - perLineMs * lines,
      };
    };
    const per = (ms: number[]): ReturnType<typeof summarize> =>
      summarize(
        ms.map((x) => (x * 1e6) / lines),
        lines,
      );
    return {
      cli: {
        stats: per(cliMs),
        stepsPerRun: lines,
        how: `\`memslot-oracle replay\` of a ${lines}-line small-state trace file, CPU of the whole process (and of a ${LONG * lines}-line one, for the cost per line)`,
        clock: 'cpu',
        extra: extra(cli, cliLong),
      },
      readParse: {
        stats: per(baseMs),
        stepsPerRun: lines,
        how: `node reading the same files with readline and JSON.parse per line, CPU of the whole process`,
        clock: 'cpu',
        extra: extra(base, baseLong),
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface CpuProfile {
  readonly nodes: readonly { readonly id: number; readonly callFrame: { readonly url: string }; readonly children?: readonly number[] }[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** `oracle-check-model` and `oracle-check-impl`: runCheck() against scalable under V8's sampling profiler. */
export async function checkSplit(o: FigureOptions): Promise<{ model: FigureResult; impl: FigureResult }> {
  const run = async (): Promise<number> => {
    const r = await runCheck({ impl: IMPLEMENTATIONS.scalable, profile: o.profile, seed: 42, runs: o.checkRuns, maxSteps: o.checkMaxSteps, minimiseMs: 0 });
    if (!r.ok) throw new Error('runCheck found a disagreement between the scalable implementation and the model');
    return r.steps;
  };
  await run(); // warm-up, unprofiled
  const session = new Session();
  session.connect();
  let profile: CpuProfile;
  let steps: number;
  let cpuMs: number;
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    await session.post('Profiler.start');
    const t0 = clockMs('cpu');
    steps = await run();
    cpuMs = clockMs('cpu') - t0;
    profile = (await session.post('Profiler.stop')).profile as CpuProfile;
  } finally {
    session.disconnect();
  }
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const sideOf = new Map<number, 'model' | 'impl' | null>();
  const side = (id: number): 'model' | 'impl' | null => {
    const known = sideOf.get(id);
    if (known !== undefined) return known;
    const url = byId.get(id)?.callFrame.url ?? '';
    const here = url.includes('/dist/model/') || url.includes('/sorted-btree/') ? 'model' : url.includes('/dist/impl/') ? 'impl' : null;
    const up = parent.get(id);
    const s = here ?? (up === undefined ? null : side(up));
    sideOf.set(id, s);
    return s;
  };
  // Samples are counted, not their time deltas: a delta also holds the time the process was
  // not running (the sampler keeps wall time), which on a shared machine is noise.
  const invariantsOf = new Map<number, boolean>();
  const inInvariants = (id: number): boolean => {
    const known = invariantsOf.get(id);
    if (known !== undefined) return known;
    const up = parent.get(id);
    const v = (byId.get(id)?.callFrame.url ?? '').endsWith('/dist/model/invariants.js') || (up !== undefined && inInvariants(up));
    invariantsOf.set(id, v);
    return v;
  };
  const all = profile.samples.length;
  let model = 0;
  let impl = 0;
  let invariants = 0;
  for (const id of profile.samples) {
    const s = side(id);
    if (s === 'model') model++;
    else if (s === 'impl') impl++;
    if (inInvariants(id)) invariants++;
  }
  const cpuUs = cpuMs * 1000;
  const modelUs = all > 0 ? (cpuUs * model) / all : 0;
  const implUs = all > 0 ? (cpuUs * impl) / all : 0;
  const invariantsMs = all > 0 ? (cpuMs * invariants) / all : 0;
  const result = (us: number, what: string, extra?: Record<string, number>): FigureResult => ({
    stats: summarize([(us * 1000) / steps], steps),
    stepsPerRun: steps,
    how: `runCheck() vs scalable, seed 42, ${o.checkRuns} runs of up to ${o.checkMaxSteps} commands: CPU profile samples ${what}`,
    clock: 'cpu',
    ...(extra !== undefined ? { extra } : {}),
  });
  return {
    model: result(modelUs, 'in model/ (sorted-btree included)', { invariantsMs }),
    impl: result(implUs, 'in impl/'),
  };
}
