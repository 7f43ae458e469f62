/**
 * `npm run kernel-matrix -- --vmm qemu [--kernels 6.1] [--scenarios boot,dimm,...]`: real QEMU
 * on real KVM, recorded. The kernel-matrix guest (a Debian kernel with kvm_amd under QEMU TCG)
 * gets, in its initramfs, the host's own qemu-system-x86_64 with every library `ldd` names,
 * /usr/share/qemu and /usr/share/seabios, the ioctl recorder (sut/recorder/memslot-recorder.c)
 * and the kvm-sut driver. /init asks the driver's hello (the guest kernel's profile, probed as
 * `--sut kvm` probes it), then runs each scenario: QEMU with -enable-kvm under the recorder,
 * driven through its human monitor (HMP) on a pipe. Each scenario's trace, side log and shell
 * log come back over the virtio port; the host writes
 * `test/ground-truth/vmm/qemu-<scenario>-<kernel>.jsonl.gz` (the driver's profile as the first
 * line, then what the recorder wrote, exactly as `memslot-oracle record --out F -- CMD` writes
 * it: the guest has no Node, so /init sets LD_PRELOAD itself), and replays each through the
 * model with its coverage and VMM checks.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { buildKvmDriver, packageRoot } from '../sut/kvm-driver.js';
import { buildRecorder } from '../sut/recorder.js';
import { parseHelloLine } from '../sut/protocol.js';
import { formatProfileLine, readTrace } from '../trace/trace.js';
import { fileLines } from '../trace/lines.js';
import { formatTraceReport, reportTrace } from '../lint/trace-report.js';
import { cpioNewc, type CpioEntry } from './cpio.js';
import { prepareKernel, type PreparedKernel } from './fetch.js';
import { initPrelude, qemuArgs } from './guest.js';
import type { KernelEntry } from './kernels.js';
import { BUSYBOX, SetupError } from './tools.js';

const QEMU = '/usr/bin/qemu-system-x86_64';
const DATA_DIRS = ['/usr/share/qemu', '/usr/share/seabios'];
const MARK = '@@vmm@@';

/**
 * The scenarios: shell run by /init with lib.sh's helpers (start_qemu, mon, wait_log,
 * stop_qemu). Each starts its own QEMU, so each trace starts with that QEMU's KVM_CREATE_VM.
 */
export const SCENARIOS: Readonly<Record<string, { readonly what: string; readonly script: string }>> = {
  boot: {
    what: 'boot to the firmware: SeaBIOS runs to "No bootable device" (-M pc, 128 MiB, no disks), then quit',
    script: `start_qemu -m 128M
wait_log /tmp/bios.log "No bootable device" 1 600
stop_qemu`,
  },
  dimm: {
    what: 'DIMM hotplug and unplug: -m 128M,slots=2,maxmem=1G; at the firmware prompt object_add a 128 MiB backend, device_add a pc-dimm, then device_del it (no guest OS to eject it) and quit',
    script: `start_qemu -m 128M,slots=2,maxmem=1G
wait_log /tmp/bios.log "No bootable device" 1 600
mon "object_add memory-backend-ram,id=mem1,size=128M"
mon "device_add pc-dimm,id=dimm1,memdev=mem1"
sleep 3
mon "info memory-devices"
mon "device_del dimm1"
sleep 5
mon "info memory-devices"
sleep 1
stop_qemu`,
  },
  'virtio-mem': {
    what: 'virtio-mem: a 256 MiB virtio-mem-pci device from the start (-m 128M,maxmem=1G), requested-size raised to 128 MiB at the firmware prompt (no guest driver plugs it), then quit',
    script: `start_qemu -m 128M,maxmem=1G -object memory-backend-ram,id=vmem0m,size=256M -device virtio-mem-pci,id=vmem0,memdev=vmem0m,requested-size=0
wait_log /tmp/bios.log "No bootable device" 1 600
mon "qom-set vmem0 requested-size 134217728"
sleep 3
mon "info memory-devices"
sleep 1
stop_qemu`,
  },
  migrate: {
    what: 'migration to a file: at the firmware prompt migrate "exec:cat > /tmp/mig" (dirty logging on, manual-protect CLEAR_DIRTY_LOG, logging off at the end), info migrate until completed, cont, quit',
    script: `start_qemu -m 128M
wait_log /tmp/bios.log "No bootable device" 1 600
mon "migrate exec:cat>/tmp/mig"
i=0
while [ $i -lt 600 ]; do
  mon "info migrate"
  sleep 1
  grep -q "Migration status: completed" /tmp/mon.log && break
  grep -q "Migration status: failed" /tmp/mon.log && break
  i=$((i + 1))
done
grep "Migration status" /tmp/mon.log | tail -1
ls -l /tmp/mig
mon "cont"
sleep 2
stop_qemu`,
  },
  reboot: {
    what: 'reboot: SeaBIOS to "No bootable device", system_reset, SeaBIOS again to "No bootable device", quit',
    script: `start_qemu -m 128M
wait_log /tmp/bios.log "No bootable device" 1 600
mon "system_reset"
wait_log /tmp/bios.log "No bootable device" 2 600
stop_qemu`,
  },
};

