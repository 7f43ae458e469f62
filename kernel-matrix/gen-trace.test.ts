/** The fallback trace generator: hand-picked requests, their address-space-1 twins, random ones. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readTrace } from '../trace/trace.js';
import { generateTrace, randomRequests, withAddressSpace1Twins } from './gen-trace.js';

describe('the fallback trace generator', () => {
  it('is deterministic for a seed and mixes both address spaces', () => {
    const a = randomRequests(5, 3000);
    expect(a).toEqual(randomRequests(5, 3000));
    expect(a).toHaveLength(3000);
    const as = a.filter((r) => typeof r['slot'] === 'number').map((r) => (r['slot'] as number) >>> 16);
    expect(as.filter((x) => x === 0).length).toBeGreaterThan(as.length / 3);
    expect(as.filter((x) => x === 1).length).toBeGreaterThan(as.length / 3);
  });

  it('twins each address-space-0 request in address space 1', () => {
    const twins = withAddressSpace1Twins([{ op: 'reset' }, { op: 'get_dirty_log', slot: 3 }, { op: 'get_dirty_log', slot: 0x10003 }]);
    expect(twins).toEqual([{ op: 'reset' }, { op: 'get_dirty_log', slot: 3 }, { op: 'get_dirty_log', slot: 0x10003 }, { op: 'get_dirty_log', slot: 0x10003 }]);
  });

  it('writes a trace the oracle parses', async () => {
    const hp = fileURLToPath(new URL('../test/ground-truth/kernel-handpicked.jsonl', import.meta.url));
    const text = generateTrace(hp, 1, 500);
    let n = 0;
    for await (const t of readTrace(text.trimEnd().split('\n'))) {
      expect(t.kind).toBe('request');
      n++;
    }
    // The hand-picked requests, their twins, then the random ones.
    const handpicked = readFileSync(hp, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{"op"')).length;
    expect(n).toBeGreaterThan(handpicked * 2 + 499);
  });
});
