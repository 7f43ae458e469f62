#!/usr/bin/env node
/**
 * `npm run kernel-matrix`: records real kernels' answers and checks them against the model.
 *
 *   npm run kernel-matrix -- [--kernels 6.1,6.12] [--npt 0|1] [--steps N] [--seed S]
 *        [--out DIR] [--timeout MS] [--refresh] [--verbose]
 *
 * For each kernel of the table (kernels.ts): fetch and unpack its Debian package (cached),
 * build the guest (guest.ts), record a trace against `qemu-sut.js --kernel NAME` (record.ts;
 * RECORDER below says how), write it gzip-compressed to
 * test/ground-truth/kernel-matrix/<name>[-npt0].jsonl.gz, replay it through the model with the
 * profile of its profile line (the driver's hello), and print a table. Each kernel has up to
 * three recordings (`--parts`): the random part, the fill (fill.ts, `.fill`) and the memory-API
 * scenario (gmem.ts, `.gmem`), each in a boot of its own.
 *
 * Exit status: 0 every trace agrees with the model; 1 a disagreement; 2 a setup problem
 * (missing tools or packages: the message gives the install command) or a broken run.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import { fileLines } from '../trace/lines.js';
import { formatReplay, replay, type ReplaySummary } from '../trace/replay.js';
import { buildKvmDriver, packageRoot } from '../sut/kvm-driver.js';
import { readTrace } from '../trace/trace.js';
import { PROFILES, profileDiff, profileFromJson, withParams, type Profile } from '../model/profiles.js';
import { prepareKernel, prepareOwnKernel, type PreparedKernel } from './fetch.js';
import { Progress, readSutProgress } from './progress.js';
import { buildInitramfs } from './guest.js';
import { KERNELS, findKernel, type KernelEntry } from './kernels.js';
import type { QemuSutStats } from './qemu-sut.js';
import { recordByReplay, recordRandomThenFill, recordWithOracle, recordDirty, sendAndRecord, type Recorder, type SendResult } from './record.js';
import { gmemRequests } from './gmem.js';
import { DIRTY_RULES } from './dirty.js';
import { SetupError } from './tools.js';
import { intOption } from '../cli/options.js';
import { UsageError } from '../cli/usage.js';

/**
 * How traces are recorded: `recordWithOracle` runs `memslot-oracle record`; `recordByReplay`
 * replays gen-trace.ts's requests (what the matrix did before that command existed).
 */
const RECORDER: Recorder = recordRandomThenFill;
void recordByReplay;
void recordWithOracle;

const USAGE = `usage: npm run kernel-matrix -- [--kernels ${KERNELS.map((k) => k.name).join(',')} | --vmlinuz BZIMAGE --modules DIR] [--npt 0|1] [--check-runs N] [--parts random,fill,gmem,dirty] [--no-fill] [--fill-memory 3G] [--steps N] [--seed S] [--out DIR] [--timeout MS] [--refresh] [--verbose]
       npm run kernel-matrix -- --vmm qemu [--kernels 6.1] [--scenarios boot,dimm,virtio-mem,migrate,reboot] [--memory 2G] [--out DIR]`;

export interface Row {
  readonly kernel: string;
  readonly pkg: string;
  readonly version: string;
  readonly release: string;
  readonly npt: string;
  readonly profile: Profile;
  /** The kernel line's built-in profile name (kernels.ts), '' for an own build. */
  readonly entryProfile: string;
  readonly steps: number;
  readonly mismatches: number;
  /** Steps where the kernel answered ENOMEM and the model would have accepted (MS-RES-01). */
  readonly resourceSteps: number;
  readonly bootS: number | null;
  readonly ioctlsPerS: number | null;
  readonly trace: string;
  readonly summary: ReplaySummary;
}

/** The profile line a recorded trace starts with. */
export function traceProfile(gzFile: string): Profile {
  const text = gunzipSync(readFileSync(gzFile)).toString('utf8');
  const first = text.slice(0, text.indexOf('\n'));
  const v = JSON.parse(first) as { profile?: unknown };
  const p = profileFromJson(v.profile, `${gzFile} line 1`);
  if (!p.ok) throw new Error(`${gzFile}: the first line is not a valid profile line: ${p.error}`);
  return p.profile;
}