const LIB_SH = `# helpers for the scenarios (kernel-matrix/vmm.ts)
QEMU_ARGS="-enable-kvm -M pc -smp 1 -nodefaults -no-user-config -display none -chardev pipe,id=mon,path=/tmp/mon -mon chardev=mon,mode=readline -chardev file,id=dbg,path=/tmp/bios.log -device isa-debugcon,iobase=0x402,chardev=dbg"
start_qemu() {
  rm -f /tmp/mon.in /tmp/mon.out /tmp/mon.log /tmp/bios.log
  mkfifo /tmp/mon.in /tmp/mon.out
  exec 4<>/tmp/mon.in 5<>/tmp/mon.out
  cat <&5 >/tmp/mon.log &
  CATPID=$!
  echo "+ qemu-system-x86_64 $QEMU_ARGS $*"
  LD_PRELOAD=/memslot-recorder.so /usr/bin/qemu-system-x86_64 $QEMU_ARGS "$@" 4>&- 5>&- &
  QPID=$!
}
mon() {
  echo "+ (monitor) $*"
  echo "$*" >&4
}
# wait_log FILE PATTERN COUNT SECONDS: until PATTERN occurs COUNT times in FILE
wait_log() {
  n=0
  while [ $n -lt $(($4 * 2)) ]; do
    c=$(grep -c "$2" "$1" 2>/dev/null)
    [ "\${c:-0}" -ge "$3" ] && { echo "+ seen '$2' x$3 after $((n / 2)) s"; return 0; }
    kill -0 $QPID 2>/dev/null || { echo "+ qemu exited while waiting for '$2'"; return 1; }
    sleep 0.5
    n=$((n + 1))
  done
  echo "+ timeout waiting for '$2'"
  return 1
}
stop_qemu() {
  mon quit
  wait $QPID
  st=$?
  echo "+ qemu exit status $st"
  sleep 0.2
  kill $CATPID 2>/dev/null
  echo "--- monitor log"
  cat /tmp/mon.log
  echo "--- firmware log (last lines)"
  tail -5 /tmp/bios.log
  exec 4>&- 5>&-
  return $st
}
`;

