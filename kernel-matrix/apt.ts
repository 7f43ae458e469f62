/**
 * A private apt for the kernel packages: a sources list and a state folder that the project
 * writes in its own cache, so that suites the host does not use (bullseye, trixie-backports)
 * can be searched and downloaded from without touching the system's apt configuration:
 *
 *   apt-get -o Dir::Etc::sourcelist=FILE -o Dir::Etc::sourceparts=- -o Dir::State::Lists=DIR
 *           -o Dir::Cache=DIR update
 *   apt-get <the same options> download PACKAGE
 *
 * Where the Debian archive and the security archive are comes from the host's own apt sources
 * (`apt-get indextargets`: the repository labelled Debian, and the one labelled
 * Debian-Security), so the mirror the host uses is the one the matrix uses.
 *
 * Layout, under `<memslot-oracle cache>/kernel-matrix/apt/<suite>+<suite>.../`:
 *   sources.list    one `deb` line per suite (main)
 *   lists/          Dir::State::Lists
 *   cache/          Dir::Cache (its own pkgcache.bin, so the system's is never rewritten)
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { AptSuite } from './kernels.js';
import { SetupError } from './tools.js';

const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

function run(file: string, args: readonly string[], cwd?: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { maxBuffer: 64 << 20, ...(cwd !== undefined ? { cwd } : {}) }, (err, stdout, stderr) => {
      if (err) {
        const e = err as Error & { stderr?: string };
        e.stderr = String(stderr);
        reject(e);
      } else resolve({ stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** The Debian archive and security archive roots the host's apt sources use. */
export async function hostDebianRoots(): Promise<Record<AptSuite['archive'], string>> {
  const out = (await run('apt-get', ['indextargets', '--format', '$(REPO_URI) $(LABEL)', 'Identifier: Packages']).catch(() => ({ stdout: '' }))).stdout;
  let archive: string | undefined;
  let security: string | undefined;
  for (const line of out.split('\n')) {
    const [uri, label] = line.trim().split(/\s+/);
    if (uri === undefined || label === undefined) continue;
    if (label === 'Debian' && archive === undefined) archive = uri;
    if (label === 'Debian-Security' && security === undefined) security = uri;
  }
  archive = process.env['MEMSLOT_ORACLE_DEBIAN_ARCHIVE'] ?? archive;
  security = process.env['MEMSLOT_ORACLE_DEBIAN_SECURITY'] ?? security;
  if (archive === undefined || security === undefined)
    throw new SetupError(
      `the host's apt sources name no ${archive === undefined ? 'Debian archive' : 'Debian security archive'} ` +
        `(apt-get indextargets shows no repository labelled ${archive === undefined ? 'Debian' : 'Debian-Security'}). ` +
        `Run apt-get update, or set MEMSLOT_ORACLE_DEBIAN_ARCHIVE and MEMSLOT_ORACLE_DEBIAN_SECURITY to the archives' URIs.`,
    );
  return { archive, security };
}

export interface PrivateApt {
  readonly dir: string;
  /** The -o options that point apt-get at the private sources list and state. */
  readonly options: readonly string[];
}

/** The private apt for these suites, its lists downloaded (once; again with `refresh`). */
export async function privateApt(root: string, suites: readonly AptSuite[], opts: { refresh?: boolean; log?: (s: string) => void } = {}): Promise<PrivateApt> {
  const dir = path.join(root, suites.map((s) => s.suite).join('+'));
  const lists = path.join(dir, 'lists');
  const cache = path.join(dir, 'cache');
  const sources = path.join(dir, 'sources.list');
  mkdirSync(path.join(lists, 'partial'), { recursive: true });
  mkdirSync(path.join(cache, 'archives', 'partial'), { recursive: true });
  const options = ['-o', `Dir::Etc::sourcelist=${sources}`, '-o', 'Dir::Etc::sourceparts=-', '-o', `Dir::State::Lists=${lists}`, '-o', `Dir::Cache=${cache}`];
  const haveLists = readdirSync(lists).some((f) => f.endsWith('_Packages') || /_Packages\.\w+$/.test(f));
  if (opts.refresh || !haveLists || !existsSync(sources)) await updateApt(dir, sources, options, suites, opts.log);
  return { dir, options };
}

/** Writes the sources list and runs `apt-get update` with the private options. */
export async function updateApt(
  dir: string,
  sources: string,
  options: readonly string[],
  suites: readonly AptSuite[],
  log?: (s: string) => void,
): Promise<void> {
  const roots = await hostDebianRoots();
  writeFileSync(
    sources,
    `# written by memslot-oracle kernel-matrix (kernel-matrix/apt.ts); the system's apt configuration is not used\n` +
      suites.map((s) => `deb [signed-by=${KEYRING}] ${roots[s.archive]} ${s.suite} main\n`).join(''),
  );
  log?.(`apt-get update for ${suites.map((s) => s.suite).join(', ')} (private lists in ${dir})`);
  try {
    await run('apt-get', [...options, 'update']);
  } catch (e) {
    const err = String((e as { stderr?: string }).stderr ?? e);
    throw new SetupError(`apt-get update of the private lists (${sources}) failed: ${err.trim().split('\n').slice(-5).join(' | ')}`);
  }
}

/** Downloads a package with the private apt into `cwd`; one `apt-get update` and retry when apt does not know it. */
export async function aptDownload(apt: PrivateApt, suites: readonly AptSuite[], pkg: string, cwd: string, log?: (s: string) => void): Promise<void> {
  const unknown = (err: string): boolean => /Unable to locate package|has no installation candidate|Couldn't find any package|Can't select/i.test(err);
  for (let attempt = 0; ; attempt++) {
    try {
      await run('apt-get', [...apt.options, 'download', pkg], cwd);
      return;
    } catch (e) {
      const err = String((e as { stderr?: string }).stderr ?? e);
      if (unknown(err) && attempt === 0) {
        await updateApt(apt.dir, path.join(apt.dir, 'sources.list'), apt.options, suites, log);
        continue;
      }
      if (unknown(err))
        throw new SetupError(
          `apt does not know the package ${pkg} in ${suites.map((s) => s.suite).join(', ')}: Debian no longer ships it. ` +
            `Find the current name with: apt-cache ${apt.options.join(' ')} search --names-only '^linux-image-' ` +
            `and change its line in kernel-matrix/kernels.ts.`,
        );
      throw new SetupError(`apt-get download ${pkg} failed: ${err.trim().split('\n').slice(-5).join(' | ')}`);
    }
  }
}
