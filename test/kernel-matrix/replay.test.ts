/**
 * Real kernels' answers (test/ground-truth/kernel-matrix/*.jsonl.gz, recorded by
 * `npm run kernel-matrix` from Debian's kernels booted under QEMU, two address spaces) replayed
 * through the model with each trace's own profile line: every answer must be the model's.
 *
 * The titles start with the rules that decided the trace's requests (computed by the replay
 * itself, so they stay true when the traces are re-recorded).
 *
 * `<kernel>[-npt0].fill.jsonl.gz` is the kernel's fill-to-the-limit sequence
 * (kernel-matrix/fill.ts): every user slot of both address spaces, then the ids past the limit
 * and the largest slots; on 5.10 the kernel answers ENOMEM to 2^31 - 1 pages, which replay
 * accepts where the model would create the slot (spec chapter 27).
 *
 * `<kernel>[-npt0].dirty.jsonl.gz` is the dirty-bits scenario (kernel-matrix/dirty.ts): guest
 * writes through the driver's vCPU in both address spaces (as 1 in SMM), the bitmaps
 * GET_DIRTY_LOG copies out, KVM_CLEAR_DIRTY_LOG and manual protect; every rule of spec/25 must
 * fire in it (its title lists the rules that fired, not only those that decided). After that
 * bitmap part comes the dirty-ring part: KVM_CAP_DIRTY_LOG_RING's sizes, ENXIO from the bitmap
 * ioctls, writes pushing ring entries (a page written twice: two entries), harvest_dirty_ring,
 * KVM_RESET_DIRTY_RINGS and its count across slot changes, and a 4096-byte ring filled to its
 * soft limit (dirty_ring_full at the 192nd entry); 5.10 has no dirty ring and answers so.
 *
 * `<kernel>[-npt0].dirty-random.jsonl.gz` is a seeded random sequence of the same ops
 * (kernel-matrix/dirty.ts dirtyRandomRequests, seed 1, 500 requests), recorded in the same boot.
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { fileLines } from '../../trace/lines.js';
import { formatReplay, replay, type ReplaySummary } from '../../trace/replay.js';
import { readTrace, type TraceLine } from '../../trace/trace.js';
import { PROFILES, type Profile } from '../../model/profiles.js';
import { DIRTY_RING_RULES, DIRTY_RULES, NO_RING_RULES } from '../../kernel-matrix/dirty.js';

const DIR = fileURLToPath(new URL('../ground-truth/kernel-matrix/', import.meta.url));
// The memory-API recordings (`.gmem.jsonl.gz`, kernel-matrix/gmem.ts: a scripted scenario, not
// random) are replayed below on their own.
const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.jsonl.gz') && !f.endsWith('.gmem.jsonl.gz'))
  .sort();
const gmemFiles = readdirSync(DIR)
  .filter((f) => f.endsWith('.gmem.jsonl.gz'))
  .sort();

interface Result {
  readonly file: string;
  readonly profile: Profile | null;
  readonly summary: ReplaySummary | null;
  readonly error: unknown;
  /** set_user_memory_region and get_dirty_log requests per as_id. */
  readonly perAsId: ReadonlyMap<number, number>;
}

async function check(file: string): Promise<Result> {
  let profile: Profile | null = null;
  const perAsId = new Map<number, number>();
  async function* tap(lines: AsyncIterable<TraceLine>): AsyncGenerator<TraceLine> {
    for await (const t of lines) {
      if (t.kind === 'profile') profile ??= t.profile;
      else if (t.request.op === 'set_user_memory_region' || t.request.op === 'get_dirty_log') {
        const slot = t.request.op === 'get_dirty_log' ? t.request.slot : t.request.region.slot;
        perAsId.set(slot >>> 16, (perAsId.get(slot >>> 16) ?? 0) + 1);
      } else if (t.request.op === 'write') perAsId.set(t.request.asId, (perAsId.get(t.request.asId) ?? 0) + 1);
      yield t;
    }
  }
  const path = `${DIR}${file}`;
  try {
    // The start profile only matters until the trace's profile line, which comes first.
    const summary = await replay(tap(readTrace(fileLines(path), path)), {
      profile: PROFILES['x86_64']!,
      reportLimit: 20,
    });
    return { file, profile, summary, error: null, perAsId };
  } catch (error) {
    return { file, profile, summary: null, error, perAsId };
  }
}

const results = await Promise.all(files.map(check));

const isDirty = (file: string): boolean => file.endsWith('.dirty.jsonl.gz');
const isDirtyRandom = (file: string): boolean => file.endsWith('.dirty-random.jsonl.gz');

function title(r: Result): string {
  const rules = r.summary === null ? [] : [...(isDirty(r.file) || isDirtyRandom(r.file) ? r.summary.firedCounts : r.summary.ruleCounts).keys()].sort();
  const tags = rules.map((id) => `[${id}]`).join('');
  const kernel = r.file.replace(/\.jsonl\.gz$/, '');
  const steps = r.summary === null ? '?' : String(r.summary.steps);
  const nomem = r.summary === null || r.summary.resourceSteps === 0 ? '' : ` (${r.summary.resourceSteps} of them ENOMEM where the model creates the slot)`;
  return `${tags} ${kernel}: the kernel's ${steps} recorded answers${nomem} (two address spaces) agree with the model`;
}

