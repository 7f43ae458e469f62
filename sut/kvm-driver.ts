/**
 * The real-kernel SUT: `sut/kvm/kvm-sut.c`, compiled on first use.
 *
 * The C source ships with the package (`<package root>/sut/kvm/kvm-sut.c`). It is compiled with
 * `$CC` (default `cc`) into a cache folder, under a name holding the first 12 hex digits of the
 * source's sha256, so a changed source is recompiled and an unchanged one is reused. The
 * compiler writes to a temporary name that is then renamed into place, so two processes that
 * race both end up with a complete binary.
 *
 * Cache folder: `$MEMSLOT_ORACLE_CACHE`, else `$XDG_CACHE_HOME/memslot-oracle`, else
 * `~/.cache/memslot-oracle`.
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SutError, splitCommand } from './child.js';

const PACKAGE_NAME = 'memslot-oracle';
const SOURCE_IN_PACKAGE = path.join('sut', 'kvm', 'kvm-sut.c');
const CFLAGS = ['-O2', '-Wall', '-Wextra', '-std=gnu11'];
const COMPILE_TIMEOUT_MS = 120_000;
const STDERR_TAIL_CHARS = 1500;

/** The package root: the nearest folder above this module with a package.json named memslot-oracle. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        const name: unknown = (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name;
        if (name === PACKAGE_NAME) return dir;
      } catch {
        // Not a readable package.json; keep walking up.
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new SutError(`cannot find the ${PACKAGE_NAME} package root above ${fileURLToPath(import.meta.url)}; reinstall the package`, 'setup');
    }
    dir = parent;
  }
}

/** The path of the driver's C source. */
export function kvmDriverSource(): string {
  return path.join(packageRoot(), SOURCE_IN_PACKAGE);
}

/** The folder compiled drivers are cached in. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['MEMSLOT_ORACLE_CACHE']) return env['MEMSLOT_ORACLE_CACHE'];
  if (env['XDG_CACHE_HOME']) return path.join(env['XDG_CACHE_HOME'], PACKAGE_NAME);
  return path.join(homedir(), '.cache', PACKAGE_NAME);
}

/** The C compiler command: `$CC` split like a shell would (e.g. "ccache gcc"), default `cc`. */
function compilerCommand(env: NodeJS.ProcessEnv = process.env): string[] {
  const cc = env['CC'] !== undefined && env['CC'].trim() !== '' ? env['CC'] : 'cc';
  const cmd = splitCommand(cc);
  return cmd.length > 0 ? cmd : ['cc'];
}

/** Why /dev/kvm cannot be used, or null if it can be opened read-write. */
function devKvmProblem(): string | null {
  let fd: number;
  try {
    fd = openSync('/dev/kvm', 'r+');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      return '/dev/kvm does not exist; load the kvm module (modprobe kvm_intel or kvm_amd) or run on a host with KVM';
    }
    if (code === 'EACCES' || code === 'EPERM') {
      return '/dev/kvm: permission denied; run as root or add your user to the kvm group';
    }
    return `/dev/kvm cannot be opened (${code ?? String(e)}); check that KVM is available on this host`;
  }
  closeSync(fd);
  return null;
}

/** Why the C compiler cannot be run, or null if `$CC --version` runs. */
function compilerProblem(): string | null {
  const [cc, ...args] = compilerCommand();
  const r = spawnSync(cc!, [...args, '--version'], { stdio: 'ignore', timeout: 10_000 });
  if (r.error) {
    return `no C compiler: "${cc}" ${(r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : `cannot run (${r.error.message})`}; install one (apt-get install gcc libc6-dev) or set CC`;
  }
  return null;
}

/**
 * Whether the real-kernel SUT can run here: /dev/kvm opens read-write and a C compiler runs.
 * Synchronous, for tests that skip with the reason.
 */
export function kvmUsable(): { ok: true } | { ok: false; reason: string } {
  const reason = devKvmProblem() ?? compilerProblem();
  return reason === null ? { ok: true } : { ok: false, reason };
}

export interface BuildOptions {
  /** Link statically (`-static`), e.g. to run the driver inside a minimal guest. */
  readonly static?: boolean;
}

const builds = new Map<string, Promise<string>>();

