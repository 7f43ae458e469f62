import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createReadStream } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { fileLineBatches, fileLines, fileText } from './lines.js';
import { InputError, readTrace, readTraceText } from './trace.js';

const dir = mkdtempSync(join(tmpdir(), 'memslot-lines-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function readlineLines(path: string): Promise<string[]> {
  return collect(createInterface({ input: createReadStream(path), crlfDelay: Infinity }));
}

describe('fileLineBatches', () => {
  it('splits lines as readline with crlfDelay Infinity does (\\n, \\r\\n, a lone \\r, a last line without its end)', async () => {
    const text = fc.string({ unit: fc.constantFrom('a', '{', '\n', '\r', 'é', '😀'), maxLength: 40 });
    let i = 0;
    await fc.assert(
      fc.asyncProperty(text, async (t) => {
        const path = join(dir, `t${i++}.txt`);
        writeFileSync(path, t);
        expect(await collect(fileLines(path))).toEqual(await readlineLines(path));
      }),
      { numRuns: 200 },
    );
  });

  it('keeps a line, a \\r\\n and a multi-byte character whole across chunks', async () => {
    const path = join(dir, 'big.txt');
    const lines = Array.from({ length: 5000 }, (_, k) => `${'x'.repeat(k % 97)}é😀${k}`);
    writeFileSync(path, `${lines.join('\r\n')}\r\n`);
    const batches = await collect(fileLineBatches(path));
    expect(batches.length).toBeGreaterThan(1);
    expect(batches.flat()).toEqual(lines);
    expect(batches.flat()).toEqual(await readlineLines(path));
  });

  it('keeps a line longer than a chunk whole, and lines that end exactly at a chunk end', async () => {
    const path = join(dir, 'long.txt');
    // 16 KiB chunks: a line over two chunks, one at a chunk's end, one spanning three chunks.
    const lines = ['a'.repeat(20000), 'b'.repeat(16384 - 20001 + 2 * 16384 - 1), 'c', 'd'.repeat(40000), 'e'];
    writeFileSync(path, `${lines.join('\n')}\n`);
    expect((await collect(fileLineBatches(path))).flat()).toEqual(lines);
    expect((await collect(fileText(path))).join('')).toBe(`${lines.join('\n')}\n`);
  });

  it('keeps a character whole that a 64 KiB read or a 16 KiB piece splits', async () => {
    const path = join(dir, 'split.txt');
    // Bytes 65534..65537 are one 4-byte character (a read ends inside it); chars 16383 and
    // 16384 of the first read's text are the two halves of a surrogate pair (a piece ends between them).
    const first = `${'x'.repeat(16383)}😀${'y'.repeat(65534 - 16383 - 4 - 1)}\n`;
    const lines = [first.slice(0, -1), '😀tail', 'z'];
    writeFileSync(path, `${lines.join('\n')}\n`);
    expect(Buffer.byteLength(first)).toBe(65534);
    expect((await collect(fileLineBatches(path))).flat()).toEqual(lines);
    expect((await collect(fileText(path))).join('')).toBe(`${lines.join('\n')}\n`);
  });

  it('reads a FIFO as a stream, the event loop running while its writer is slow (readSync would block it)', async () => {
    const path = join(dir, 'fifo');
    execFileSync('mkfifo', [path]);
    // A writer in another process, slow between its lines.
    const writer = spawn('sh', ['-c', `exec > '${path}'; sleep 0.1; printf 'a\\n'; sleep 0.2; printf 'b\\r\\nc'`], { stdio: 'ignore' });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    try {
      expect((await collect(fileLineBatches(path))).flat()).toEqual(['a', 'b', 'c']);
    } finally {
      clearInterval(timer);
      writer.kill();
    }
    expect(ticks).toBeGreaterThan(20);
  });
});

/** What readTraceText() makes of a file: the lines, or the message of the InputError it throws. */
async function viaText(path: string): Promise<unknown> {
  try {
    return (await collect(readTraceText(fileText(path), path))).flat();
  } catch (e) {
    if (e instanceof InputError) return e.message;
    throw e;
  }
}

/** The same through the line-at-a-time path: fileLines() and readTrace(). */
async function viaLines(path: string): Promise<unknown> {
  try {
    return await collect(readTrace(fileLines(path), path));
  } catch (e) {
    if (e instanceof InputError) return e.message;
    throw e;
  }
}

describe('readTraceText (canonical lines read in place)', () => {
  const canonical = [
    '{"op":"set_user_memory_region","slot":1,"flags":0,"guest_phys_addr":"0x1000","memory_size":"0x1000","userspace_addr":"0x7f0000000000","expect":{"ret":0}}',
    '{"op":"gfn_to_memslot","as_id":0,"gfn":"0x1","expect":{"slot":1}}',
    '{"op":"get_slots","as_id":0,"expect":{"slots":[{"slot":1,"flags":0,"guest_phys_addr":"0x1000","memory_size":"0x1000","userspace_addr":"0x7f0000000000"}]}}',
    '{"op":"hva_to_memslots","start":"0x7f0000000000","end":"0x7f0000001000","expect":{"slots":[{"slot":1,"gfn_start":"0x1","gfn_end":"0x2"}]}}',
    '{"op":"get_generation","as_id":0}',
  ];
  const others = ['', ' ', '{"op":"reset"}', '{"op":"get_slots","as_id":1.0}', '{"op":"get_slots","as_id":65536}', 'not json', 'é'];
  const piece = fc.oneof(fc.constantFrom(...canonical), fc.constantFrom(...others));
  const sep = fc.constantFrom('\n', '\r\n', '\r', '\r\r\n');

  it('gives what parsing each line does: the same lines, numbers and errors, across \\r, \\r\\n and chunk ends', async () => {
    let i = 0;
    const file = fc.tuple(fc.array(fc.tuple(piece, sep), { maxLength: 12 }), fc.boolean(), fc.nat(600)).map(([ls, end, pad]) => {
      // A long first line moves the later ones across the reader's 16 KiB chunks.
      const text = ls.map(([l, s]) => l + s).join('');
      return `${pad > 0 ? `${'{"op":"get_generation","as_id":0}\n'.repeat(pad)}` : ''}${end ? text : text.replace(/[\r\n]+$/, '')}`;
    });
    await fc.assert(
      fc.asyncProperty(file, async (t) => {
        const path = join(dir, `r${i++}.jsonl`);
        writeFileSync(path, t);
        expect(await viaText(path)).toStrictEqual(await viaLines(path));
      }),
      { numRuns: 150 },
    );
  });
});
