#!/usr/bin/env node
/**
 * qemu-sut: a SUT (spec/80-protocol.md) that is a real Linux kernel booted under QEMU.
 *
 *   node dist/kernel-matrix/qemu-sut.js --kernel 6.1 [--npt 0|1] [--memory 1G]
 *        [--boot-timeout SECONDS] [--stats FILE] [--progress FILE] [--refresh] [--verbose]
 *
 * Boots the table's kernel (kernel-matrix/kernels.ts; fetched and cached on first use) under
 * qemu-system-x86_64 -accel tcg with the kvm-sut driver inside (guest.ts), and forwards every
 * request line from its stdin to the driver and every answer line back to its stdout. The boot
 * starts at once; requests that arrive before the driver is up (the oracle's hello) wait for it,
 * so hello is answered about 15 s after the start: give the oracle `--timeout 300000`.
 * Everything the guest prints before the ready marker is boot noise and is dropped.
 *
 * `--progress FILE`: the boot state and the number of requests answered so far, rewritten
 * about every 250 ms (kernel-matrix/progress.ts reads it for its live line).
 *
 * The hello answer is the driver's, with the environment added to its name (package version,
 * kvm_amd npt); its profile is the guest kernel's. End of stdin ends QEMU. QEMU dies with this
 * process (setpriv --pdeathsig KILL), also when the oracle SIGKILLs it.
 *
 * Exit status: 0 after end of input; 1 when the guest stops on its own; 2 for a setup problem
 * (missing tools or packages: the message gives the install command) or a failed boot.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildKvmDriver } from '../sut/kvm-driver.js';
import { prepareKernel, prepareOwnKernel } from './fetch.js';
import { READY_MARKER, buildInitramfs, qemuArgs } from './guest.js';
import { KERNELS, findKernel } from './kernels.js';
import type { SutProgress } from './progress.js';
import { SetupError } from './tools.js';
import { intOption } from '../cli/options.js';

const USAGE = `usage: qemu-sut.js (--kernel ${KERNELS.map((k) => k.name).join('|')} | --vmlinuz BZIMAGE --modules DIR) [--npt 0|1] [--memory 1G] [--boot-timeout SECONDS] [--stats FILE] [--progress FILE] [--refresh] [--verbose]`;
const CONSOLE_TAIL_LINES = 25;

/** What --stats writes when the run ends. */
export interface QemuSutStats {
  readonly kernel: string;
  readonly pkg: string;
  readonly version: string;
  readonly release: string;
  readonly npt: 0 | 1 | null;
  /** From QEMU's start to the ready marker. */
  readonly bootMs: number | null;
  /** The driver's hello (its probes included). */
  readonly helloMs: number | null;
  /** Requests after hello that the guest answered, and the time they took, round trip. */
  readonly requests: number;
  readonly requestMs: number;
}

function fail(msg: string, code: number): never {
  process.stderr.write(`qemu-sut: ${msg}\n`);
  process.exit(code);
}

