/**
 * Real kernels' answers (test/ground-truth/kernel-matrix/*.jsonl.gz, recorded by
 * `npm run kernel-matrix` from Debian's kernels booted under QEMU, two address spaces) replayed
 * through the model with each trace's own profile line: every answer must be the model's.
 *
 * The titles start with the rules that decided the trace's requests (computed by the replay
 * itself, so they stay true when the traces are re-recorded).
 *
 * `<kernel>.fill.jsonl.gz` is the kernel's fill-to-the-limit sequence (kernel-matrix/fill.ts).
 * The model's slot arrays make a fill O(n^2): 509 slots (5.10) replay in well under a second,
 * 32,764 slots in both address spaces took 5.5 minutes here, past `npm test`'s budget. Fills of
 * more than FILL_REPLAY_MAX_SLOTS user slots are therefore replayed only with
 * KERNEL_MATRIX_FILL=1 (and listed as skipped otherwise).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { fileLines } from '../../trace/lines.js';
import { formatReplay, replay, type ReplaySummary } from '../../trace/replay.js';
import { readTrace, type TraceLine } from '../../trace/trace.js';
import { PROFILES, type Profile } from '../../model/profiles.js';

const DIR = fileURLToPath(new URL('../ground-truth/kernel-matrix/', import.meta.url));
const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.jsonl.gz'))
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
      }
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

const FILL_REPLAY_MAX_SLOTS = 4096;
const fullFill = process.env['KERNEL_MATRIX_FILL'] === '1';

/** The user_mem_slots of a trace's profile line (line 1). */
function userMemSlots(file: string): number {
  const text = gunzipSync(readFileSync(`${DIR}${file}`)).subarray(0, 4096).toString('utf8');
  const v = JSON.parse(text.slice(0, text.indexOf('\n'))) as { profile?: { user_mem_slots?: number } };
  return v.profile?.user_mem_slots ?? 0;
}

const skipped = files.filter(
  (f) => f.endsWith('.fill.jsonl.gz') && !fullFill && userMemSlots(f) > FILL_REPLAY_MAX_SLOTS,
);
const results = await Promise.all(files.filter((f) => !skipped.includes(f)).map(check));

function title(r: Result): string {
  const rules = r.summary === null ? [] : [...r.summary.ruleCounts.keys()].sort();
  const tags = rules.map((id) => `[${id}]`).join('');
  const kernel = r.file.replace(/\.jsonl\.gz$/, '');
  const steps = r.summary === null ? '?' : String(r.summary.steps);
  return `${tags} ${kernel}: the kernel's ${steps} recorded answers (two address spaces) agree with the model`;
}

describe.skipIf(files.length === 0)('real kernels under QEMU (test/ground-truth/kernel-matrix)', () => {
  for (const f of skipped)
    it.skip(`${f.replace(/\.jsonl\.gz$/, '')}: fill to more than ${FILL_REPLAY_MAX_SLOTS} user slots (KERNEL_MATRIX_FILL=1 replays it)`, () => {});
  for (const r of results) {
    it(title(r), () => {
      if (r.error !== null) throw r.error;
      expect(r.profile, `${r.file} must start with a profile line`).not.toBeNull();
      expect(r.profile!.addressSpaces).toBe(2);
      const s = r.summary!;
      expect(s.steps).toBeGreaterThan(1000);
      // Both address spaces carry a large share of the requests.
      const total = [...r.perAsId.values()].reduce((a, b) => a + b, 0);
      expect(r.perAsId.get(0) ?? 0).toBeGreaterThan(total / 4);
      expect(r.perAsId.get(1) ?? 0).toBeGreaterThan(total / 4);
      expect(s.mismatches, formatReplay(s, false)).toBe(0);
    });
  }
});
