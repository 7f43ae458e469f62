import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ChildSut, SutError, splitCommand } from './child.js';

/** A SUT that is a small inline node script. */
function node(script: string): string[] {
  return [process.execPath, '-e', script];
}

const ECHO = `
const rl = require('node:readline').createInterface({ input: process.stdin });
rl.on('line', (l) => {
  const req = JSON.parse(l);
  if (req.op === 'die') { process.stderr.write('dying as asked\\n'); process.exit(3); }
  if (req.op === 'garbage') { process.stdout.write('this is not json\\n'); return; }
  if (req.op === 'array') { process.stdout.write('[1,2]\\n'); return; }
  if (req.op === 'hang') return;
  if (req.op === 'split') { process.stdout.write('{"a":'); setTimeout(() => process.stdout.write('1}\\n{"b":2}\\n'), 20); return; }
  process.stdout.write(JSON.stringify({ echo: req }) + '\\n');
});
`;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function expectGone(pid: number): Promise<void> {
  for (let i = 0; i < 300 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 10));
  expect(isAlive(pid)).toBe(false);
}

async function sutError(p: Promise<unknown>): Promise<SutError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(SutError);
    return e as SutError;
  }
  throw new Error('expected a SutError');
}

// The tests run concurrently (each spawns node, which is the slow part); each closes its own SUT.
type Ctx = { onTestFinished: (fn: () => Promise<void>) => void };
async function start(ctx: Ctx, cmd: string[], opts?: Parameters<typeof ChildSut.start>[1]): Promise<ChildSut> {
  const sut = await ChildSut.start(cmd, opts);
  ctx.onTestFinished(() => sut.close());
  return sut;
}

