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
 * profile of its profile line (the driver's hello), and print a table.
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
import { PROFILES, profileFromJson, type Profile } from '../model/profiles.js';
import { prepareKernel } from './fetch.js';
import { buildInitramfs } from './guest.js';
import { KERNELS, findKernel, type KernelEntry } from './kernels.js';
import type { QemuSutStats } from './qemu-sut.js';
import { recordByReplay, recordWithOracle, type Recorder } from './record.js';
import { SetupError } from './tools.js';

/**
 * How traces are recorded: `recordWithOracle` runs `memslot-oracle record`; `recordByReplay`
 * replays gen-trace.ts's requests (what the matrix did before that command existed).
 */
const RECORDER: Recorder = recordWithOracle;
void recordByReplay;

const USAGE = `usage: npm run kernel-matrix -- [--kernels ${KERNELS.map((k) => k.name).join(',')}] [--npt 0|1] [--steps N] [--seed S] [--out DIR] [--timeout MS] [--refresh] [--verbose]`;

export interface Row {
  readonly kernel: string;
  readonly pkg: string;
  readonly version: string;
  readonly release: string;
  readonly npt: string;
  readonly profile: Profile;
  readonly steps: number;
  readonly mismatches: number;
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

export function traceName(k: KernelEntry, npt: string | undefined): string {
  return `${k.name}${npt === '0' ? '-npt0' : ''}.jsonl.gz`;
}

function table(rows: readonly Row[]): string {
  const head = [
    'kernel',
    'package version',
    'npt',
    'address spaces',
    'max gfn',
    'steps recorded',
    'mismatches',
    'boot s',
    'ioctls/s',
  ];
  const body = rows.map((r) => [
    `${r.kernel} (${r.release})`,
    r.version,
    r.npt,
    String(r.profile.addressSpaces),
    r.profile.maxGfn === null ? 'none' : `0x${r.profile.maxGfn.toString(16)}`,
    String(r.steps),
    String(r.mismatches),
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
      npt: { type: 'string' },
      steps: { type: 'string', default: '50000' },
      seed: { type: 'string', default: '1' },
      out: { type: 'string' },
      timeout: { type: 'string', default: '300000' },
      refresh: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const names =
    values.kernels === undefined
      ? KERNELS.map((k) => k.name)
      : values.kernels
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '');
  const kernels = names.map((n) => {
    const k = findKernel(n);
    if (k === undefined)
      throw new SetupError(
        `unknown kernel "${n}"; the table (kernel-matrix/kernels.ts) has ${KERNELS.map((x) => x.name).join(', ')}`,
      );
    return k;
  });
  if (values.npt !== undefined && values.npt !== '0' && values.npt !== '1')
    throw new SetupError(`--npt must be 0 or 1`);
  const steps = Number(values.steps);
  const seed = Number(values.seed);
  const timeoutMs = Number(values.timeout);
  if (
    !Number.isInteger(steps) ||
    steps < 0 ||
    !Number.isInteger(seed) ||
    !Number.isInteger(timeoutMs) ||
    timeoutMs <= 0
  ) {
    throw new SetupError(`--steps, --seed and --timeout must be integers (steps >= 0, timeout > 0)\n${USAGE}`);
  }
  const outDir = values.out ?? path.join(packageRoot(), 'test', 'ground-truth', 'kernel-matrix');
  mkdirSync(outDir, { recursive: true });
  const log = (s: string): void => {
    process.stderr.write(`kernel-matrix: ${s}\n`);
  };
  const qemuSut = fileURLToPath(new URL('./qemu-sut.js', import.meta.url));

  const rows: Row[] = [];
  for (const k of kernels) {
    // Everything that may download or compile happens here, before the oracle's hello timeout.
    const prepared = await prepareKernel(k, { refresh: values.refresh, log });
    buildInitramfs(prepared, await buildKvmDriver({ static: true }));
    const work = mkdtempSync(path.join(tmpdir(), 'kernel-matrix-'));
    try {
      const statsFile = path.join(work, 'stats.json');
      const sut = [
        process.execPath,
        qemuSut,
        '--kernel',
        k.name,
        ...(values.npt === undefined ? [] : ['--npt', values.npt]),
        '--stats',
        statsFile,
        ...(values.verbose ? ['--verbose'] : []),
      ]
        .map(q)
        .join(' ');
      const raw = path.join(work, 'trace.jsonl');
      log(`${k.name}: recording (${prepared.pkg} ${prepared.version}); the boot takes about 15 s`);
      const t0 = Date.now();
      const { how } = await RECORDER({ sut, out: raw, seed, steps, timeoutMs, work, log });
      const gz = path.join(outDir, traceName(k, values.npt));
      writeFileSync(gz, gzipSync(readFileSync(raw), { level: 9 }));
      let stats: QemuSutStats | null = null;
      try {
        stats = JSON.parse(readFileSync(statsFile, 'utf8')) as QemuSutStats;
      } catch {
        log(`${k.name}: qemu-sut wrote no stats`);
      }
      log(
        `${k.name}: recorded in ${((Date.now() - t0) / 1000).toFixed(0)} s by ${how}; checking ${gz} against the model`,
      );
      const summary = await checkTrace(gz);
      const row: Row = {
        kernel: k.name,
        pkg: prepared.pkg,
        version: prepared.version,
        release: prepared.release,
        npt: values.npt ?? 'default (1)',
        profile: traceProfile(gz),
        steps: summary.steps,
        mismatches: summary.mismatches,
        bootS: stats?.bootMs == null ? null : stats.bootMs / 1000,
        ioctlsPerS: stats === null || stats.requestMs === 0 ? null : stats.requests / (stats.requestMs / 1000),
        trace: gz,
        summary,
      };
      rows.push(row);
      const rules = [...summary.ruleCounts.entries()].sort((a, b) => a[0].localeCompare(b[0]));
      log(
        `${k.name}: ${summary.steps} steps, ${summary.mismatches} mismatches; rules deciding requests: ${rules.map(([r, n]) => `${r} ${n}`).join(', ')}`,
      );
      if (summary.mismatches > 0)
        process.stdout.write(
          `\n${k.name} (${gz}), the kernel's answers as "expected":\n${formatReplay(summary, false)}\n`,
        );
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  process.stdout.write(`\n${table(rows)}\n`);
  return rows.every((r) => r.mismatches === 0) ? 0 : 1;
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
        (e instanceof Error &&
          (e.name === 'SutError' ||
            e.name === 'InputError' ||
            String((e as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS')))
      ) {
        process.stderr.write(`kernel-matrix: ${e.message}\n`);
      } else {
        process.stderr.write(
          `kernel-matrix: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
        );
      }
      process.exitCode = 2;
    },
  );
}
