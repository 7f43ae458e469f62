import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const CLI = 'dist/cli/main.js';
const dir = mkdtempSync(join(tmpdir(), 'memslot-main-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the CLI with its standard output closed by the reader at once; its status and standard error. */
function withClosedStdout(args: readonly string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stderr }));
  });
}

describe('memslot-oracle and a reader that goes away', () => {
  it('keeps the verdict in its exit status, without an internal error, when standard output is closed', async () => {
    const bad = join(dir, 'bad.jsonl');
    // A delete of a slot that does not exist is EINVAL (MS-DEL-01): this expect disagrees.
    const line = '{"op":"set_user_memory_region","slot":0,"flags":0,"guest_phys_addr":"0x0","memory_size":"0x0","userspace_addr":"0x0","expect":{"ret":0}}';
    writeFileSync(bad, `${line}\n`.repeat(50));
    const good = join(dir, 'good.jsonl');
    writeFileSync(good, '{"op":"get_generation","as_id":0,"expect":{"generation":"0x0"}}\n');
    const [b, g] = await Promise.all([withClosedStdout(['replay', bad]), withClosedStdout(['replay', good])]);
    expect(b).toEqual({ status: 1, stderr: '' });
    expect(g).toEqual({ status: 0, stderr: '' });
  });
});