/** Replays a recorded trace through the model (the SUT's answers are its `expect`). */
export async function checkTrace(gzFile: string): Promise<ReplaySummary> {
  // The trace's own profile line resets the model before its first request.
  return replay(readTrace(fileLines(gzFile), gzFile), { profile: PROFILES['x86_64']!, reportLimit: 20 });
}

const q = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

export function traceName(k: KernelEntry, npt: string | undefined, part?: 'fill' | 'gmem' | 'dirty' | 'dirty-random'): string {
  return `${k.name}${npt === '0' ? '-npt0' : ''}${part === undefined ? '' : `.${part}`}.jsonl.gz`;
}

/** The kernel line's built-in profile with the trace's max gfn, or how the trace's profile differs from it. */
export function lineProfile(r: Pick<Row, 'profile'> & { entryProfile: string }): string {
  if (r.entryProfile === '') return '(own build)';
  const name = `${r.entryProfile},max_gfn=${r.profile.maxGfn === null ? 'null' : `0x${r.profile.maxGfn.toString(16)}`}`;
  const p = withParams(name);
  if (p === null || typeof p === 'string') return `? (${r.entryProfile})`;
  const d = profileDiff(r.profile, p);
  return d === null ? name : `${r.entryProfile} except ${d.field} = ${JSON.stringify(d.a)}`;
}

/** A kernel's answers to the dirty-bits scenario (dirty.ts). */
export interface DirtyRow {
  readonly kernel: string;
  readonly release: string;
  readonly npt: string;
  /** `dirty` (the scripted scenario) or `dirty-random`. */
  readonly part: 'dirty' | 'dirty-random';
  /** -1 when the replay could not run. */
  readonly steps: number;
  readonly mismatches: number;
  /** Rules of spec/25 the scenario did not fire (none expected). */
  readonly unfired: readonly string[];
  readonly trace: string;
}

