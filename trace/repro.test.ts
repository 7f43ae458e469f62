import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROFILES } from '../model/profiles.js';
import { kvmUsable } from '../sut/kvm-driver.js';
import { reproC, reproSteps, reproText } from './repro.js';

const TRACE = 'test/ground-truth/kernel-handpicked.jsonl';
const profile = PROFILES['x86_64-nosmm']!;
const lines = (text: string): string[] => text.split('\n');

describe('repro', () => {
  it('text format lists kernel-style calls with the deciding rule', async () => {
    const { steps } = await reproSteps(
      lines(
        [
          '{"op":"set_user_memory_region","slot":0,"flags":0,"guest_phys_addr":"0x0","memory_size":"0x2000","userspace_addr":"0x7f0000000000"}',
          '{"op":"set_user_memory_region","slot":1,"flags":0,"guest_phys_addr":"0x1000","memory_size":"0x1000","userspace_addr":"0x7f0000000000"}',
        ].join('\n'),
      ),
      profile,
      'inline',
    );
    const text = reproText(steps);
    expect(text).toContain('1. KVM_SET_USER_MEMORY_REGION(slot=0x0');
    expect(text).toContain('-> EEXIST   [MS-OVL-01]');
    expect(text).toContain('-> 0   [MS-CRT-02]');
  });

  const usable = kvmUsable();
  const cc = spawnSync(process.env['CC'] ?? 'cc', ['--version']).status === 0;
  const why = !usable.ok ? usable.reason : !cc ? 'no C compiler' : '';
  describe.skipIf(why !== '')(`C reproducers against /dev/kvm${why === '' ? '' : ` (skipped: ${why})`}`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'repro-'));
    const build = async (trace: string, name: string): Promise<string> => {
      const { steps } = await reproSteps(lines(trace), profile, name);
      const src = join(dir, `${name}.c`);
      writeFileSync(src, reproC(steps, name));
      const bin = join(dir, name);
      execFileSync(process.env['CC'] ?? 'cc', ['-O1', '-Wall', '-Werror', '-o', bin, src]);
      return bin;
    };

    it('the reproducer of a kernel-recorded trace passes', async () => {
      const bin = await build(readFileSync(TRACE, 'utf8'), 'clean');
      const r = spawnSync(bin, { encoding: 'utf8' });
      expect(r.stdout).toMatch(/^\d+ steps, all as expected$/m);
      expect(r.status).toBe(0);
    });

    it('the reproducer of a tampered trace fails at the tampered step', async () => {
      const text = readFileSync(TRACE, 'utf8').split('\n');
      const at = text.findIndex((l) => l.includes('"expect":{"errno":"EEXIST"}'));
      expect(at).toBeGreaterThan(0);
      text[at] = text[at]!.replace('"expect":{"errno":"EEXIST"}', '"expect":{"ret":0}');
      const bin = await build(text.join('\n'), 'tampered');
      const r = spawnSync(bin, { encoding: 'utf8' });
      expect(r.status).toBe(1);
      expect(r.stdout).toContain(`(trace line ${at + 1}) diverged`);
      expect(r.stdout).toContain('returned EEXIST, expected 0');
    });
  });
});
