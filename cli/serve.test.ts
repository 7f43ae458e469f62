/**
 * `memslot-oracle serve` as a process (the built CLI, dist/): exit status, differences with a
 * checked SUT reported on stderr as they happen, --lint, and --socket serving one client at a
 * time, each connection a fresh VM. Every serve is started through ChildSut or spawnSync with
 * a timeout, so none outlives its test.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ChildSut } from '../sut/child.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const PYTHON = (() => {
  const r = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() !== '' ? r.stdout.trim() : null;
})();
const dir = mkdtempSync(join(tmpdir(), 'memslot-serve-'));
const SMALL = join(dir, 'small.json');
writeFileSync(
  SMALL,
  JSON.stringify({
    address_spaces: 1,
    user_mem_slots: 32,
    mem_slots_num: 35,
    max_gfn: '0xffffffffff',
    user_addr_max: '0x7ffffffff000',
    max_nr_pages: '0x7fffffff',
  }),
);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const set = (slot: number, gpa: number, size: number, uaddr = 0x7f00_0000_0000): string =>
  JSON.stringify({
    op: 'set_user_memory_region',
    slot,
    flags: 0,
    guest_phys_addr: `0x${gpa.toString(16)}`,
    memory_size: `0x${size.toString(16)}`,
    userspace_addr: `0x${uaddr.toString(16)}`,
  });

function serveSync(args: string[], lines: string[]): { status: number | null; stdout: string[]; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'serve', ...args], { input: `${lines.join('\n')}\n`, encoding: 'utf8', timeout: 30_000, killSignal: 'SIGKILL' });
  return { status: r.status, stdout: r.stdout.split('\n').filter((l) => l !== ''), stderr: r.stderr };
}

describe('memslot-oracle serve', () => {
  it('on stdin: answers in order, a malformed line gets an error answer and serve goes on; exit 2 for the malformed line, 0 without', () => {
    const bad = serveSync([], ['{"op":"hello","protocol":1}', set(0, 0x100000, 0x200000), '{"op":"get_dirty_log","slot":-1}', set(1, 0x2ff000, 0x1000)]);
    expect(bad.stdout.slice(1)).toEqual([
      '{"ret":0}',
      '{"error":"stdin line 3, field \\"slot\\": must be from 0 to 4294967295, got -1"}',
      '{"errno":"EEXIST"}',
    ]);
    expect(bad.status).toBe(2);
    expect(serveSync([], [set(0, 0x100000, 0x200000)]).status).toBe(0);
  });

  it('--profile FILE with "user_mem_slots": 32 and --lint: an allocator that never checks the limit is named at id 32', () => {
    const lines = Array.from({ length: 33 }, (_, i) => set(i, i * 0x1000, 0x1000));
    const r = serveSync(['--profile', SMALL, '--lint'], lines);
    expect(r.stdout.slice(-2)).toEqual(['{"ret":0}', '{"errno":"EINVAL"}']);
    expect(r.stderr).toContain('VMM checks: 1 finding (VMM-IDS-02 x1)');
    expect(r.stderr).toContain('line 33: {"op":"set_user_memory_region","slot":32,');
    expect(r.status).toBe(0);
  });

  it.runIf(PYTHON !== null)('--check-against a SUT with a planted bug: the difference is on stderr with the line and both answers, exit 1', () => {
    const r = serveSync(
      ['--check-against', `${PYTHON} test/sut/memslots_sut.py --bug overlap-adjacent`],
      [set(0, 0x100000, 0x200000), set(1, 0x300000, 0x1000)],
    );
    expect(r.stdout).toEqual(['{"ret":0}', '{"ret":0}']);
    expect(r.stderr).toMatch(
      /memslot-oracle serve: difference at stdin line 2: \{"op":"set_user_memory_region","slot":1,.*\n {2}.*memslots_sut\.py.*: \{"errno":"EEXIST"\}\n {2}model: \{"ret":0\} {3}\[MS-CRT-02\]/,
    );
    expect(r.status).toBe(1);
  });

  it('--socket: one client at a time, each connection a fresh VM; serve ends when its stdin (a pipe) ends', async () => {
    const path = join(dir, 'one-at-a-time.sock');
    const serve = await ChildSut.start([process.execPath, CLI, 'serve', '--socket', path]);
    try {
      for (let i = 0; i < 200 && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 50));
      const client = async (): Promise<{ ask: (l: string) => Promise<string>; early: () => string[]; s: Socket }> => {
        const s = connect(path);
        await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
        const got: string[] = [];
        const waiting: ((l: string) => void)[] = [];
        createInterface({ input: s }).on('line', (l) => (waiting.shift() ?? ((x: string) => got.push(x)))(l));
        return {
          s,
          early: () => got,
          ask: (l) =>
            new Promise<string>((resolve) => {
              if (got.length > 0) resolve(got.shift()!);
              else waiting.push(resolve);
              s.write(`${l}\n`);
            }),
        };
      };
      const a = await client();
      expect(await a.ask(set(0, 0, 0x1000))).toBe('{"ret":0}');
      const b = await client();
      const bFirst = b.ask('{"op":"get_slots","as_id":0}');
      await new Promise((r) => setTimeout(r, 300));
      expect(b.early()).toEqual([]); // b waits while a holds the floor
      expect(await a.ask('{"op":"get_slots","as_id":0}')).toContain('"slot":0');
      a.s.end();
      expect(await bFirst).toBe('{"slots":[]}'); // a fresh VM
      b.s.end();
    } finally {
      await serve.close();
    }
    expect(existsSync(path)).toBe(false);
  });
});

describe('every op of the protocol, end to end', () => {
  it('check --sut "serve --profile linux-7.3-x86_64": the suite sends every op of chapters 25 and 28 over the protocol and the answers come back intact', () => {
    const sut = `${process.execPath} ${CLI} serve --profile linux-7.3-x86_64`;
    const r = spawnSync(process.execPath, [CLI, 'check', '--sut', sut, '--runs', '12', '--seed', '5'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/12 runs, \d+ steps, 0 disagreements/);
    // Each of these rules decided requests that crossed the protocol both ways.
    for (const id of ['MS-V2-02', 'MS-GMB-05', 'MS-GMF-04', 'MS-CAP-09', 'MS-WR-03', 'MS-CLR-05', 'MS-DLB-02', 'MS-VM-01', 'MS-ATR-06']) {
      const row = r.stdout.split('\n').find((l) => l.startsWith(`${id} `));
      expect(row, id).toBeDefined();
      expect(Number(row!.trim().split(/\s+/)[1]), id).toBeGreaterThan(0);
    }
  }, 130_000);
});
