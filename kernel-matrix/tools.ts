/**
 * The host tools the kernel matrix needs, and the one error every setup problem becomes: a
 * message that says what is missing and the exact command that installs it (exit status 2).
 * Nothing is ever installed here.
 */
import { accessSync, closeSync, constants, openSync, readSync, statSync } from 'node:fs';

/** A setup problem: printed as one message, exit status 2. */
export class SetupError extends Error {
  override readonly name = 'SetupError';
}

interface Tool {
  /** What is looked for: a command on PATH, or an absolute file. */
  readonly what: string;
  /** The Debian package that provides it. */
  readonly pkg: string;
  /** Extra condition on the file found (e.g. "statically linked"). */
  readonly check?: (path: string) => string | null;
  readonly why: string;
}

/** Whether an ELF executable has no program interpreter (PT_INTERP), i.e. is statically linked. */
export function isStaticElf(file: string): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return false;
  }
  try {
    const head = Buffer.alloc(64);
    if (readSync(fd, head, 0, 64, 0) < 64 || head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2) return false;
    const phoff = Number(head.readBigUInt64LE(32));
    const phentsize = head.readUInt16LE(54);
    const phnum = head.readUInt16LE(56);
    const ph = Buffer.alloc(phentsize * phnum);
    readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) if (ph.readUInt32LE(i * phentsize) === 3 /* PT_INTERP */) return false;
    return true;
  } finally {
    closeSync(fd);
  }
}

/** The absolute path of a command on PATH, or null. */
export function which(cmd: string): string | null {
  const usable = (p: string, mode: number): boolean => {
    try {
      accessSync(p, mode);
      return statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (cmd.startsWith('/')) return usable(cmd, constants.R_OK) ? cmd : null;
  for (const dir of (process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin').split(':')) {
    if (dir !== '' && usable(`${dir}/${cmd}`, constants.X_OK)) return `${dir}/${cmd}`;
  }
  return null;
}

export const BUSYBOX = '/bin/busybox';
export const LIBC_STATIC = '/usr/lib/x86_64-linux-gnu/libc.a';

const BASE_TOOLS: readonly Tool[] = [
  { what: 'qemu-system-x86_64', pkg: 'qemu-system-x86', why: 'boots the guest kernel' },
  {
    what: BUSYBOX,
    pkg: 'busybox-static',
    why: "the guest's /init shell and insmod",
    check: (p) => (isStaticElf(p) ? null : `${p} is not statically linked (the busybox package is installed, busybox-static is needed)`),
  },
  { what: 'modinfo', pkg: 'kmod', why: 'finds module dependencies in the unpacked kernel package' },
  { what: 'setpriv', pkg: 'util-linux', why: "ties QEMU's life to qemu-sut's (--pdeathsig)" },
  { what: 'cc', pkg: 'gcc', why: 'compiles the kvm-sut driver' },
  { what: LIBC_STATIC, pkg: 'libc6-dev', why: 'links the kvm-sut driver statically' },
  { what: 'apt-get', pkg: 'apt', why: 'downloads the kernel package' },
  { what: 'dpkg-deb', pkg: 'dpkg', why: 'unpacks the kernel package' },
];

const DECOMPRESSORS: Readonly<Record<string, Tool>> = {
  '.xz': { what: 'xz', pkg: 'xz-utils', why: 'decompresses .ko.xz modules' },
  '.zst': { what: 'zstd', pkg: 'zstd', why: 'decompresses .ko.zst modules' },
  '.gz': { what: 'gzip', pkg: 'gzip', why: 'decompresses .ko.gz modules' },
};

/** The decompressor command for a module file name, or null for an uncompressed .ko. */
export function decompressorFor(file: string): { cmd: string; pkg: string } | null {
  for (const [ext, t] of Object.entries(DECOMPRESSORS)) if (file.endsWith(`.ko${ext}`)) return { cmd: t.what, pkg: t.pkg };
  return null;
}

function problem(t: Tool): string | null {
  const p = which(t.what);
  if (p === null) return `${t.what} not found (${t.why})`;
  return t.check?.(p) ?? null;
}

export function installCommand(pkgs: readonly string[]): string {
  return `apt-get update && apt-get install -y ${[...new Set(pkgs)].join(' ')}`;
}

/**
 * Throws SetupError listing every missing tool and the command that installs them all.
 * `extra` are decompressor commands (xz, zstd) needed for this kernel's modules.
 */
export function requireTools(extra: readonly string[] = []): void {
  const tools = [...BASE_TOOLS, ...Object.values(DECOMPRESSORS).filter((t) => extra.includes(t.what))];
  const missing = tools.map((t) => ({ t, why: problem(t) })).filter((m) => m.why !== null);
  if (missing.length === 0) return;
  throw new SetupError(
    `missing tools:\n${missing.map((m) => `  - ${m.why!}`).join('\n')}\ninstall them with:\n  ${installCommand(missing.map((m) => m.t.pkg))}`,
  );
}
