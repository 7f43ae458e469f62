/**
 * Fetches a Debian kernel image package and keeps what the guest needs: the kernel image and
 * the modules for /dev/kvm (kvm-amd and its dependencies) and for the virtio console port,
 * uncompressed, in dependency order.
 *
 * Cache layout, under `<memslot-oracle cache>/kernel-matrix/`:
 *   debs/<package>_<version>_amd64.deb            as `apt-get download` names it
 *   kernels/<package>_<version>/vmlinuz
 *   kernels/<package>_<version>/config
 *   kernels/<package>_<version>/modules/<name>.ko  uncompressed
 *   kernels/<package>_<version>/meta.json          package, version, release, module load order
 * A prepared kernel is reused (no network) until `refresh` is asked for. Every folder is made
 * under a temporary name and renamed into place, so concurrent runs never see half a kernel.
 */
import { execFile } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { cacheDir } from '../sut/kvm-driver.js';
import type { KernelEntry } from './kernels.js';
import { SetupError, decompressorFor, requireTools } from './tools.js';

/** The modules the guest loads, by module name; their dependencies are found with modinfo. */
export const ROOT_MODULES: readonly string[] = ['virtio_pci', 'virtio_console', 'kvm_amd'];
/** The module that takes the `npt` parameter. */
export const KVM_VENDOR_MODULE = 'kvm_amd';

export interface ModuleFile {
  /** Module name with `_` (as the kernel spells it: kvm_amd). */
  readonly name: string;
  /** File name in modules/ (kvm-amd.ko). */
  readonly file: string;
}

export interface PreparedKernel {
  readonly entry: KernelEntry;
  readonly pkg: string;
  readonly version: string;
  /** `uname -r` of the kernel, from the package's /boot/vmlinuz-<release>. */
  readonly release: string;
  readonly dir: string;
  readonly vmlinuz: string;
  /** In load order: every module after its dependencies. */
  readonly modules: readonly ModuleFile[];
}

interface Meta {
  readonly pkg: string;
  readonly version: string;
  readonly release: string;
  readonly modules: readonly ModuleFile[];
}

export function matrixCacheDir(): string {
  return path.join(cacheDir(), 'kernel-matrix');
}

export const normalizeModuleName = (n: string): string => n.replace(/-/g, '_');

