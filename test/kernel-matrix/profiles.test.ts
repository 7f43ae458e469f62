/**
 * Each kernel line of the matrix has a built-in profile (kernel-matrix/kernels.ts names it),
 * with the host's max gfn as its one parameter: every recorded trace's profile line (the
 * driver's hello in that guest) is that profile with the max gfn the trace saw.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { KERNELS } from '../../kernel-matrix/kernels.js';
import { LINE_PROFILES, PROFILES, profileDiff, profileFromJson, profileToJson, withParams, type Profile } from '../../model/profiles.js';
import { resolveProfile } from '../../cli/profile-arg.js';

const DIR = fileURLToPath(new URL('../ground-truth/kernel-matrix/', import.meta.url));
const files = readdirSync(DIR).filter((f) => f.endsWith('.jsonl.gz'));

/** The trace's profile, and the fields its driver reported (older drivers report fewer). */
function traceProfile(file: string): { profile: Profile; fields: string[] } {
  const text = gunzipSync(readFileSync(`${DIR}${file}`))
    .subarray(0, 4096)
    .toString('utf8');
  const json = (JSON.parse(text.slice(0, text.indexOf('\n'))) as { profile: Record<string, unknown> }).profile;
  const p = profileFromJson(json, file);
  if (!p.ok) throw new Error(p.error);
  return { profile: p.profile, fields: Object.keys(json) };
}

describe('kernel-line profiles', () => {
  it('every line of the table names a built-in profile', () => {
    for (const k of KERNELS) expect(withParams(k.profile), k.name).not.toBeNull();
  });

  for (const f of files) {
    const line = f.replace(/(-npt0)?(\.fill|\.gmem|\.dirty|\.dirty-random)?\.jsonl\.gz$/, '');
    it(`${f}: the driver's profile is ${KERNELS.find((k) => k.name === line)?.profile ?? '?'} with its max gfn`, () => {
      const k = KERNELS.find((x) => x.name === line);
      expect(k, `no line ${line} in kernel-matrix/kernels.ts`).toBeDefined();
      const { profile: seen, fields } = traceProfile(f);
      const gfn = seen.maxGfn === null ? 'null' : `0x${seen.maxGfn.toString(16)}`;
      const builtin = profileToJson(resolveProfile(`${k!.profile},max_gfn=${gfn}`));
      const reported = profileToJson(seen);
      // Only what the driver reported: a field it did not is the profile file's default, not a fact of the kernel.
      // write_drops_mappings is a fact of the driver (its write deletes a code slot), not of the kernel line:
      // true wherever the driver reports it.
      for (const field of fields) {
        if (field === 'write_drops_mappings') expect(reported[field], field).toBe(true);
        else expect(reported[field], field).toEqual(builtin[field]);
      }
    });
  }

  it('NAME,max_gfn=VALUE sets the max gfn and names the result; bad parameters are errors', () => {
    const p = withParams('linux-7.3-x86_64,max_gfn=0xfffffff') as Profile;
    expect(p.maxGfn).toBe(0xfffffffn);
    expect(p.name).toBe('linux-7.3-x86_64,max_gfn=0xfffffff');
    expect(profileDiff({ ...p, maxGfn: LINE_PROFILES['linux-7.3-x86_64']!.maxGfn }, LINE_PROFILES['linux-7.3-x86_64']!)).toBeNull();
    expect((withParams('linux-5.10-x86_64,max_gfn=null') as Profile).maxGfn).toBeNull();
    expect((withParams('x86_64,max_gfn=4095') as Profile).maxGfn).toBe(4095n);
    expect(withParams('linux-6.1-x86_64')).toBe(LINE_PROFILES['linux-6.1-x86_64']);
    expect(withParams('x86_64')).toBe(PROFILES['x86_64']);
    expect(withParams('linux-9.9-x86_64')).toBeNull();
    expect(withParams('x86_64,max_gfn=0xzz')).toMatch(/max_gfn must be a u64/);
    expect(withParams('x86_64,max_gfn')).toMatch(/max_gfn must be a u64/);
    expect(withParams('x86_64,user_mem_slots=3')).toMatch(/unknown profile parameter "user_mem_slots"/);
    expect(() => resolveProfile('x86_64,foo=1')).toThrow(/unknown profile parameter/);
  });

  it('NAME,dirty_ring_rsvd_entries=N sets the reserved ring entries (with max_gfn too); bad values are errors', () => {
    const p = withParams('x86_64,dirty_ring_rsvd_entries=576') as Profile;
    expect(p.dirtyRingRsvdEntries).toBe(576);
    expect(p.name).toBe('x86_64,dirty_ring_rsvd_entries=576');
    expect(profileDiff({ ...p, dirtyRingRsvdEntries: 64 }, PROFILES['x86_64']!)).toBeNull();
    const both = withParams('linux-7.3-x86_64,max_gfn=0xfffffff,dirty_ring_rsvd_entries=0') as Profile;
    expect([both.maxGfn, both.dirtyRingRsvdEntries]).toEqual([0xfffffffn, 0]);
    expect(withParams('x86_64,dirty_ring_rsvd_entries=65536')).toMatch(/dirty_ring_rsvd_entries must be an integer from 0 to 65535/);
    expect(withParams('x86_64,dirty_ring_rsvd_entries=-1')).toMatch(/dirty_ring_rsvd_entries must be/);
    expect(withParams('x86_64,dirty_ring_rsvd_entries')).toMatch(/dirty_ring_rsvd_entries must be/);
  });

  it('the lines differ first in the switches the driver takes from its version (6.8: v1 mask, 6.14: size limit on user ids only) and in the guest_memfd binding check (7.x: EEXIST, 7.3: late)', () => {
    const d = (a: string, b: string): unknown => profileDiff(LINE_PROFILES[a]!, LINE_PROFILES[b]!);
    expect(d('linux-6.18-x86_64', 'linux-7.3-x86_64')).toEqual({ field: 'gmem_bind_errno', a: 'EINVAL', b: 'EEXIST' });
    expect(profileDiff({ ...LINE_PROFILES['linux-6.18-x86_64']!, gmemBindErrno: 'EEXIST' }, LINE_PROFILES['linux-7.3-x86_64']!)).toEqual({
      field: 'gmem_bind_late',
      a: false,
      b: true,
    });
    expect(d('linux-6.1-x86_64', 'linux-6.12-x86_64')).toEqual({ field: 'v1_flags_mask', a: false, b: true });
    expect(d('linux-6.12-x86_64', 'linux-6.18-x86_64')).toEqual({ field: 'max_nr_pages_user_only', a: false, b: true });
    expect(profileDiff({ ...LINE_PROFILES['linux-6.18-x86_64']!, name: 'x86_64' }, PROFILES['x86_64']!)).toBeNull();
  });
});
