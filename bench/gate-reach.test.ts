import { describe, expect, it } from 'vitest';
import { gateReach } from './gate-reach.js';

describe('bench/gate-reach.ts', () => {
  it('counts every rule under each seed, rarest first, and sees the rules a short plan misses', async () => {
    const reach = await gateReach(1, 2, { profiles: 1, memoryApi: 1, rings: 1 });
    expect(reach.length).toBeGreaterThan(100);
    for (let i = 1; i < reach.length; i++) expect(reach[i - 1]!.min).toBeLessThanOrEqual(reach[i]!.min);
    // One sequence per check cannot reach every rule: the measurement must say so.
    const unhit = reach.filter((r) => r.zeroSeeds > 0);
    expect(unhit.length).toBeGreaterThan(0);
    for (const r of unhit) expect(r.min).toBe(0);
    // The common rules fire under both seeds.
    const gen = reach.find((r) => r.rule === 'MS-GEN-02')!;
    expect(gen.zeroSeeds).toBe(0);
    expect(gen.mean).toBeGreaterThan(0);
  });
});