function run(
  file: string,
  args: readonly string[],
  opts: { cwd?: string; maxBuffer?: number } = {},
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { maxBuffer: opts.maxBuffer ?? 64 << 20, ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}) },
      (err, stdout, stderr) => {
        if (err) {
          const e = err as Error & { stderr?: string; stdout?: string };
          e.stderr = String(stderr);
          e.stdout = String(stdout);
          reject(e);
        } else resolve({ stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

function readMeta(dir: string): Meta | null {
  try {
    const m = JSON.parse(readFileSync(path.join(dir, 'meta.json'), 'utf8')) as Meta;
    if (typeof m.release !== 'string' || !Array.isArray(m.modules)) return null;
    if (!existsSync(path.join(dir, 'vmlinuz'))) return null;
    if (!m.modules.every((x) => existsSync(path.join(dir, 'modules', x.file)))) return null;
    return m;
  } catch {
    return null;
  }
}

function prepared(entry: KernelEntry, dir: string, m: Meta): PreparedKernel {
  return {
    entry,
    pkg: m.pkg,
    version: m.version,
    release: m.release,
    dir,
    vmlinuz: path.join(dir, 'vmlinuz'),
    modules: m.modules,
  };
}

/** A prepared kernel already in the cache for this package, newest first, or null. */
export function cachedKernel(entry: KernelEntry): PreparedKernel | null {
  const root = path.join(matrixCacheDir(), 'kernels');
  if (!existsSync(root)) return null;
  const dirs = readdirSync(root)
    .filter((d) => d.startsWith(`${entry.pkg}_`) && !d.includes('.tmp-'))
    .map((d) => path.join(root, d))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  for (const dir of dirs) {
    const m = readMeta(dir);
    if (m !== null) return prepared(entry, dir, m);
  }
  return null;
}

/** The .deb of the package in debs/, downloading it with apt-get if there is none. */
async function fetchDeb(pkg: string, refresh: boolean, log: (s: string) => void): Promise<string> {
  const debs = path.join(matrixCacheDir(), 'debs');
  mkdirSync(debs, { recursive: true });
  const have = readdirSync(debs).filter((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (refresh) for (const f of have) rmSync(path.join(debs, f), { force: true });
  else if (have.length > 0) return path.join(debs, have.sort().at(-1)!);
  log(`downloading ${pkg} (apt-get download)`);
  const tmp = mkdtempSync(path.join(debs, '.tmp-'));
  try {
    try {
      await run('apt-get', ['download', pkg], { cwd: tmp });
    } catch (e) {
      const err = String((e as { stderr?: string }).stderr ?? e);
      if (/Unable to locate package|has no installation candidate|Couldn't find any package/i.test(err)) {
        throw new SetupError(
          `apt does not know the package ${pkg}. Run: apt-get update\n` +
            `If it is still not found, Debian no longer ships it: find the current name with ` +
            `"apt-cache depends linux-image-amd64" (6.1) or "apt-cache depends linux-image-6.12-amd64" (6.12) ` +
            `and change its line in kernel-matrix/kernels.ts.`,
        );
      }
      throw new SetupError(`apt-get download ${pkg} failed: ${err.trim().split('\n').slice(-5).join(' | ')}`);
    }
    const got = readdirSync(tmp).filter((f) => f.endsWith('.deb'));
    if (got.length !== 1) throw new SetupError(`apt-get download ${pkg} left ${got.length} .deb files in ${tmp}`);
    const dest = path.join(debs, got[0]!);
    renameSync(path.join(tmp, got[0]!), dest);
    return dest;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Every module file under a folder, by normalized module name. */
function indexModules(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else {
        const m = /^(.*)\.ko(\.xz|\.zst|\.gz)?$/.exec(e.name);
        if (m) out.set(normalizeModuleName(m[1]!), p);
      }
    }
  };
  walk(root);
  return out;
}

/**
 * The load order of `roots` and their dependencies: each module after what it depends on.
 * `depends(name)` gives a module's direct dependencies; built-in modules are skipped.
 */
export async function loadOrder(
  roots: readonly string[],
  isBuiltin: (name: string) => boolean,
  depends: (name: string) => Promise<readonly string[]>,
): Promise<string[]> {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = async (name: string, chain: readonly string[]): Promise<void> => {
    const n = normalizeModuleName(name);
    if (isBuiltin(n) || state.get(n) === 'done') return;
    if (state.get(n) === 'visiting') throw new SetupError(`module dependency cycle: ${[...chain, n].join(' -> ')}`);
    state.set(n, 'visiting');
    for (const d of await depends(n)) await visit(d, [...chain, n]);
    state.set(n, 'done');
    order.push(n);
  };
  for (const r of roots) await visit(r, []);
  return order;
}

/** Unpacks the package and keeps the kernel and the modules the guest needs. */
async function extract(entry: KernelEntry, deb: string, log: (s: string) => void): Promise<PreparedKernel> {
  const version = (await run('dpkg-deb', ['-f', deb, 'Version'])).stdout.trim();
  const kernels = path.join(matrixCacheDir(), 'kernels');
  mkdirSync(kernels, { recursive: true });
  const work = mkdtempSync(path.join(kernels, `${entry.pkg}_${version}.tmp-`));
  const unpacked = path.join(work, 'unpacked');
  const out = path.join(work, 'kernel');
  try {
    log(`unpacking ${path.basename(deb)} (dpkg-deb -x)`);
    await run('dpkg-deb', ['-x', deb, unpacked]);
    const boot = path.join(unpacked, 'boot');
    const vmlinuz = existsSync(boot) ? readdirSync(boot).find((f) => f.startsWith('vmlinuz-')) : undefined;
    if (vmlinuz === undefined)
      throw new SetupError(`${deb} has no /boot/vmlinuz-*: is ${entry.pkg} a kernel image package?`);
    const release = vmlinuz.slice('vmlinuz-'.length);
    const modRoot = [
      path.join(unpacked, 'lib', 'modules', release),
      path.join(unpacked, 'usr', 'lib', 'modules', release),
    ].find((d) => existsSync(d));
    if (modRoot === undefined) throw new SetupError(`${deb} has no lib/modules/${release}`);
    const files = indexModules(modRoot);
    const builtinFile = path.join(modRoot, 'modules.builtin');
    const builtin = new Set(
      existsSync(builtinFile)
        ? readFileSync(builtinFile, 'utf8')
            .split('\n')
            .filter((l) => l.trim() !== '')
            .map((l) => normalizeModuleName(path.basename(l).replace(/\.ko.*$/, '')))
        : [],
    );
    const order = await loadOrder(
      ROOT_MODULES,
      (n) => builtin.has(n) && !files.has(n),
      async (n) => {
        const f = files.get(n);
        if (f === undefined)
          throw new SetupError(`module ${n} is neither built into ${release} nor shipped in ${entry.pkg}`);
        const dep = (await run('modinfo', ['-F', 'depends', f])).stdout.trim();
        return dep === ''
          ? []
          : dep
              .split(',')
              .map((s) => s.trim())
              .filter((s) => s !== '');
      },
    );
    requireTools(order.map((n) => decompressorFor(files.get(n)!)?.cmd).filter((c) => c !== undefined));
    mkdirSync(path.join(out, 'modules'), { recursive: true });
    const modules: ModuleFile[] = [];
    for (const n of order) {
      const src = files.get(n)!;
      const file = path.basename(src).replace(/\.ko\.(xz|zst|gz)$/, '.ko');
      const dest = path.join(out, 'modules', file);
      const dec = decompressorFor(src);
      if (dec === null) copyFileSync(src, dest);
      else writeFileSync(dest, await runBuffer(dec.cmd, ['-dc', src]));
      modules.push({ name: n, file });
    }
    copyFileSync(path.join(boot, vmlinuz), path.join(out, 'vmlinuz'));
    const config = path.join(boot, `config-${release}`);
    if (existsSync(config)) copyFileSync(config, path.join(out, 'config'));
    const meta: Meta = { pkg: entry.pkg, version, release, modules };
    writeFileSync(path.join(out, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
    const final = path.join(kernels, `${entry.pkg}_${version}`);
    rmSync(final, { recursive: true, force: true });
    renameSync(out, final);
    log(
      `kernel ${release} (${entry.pkg} ${version}) ready; modules in load order: ${modules.map((m) => m.name).join(' ')}`,
    );
    return prepared(entry, final, meta);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function runBuffer(file: string, args: readonly string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { encoding: 'buffer', maxBuffer: 512 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new SetupError(`${file} ${args.join(' ')} failed: ${stderr.toString().trim()}`));
      else resolve(stdout);
    });
  });
}

/**
 * The kernel of a table entry, from the cache or fetched and unpacked now. Checks the host
 * tools first (SetupError with the install command when one is missing).
 */
export async function prepareKernel(
  entry: KernelEntry,
  opts: { refresh?: boolean; log?: (s: string) => void } = {},
): Promise<PreparedKernel> {
  const log = opts.log ?? ((): void => {});
  requireTools();
  if (!opts.refresh) {
    const c = cachedKernel(entry);
    if (c !== null) return c;
  }
  const deb = await fetchDeb(entry.pkg, opts.refresh === true, log);
  return extract(entry, deb, log);
}
