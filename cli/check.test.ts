/**
 * `memslot-oracle check` (cli/check.ts): options, exit status, verdict line, and the
 * deterministic split of runs over shards and workers. Worker threads themselves need the
 * built JS (dist/) and are exercised by the CLI, not here.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { checkCli, deriveSeed, parseShard, slicesFor } from './check.js';
import { UsageError } from './usage.js';

afterEach(() => {
  vi.restoreAllMocks();
});

function captureStdout(): () => string {
  const chunks: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  });
  return () => chunks.join('');
}

describe('memslot-oracle check', () => {
  it('a short passing check exits 0 with the coverage table and a one-line verdict', async () => {
    const out = captureStdout();
    const code = await checkCli(['--impl', 'scalable', '--runs', '3', '--max-steps', '30', '--seed', '42', '--profile', 'x86_64']);
    const text = out();
    expect(code).toBe(0);
    expect(text).toContain('MS-CRT-02');
    expect(text).toMatch(/check: scalable under x86_64: 3 runs, \d+ steps, 0 disagreements \(seed 42\)\n$/);
  });

  it('rejects bad options with a UsageError (exit 2)', async () => {
    await expect(checkCli(['--impl', 'nope'])).rejects.toBeInstanceOf(UsageError);
    await expect(checkCli(['--runs', '0'])).rejects.toBeInstanceOf(UsageError);
    await expect(checkCli(['--shard', '3/2'])).rejects.toBeInstanceOf(UsageError);
    await expect(checkCli(['--profile', 'no-such-profile'])).rejects.toBeInstanceOf(UsageError);
    await expect(checkCli(['--seed', 'x'])).rejects.toBeInstanceOf(UsageError);
    await expect(checkCli(['--workers', '2', '--path', '0:1'])).rejects.toBeInstanceOf(UsageError);
    // fast-check's seeds are 32-bit: one above 2^31 - 1 would not replay as given, with --impl or --sut.
    await expect(checkCli(['--seed', '2147483648'])).rejects.toBeInstanceOf(UsageError);
    await expect(checkCli(['--sut', 'no-such-sut', '--seed', '2147483648'])).rejects.toBeInstanceOf(UsageError);
  });

  it('a --path that names no run of its seed is an error (exit 2), not a pass with 0 runs', async () => {
    const out = captureStdout();
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const code = await checkCli(['--impl', 'scalable', '--seed', '3', '--path', '2:2', '--max-steps', '30', '--profile', 'x86_64']);
    expect(code).toBe(2);
    expect(out()).not.toContain('0 disagreements');
    expect(String(err.mock.calls[0]?.[0])).toContain('no run was made (seed 3), so nothing was checked');
  });

  it('splits runs over shards and workers deterministically, each slice with its own seed', () => {
    expect(parseShard(undefined)).toEqual({ index: 1, count: 1 });
    expect(parseShard('2/3')).toEqual({ index: 2, count: 3 });
    expect(slicesFor(7, 200, { index: 1, count: 1 }, 1)).toEqual([{ seed: 7, runs: 200 }]);
    const shards = [1, 2, 3].map((i) => slicesFor(7, 200, { index: i, count: 3 }, 1)[0]!);
    expect(shards.map((s) => s.runs)).toEqual([67, 67, 66]);
    expect(new Set(shards.map((s) => s.seed)).size).toBe(3);
    expect(slicesFor(7, 200, { index: 2, count: 3 }, 1)).toEqual([shards[1]]);
    const workers = slicesFor(7, 10, { index: 1, count: 1 }, 4);
    expect(workers.map((w) => w.runs)).toEqual([3, 3, 2, 2]);
    expect(workers.every((w) => w.seed >= 0 && w.seed <= 0x7fff_ffff)).toBe(true);
    expect(deriveSeed(7, 0)).toBe(deriveSeed(7, 0));
    expect(deriveSeed(7, 0)).not.toBe(deriveSeed(7, 1));
  });
});
