import { describe, expect, it } from 'vitest';
import { withParams, type Profile } from '../model/profiles.js';
import { replay } from '../trace/replay.js';
import { readTrace } from '../trace/trace.js';
import { makeVectors } from './vectors.js';

describe('conformance vectors', () => {
  // The built-in profiles, and the kernel lines and VM types where the memory API (spec/28) differs.
  for (const name of ['x86_64-nosmm', 'x86_64', 'linux-5.10-x86_64', 'linux-7.3-x86_64', 'linux-6.12-x86_64', 'linux-7.3-x86_64-intel-tdx']) {
    it(`[MS-VAL-01][MS-VAL-02][MS-OVL-01][MS-INT-03][MS-DLG-06] vectors under ${name} hit every rule a trace can express, deterministically, and replay clean`, async () => {
      const profile = withParams(name) as Profile;
      const a: string[] = [];
      const r = makeVectors(profile, 7, 60, (l) => a.push(l));
      expect(r.missing).toEqual([]);
      const b: string[] = [];
      makeVectors(profile, 7, 60, (l) => b.push(l));
      expect(b).toEqual(a);
      const summary = await replay(readTrace(a), { profile });
      expect(summary.steps).toBe(a.length - 1);
      expect(summary.mismatches).toBe(0);
    });
  }
});
