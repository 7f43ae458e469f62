/** The initramfs writer: cpio newc archives, read back by our reader and by cpio(1). */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cpioNewc, readCpioNewc } from './cpio.js';

describe('cpio newc writer', () => {
  const entries = [
    { kind: 'dir', path: 'bin' },
    { kind: 'file', path: 'bin/busybox', data: Buffer.from('#!x\n'), mode: 0o755 },
    { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
    { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    { kind: 'file', path: 'odd-length', data: Buffer.from('abcde') },
  ] as const;

  it('round-trips paths, modes, data and device numbers', () => {
    const back = readCpioNewc(cpioNewc(entries));
    expect(back.map((e) => e.path)).toEqual(['bin', 'bin/busybox', 'bin/sh', 'dev/console', 'odd-length']);
    expect(back[0]!.mode).toBe(0o040755);
    expect(back[1]!.mode).toBe(0o100755);
    expect(back[1]!.data.toString()).toBe('#!x\n');
    expect(back[2]!.mode).toBe(0o120777);
    expect(back[2]!.data.toString()).toBe('busybox');
    expect(back[3]!.mode).toBe(0o020600);
    expect([back[3]!.rmajor, back[3]!.rminor]).toEqual([5, 1]);
    expect(back[4]!.data.toString()).toBe('abcde');
  });

  it('is reproducible and 4-byte aligned', () => {
    const a = cpioNewc(entries);
    expect(a.equals(cpioNewc(entries))).toBe(true);
    expect(a.length % 4).toBe(0);
  });

  it('refuses paths that climb out', () => {
    expect(() => cpioNewc([{ kind: 'dir', path: '../x' }])).toThrow(/bad cpio path/);
  });

  const cpio = spawnSync('cpio', ['--version']);
  it.skipIf(cpio.error !== undefined)('is read by cpio(1)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cpio-test-'));
    try {
      const file = path.join(dir, 'a.cpio');
      writeFileSync(file, cpioNewc(entries));
      const r = spawnSync('cpio', ['-t', '-F', file], { encoding: 'utf8' });
      expect(r.stdout.trim().split('\n')).toEqual(['bin', 'bin/busybox', 'bin/sh', 'dev/console', 'odd-length']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