function vmmInit(k: PreparedKernel, scenarios: readonly string[]): string {
  return `${initPrelude(k.modules)}exec 3<>"$port"
export PATH=/bin:/usr/bin
busybox mount -t tmpfs tmpfs /tmp
busybox --install -s /bin
up() { cut -d' ' -f1 /proc/uptime; }
say "asking the driver's hello"
echo '{"op":"hello","protocol":1}' | /kvm-sut >/tmp/hello.json 2>/tmp/hello.err
echo "${MARK} hello $(cat /tmp/hello.json)" >&3
for s in ${scenarios.join(' ')}; do
  say "scenario $s"
  t0=$(up)
  MEMSLOT_RECORD_OUT=/tmp/$s.jsonl MEMSLOT_RECORD_EXTRA=/tmp/$s.extra.jsonl sh -c ". /scenarios/lib.sh; . /scenarios/$s.sh" >/tmp/$s.log 2>&1
  st=$?
  t1=$(up)
  echo "${MARK} begin $s $st $t0 $t1" >&3
  [ -f /tmp/$s.jsonl ] && sed 's/^/T /' /tmp/$s.jsonl >&3
  [ -f /tmp/$s.extra.jsonl ] && sed 's/^/X /' /tmp/$s.extra.jsonl >&3
  sed 's/^/L /' /tmp/$s.log >&3
  echo "${MARK} end $s" >&3
  rm -f /tmp/$s.jsonl /tmp/$s.extra.jsonl /tmp/mig
done
echo "${MARK} done" >&3
busybox poweroff -f
`;
}

/** The shared libraries `ldd` names for a binary (and the dynamic loader), as absolute paths. */
function lddLibs(file: string): string[] {
  const out = execFileSync('ldd', [file], { encoding: 'utf8' });
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]!);
  }
  return libs;
}

/** Files (content at their own path, symlinks followed) and directories for the initramfs. */
function hostFiles(files: readonly string[], dirs: readonly string[]): CpioEntry[] {
  const seenDirs = new Set<string>();
  const entries: CpioEntry[] = [];
  const addDir = (d: string): void => {
    const rel = d.replace(/^\/+/, '');
    if (rel === '' || seenDirs.has(rel)) return;
    addDir(path.dirname(d));
    seenDirs.add(rel);
    entries.push({ kind: 'dir', path: rel });
  };
  const addFile = (f: string): void => {
    addDir(path.dirname(f));
    entries.push({ kind: 'file', path: f.replace(/^\/+/, ''), data: readFileSync(realpathSync(f)), mode: 0o755 });
  };
  for (const f of files) addFile(f);
  const walk = (d: string): void => {
    addDir(d);
    for (const e of readdirSync(d).sort()) {
      const p = path.join(d, e);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isSymbolicLink()) entries.push({ kind: 'symlink', path: p.replace(/^\/+/, ''), target: readlinkSync(p) });
      else if (st.isFile()) entries.push({ kind: 'file', path: p.replace(/^\/+/, ''), data: readFileSync(p), mode: 0o644 });
    }
  };
  for (const d of dirs) walk(d);
  return entries;
}

