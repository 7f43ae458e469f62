/**
 * check --sut: the stateful suite over the protocol finds planted bugs in a SUT written in
 * another language (test/sut/memslots_sut.py) and shrinks them to a few steps; a correct SUT
 * passes. Each counterexample comes with a trace, a C reproducer and a report.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const python = spawnSync('python3', ['--version']).status === 0;
const CLI = 'dist/cli/main.js';
const SUT = 'python3 test/sut/memslots_sut.py';

/** Runs the CLI without blocking, so the concurrent tests really overlap. */
function check(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'check', ...args], { encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
    });
  });
}

describe.skipIf(!python)(`check --sut${python ? '' : ' (skipped: no python3 on PATH)'}`, { timeout: 120_000 }, () => {
  it.concurrent('a correct SUT passes', async () => {
    const r = await check(['--sut', SUT, '--seed', '11', '--runs', '8', '--max-steps', '100']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/8 runs, \d+ steps, 0 disagreements \(seed 11\)/);
    expect(r.status).toBe(0);
  });

  // limit-509 answers ENOSPC where the kernel creates the slot: any errno of Linux's uapi is a
  // conformance answer (a counterexample, exit 1), not a protocol error (exit 2).
  const bugs: [string, string, string][] = [
    ['overlap-partial', 'MS-OVL-01', 'EEXIST'],
    ['delete-missing-ok', 'MS-DEL-01', 'EINVAL'],
    ['limit-509', 'MS-CRT-02', 'ENOSPC'],
  ];
  for (const [bug, rule, errno] of bugs) {
    it.concurrent(`[${rule}] a SUT with the bug ${bug} is caught and shrunk to a few steps`, async () => {
      const out = mkdtempSync(join(tmpdir(), `cx-${bug}-`));
      const r = await check(['--sut', `${SUT} --bug ${bug}`, '--seed', '3', '--max-steps', '100', '--out', out]);
      expect(r.status, r.stderr).toBe(1);
      expect(r.stdout).toContain('DISAGREES');
      expect(r.stdout).toContain(`[${rule}]`);
      expect(r.stdout).toContain(errno);
      const steps = Number(/counterexample of (\d+) steps?/.exec(r.stdout)?.[1]);
      expect(steps).toBeGreaterThanOrEqual(1);
      expect(steps).toBeLessThanOrEqual(4);
      for (const f of ['counterexample.md', 'counterexample.jsonl', 'repro.c']) expect(existsSync(join(out, f))).toBe(true);
      expect(readFileSync(join(out, 'counterexample.md'), 'utf8')).toContain('seed: 3');
      // The trace carries the model's answers: it replays clean through the model, and the SUT fails it.
      const clean = spawnSync(process.execPath, [CLI, 'replay', join(out, 'counterexample.jsonl')], { encoding: 'utf8' });
      expect(clean.stdout).toMatch(/ 0 mismatches/);
      const again = spawnSync(process.execPath, [CLI, 'replay', join(out, 'counterexample.jsonl'), '--sut', `${SUT} --bug ${bug}`], { encoding: 'utf8' });
      expect(again.status).toBe(1);
    });
  }

  it.concurrent("the report's reproduce line replays the failing run alone, to the same counterexample", async () => {
    const out = mkdtempSync(join(tmpdir(), 'cx-reproduce-'));
    const first = await check(['--sut', `${SUT} --bug overlap-partial`, '--seed', '3', '--max-steps', '100', '--out', out]);
    expect(first.status, first.stderr).toBe(1);
    const line = /reproduce: `([^`]*)`/.exec(readFileSync(join(out, 'counterexample.md'), 'utf8'))?.[1] ?? '';
    const arg = (name: string): string =>
      new RegExp(`--${name} (?:"([^"]*)"|(\\S+))`)
        .exec(line)
        ?.slice(1)
        .find((x) => x !== undefined) ?? '';
    expect(arg('path')).not.toBe('');
    expect(arg('replay-path')).not.toBe('');
    const again = await check([
      '--sut',
      arg('sut'),
      '--seed',
      arg('seed'),
      '--path',
      arg('path'),
      '--replay-path',
      arg('replay-path'),
      '--max-steps',
      arg('max-steps'),
      '--out',
      mkdtempSync(join(tmpdir(), 'cx-again-')),
    ]);
    expect(again.status, again.stderr).toBe(1);
    // One run, the one the path names (without --path the seed's runs start again from the first).
    const verdict = (s: string): string => /disagreement \(seed 3\): counterexample of \d+ steps?/.exec(s)?.[0] ?? 'none';
    expect(again.stdout).toMatch(/: 1 run, \d+ steps, 1 disagreement \(seed 3\)/);
    expect(verdict(again.stdout)).toBe(verdict(first.stdout));
  });

  it.concurrent('[MS-RES-01] a SUT short of memory (ENOMEM for large creates and moves) passes, and the resource branch is counted', async () => {
    const r = await check(['--sut', `${SUT} --nomem-above 64`, '--seed', '5', '--runs', '12', '--max-steps', '100']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/12 runs, \d+ steps, 0 disagreements \(seed 5\); [1-9]\d* answered ENOMEM where the model accepts/);
    expect(r.status).toBe(0);
  });

  it.concurrent('a SUT that crashes is an error (exit 2), not a counterexample', async () => {
    const r = await check(['--sut', `${SUT} --bug crash-after 40`, '--seed', '3']);
    expect(r.status).toBe(2);
    expect(r.stdout).not.toContain('DISAGREES');
    expect(r.stderr).toMatch(/SUT error/);
  });
});
