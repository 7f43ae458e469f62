import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { fileLineBatches, fileLines } from './lines.js';

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
});