function buildVmmInitramfs(k: PreparedKernel, driver: string, recorder: string, scenarios: readonly string[], work: string): string {
  if (!existsSync(QEMU)) throw new SetupError(`${QEMU} not found (the VMM recorded in the guest); install it with: apt-get install -y qemu-system-x86`);
  const libs = [...new Set([...lddLibs(QEMU), ...lddLibs(recorder)])].sort();
  // /lib64 and /lib are symlinks on merged-/usr hosts: the files are packed at the paths ldd names.
  const mods = k.modules.map((m): CpioEntry => ({ kind: 'file', path: `lib/modules/${m.file}`, data: readFileSync(path.join(k.dir, 'modules', m.file)) }));
  const entries: CpioEntry[] = [
    { kind: 'dir', path: 'bin' },
    { kind: 'file', path: 'bin/busybox', data: readFileSync(BUSYBOX), mode: 0o755 },
    { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
    { kind: 'dir', path: 'dev' },
    { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    { kind: 'dir', path: 'proc' },
    { kind: 'dir', path: 'sys' },
    { kind: 'dir', path: 'tmp' },
    { kind: 'dir', path: 'lib' },
    { kind: 'dir', path: 'lib/modules' },
    ...mods,
    ...hostFiles([QEMU, ...libs], DATA_DIRS).filter((e) => !(e.kind === 'dir' && ['lib', 'bin'].includes(e.path))),
    { kind: 'file', path: 'kvm-sut', data: readFileSync(driver), mode: 0o755 },
    { kind: 'file', path: 'memslot-recorder.so', data: readFileSync(recorder), mode: 0o755 },
    { kind: 'dir', path: 'scenarios' },
    { kind: 'file', path: 'scenarios/lib.sh', data: Buffer.from(LIB_SH), mode: 0o644 },
    ...scenarios.map((s): CpioEntry => ({ kind: 'file', path: `scenarios/${s}.sh`, data: Buffer.from(`${SCENARIOS[s]!.script}\n`), mode: 0o644 })),
    { kind: 'file', path: 'init', data: Buffer.from(vmmInit(k, scenarios)), mode: 0o755 },
  ];
  const cpio = cpioNewc(entries);
  const hash = createHash('sha256').update(cpio).digest('hex').slice(0, 12);
  const out = path.join(work, `initramfs-vmm-${hash}.cpio.gz`);
  writeFileSync(out, gzipSync(cpio, { level: 1 }));
  return out;
}

export interface ScenarioResult {
  readonly scenario: string;
  readonly status: number;
  readonly seconds: number;
  readonly trace: string[];
  readonly extra: string[];
  readonly log: string[];
}

/** Boots the guest and collects the hello and each scenario's output from the port. */
async function runGuest(
  k: PreparedKernel,
  initramfs: string,
  memory: string,
  work: string,
  log: (s: string) => void,
  timeoutMs: number,
): Promise<{ hello: string; results: ScenarioResult[] }> {
  const consoleLog = path.join(work, 'console.log');
  const args = qemuArgs({ kernel: k, initramfs, memory, consoleLog });
  const qemu = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'nice', '-n', '10', 'qemu-system-x86_64', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  qemu.stderr.setEncoding('utf8');
  qemu.stderr.on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  let hello = '';
  const results: ScenarioResult[] = [];
  let cur: { scenario: string; status: number; seconds: number; trace: string[]; extra: string[]; log: string[] } | null = null;
  let buf = '';
  let done = false;
  const onLine = (raw: string): void => {
    const line = raw.replace(/\r$/, '');
    if (line.startsWith(`${MARK} hello `)) {
      hello = line.slice(`${MARK} hello `.length);
      log(`guest: driver hello received`);
    } else if (line.startsWith(`${MARK} begin `)) {
      const [, , s, st, t0, t1] = line.split(' ');
      cur = { scenario: s!, status: Number(st), seconds: Number(t1) - Number(t0), trace: [], extra: [], log: [] };
    } else if (line.startsWith(`${MARK} end `) && cur !== null) {
      results.push(cur);
      log(
        `guest: scenario ${cur.scenario} exit ${cur.status}, ${cur.seconds.toFixed(1)} s, ${cur.trace.length} trace lines, ${cur.extra.length} side-log lines`,
      );
      cur = null;
    } else if (line === `${MARK} done`) {
      done = true;
    } else if (cur !== null) {
      const body = line.slice(2);
      if (line.startsWith('T ')) cur.trace.push(body);
      else if (line.startsWith('X ')) cur.extra.push(body);
      else if (line.startsWith('L ')) cur.log.push(body);
    }
  };
  qemu.stdout.setEncoding('utf8');
  qemu.stdout.on('data', (c: string) => {
    buf += c;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
  const timer = setTimeout(() => {
    log(`the guest did not finish within ${timeoutMs / 1000} s: killing it`);
    qemu.kill('SIGKILL');
  }, timeoutMs);
  const code = await new Promise<number | null>((resolve) => qemu.on('exit', (c) => resolve(c)));
  clearTimeout(timer);
  if (!done) {
    const tail = existsSync(consoleLog) ? readFileSync(consoleLog, 'utf8').trimEnd().split('\n').slice(-25).join('\n') : '';
    throw new SetupError(`the VMM guest stopped before its scenarios ended (QEMU exit ${code}); QEMU stderr: ${stderr.trim()}\nguest console tail:\n${tail}`);
  }
  return { hello, results };
}

export interface VmmOptions {
  readonly kernels: readonly KernelEntry[];
  readonly scenarios: readonly string[];
  readonly outDir: string;
  readonly memory: string;
  readonly refresh: boolean;
  readonly log: (s: string) => void;
}

/** Records every scenario on every kernel; resolves with the exit status (0 all replay clean). */
export async function recordVmmMatrix(o: VmmOptions): Promise<number> {
  for (const s of o.scenarios) if (SCENARIOS[s] === undefined) throw new SetupError(`unknown scenario "${s}"; known: ${Object.keys(SCENARIOS).join(', ')}`);
  mkdirSync(o.outDir, { recursive: true });
  const driver = await buildKvmDriver({ static: true });
  const recorder = await buildRecorder();
  let status = 0;
  for (const entry of o.kernels) {
    const k = await prepareKernel(entry, { refresh: o.refresh, log: o.log });
    const work = mkdtempSync(path.join(tmpdir(), 'kernel-matrix-vmm-'));
    try {
      const initramfs = buildVmmInitramfs(k, driver, recorder, o.scenarios, work);
      o.log(`${entry.name}: booting ${k.release} with QEMU ${qemuVersion()} inside (initramfs ${(readFileSync(initramfs).length / 1e6).toFixed(0)} MB)`);
      const t0 = Date.now();
      const { hello, results } = await runGuest(k, initramfs, o.memory, work, o.log, 3_600_000);
      o.log(`${entry.name}: guest done after ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      const profile = parseHelloLine(hello).profile;
      if (profile === null) throw new SetupError(`the driver's hello declared no profile: ${hello}`);
      for (const r of results) {
        const base = `qemu-${r.scenario}-${entry.name}`;
        const text = `${[formatProfileLine(profile), ...r.trace].join('\n')}\n`;
        const gz = path.join(o.outDir, `${base}.jsonl.gz`);
        writeFileSync(gz, gzipSync(Buffer.from(text), { level: 9 }));
        writeFileSync(path.join(o.outDir, `${base}.extra.jsonl.gz`), gzipSync(Buffer.from(r.extra.map((l) => `${l}\n`).join('')), { level: 9 }));
        writeFileSync(path.join(o.outDir, `${base}.log`), `${r.log.map(monitorEcho).join('\n')}\n`);
        const report = await reportTrace(readTrace(fileLines(gz), gz), profile);
        process.stdout.write(
          `\n== ${base}: ${SCENARIOS[r.scenario]!.what}\n   exit ${r.status}, ${r.seconds.toFixed(1)} s in the guest, ${r.trace.length} trace lines, ${r.extra.length} side-log lines\n${formatTraceReport(report, 5)}\n`,
        );
        if (report.replay.mismatches > 0) status = 1;
        if (r.status !== 0 && status === 0) status = 2;
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  return status;
}

/** HMP echoes each typed character with cursor moves: keep the command as typed. */
export function monitorEcho(line: string): string {
  // eslint-disable-next-line no-control-regex
  const m = /^\(qemu\) (?:.*\x1b\[D)?([^\x1b]*)\x1b\[K$/.exec(line);
  return m ? `(qemu) ${m[1]}` : line;
}

function qemuVersion(): string {
  try {
    return /version (\S+)/.exec(execFileSync(QEMU, ['--version'], { encoding: 'utf8' }))?.[1] ?? '?';
  } catch {
    return '?';
  }
}

export const VMM_OUT_DIR = (): string => path.join(packageRoot(), 'test', 'ground-truth', 'vmm');
