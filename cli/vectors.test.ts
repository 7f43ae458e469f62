import { describe, expect, it } from 'vitest';
import { PROFILES } from '../model/profiles.js';
import { replay } from '../trace/replay.js';
import { readTrace } from '../trace/trace.js';
import { makeVectors } from './vectors.js';

describe('conformance vectors', () => {
  for (const name of ['x86_64-nosmm', 'x86_64', 'linux-5.10-x86_64']) {
    it(`[MS-VAL-01][MS-VAL-02][MS-OVL-01][MS-INT-03][MS-DLG-06] vectors under ${name} hit every rule a trace can express, deterministically, and replay clean`, async () => {
      const profile = PROFILES[name]!;
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