function dirtyTable(rows: readonly DirtyRow[]): string {
  const head = ['kernel', 'npt', 'part', 'steps', 'mismatches', 'spec/25 rules fired'];
  const body = rows.map((r) => [
    `${r.kernel} (${r.release})`,
    r.npt,
    r.part,
    r.steps < 0 ? 'not replayed' : String(r.steps),
    r.mismatches < 0 ? '-' : String(r.mismatches),
    r.part === 'dirty-random' || r.steps < 0
      ? '-'
      : `${DIRTY_RULES.length - r.unfired.length} of ${DIRTY_RULES.length}${r.unfired.length === 0 ? '' : ` (not ${r.unfired.join(', ')})`}`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

function table(rows: readonly Row[]): string {
  const head = [
    'kernel',
    'package version',
    'npt',
    'address spaces',
    'max gfn',
    'profile',
    'steps recorded',
    'mismatches',
    'ENOMEM accepted',
    'boot s',
    'ioctls/s',
  ];
  const body = rows.map((r) => [
    `${r.kernel} (${r.release})`,
    r.version,
    r.npt,
    String(r.profile.addressSpaces),
    r.profile.maxGfn === null ? 'none' : `0x${r.profile.maxGfn.toString(16)}`,
    lineProfile(r),
    String(r.steps),
    String(r.mismatches),
    String(r.resourceSteps),
    r.bootS === null ? '?' : r.bootS.toFixed(1),
    r.ioctlsPerS === null ? '?' : String(Math.round(r.ioctlsPerS)),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      kernels: { type: 'string' },
      vmlinuz: { type: 'string' },
      modules: { type: 'string' },
      npt: { type: 'string' },
      steps: { type: 'string', default: '50000' },
      seed: { type: 'string', default: '1' },
      out: { type: 'string' },
      timeout: { type: 'string', default: '300000' },
      'check-runs': { type: 'string' },
      'fill-memory': { type: 'string', default: '3G' },
      'no-fill': { type: 'boolean', default: false },
      parts: { type: 'string', default: 'random,fill,gmem,dirty' },
      refresh: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
      vmm: { type: 'string' },
      scenarios: { type: 'string' },
      memory: { type: 'string', default: '2G' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const own = values.vmlinuz !== undefined || values.modules !== undefined;
  if (own && (values.vmlinuz === undefined || values.modules === undefined))
    throw new SetupError(`a kernel of your own needs both --vmlinuz PATH and --modules DIR\n${USAGE}`);
  if (own && values.kernels !== undefined) throw new SetupError(`--kernels and --vmlinuz/--modules exclude each other`);
  const names =
    values.kernels === undefined
      ? KERNELS.map((k) => k.name)
      : values.kernels
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '');
  const kernels = own
    ? []
    : names.map((n) => {
        const k = findKernel(n);
        if (k === undefined) throw new SetupError(`unknown kernel "${n}"; the table (kernel-matrix/kernels.ts) has ${KERNELS.map((x) => x.name).join(', ')}`);
        return k;
      });
  if (values.npt !== undefined && values.npt !== '0' && values.npt !== '1') throw new SetupError(`--npt must be 0 or 1`);
  if (values.vmm !== undefined) {
    if (values.vmm !== 'qemu') throw new SetupError(`--vmm: only qemu (the host's qemu-system-x86_64, run inside the guest) is known, got ${values.vmm}`);
    if (own || values.npt !== undefined) throw new SetupError(`--vmm qemu records the table's kernels with the module's default npt (no --vmlinuz, --npt)`);
    const { recordVmmMatrix, SCENARIOS, VMM_OUT_DIR } = await import('./vmm.js');
    const scenarios = values.scenarios === undefined ? Object.keys(SCENARIOS) : values.scenarios.split(',').map((s) => s.trim());
    const progress = new Progress();
    return recordVmmMatrix({
      kernels: values.kernels === undefined ? [findKernel('6.1')!] : kernels,
      scenarios,
      outDir: values.out ?? VMM_OUT_DIR(),
      memory: values.memory,
      refresh: values.refresh,
      log: (s) => progress.log(s),
    });
  }
  const steps = intOption('steps', values.steps, 0);
  const seed = intOption('seed', values.seed, 0);
  const timeoutMs = intOption('timeout', values.timeout, 0, 1);
  const checkRuns = intOption('check-runs', values['check-runs'], own ? 20 : 0);
  const parts = new Set(
    values.parts
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x !== ''),
  );
  for (const x of parts)
    if (!['random', 'fill', 'gmem', 'dirty'].includes(x)) throw new SetupError(`--parts names random, fill, gmem and dirty, not "${x}"\n${USAGE}`);
  if (parts.size === 0) throw new SetupError(`--parts names no part\n${USAGE}`);
  const random = parts.has('random');
  const fill = random && parts.has('fill') && !values['no-fill'];
  const gmem = parts.has('gmem');
  if (parts.has('fill') && !random) throw new SetupError(`the fill is made from the random part's profile: --parts fill needs random\n${USAGE}`);
  const outDir = values.out ?? (own ? path.resolve('kernel-matrix-results') : path.join(packageRoot(), 'test', 'ground-truth', 'kernel-matrix'));
  mkdirSync(outDir, { recursive: true });
  const progress = new Progress();
  const log = (s: string): void => progress.log(s);
  const qemuSut = fileURLToPath(new URL('./qemu-sut.js', import.meta.url));

  const targets: { prepare: () => Promise<PreparedKernel>; label: string }[] = own
    ? [
        {
          label: 'own kernel',
          prepare: () => prepareOwnKernel(path.resolve(values.vmlinuz!), path.resolve(values.modules!), { log }),
        },
      ]
    : kernels.map((k) => ({ label: k.name, prepare: () => prepareKernel(k, { refresh: values.refresh, log }) }));

  const nptLabel = values.npt === undefined ? 'npt=1' : `npt=${values.npt}`;
  const rows: Row[] = [];
  const dirtyRows: DirtyRow[] = [];
  const dirty = parts.has('dirty');
  // The dirty-bits scenario alone: its own boot, none of the rows of the other parts.
  const dirtyOnly = dirty && parts.size === 1;
  for (const t of targets) {
    // Everything that may download or compile happens here, before the oracle's hello timeout.
    progress.status(`${t.label} ${nptLabel}`, 'preparing (download and unpack when not cached)');
    const prepared = await t.prepare();
    const k = prepared.entry;
    const tag = `${k.name} ${nptLabel}`;
    buildInitramfs(prepared, await buildKvmDriver({ static: true }));
    const work = mkdtempSync(path.join(tmpdir(), 'kernel-matrix-'));
    let poll: NodeJS.Timeout | undefined;
    try {
      const kernelArgs = own ? ['--vmlinuz', path.resolve(values.vmlinuz!), '--modules', path.resolve(values.modules!)] : ['--kernel', k.name];
      const sutFor = (phase: string): string =>
        [
          process.execPath,
          qemuSut,
          ...kernelArgs,
          ...(values.npt === undefined ? [] : ['--npt', values.npt]),
          // The fill needs more than 1 GiB with npt=0: the shadow MMU's rmap and lpage_info
          // arrays are vmalloc'd per slot (a page each at least); 1 GiB ran out at 34,051 slots.
          ...(phase === 'fill' ? ['--memory', values['fill-memory']] : []),
          '--stats',
          path.join(work, `stats-${phase}.json`),
          '--progress',
          path.join(work, `progress-${phase}.json`),
          ...(values.verbose ? ['--verbose'] : []),
        ]
          .map(q)
          .join(' ');
      const watch = (phase: string, what: string, total: number | undefined): void => {
        if (poll !== undefined) clearInterval(poll);
        const file = path.join(work, `progress-${phase}.json`);
        const tick = (): void => {
          const p = readSutProgress(file);
          if (p === null || !p.ready) progress.status(tag, `booting (${((p?.elapsedMs ?? 0) / 1000).toFixed(0)} s)`);
          else progress.status(tag, what, p.requests, total);
        };
        tick();
        poll = setInterval(tick, 500);
      };
      const raw = path.join(work, 'trace.jsonl');
      const rawFill = path.join(work, 'fill-recorded.jsonl');
      /**
       * The dirty-bits scenario (dirty.ts: bitmaps, then dirty rings) and the random dirty-bits
       * sequence, in a boot of their own, recorded and replayed. A replay that cannot run (a
       * model without the ring ops) is reported, the recordings are kept.
       */
      const dirtyPart = async (): Promise<DirtyRow[]> => {
        watch('dirty', 'dirty-bits steps', undefined);
        const rawDirty = path.join(work, 'dirty-recorded.jsonl');
        const rawRandom = path.join(work, 'dirty-random-recorded.jsonl');
        log(`${k.name}: the dirty-bits scenario (kernel-matrix/dirty.ts) and the random dirty-bits sequence to ${sutFor('dirty')}`);
        await recordDirty(sutFor('dirty'), rawDirty, timeoutMs, rawRandom);
        const rows: DirtyRow[] = [];
        for (const [part, rawFile] of [
          ['dirty', rawDirty],
          ['dirty-random', rawRandom],
        ] as const) {
          const gz = path.join(outDir, traceName(k, values.npt, part));
          writeFileSync(gz, gzipSync(readFileSync(rawFile), { level: 9 }));
          progress.status(tag, `replaying ${part} through the model`);
          let sm: ReplaySummary;
          try {
            sm = await checkTrace(gz);
          } catch (e) {
            log(`${k.name}: ${part}: recorded (${gz}), but the replay failed: ${(e as Error).message}`);
            rows.push({ kernel: k.name, release: prepared.release, npt: values.npt ?? 'default (1)', part, steps: -1, mismatches: -1, unfired: [], trace: gz });
            continue;
          }
          const unfired = part === 'dirty' ? DIRTY_RULES.filter((r) => !sm.firedCounts.has(r)) : [];
          log(
            `${k.name}: ${part}: ${sm.steps} steps, ${sm.mismatches} mismatches; spec/25 rules fired: ${DIRTY_RULES.length - DIRTY_RULES.filter((r) => !sm.firedCounts.has(r)).length} of ${DIRTY_RULES.length}${unfired.length === 0 ? '' : ` (not: ${unfired.join(', ')})`}`,
          );
          if (sm.mismatches > 0) process.stdout.write(`\n${k.name} (${gz}), the kernel's answers as "expected":\n${formatReplay(sm, false)}\n`);
          rows.push({
            kernel: k.name,
            release: prepared.release,
            npt: values.npt ?? 'default (1)',
            part,
            steps: sm.steps,
            mismatches: sm.mismatches,
            unfired,
            trace: gz,
          });
        }
        return rows;
      };
      if (dirtyOnly) {
        dirtyRows.push(...(await dirtyPart()));
        continue;
      }
      const rawGmem = path.join(work, 'gmem-recorded.jsonl');
      log(`${k.name}: recording ${[...parts].join(', ')} (${prepared.pkg} ${prepared.version}, ${prepared.release}, ${nptLabel})`);
      const t0 = Date.now();
      let how = '';
      if (random) {
        ({ how } = await RECORDER({
          sutFor,
          out: raw,
          ...(fill ? { fillOut: rawFill } : {}),
          seed,
          steps,
          timeoutMs,
          work,
          log,
          onPhase: (phase, n) => watch(phase, phase === 'random' ? 'random steps' : 'fill-to-the-limit steps', n),
        }));
      }
      let gmemSent: SendResult | null = null;
      if (gmem) {
        watch('gmem', 'memory-API scenario steps', undefined);
        log(`${k.name}: sending the memory-API scenario (kernel-matrix/gmem.ts) to ${sutFor('gmem')}`);
        gmemSent = await sendAndRecord(sutFor('gmem'), gmemRequests, rawGmem, timeoutMs);
        const skipped = [...gmemSent.skipped].map(([op, n]) => `${op} ${n}`).join(', ');
        log(`${k.name}: memory-API scenario: ${gmemSent.answered} requests answered${skipped === '' ? '' : `; skipped (not listed by the SUT): ${skipped}`}`);
        how = `${how}${how === '' ? '' : '; '}the memory-API scenario of kernel-matrix/gmem.ts, sent as is`;
      }
      const gz = path.join(outDir, traceName(k, values.npt));
      if (random) writeFileSync(gz, gzipSync(readFileSync(raw), { level: 9 }));
      const gzFill = path.join(outDir, traceName(k, values.npt, 'fill'));
      if (fill) writeFileSync(gzFill, gzipSync(readFileSync(rawFill), { level: 9 }));
      const gzGmem = path.join(outDir, traceName(k, values.npt, 'gmem'));
      if (gmem) writeFileSync(gzGmem, gzipSync(readFileSync(rawGmem), { level: 9 }));
      const stats = (phase: string): QemuSutStats | null => {
        try {
          return JSON.parse(readFileSync(path.join(work, `stats-${phase}.json`), 'utf8')) as QemuSutStats;
        } catch {
          return null;
        }
      };
      const s1 = random ? stats('random') : stats('gmem');
      const s2 = fill ? stats('fill') : null;
      const s3 = random && gmem ? stats('gmem') : null;
      if (s1 === null) log(`${k.name}: qemu-sut wrote no stats`);
      log(`${k.name}: recorded in ${((Date.now() - t0) / 1000).toFixed(0)} s by ${how}`);
      if (poll !== undefined) clearInterval(poll);
      progress.status(tag, 'replaying through the model');
      const summary = await checkTrace(random ? gz : gzGmem);
      const fillSummary = fill ? await checkTrace(gzFill) : null;
      const gmemSummary = random && gmem ? await checkTrace(gzGmem) : null;
      let checkResult = '';
      if (checkRuns > 0) {
        watch('check', `check --sut (${checkRuns} runs), requests`, undefined);
        checkResult = await runCheck(sutFor('check'), seed, checkRuns, timeoutMs, log);
      }
      if (dirty) dirtyRows.push(...(await dirtyPart()));
      if (poll !== undefined) clearInterval(poll);
      progress.done();
      const requests = (s1?.requests ?? 0) + (s2?.requests ?? 0) + (s3?.requests ?? 0);
      const requestMs = (s1?.requestMs ?? 0) + (s2?.requestMs ?? 0) + (s3?.requestMs ?? 0);
      const row: Row = {
        kernel: k.name,
        pkg: prepared.pkg,
        version: prepared.version,
        release: prepared.release,
        npt: values.npt ?? 'default (1)',
        profile: traceProfile(random ? gz : gzGmem),
        entryProfile: k.profile,
        steps: summary.steps + (fillSummary?.steps ?? 0) + (gmemSummary?.steps ?? 0),
        mismatches: summary.mismatches + (fillSummary?.mismatches ?? 0) + (gmemSummary?.mismatches ?? 0),
        resourceSteps: summary.resourceSteps + (fillSummary?.resourceSteps ?? 0) + (gmemSummary?.resourceSteps ?? 0),
        bootS: s1?.bootMs == null ? null : s1.bootMs / 1000,
        ioctlsPerS: requestMs === 0 ? null : requests / (requestMs / 1000),
        trace: random ? gz : gzGmem,
        summary,
      };
      rows.push(row);
      const rules = new Map(summary.ruleCounts);
      for (const [r, n] of [...(fillSummary?.ruleCounts ?? []), ...(gmemSummary?.ruleCounts ?? [])]) rules.set(r, (rules.get(r) ?? 0) + n);
      log(
        `${k.name}: ${row.steps} steps (${random ? `${summary.steps} random, ${fillSummary?.steps ?? 0} fill, ${gmemSummary?.steps ?? 0} memory API` : `${summary.steps} memory API`}), ${row.mismatches} mismatches; rules deciding requests: ${[
          ...rules.entries(),
        ]
          .sort((a, b) => a[0].localeCompare(b[0]))
          .map(([r, n]) => `${r} ${n}`)
          .join(', ')}${checkResult === '' ? '' : `; ${checkResult}`}`,
      );
      for (const [f, sm] of [
        [random ? gz : gzGmem, summary],
        [gzFill, fillSummary],
        [gzGmem, gmemSummary],
      ] as const)
        if (sm !== null && sm.mismatches > 0) process.stdout.write(`\n${k.name} (${f}), the kernel's answers as "expected":\n${formatReplay(sm, false)}\n`);
    } finally {
      if (poll !== undefined) clearInterval(poll);
      progress.done();
      rmSync(work, { recursive: true, force: true });
    }
  }
  if (rows.length > 0) process.stdout.write(`\n${table(rows)}\n`);
  if (dirtyRows.length > 0) process.stdout.write(`\n${dirtyTable(dirtyRows)}\n`);
  return rows.every((r) => r.mismatches === 0) && dirtyRows.every((r) => r.mismatches === 0) ? 0 : 1;
}

/** `memslot-oracle check --sut CMD --runs N`: its summary line. */
async function runCheck(sut: string, seed: number, runs: number, timeoutMs: number, log: (s: string) => void): Promise<string> {
  const args = [
    path.join(packageRoot(), 'dist', 'cli', 'main.js'),
    'check',
    '--sut',
    sut,
    '--seed',
    String(seed),
    '--runs',
    String(runs),
    '--timeout',
    String(timeoutMs),
  ];
  log(`running: node ${args.map(q).join(' ')}`);
  const { spawn } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (d: string) => {
      text += d;
    });
    p.on('error', reject);
    p.on('close', (code) => {
      for (const l of text.trimEnd().split('\n')) log(`  ${l}`);
      resolve(`check --sut: exit ${code} (${text.split('\n')[0] ?? ''})`);
    });
  });
}

// Only when run as a program (the test imports checkTrace and traceProfile).
if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      if (
        e instanceof SetupError ||
        e instanceof UsageError ||
        (e instanceof Error && (e.name === 'SutError' || e.name === 'InputError' || String((e as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS')))
      ) {
        process.stderr.write(`kernel-matrix: ${e.message}\n`);
      } else {
        process.stderr.write(`kernel-matrix: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      }
      process.exitCode = 2;
    },
  );
}