describe.skipIf(files.length === 0)('real kernels under QEMU (test/ground-truth/kernel-matrix)', () => {
  for (const r of results) {
    it(title(r), () => {
      if (r.error !== null) throw r.error;
      expect(r.profile, `${r.file} must start with a profile line`).not.toBeNull();
      expect(r.profile!.addressSpaces).toBe(2);
      const s = r.summary!;
      expect(s.steps).toBeGreaterThan(isDirty(r.file) || isDirtyRandom(r.file) ? 200 : 1000);
      if (isDirty(r.file))
        expect(
          DIRTY_RULES.filter((id) => !s.firedCounts.has(id)),
          'spec/25 rules the scenario did not fire',
        ).toEqual([]);
      if (isDirty(r.file))
        expect(
          (r.profile!.dirtyRingMaxBytes > 0 ? DIRTY_RING_RULES : NO_RING_RULES).filter((id) => !s.firedCounts.has(id)),
          'dirty-ring rules the ring part did not fire',
        ).toEqual([]);
      // Both address spaces carry a large share of the requests.
      const total = [...r.perAsId.values()].reduce((a, b) => a + b, 0);
      expect(r.perAsId.get(0) ?? 0).toBeGreaterThan(total / 4);
      expect(r.perAsId.get(1) ?? 0).toBeGreaterThan(total / 4);
      expect(s.mismatches, formatReplay(s, false)).toBe(0);
    });
  }
});

/** What a line that binds guest_memfd files decides (6.18 and 7.3 alike, 7.3 adding its late binding check). */
const BINDING_RULES = [
  'MS-GMS-02',
  'MS-GMS-03',
  'MS-GMS-04',
  'MS-GMS-05',
  'MS-GMS-06',
  'MS-GMB-01',
  'MS-GMB-02',
  'MS-GMB-03',
  'MS-GMB-04',
  'MS-GMB-05',
  'MS-GMF-04',
  'MS-ATR-06',
];

/** The chapter-28 rules each line's scenario must have decided (what the kernel showed). */
const GMEM_RULES: Readonly<Record<string, readonly string[]>> = {
  '5.10': ['MS-CAP-01', 'MS-CAP-02', 'MS-CAP-06', 'MS-CAP-07', 'MS-CAP-09', 'MS-CAP-10', 'MS-VM-01'],
  '6.1': ['MS-CAP-06', 'MS-CAP-07', 'MS-CAP-09', 'MS-VM-01'],
  '6.12': ['MS-GMS-01', 'MS-GMF-02', 'MS-GMF-03', 'MS-GMF-04', 'MS-ATR-02', 'MS-ATR-03', 'MS-ATR-04', 'MS-ATR-05', 'MS-ATR-06', 'MS-CAP-09', 'MS-VM-01'],
  '6.18': BINDING_RULES,
  // 7.3: the create that is both bound and above the max gfn is decided by the max gfn.
  '7.3': [...BINDING_RULES, 'MS-X86-01'],
};

const gmemResults = await Promise.all(gmemFiles.map(check));

describe.skipIf(gmemFiles.length === 0)('the 6.8+ memory API on real kernels (test/ground-truth/kernel-matrix/*.gmem.jsonl.gz)', () => {
  for (const r of gmemResults) {
    const line = r.file.replace(/\.gmem\.jsonl\.gz$/, '');
    const want = GMEM_RULES[line] ?? [];
    it(`${want.map((id) => `[${id}]`).join('')} ${line}: the kernel's answers to the memory-API scenario agree with the model, rule for rule`, () => {
      if (r.error !== null) throw r.error;
      const s = r.summary!;
      expect(s.steps).toBeGreaterThan(50);
      expect(s.mismatches, formatReplay(s, false)).toBe(0);
      const decided = [...s.ruleCounts.keys()];
      for (const id of want) expect(decided, `${line} decided by ${id}`).toContain(id);
    });
  }
});

describe.skipIf(!files.includes('7.3.dirty.jsonl.gz'))('the dirty-bits traces compare the bits', () => {
  it('a kernel bitmap changed by one bit is a mismatch', async () => {
    const { gunzipSync } = await import('node:zlib');
    const { readFileSync } = await import('node:fs');
    const text = gunzipSync(readFileSync(`${DIR}7.3.dirty.jsonl.gz`)).toString('utf8');
    const target = '"bitmap":"0002"';
    expect(text).toContain(target);
    const tampered = text.replace(target, '"bitmap":"0003"');
    const lines = tampered.split('\n').filter((l) => l !== '');
    const s = await replay(readTrace(lines, '7.3.dirty (tampered)'), { profile: PROFILES['x86_64']!, reportLimit: 5 });
    expect(s.mismatches).toBe(1);
    expect(s.first[0]!.request.op).toBe('get_dirty_log');
  });
});
