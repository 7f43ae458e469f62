/**
 * The package is publish-ready: `npm pack` gives a tarball that installs into an empty folder
 * and whose `memslot-oracle` command and library work there.
 *
 * The install is offline and uses nothing the network gave beyond what `npm ci` fetched: the
 * app gets a lockfile whose runtime entries are this project's own (same versions, `resolved`
 * and `integrity`), so `npm ci --offline` takes their tarballs from the cache by integrity.
 * A plain `npm install --offline` would need each dependency's registry metadata, which `npm ci`
 * never downloads: it failed with ENOTCACHED on a cold cache while a warm one hid it.
 */
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

interface LockEntry {
  readonly dev?: boolean;
  readonly [field: string]: unknown;
}

/** A lockfile for an app that depends on the tarball alone, pinned to this project's runtime dependencies. */
function appLockfile(tarball: string): { manifest: object; lock: object } {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
  const projectLock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as { packages: Record<string, LockEntry> };
  const spec = `file:${tarball}`;
  const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
  const packages: Record<string, unknown> = {
    '': { name: 'app', version: '1.0.0', dependencies: { 'memslot-oracle': spec } },
    'node_modules/memslot-oracle': {
      version: pkg.version,
      resolved: spec,
      integrity,
      license: pkg.license,
      dependencies: pkg.dependencies,
      bin: pkg.bin,
      engines: pkg.engines,
    },
  };
  for (const [path, entry] of Object.entries(projectLock.packages)) {
    if (path !== '' && entry.dev !== true) packages[path] = entry;
  }
  const manifest = { name: 'app', version: '1.0.0', type: 'module', private: true, dependencies: { 'memslot-oracle': spec } };
  return { manifest, lock: { name: 'app', version: '1.0.0', lockfileVersion: 3, requires: true, packages } };
}

describe('npm pack', () => {
  it('ships no test code: no test, fixture (planted bugs, concurrency scenarios, builders) or test/ file, and nothing shipped imports one', () => {
    // dist/ is built by `pretest` from tsconfig.build.json, which leaves out *.test.ts,
    // *.fixture.ts and test/; a shipped module importing a fixture would pull it back in.
    const out = execFileSync(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: resolve('.'), encoding: 'utf8' });
    const files = (JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
    expect(files).toContain('dist/cli/main.js');
    expect(files.filter((f) => /\.(test|fixture)\.|^dist\/test\//.test(f))).toEqual([]);
    const js = files.filter((f) => f.endsWith('.js'));
    expect(js.filter((f) => /from ['"][^'"]*\.(test|fixture)\.js['"]/.test(readFileSync(f, 'utf8')))).toEqual([]);
  });

  it('the tarball installs offline into an empty folder and runs memslot-oracle check and the library API there', () => {
    const dir = mkdtempSync(join(tmpdir(), 'memslot-pack-'));
    // dist/ is built by `pretest`; --ignore-scripts keeps pack from building it again.
    execFileSync(npm, ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: resolve('.'), stdio: 'pipe' });
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
    expect(tarball).toBeDefined();
    const app = join(dir, 'app');
    mkdirSync(app);
    const { manifest, lock } = appLockfile(join(dir, tarball!));
    writeFileSync(join(app, 'package.json'), JSON.stringify(manifest));
    writeFileSync(join(app, 'package-lock.json'), JSON.stringify(lock));
    const install = spawnSync(npm, ['ci', '--offline', '--no-audit', '--no-fund'], { cwd: app, encoding: 'utf8' });
    expect(install.status, install.stderr).toBe(0);
    const check = spawnSync(join(app, 'node_modules', '.bin', 'memslot-oracle'), ['check', '--runs', '3', '--seed', '1'], { cwd: app, encoding: 'utf8' });
    expect(check.stdout).toContain('3 runs');
    expect(check.stdout).toContain('0 disagreements (seed 1)');
    expect(check.status).toBe(0);
    writeFileSync(
      join(app, 'use.mjs'),
      `import { createVm, setUserMemoryRegion, PROFILES, IMPLEMENTATIONS } from 'memslot-oracle';
const vm = createVm(PROFILES['x86_64-nosmm']);
const step = setUserMemoryRegion(vm, { slot: 0, flags: 0, guestPhysAddr: 0n, memorySize: 0x1000n, userspaceAddr: 0x7f0000000000n });
console.log(step.result.ok, step.result.rule, typeof IMPLEMENTATIONS.scalable);`,
    );
    const lib = spawnSync(process.execPath, ['use.mjs'], { cwd: app, encoding: 'utf8' });
    expect(lib.stdout.trim()).toBe('true MS-CRT-02 function');
  }, 120_000);
});
