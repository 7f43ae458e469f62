/**
 * `memslot-oracle record --out FILE [--profile P] -- CMD ARGS`: runs a VMM under the ioctl
 * recorder (sut/recorder/memslot-recorder.c, LD_PRELOAD) and writes its memslot ioctls, with
 * the kernel's answers, as a trace (spec/70): a profile line first (`--profile`, or the running
 * kernel's, probed by the kvm driver's hello), then what the recorder appends. What the trace
 * cannot express goes to the side log FILE.extra.jsonl. Then the trace is replayed through the
 * model, with its coverage and the VMM checks.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import type { Profile } from '../../model/profiles.js';
import { SutClient } from '../../sut/protocol.js';
import { buildRecorder, recorderEnv, sideLogPath } from '../../sut/recorder.js';
import { fileLines } from '../../trace/lines.js';
import { formatProfileLine, readTrace } from '../../trace/trace.js';
import { formatTraceReport, reportTrace } from '../../lint/trace-report.js';
import { resolveProfile } from '../profile-arg.js';

/** The running kernel's profile, as the kvm driver probes it (its hello). */
export async function probeKernelProfile(timeoutMs: number): Promise<Profile> {
  const sut = await SutClient.start('kvm', { timeoutMs });
  try {
    return sut.resolveProfile(null, resolveProfile(undefined));
  } finally {
    await sut.close();
  }
}

export interface VmmRecordOptions {
  readonly command: readonly string[];
  readonly out: string;
  readonly profile: string | undefined;
  readonly timeoutMs: number;
}

/** Runs the command to its end; resolves with how it ended. */
function runRecorded(command: readonly string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }> {
  return new Promise((resolve) => {
    const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env });
    const forward = (sig: NodeJS.Signals): void => {
      child.kill(sig);
    };
    const sigs = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
    for (const s of sigs) process.on(s, forward);
    const done = (r: { code: number | null; signal: NodeJS.Signals | null; error?: Error }): void => {
      for (const s of sigs) process.off(s, forward);
      resolve(r);
    };
    child.on('error', (error) => done({ code: null, signal: null, error }));
    child.on('exit', (code, signal) => done({ code, signal }));
  });
}

export async function recordVmm(o: VmmRecordOptions): Promise<number> {
  const profile = o.profile !== undefined ? resolveProfile(o.profile) : await probeKernelProfile(o.timeoutMs);
  const lib = await buildRecorder();
  const extra = sideLogPath(o.out);
  writeFileSync(o.out, `${formatProfileLine(profile)}\n`);
  writeFileSync(extra, '');
  const started = Date.now();
  const r = await runRecorded(o.command, recorderEnv(lib, o.out, extra));
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  const how =
    r.error !== undefined ? `could not be started (${r.error.message})` : r.signal !== null ? `was killed by ${r.signal}` : `exited with status ${r.code}`;
  process.stdout.write(`record: ${o.command.join(' ')} ${how} after ${secs} s\nwrote ${o.out} (profile ${profile.name}) and ${extra}\n`);
  const report = await reportTrace(readTrace(fileLines(o.out), o.out), profile);
  process.stdout.write(`${formatTraceReport(report)}\n`);
  if (report.replay.mismatches > 0) return 1;
  return r.error === undefined && r.code === 0 ? 0 : 2;
}
