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
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cacheDir } from '../sut/kvm-driver.js';
import { aptDownload, privateApt } from './apt.js';
import { debsOf, type KernelEntry } from './kernels.js';
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

function run(file: string, args: readonly string[], opts: { cwd?: string; maxBuffer?: number } = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { maxBuffer: opts.maxBuffer ?? 64 << 20, ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}) }, (err, stdout, stderr) => {
      if (err) {
        const e = err as Error & { stderr?: string; stdout?: string };
        e.stderr = String(stderr);
        e.stdout = String(stdout);
        reject(e);
      } else resolve({ stdout: String(stdout), stderr: String(stderr) });
    });
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

/** The .deb of a package in debs/, downloading it with the private apt if there is none. */
async function fetchDeb(entry: KernelEntry, pkg: string, refresh: boolean, log: (s: string) => void): Promise<string> {
  const debs = path.join(matrixCacheDir(), 'debs');
  mkdirSync(debs, { recursive: true });
  const have = readdirSync(debs).filter((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (refresh) for (const f of have) rmSync(path.join(debs, f), { force: true });
  else if (have.length > 0) return path.join(debs, have.sort().at(-1)!);
  const apt = await privateApt(path.join(matrixCacheDir(), 'apt'), entry.suites, { refresh, log });
  log(`downloading ${pkg} from ${entry.suites.map((s) => s.suite).join(', ')} (apt-get download)`);
  const tmp = mkdtempSync(path.join(debs, '.tmp-'));
  try {
    await aptDownload(apt, entry.suites, pkg, tmp, log);
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

/** Where an unpacked kernel package keeps its kernel: /boot/vmlinuz-REL, or (7.x) /usr/lib/modules/REL/vmlinuz. */
function findVmlinuz(unpacked: string): { vmlinuz: string; release: string } | null {
  const boot = path.join(unpacked, 'boot');
  const inBoot = existsSync(boot) ? readdirSync(boot).find((f) => f.startsWith('vmlinuz-')) : undefined;
  if (inBoot !== undefined) return { vmlinuz: path.join(boot, inBoot), release: inBoot.slice('vmlinuz-'.length) };
  for (const mods of [path.join(unpacked, 'usr', 'lib', 'modules'), path.join(unpacked, 'lib', 'modules')]) {
    if (!existsSync(mods)) continue;
    for (const rel of readdirSync(mods)) {
      const v = path.join(mods, rel, 'vmlinuz');
      if (existsSync(v)) return { vmlinuz: v, release: rel };
    }
  }
  return null;
}

/** Unpacks the packages and keeps the kernel and the modules the guest needs. */
async function extract(entry: KernelEntry, debs: readonly string[], log: (s: string) => void): Promise<PreparedKernel> {
  const version = (await run('dpkg-deb', ['-f', debs[0]!, 'Version'])).stdout.trim();
  const kernels = path.join(matrixCacheDir(), 'kernels');
  mkdirSync(kernels, { recursive: true });
  const work = mkdtempSync(path.join(kernels, `${entry.pkg}_${version}.tmp-`));
  const unpacked = path.join(work, 'unpacked');
  try {
    for (const deb of debs) {
      log(`unpacking ${path.basename(deb)} (dpkg-deb -x)`);
      await run('dpkg-deb', ['-x', deb, unpacked]);
    }
    const found = findVmlinuz(unpacked);
    if (found === null)
      throw new SetupError(
        `${debs.map((d) => path.basename(d)).join(' + ')} hold no /boot/vmlinuz-* nor /usr/lib/modules/*/vmlinuz: ` +
          `is ${entry.pkg} a kernel image package (from 7.x the kernel is in linux-binary-VER: list it in debs)?`,
      );
    const { vmlinuz, release } = found;
    const modRoot = [path.join(unpacked, 'lib', 'modules', release), path.join(unpacked, 'usr', 'lib', 'modules', release)].find(
      (d) => existsSync(d) && readdirSync(d).includes('kernel'),
    );
    if (modRoot === undefined) throw new SetupError(`${debs.join(' + ')} have no lib/modules/${release}/kernel (the modules: list their package in debs)`);
    const config = [path.join(unpacked, 'boot', `config-${release}`), path.join(modRoot, 'config')].find((f) => existsSync(f));
    return await keepKernel({
      entry,
      pkg: entry.pkg,
      version,
      release,
      vmlinuz,
      modRoot,
      config,
      work,
      final: path.join(kernels, `${entry.pkg}_${version}`),
      log,
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Keeps a kernel and the modules the guest needs (in dependency order, uncompressed) in
 * `final`: from an unpacked package or from a developer's own build.
 */
async function keepKernel(o: {
  entry: KernelEntry;
  pkg: string;
  version: string;
  release: string;
  vmlinuz: string;
  modRoot: string;
  config: string | undefined;
  work: string;
  final: string;
  log: (s: string) => void;
}): Promise<PreparedKernel> {
  const { entry, release, modRoot } = o;
  const out = path.join(o.work, 'kernel');
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
    // Without a modules.builtin (a bare module folder), a module that is not there is taken as
    // built in: /init checks /dev/kvm after loading what there is.
    (n) => !files.has(n) && (builtin.has(n) || !existsSync(builtinFile)),
    async (n) => {
      const f = files.get(n);
      if (f === undefined) throw new SetupError(`module ${n} is neither built into ${release} (modules.builtin) nor found under ${modRoot}`);
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
  copyFileSync(o.vmlinuz, path.join(out, 'vmlinuz'));
  if (o.config !== undefined) copyFileSync(o.config, path.join(out, 'config'));
  const meta: Meta = { pkg: o.pkg, version: o.version, release, modules };
  writeFileSync(path.join(out, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
  rmSync(o.final, { recursive: true, force: true });
  mkdirSync(path.dirname(o.final), { recursive: true });
  renameSync(out, o.final);
  o.log(
    `kernel ${release} (${o.pkg} ${o.version}) ready; modules in load order: ${modules.length === 0 ? '(none: all built in)' : modules.map((m) => m.name).join(' ')}`,
  );
  return prepared(entry, o.final, meta);
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
export async function prepareKernel(entry: KernelEntry, opts: { refresh?: boolean; log?: (s: string) => void } = {}): Promise<PreparedKernel> {
  const log = opts.log ?? ((): void => {});
  requireTools();
  if (!opts.refresh) {
    const c = cachedKernel(entry);
    if (c !== null) return c;
  }
  const debs: string[] = [];
  for (const pkg of debsOf(entry)) debs.push(await fetchDeb(entry, pkg, opts.refresh === true, log));
  return extract(entry, debs, log);
}

/** The version string of an x86 bzImage (its setup header's kernel_version), e.g. "6.18.0-rc1+ (user@host) #1 ...". */
export function bzImageVersion(file: string): string | null {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch {
    return null;
  }
  if (buf.length < 0x210 || buf.toString('latin1', 0x202, 0x206) !== 'HdrS') return null;
  const off = buf.readUInt16LE(0x20e) + 0x200;
  if (off >= buf.length) return null;
  const end = buf.indexOf(0, off);
  return buf.toString('latin1', off, end < 0 ? Math.min(buf.length, off + 256) : end);
}

/** The table entry a developer's own kernel gets (its name is `own-<release>`). */
export function ownKernelEntry(release: string): KernelEntry {
  return { name: `own-${release}`, pkg: '(own build)', suites: [], design: 'scalable', profile: '' };
}

/**
 * A developer's own kernel: `vmlinuz` (arch/x86/boot/bzImage, or an installed vmlinuz) and
 * `modules` (a build tree after `make modules`, a `make modules_install INSTALL_MOD_PATH=DIR`
 * folder, or /lib/modules/REL). The modules the guest needs are found the same way as in a
 * package (modinfo; modules.builtin, when present, says what is built in). Prepared anew on
 * every call, into `kernels/own-<release>-<hash>` (the hash of the kernel image and the path).
 */
export async function prepareOwnKernel(vmlinuz: string, modules: string, opts: { log?: (s: string) => void } = {}): Promise<PreparedKernel> {
  const log = opts.log ?? ((): void => {});
  requireTools();
  if (!existsSync(vmlinuz)) throw new SetupError(`--vmlinuz ${vmlinuz}: no such file`);
  if (!existsSync(modules) || !statSync(modules).isDirectory()) throw new SetupError(`--modules ${modules}: no such folder`);
  const version = bzImageVersion(vmlinuz);
  if (version === null) throw new SetupError(`--vmlinuz ${vmlinuz} is not an x86 bzImage (arch/x86/boot/bzImage)`);
  const release = version.split(' ')[0]!;
  let modRoot = path.resolve(modules);
  for (const sub of [path.join('lib', 'modules', release), path.join('usr', 'lib', 'modules', release)])
    if (existsSync(path.join(modRoot, sub))) modRoot = path.join(modRoot, sub);
  const hash = (await import('node:crypto')).createHash('sha256').update(readFileSync(vmlinuz)).update(modRoot).digest('hex').slice(0, 12);
  const kernels = path.join(matrixCacheDir(), 'kernels');
  mkdirSync(kernels, { recursive: true });
  const final = path.join(kernels, `own-${release}-${hash}`);
  const work = mkdtempSync(path.join(kernels, `own-${release}-${hash}.tmp-`));
  const config = [path.join(modRoot, '.config'), path.join(modRoot, 'config')].find((f) => existsSync(f));
  try {
    return await keepKernel({
      entry: ownKernelEntry(release),
      pkg: '(own build)',
      version,
      release,
      vmlinuz,
      modRoot,
      config,
      work,
      final,
      log,
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