function consoleTail(file: string): string {
  try {
    const text = readFileSync(file, 'utf8').trimEnd();
    return text === '' ? '(the guest printed nothing yet)' : text.split('\n').slice(-CONSOLE_TAIL_LINES).join('\n');
  } catch {
    return '(no console output)';
  }
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        kernel: { type: 'string' },
        vmlinuz: { type: 'string' },
        modules: { type: 'string' },
        npt: { type: 'string' },
        memory: { type: 'string', default: '1G' },
        'boot-timeout': { type: 'string', default: '600' },
        stats: { type: 'string' },
        progress: { type: 'string' },
        refresh: { type: 'boolean', default: false },
        verbose: { type: 'boolean', default: false },
      },
    }));
  } catch (e) {
    fail(`${(e as Error).message}\n${USAGE}`, 2);
  }
  const own = values.vmlinuz !== undefined || values.modules !== undefined;
  if (own && (values.vmlinuz === undefined || values.modules === undefined || values.kernel !== undefined))
    fail(`a kernel of your own needs both --vmlinuz and --modules (and no --kernel)\n${USAGE}`, 2);
  if (!own && values.kernel === undefined) fail(`--kernel (or --vmlinuz and --modules) is required\n${USAGE}`, 2);
  const entry = own ? undefined : findKernel(values.kernel!);
  if (!own && entry === undefined)
    fail(`unknown kernel "${values.kernel}"; the table (kernel-matrix/kernels.ts) has: ${KERNELS.map((k) => `${k.name} (${k.pkg})`).join(', ')}`, 2);
  if (values.npt !== undefined && values.npt !== '0' && values.npt !== '1') fail(`--npt must be 0 or 1, got ${values.npt}`, 2);
  const npt = values.npt === undefined ? undefined : (Number(values.npt) as 0 | 1);
  let bootTimeoutMs = 0;
  try {
    bootTimeoutMs = intOption('boot-timeout', values['boot-timeout'], 600, 1) * 1000;
  } catch (e) {
    fail((e as Error).message, 2);
  }
  const verbose = values.verbose;
  const log = (s: string): void => {
    process.stderr.write(`qemu-sut: ${s}\n`);
  };

  let kernel, initramfs;
  try {
    kernel = own ? await prepareOwnKernel(values.vmlinuz!, values.modules!, { log }) : await prepareKernel(entry!, { refresh: values.refresh, log });
    const driver = await buildKvmDriver({ static: true });
    initramfs = buildInitramfs(kernel, driver);
  } catch (e) {
    if (e instanceof SetupError || (e instanceof Error && e.name === 'SutError')) fail(e.message, 2);
    throw e;
  }

  const work = mkdtempSync(path.join(tmpdir(), 'qemu-sut-'));
  const consoleLog = path.join(work, 'console.log');
  const args = qemuArgs({
    kernel,
    initramfs,
    memory: values.memory,
    consoleLog,
    ...(npt === undefined ? {} : { npt }),
  });
  if (verbose) log(`qemu-system-x86_64 ${args.join(' ')}`);
  const start = Date.now();
  const qemu = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'qemu-system-x86_64', ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let qemuStderr = '';
  qemu.stderr.setEncoding('utf8');
  qemu.stderr.on('data', (d: string) => {
    qemuStderr = (qemuStderr + d).slice(-4000);
    if (verbose) process.stderr.write(d);
  });
  qemu.stdin.on('error', () => {});

  let ready = false;
  let inputEnded = false;
  let bootMs: number | null = null;
  let helloMs: number | null = null;
  let requests = 0;
  let requestMs = 0;
  const queue: string[] = [];
  /** Send times of requests written to the guest and not answered yet. */
  const inFlight: { t: number; hello: boolean }[] = [];

  const writeStats = (): void => {
    if (values.stats === undefined) return;
    const s: QemuSutStats = {
      kernel: kernel.entry.name,
      pkg: kernel.pkg,
      version: kernel.version,
      release: kernel.release,
      npt: npt ?? null,
      bootMs,
      helloMs,
      requests,
      requestMs: Math.round(requestMs),
    };
    writeFileSync(values.stats, `${JSON.stringify(s)}\n`);
  };
  let progressAt = 0;
  const writeProgress = (force = false): void => {
    if (values.progress === undefined) return;
    const now = Date.now();
    if (!force && now - progressAt < 250) return;
    progressAt = now;
    const p: SutProgress = { ready, elapsedMs: now - start, requests };
    try {
      writeFileSync(`${values.progress}.tmp`, JSON.stringify(p));
      renameSync(`${values.progress}.tmp`, values.progress);
    } catch {
      // Progress is only for display.
    }
  };
  const progressTimer = setInterval(() => writeProgress(true), 1000);
  progressTimer.unref();
  const cleanup = (): void => {
    rmSync(work, { recursive: true, force: true });
  };
  const finish = (code: number): void => {
    writeProgress(true);
    writeStats();
    cleanup();
    process.exit(code);
  };

  const forward = (line: string): void => {
    let hello = false;
    try {
      hello = (JSON.parse(line) as { op?: unknown }).op === 'hello';
    } catch {
      // Not JSON: the driver answers it with an error.
    }
    inFlight.push({ t: performance.now(), hello });
    if (verbose && hello) log(`-> ${line}`);
    qemu.stdin.write(`${line}\n`);
  };

  const bootTimer = setTimeout(() => {
    if (ready) return;
    process.stderr.write(`qemu-sut: the guest did not start the driver within ${bootTimeoutMs / 1000} s; console tail:\n${consoleTail(consoleLog)}\n`);
    qemu.kill('SIGKILL');
    finish(2);
  }, bootTimeoutMs);

  const envName = `${own ? 'own build' : `Debian ${kernel.version}`}, QEMU TCG, kvm_amd npt=${npt ?? 'default'}`;
  const onAnswer = (line: string): void => {
    const sent = inFlight.shift();
    if (sent === undefined) {
      // The driver never speaks unasked; pass it on and let the oracle complain.
      process.stdout.write(`${line}\n`);
      return;
    }
    const ms = performance.now() - sent.t;
    let out = line;
    if (sent.hello) {
      helloMs = Math.round(ms);
      try {
        const v = JSON.parse(line) as Record<string, unknown>;
        if (typeof v['name'] === 'string') {
          v['name'] = `${v['name']} (${envName})`;
          out = JSON.stringify(v);
        }
      } catch {
        // Not JSON: forward as is; the oracle reports it.
      }
    } else {
      requests++;
      requestMs += ms;
      writeProgress();
    }
    process.stdout.write(`${out}\n`);
  };

  let outBuf = '';
  qemu.stdout.setEncoding('utf8');
  qemu.stdout.on('data', (chunk: string) => {
    outBuf += chunk;
    let nl: number;
    while ((nl = outBuf.indexOf('\n')) >= 0) {
      let line = outBuf.slice(0, nl);
      outBuf = outBuf.slice(nl + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (!ready) {
        if (line.trim() === READY_MARKER) {
          ready = true;
          bootMs = Date.now() - start;
          clearTimeout(bootTimer);
          writeProgress(true);
          if (verbose) log(`driver ready after ${(bootMs / 1000).toFixed(1)} s`);
          for (const q of queue.splice(0)) forward(q);
        } else if (verbose) log(`boot noise: ${JSON.stringify(line)}`);
        continue;
      }
      onAnswer(line);
    }
  });

  qemu.on('error', (e) => {
    fail(`cannot start qemu-system-x86_64 via setpriv: ${e.message}`, 2);
  });
  qemu.on('exit', (code, signal) => {
    clearTimeout(bootTimer);
    if (inputEnded) finish(0);
    const how = signal !== null ? `was killed by ${signal}` : `exited with code ${code}`;
    const what = ready ? 'the guest stopped' : 'QEMU stopped during boot';
    process.stderr.write(
      `qemu-sut: ${what}: qemu-system-x86_64 ${how}` +
        `${qemuStderr.trim() === '' ? '' : `\nQEMU stderr:\n${qemuStderr.trim()}`}\nguest console tail:\n${consoleTail(consoleLog)}\n`,
    );
    finish(ready ? 1 : 2);
  });

  const endInput = (): void => {
    if (inputEnded) return;
    inputEnded = true;
    // Nothing in the guest is worth a clean shutdown: end QEMU now.
    qemu.kill('SIGKILL');
  };
  let inBuf = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    inBuf += chunk;
    let nl: number;
    while ((nl = inBuf.indexOf('\n')) >= 0) {
      const line = inBuf.slice(0, nl).replace(/\r$/, '');
      inBuf = inBuf.slice(nl + 1);
      if (line.trim() === '') continue;
      if (ready) forward(line);
      else queue.push(line);
    }
  });
  process.stdin.on('end', endInput);
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.on(sig, () => {
      inputEnded = true;
      qemu.kill('SIGKILL');
    });
  }
}

main().catch((e: unknown) => fail(`internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`, 2));
