import { describe, expect, it } from 'vitest';
import { withParams, type Profile } from '../model/profiles.js';
import { replay } from '../trace/replay.js';
import { readTrace } from '../trace/trace.js';
import { makeVectors } from './vectors.js';

/** The vectors of seed 7, 60 sequences, per profile: made once, looked at by several tests. */
const made = new Map<string, { lines: string[]; r: ReturnType<typeof makeVectors> }>();
function vectorsOf(name: string): { lines: string[]; r: ReturnType<typeof makeVectors> } {
  let v = made.get(name);
  if (v === undefined) {
    const lines: string[] = [];
    const r = makeVectors(withParams(name) as Profile, 7, 60, (l) => lines.push(l));
    made.set(name, (v = { lines, r }));
  }
  return v;
}

describe('conformance vectors', () => {
  // The built-in profiles, and the kernel lines and VM types where the memory API (spec/28) differs.
  for (const name of ['x86_64-nosmm', 'x86_64', 'linux-5.10-x86_64', 'linux-7.3-x86_64', 'linux-6.12-x86_64', 'linux-7.3-x86_64-intel-tdx']) {
    it(`vectors under ${name} hit every rule a trace can express, deterministically, and replay clean`, async () => {
      const profile = withParams(name) as Profile;
      const { lines: a, r } = vectorsOf(name);
      expect(r.missing).toEqual([]);
      const b: string[] = [];
      makeVectors(profile, 7, 60, (l) => b.push(l));
      expect(b).toEqual(a);
      const summary = await replay(readTrace(a), { profile });
      expect(summary.steps).toBe(a.length - 1);
      expect(summary.mismatches).toBe(0);
    });
  }

  it('[MS-RNG-01][MS-RNG-13] vectors under linux-5.10-x86_64: a ring enable fails with EINVAL, KVM_RESET_DIRTY_RINGS with ENOTTY', () => {
    const { lines: a, r } = vectorsOf('linux-5.10-x86_64');
    expect(r.counts.get('MS-RNG-01')).toBeGreaterThan(0);
    expect(r.counts.get('MS-RNG-13')).toBeGreaterThan(0);
    expect(r.counts.get('MS-RNG-07')).toBeUndefined();
    const resets = a.filter((l) => l.includes('"op":"reset_dirty_rings"'));
    expect(resets.length).toBeGreaterThan(0);
    expect(resets.every((l) => l.includes('"expect":{"errno":"ENOTTY"}'))).toBe(true);
    const enables = a.filter((l) => l.includes('"op":"enable_cap"') && l.includes('"cap":"DIRTY_LOG_RING'));
    expect(enables.length).toBeGreaterThan(0);
    expect(enables.every((l) => l.includes('"expect":{"errno":"EINVAL"}'))).toBe(true);
  });

  it('[MS-RNG-08][MS-RNG-14] vectors under x86_64: a write exits dirty_ring_full and a reset returns its count', () => {
    const { lines: a } = vectorsOf('x86_64');
    expect(a.some((l) => l.includes('"op":"write"') && l.includes('"expect":{"exit":"dirty_ring_full"}'))).toBe(true);
    expect(a.some((l) => l.includes('"op":"reset_dirty_rings"') && /"expect":\{"ret":[1-9]/.test(l))).toBe(true);
    expect(a.some((l) => l.includes('"op":"harvest_dirty_ring"') && l.includes('"entries":[{'))).toBe(true);
  });
});
