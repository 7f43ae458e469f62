/**
 * The README's clients for VMM developers (examples/slot_client.py, examples/slot_client.c)
 * against a real `memslot-oracle serve --socket` (the built CLI, dist/): each connection a fresh
 * VM, the answers the kernel would give, and a recorded trace that replays with zero mismatches
 * and no VMM-check finding. The C client is compiled only where `cc` exists.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lintTrace } from '../lint/vmm-lint.js';
import { PROFILES } from '../model/profiles.js';
import { ChildSut } from '../sut/child.js';
import { fileLines } from '../trace/lines.js';
import { replay } from '../trace/replay.js';
import { readTrace } from '../trace/trace.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
/** The interpreter itself (sys.executable), not a pyenv shim that costs a shell start per run. */
const PYTHON = (() => {
  const r = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() !== '' ? r.stdout.trim() : null;
})();
const HAS_PYTHON = PYTHON !== null;
const HAS_CC = spawnSync('cc', ['--version']).status === 0;

let dir = '';
let serve: ChildSut | null = null;
const sock = (): string => join(dir, 'kvm.sock');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'memslot-clients-'));
  writeFileSync(
    join(dir, 'small.json'),
    JSON.stringify({
      address_spaces: 1,
      user_mem_slots: 32,
      mem_slots_num: 35,
      max_gfn: '0xffffffffff',
      user_addr_max: '0x7ffffffff000',
      max_nr_pages: '0x7fffffff',
    }),
  );
  // ChildSut: serve leads a process group that is ended with the test run, whatever happens.
  // Its stdin is a pipe, so serve ends when close() ends it.
  serve = await ChildSut.start([process.execPath, CLI, 'serve', '--socket', sock(), '--profile', join(dir, 'small.json'), '--record', join(dir, 'rec.jsonl')]);
  for (let i = 0; i < 200 && !existsSync(sock()); i++) await new Promise((r) => setTimeout(r, 50));
  expect(existsSync(sock()), `serve did not listen: ${serve.stderrTail()}`).toBe(true);
});

afterAll(async () => {
  await serve?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('examples/: clients for VMM developers against serve --socket', () => {
  it.runIf(HAS_PYTHON)(`examples/slot_client.py gets the kernel's answers${HAS_PYTHON ? '' : ' (skipped: no python3 on PATH)'}`, async () => {
    const { stdout } = await run(PYTHON!, [join(ROOT, 'examples', 'slot_client.py'), sock()], { timeout: 20_000 });
    expect(stdout).toBe('user slots: 32\ncreate 0: 0\ncreate 1 over 0: EEXIST\ndelete 0: 0\n');
  });

  it(
    HAS_CC
      ? 'examples/slot_client.c compiles warning-free and gets the same answers in a fresh VM'
      : 'examples/slot_client.c (skipped: no C compiler `cc` on PATH)',
    async (ctx) => {
      if (!HAS_CC) return ctx.skip();
      const exe = join(dir, 'slot_client');
      await run('cc', ['-Wall', '-Wextra', '-Werror', '-o', exe, join(ROOT, 'examples', 'slot_client.c')], { timeout: 30_000 });
      const { stdout } = await run(exe, [sock()], { timeout: 20_000 });
      expect(stdout).toBe('create 0: {"ret":0}\ncreate 1 over 0: {"errno":"EEXIST"}\ndelete 0: {"ret":0}\n');
    },
  );

  it('the recorded exchange is a trace (a reset between clients) that replays with zero mismatches and no VMM-check finding', async () => {
    await serve!.close();
    const rec = join(dir, 'rec.jsonl');
    const clients = (HAS_PYTHON ? 1 : 0) + (HAS_CC ? 1 : 0);
    const summary = await replay(readTrace(fileLines(rec), rec), { profile: PROFILES['x86_64-nosmm']! });
    expect([summary.steps, summary.mismatches]).toEqual([clients * 3 + Math.max(0, clients - 1), 0]);
    expect((await lintTrace(readTrace(fileLines(rec), rec), PROFILES['x86_64-nosmm']!)).findings).toEqual([]);
  });
});