/** The contents of the files a C source includes with `#include "NAME"` (next to it), in order; unreadable ones are left to the compiler. */
function localIncludes(source: string, text: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (const m of text.toString('utf8').matchAll(/^[ \t]*#[ \t]*include[ \t]*"([^"]+)"/gm)) {
    try {
      out.push(readFileSync(path.join(path.dirname(source), m[1]!)));
    } catch {
      // The compile reports it.
    }
  }
  return out;
}

/** A C program or library of the package, compiled on first use into the cache. */
export interface CBuild {
  /** Its source, relative to the package root. */
  readonly source: string;
  /** The cached file's name before the source hash (`kvm-sut`). */
  readonly name: string;
  /** After the hash (`-static`, `.so`). */
  readonly suffix: string;
  /** Flags after CFLAGS (`-static`; `-shared -fPIC`). */
  readonly flags: readonly string[];
  /** Flags after the source (`-ldl`). */
  readonly libs: readonly string[];
  /** Said after a failed compile (`static: is libc6-dev installed?`). */
  readonly hint?: string;
}

/**
 * Compiles a C source of the package (if not cached yet) with \`$CC\`, under a name holding the
 * first 12 hex digits of the source's sha256, and resolves with the output's path. Errors are
 * SutError 'setup'.
 */
export function buildCached(b: CBuild): Promise<string> {
  const source = path.join(packageRoot(), b.source);
  let text: Buffer;
  try {
    text = readFileSync(source);
  } catch (e) {
    return Promise.reject(new SutError(`cannot read ${source} (${(e as NodeJS.ErrnoException).code ?? String(e)}); reinstall the package`, 'setup'));
  }
  // The files it #includes with quotes (kvm-sut.c: vcpu-write.inc.c) are part of the hash.
  const h = createHash('sha256').update(text);
  for (const inc of localIncludes(source, text)) h.update(inc);
  const hash = h.digest('hex').slice(0, 12);
  const cc = compilerCommand();
  const out = path.join(cacheDir(), `${b.name}-${hash}${b.suffix}`);
  const key = `${cc.join('\0')}\0${out}`;
  let build = builds.get(key);
  if (!build) {
    build = compile(cc, source, out, b);
    builds.set(key, build);
    build.catch(() => builds.delete(key));
  }
  return build;
}

/**
 * Compiles the driver (if not cached yet) and resolves with the executable's path. Does not
 * check /dev/kvm, so it can build a driver to run elsewhere. Errors are SutError 'setup'.
 */
export function buildKvmDriver(opts: BuildOptions = {}): Promise<string> {
  const isStatic = opts.static === true;
  return buildCached({
    source: SOURCE_IN_PACKAGE,
    name: 'kvm-sut',
    suffix: isStatic ? '-static' : '',
    flags: isStatic ? ['-static'] : [],
    libs: [],
    ...(isStatic ? { hint: 'static: is libc6-dev installed?' } : {}),
  });
}

/**
 * The path of a compiled, ready-to-run kvm-sut driver. Throws SutError 'setup' when /dev/kvm
 * is missing or not accessible, when there is no C compiler, or when compiling fails.
 */
export async function kvmDriverPath(): Promise<string> {
  const problem = devKvmProblem();
  if (problem !== null) throw new SutError(problem, 'setup');
  return buildKvmDriver();
}

function isBuilt(p: string, executable: boolean): boolean {
  try {
    const st = statSync(p);
    return st.isFile() && (!executable || (st.mode & 0o111) !== 0);
  } catch {
    return false;
  }
}

async function compile(cc: string[], source: string, out: string, b: CBuild): Promise<string> {
  if (isBuilt(out, !b.flags.includes('-shared'))) return out;
  const dir = path.dirname(out);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new SutError(
      `cannot create the cache folder ${dir} (${(e as NodeJS.ErrnoException).code ?? String(e)}); set MEMSLOT_ORACLE_CACHE to a writable folder`,
      'setup',
    );
  }
  const tmp = `${out}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const [file, ...ccArgs] = cc;
  const args = [...ccArgs, ...CFLAGS, ...b.flags, '-o', tmp, source, ...b.libs];
  try {
    await new Promise<void>((resolve, reject) => {
      execFile(file!, args, { timeout: COMPILE_TIMEOUT_MS, maxBuffer: 16 << 20 }, (err, _stdout, stderr) => {
        if (!err) {
          resolve();
          return;
        }
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'EACCES') {
          reject(
            new SutError(
              `no C compiler: "${file}" ${code === 'ENOENT' ? 'not found' : 'cannot be run'}; install one (apt-get install gcc libc6-dev) or set CC`,
              'setup',
            ),
          );
          return;
        }
        const tail = String(stderr).trim().slice(-STDERR_TAIL_CHARS).split('\n').join(' | ');
        const status = err.killed ? `was killed (${err.signal ?? 'timeout'})` : `failed (exit ${String(err.code)})`;
        reject(
          new SutError(
            `compiling ${source} with ${cc.join(' ')} ${status}${b.hint !== undefined ? ` (${b.hint})` : ''}; fix the compiler setup or set CC: ${tail}`,
            'setup',
          ),
        );
      });
    });
    renameSync(tmp, out);
  } finally {
    rmSync(tmp, { force: true });
  }
  return out;
}