describe.concurrent('ChildSut', () => {
  it('sends requests and receives answers in order, one at a time', async (ctx) => {
    const sut = await start(ctx, node(ECHO));
    const a = await sut.request({ op: 'x', n: 1 });
    expect(a.value).toEqual({ echo: { op: 'x', n: 1 } });
    expect(a.line).toBe('{"echo":{"op":"x","n":1}}');
    // Concurrent calls are queued and answered in call order.
    const replies = await Promise.all([1, 2, 3].map((n) => sut.requestLine(`{"op":"q","n":${n}}`)));
    expect(replies.map((r) => (r.value as { echo: { n: number } }).echo.n)).toEqual([1, 2, 3]);
    await sut.close();
    await sut.close(); // idempotent
    await expectGone(sut.pid);
  });

  it('reassembles answer lines split across chunks', async (ctx) => {
    const sut = await start(ctx, node(ECHO));
    expect((await sut.request({ op: 'split' })).value).toEqual({ a: 1 });
    // The second line of that chunk arrived unasked: a protocol error.
    const e = await sutError(sut.request({ op: 'x' }));
    expect(e.kind).toBe('protocol');
    expect(e.message).toContain('{"b":2}');
    await expectGone(sut.pid);
  });

  it('rejects bigint requests (the caller serialises them) and line breaks', async (ctx) => {
    const sut = await start(ctx, node(ECHO));
    await expect(sut.request({ big: 1n })).rejects.toThrow(TypeError);
    await expect(sut.requestLine('{}\n{}')).rejects.toThrow(TypeError);
    expect((await sut.requestLine('{"op":"ok"}')).value).toEqual({ echo: { op: 'ok' } });
  });

  it('reports a crash with the exit code and the stderr tail', async (ctx) => {
    const sut = await start(ctx, node(ECHO));
    const e = await sutError(sut.request({ op: 'die' }));
    expect(e.kind).toBe('crash');
    expect(e.message).toContain('exited with code 3');
    expect(e.message).toContain('dying as asked');
    expect(sut.stderrTail()).toContain('dying as asked');
    // Later requests fail the same way.
    expect((await sutError(sut.request({ op: 'x' }))).kind).toBe('crash');
    await expectGone(sut.pid);
  });

  it('reports a child that exits before any request', async (ctx) => {
    const sut = await start(ctx, node('process.exit(0)'));
    await expectGone(sut.pid);
    await new Promise((r) => setTimeout(r, 50)); // let the 'close' event arrive
    const e = await sutError(sut.request({ op: 'x' }));
    expect(e.kind).toBe('crash');
    expect(e.message).toContain('exited with code 0');
  });

  it('times out a hanging request, names it and kills the child', async (ctx) => {
    const sut = await start(ctx, node(ECHO), { timeoutMs: 150 });
    const t0 = Date.now();
    const e = await sutError(sut.request({ op: 'hang' }));
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(e.kind).toBe('timeout');
    expect(e.message).toContain('150 ms');
    expect(e.message).toContain(`{"op":"hang"}`);
    await expectGone(sut.pid);
  });

  it('truncates a long request line in the timeout message', async (ctx) => {
    const sut = await start(ctx, node(ECHO), { timeoutMs: 100 });
    const e = await sutError(sut.request({ op: 'hang', pad: 'x'.repeat(1000) }));
    expect(e.kind).toBe('timeout');
    expect(e.message.length).toBeLessThan(400);
  });

  it('reports a garbage answer as a protocol error quoting it', async (ctx) => {
    const sut = await start(ctx, node(ECHO));
    const e = await sutError(sut.request({ op: 'garbage' }));
    expect(e.kind).toBe('protocol');
    expect(e.message).toContain('this is not json');
    await expectGone(sut.pid);
  });

  it('reports a JSON answer that is not an object as a protocol error', async (ctx) => {
    const sut = await start(ctx, node(ECHO));
    const e = await sutError(sut.request({ op: 'array' }));
    expect(e.kind).toBe('protocol');
    expect(e.message).toContain('[1,2]');
  });

  it('reports a command that does not exist as a spawn error', async () => {
    const e = await sutError(ChildSut.start(['/nonexistent/memslot-sut', '--flag']));
    expect(e.kind).toBe('spawn');
    expect(e.message).toContain('/nonexistent/memslot-sut');
    expect(e.message).toContain('ENOENT');
    expect((await sutError(ChildSut.start([]))).kind).toBe('spawn');
  });

  it('kills a child that ignores the end of its stdin on close', async (ctx) => {
    const sut = await start(ctx, node('process.stdin.resume(); process.stdin.on("end", () => {}); setInterval(() => {}, 1000);'));
    expect(isAlive(sut.pid)).toBe(true);
    await sut.close();
    await expectGone(sut.pid);
  });

  it('ends a background process that holds its pipes, and every process the SUT started, on close', async () => {
    // A wrapper that starts a long sleeper holding stdout and stderr, and one that left the
    // process group (setsid), then answers correctly.
    const dir = mkdtempSync(join(tmpdir(), 'memslot-child-'));
    const script = `sleep 300 & echo $! > ${dir}/bg; setsid sleep 300 & echo $! > ${dir}/sid; exec "$0" -e "$1"`;
    const sut = await ChildSut.start(['sh', '-c', script, process.execPath, ECHO]);
    expect((await sut.request({ op: 'x' })).value).toEqual({ echo: { op: 'x' } });
    const background = Number(readFileSync(join(dir, 'bg'), 'utf8'));
    const ownSession = Number(readFileSync(join(dir, 'sid'), 'utf8'));
    expect(isAlive(background) && isAlive(ownSession)).toBe(true);
    // The sleepers live 300 s: close() returning at all (within the test's timeout) is the point.
    await sut.close();
    await expectGone(background);
    await expectGone(ownSession);
  });

  it('ends the processes a SUT started when the SUT crashes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'memslot-child-'));
    const sut = await ChildSut.start(['sh', '-c', `sleep 300 & echo $! > ${dir}/bg; exec "$0" -e "$1"`, process.execPath, ECHO]);
    const err = await sutError(sut.request({ op: 'die' }));
    expect(err.kind).toBe('crash');
    const background = Number(readFileSync(join(dir, 'bg'), 'utf8'));
    await sut.close();
    await expectGone(background);
  });

  it('rejects a request pending at close', async (ctx) => {
    const sut = await start(ctx, node(ECHO));
    const pending = sutError(sut.request({ op: 'hang' }));
    await sut.close();
    expect((await pending).kind).toBe('crash');
    await expectGone(sut.pid);
  });
});

describe('splitCommand', () => {
  it('splits like a shell', () => {
    expect(splitCommand('')).toEqual([]);
    expect(splitCommand('  a   b\tc ')).toEqual(['a', 'b', 'c']);
    expect(splitCommand(`ssh host 'sudo kvm-sut' "a b" c\\ d`)).toEqual(['ssh', 'host', 'sudo kvm-sut', 'a b', 'c d']);
    expect(splitCommand(`"x\\"y" 'it''s' "" ''`)).toEqual(['x"y', 'its', '', '']);
    expect(splitCommand(`"a\\nb" 'a\\b' \\'q`)).toEqual(['a\\nb', 'a\\b', "'q"]);
    expect(splitCommand('pre"mid"post')).toEqual(['premidpost']);
  });

  it('rejects unterminated quotes', () => {
    expect(() => splitCommand('a "b')).toThrow(SutError);
    expect(() => splitCommand("a 'b")).toThrow(/unterminated/);
    expect(() => splitCommand('a \\')).toThrow(/backslash/);
  });
});
