/**
 * The package is publish-ready: `npm pack` gives a tarball that installs into an empty folder
 * (from the npm cache, no network) and whose `memslot-oracle` command and library work there.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

describe('npm pack', () => {
  it('[MS-CRT-02] the tarball installs into an empty folder and runs memslot-oracle check and the library API there', () => {
    const dir = mkdtempSync(join(tmpdir(), 'memslot-pack-'));
    // dist/ is built by `pretest`; --ignore-scripts keeps pack from building it again.
    execFileSync(npm, ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: resolve('.'), stdio: 'pipe' });
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
    expect(tarball).toBeDefined();
    const app = join(dir, 'app');
    execFileSync('mkdir', [app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', type: 'module', private: true }));
    const install = spawnSync(npm, ['install', '--offline', '--no-audit', '--no-fund', join(dir, tarball!)], { cwd: app, encoding: 'utf8' });
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
