/**
 * The oracle as the kernel (sut/serve.ts), in process: a session answers as the recorded kernel
 * did, names the line and field of a malformed request and goes on, reports each difference
 * with a checked SUT at once, records a trace that replays clean, and, with a profile of 32
 * user ids, shows a planted slot-manager bug per VMM check within a hundred requests.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as model from '../model/index.js';
import { profileFromJson, profileToJson, PROFILES, type Profile } from '../model/profiles.js';
import { modelStep } from '../trace/execute.js';
import { replay } from '../trace/replay.js';
import {
  OPS,
  RESET_VM_TYPE,
  answerText,
  answersEqual,
  parseAnswer,
  parseTraceLine,
  readTrace,
  requestText,
  type Answer,
  type Request,
} from '../trace/trace.js';
import { ServeSession, formatDifference, type Difference } from './serve.js';

const NOSMM = PROFILES['x86_64-nosmm']!;
/** The profile file of spec/60 with "user_mem_slots": 32: exhaustion in 32 requests. */
const SMALL: Profile = (() => {
  const p = profileFromJson(
    { address_spaces: 1, user_mem_slots: 32, mem_slots_num: 35, max_gfn: '0xffffffffff', user_addr_max: '0x7ffffffff000', max_nr_pages: '0x7fffffff' },
    'small-32',
  );
  if (!p.ok) throw new Error(p.error);
  return p.profile;
})();

const h = (v: bigint): string => `0x${v.toString(16)}`;
const set = (slot: number, gpa: bigint, size: bigint, uaddr: bigint, flags = 0): string =>
  JSON.stringify({ op: 'set_user_memory_region', slot, flags, guest_phys_addr: h(gpa), memory_size: h(size), userspace_addr: h(uaddr) });
const MB = 0x100000n;
const U = 0x7f00_0000_0000n;

function session(profile: Profile, extra: Partial<ConstructorParameters<typeof ServeSession>[0]> = {}): ServeSession {
  return new ServeSession({ profile, name: 'test', source: 'stdin', ...extra });
}

describe('serve: the oracle as the kernel', () => {
  it('answers hello with the protocol, its name, every op the model answers and the profile', async () => {
    const s = session(SMALL);
    const hello = JSON.parse((await s.handle('{"op":"hello","protocol":1}'))!);
    expect(hello).toEqual({ protocol: 1, name: 'test', ops: ['hello', ...OPS, RESET_VM_TYPE], profile: JSON.parse(JSON.stringify(profileToJson(SMALL))) });
    expect(JSON.parse((await s.handle('{"op":"hello","protocol":2}'))!).error).toMatch(/^stdin line 2, field "protocol": /);
  });

  it('answers every request of the recorded kernel trace exactly as the kernel did (test/ground-truth/kernel-handpicked.jsonl)', async () => {
    const lines = readFileSync(new URL('../test/ground-truth/kernel-handpicked.jsonl', import.meta.url), 'utf8').split('\n');
    let s = session(NOSMM);
    let compared = 0;
    const wrong: string[] = [];
    for (const [i, text] of lines.entries()) {
      const t = parseTraceLine(text, i + 1);
      if (t === null) continue;
      if (t.kind === 'profile') {
        s = session(t.profile);
        continue;
      }
      const answer = await s.handle(text); // the line as it is, `expect` and all
      if (t.expect !== undefined) {
        compared++;
        if (!answersEqual(parseAnswer(t.request, JSON.parse(answer!), i + 1, 'serve'), t.expect))
          wrong.push(`line ${i + 1}: serve ${answer}, kernel ${answerText(t.expect)}`);
      }
    }
    expect(compared).toBeGreaterThan(300);
    expect(wrong).toEqual([]);
  });

  it('a malformed request line gets an error answer naming the line and the field, and the session goes on', async () => {
    const s = session(NOSMM);
    const answers = [];
    for (const l of [
      set(0, MB, MB, U),
      '{"op":"set_user_memory_region","slot":1,"flags":0,"guest_phys_addr":4096,"memory_size":"0x1000","userspace_addr":"0x0"}',
      '{"op":"get_dirty_log"}',
      '{"op":"get_slots","as_id":1}',
      '{"op":"frobnicate"}',
      'not json',
      '{"profile":{}}',
      '',
      '{"op":"get_slots","as_id":0}',
    ]) {
      answers.push(await s.handle(l));
    }
    expect(answers[0]).toBe('{"ret":0}');
    expect(JSON.parse(answers[1]!).error).toMatch(/^stdin line 2, field "guest_phys_addr": is a u64: write it as a string/);
    expect(JSON.parse(answers[2]!).error).toBe('stdin line 3, field "slot": missing');
    expect(JSON.parse(answers[3]!).error).toMatch(/^stdin line 4, field "as_id": profile x86_64-nosmm has 1 address space/);
    expect(JSON.parse(answers[4]!).error).toMatch(/^stdin line 5, field "op": unknown op "frobnicate"/);
    expect(JSON.parse(answers[5]!).error).toMatch(/^stdin line 6: not valid JSON/);
    expect(JSON.parse(answers[6]!).error).toMatch(/^stdin line 7, field "profile"/);
    expect(answers[7]).toBeNull();
    expect(JSON.parse(answers[8]!).slots).toHaveLength(1);
    expect([s.requests, s.malformed]).toEqual([2, 6]);
  });

  it('--check-against: each difference is reported at once with the line, both answers and the rule; an ENOMEM the kernel may give is followed', async () => {
    // A SUT that answers from the model, except that it refuses id 1 (EEXIST) and is short of memory for id 2.
    let vm = model.createVm(NOSMM);
    const sut = {
      description: 'planted',
      supports: () => true,
      request: async (r: Request): Promise<Answer> => {
        const m = modelStep(vm, r);
        if ('region' in r && (r.region.slot === 1 || r.region.slot === 2)) return { kind: 'errno', errno: r.region.slot === 1 ? 'EEXIST' : 'ENOMEM' };
        vm = m.state;
        return m.answer;
      },
    };
    const seen: Difference[] = [];
    const s = session(NOSMM, { checkAgainst: sut, onDifference: (d) => seen.push(d) });
    await s.start();
    expect(await s.handle(set(0, MB, MB, U))).toBe('{"ret":0}');
    expect(seen).toEqual([]);
    expect(await s.handle(set(1, 4n * MB, MB, U))).toBe('{"ret":0}');
    expect(seen.map((d) => [d.line, answerText(d.sut), answerText(d.model), d.rule])).toEqual([[2, '{"errno":"EEXIST"}', '{"ret":0}', 'MS-CRT-02']]);
    expect(formatDifference(seen[0]!, 'planted')).toMatch(
      /^difference at stdin line 2: .*\n {2}planted: \{"errno":"EEXIST"\}\n {2}model: \{"ret":0\} {3}\[MS-CRT-02\]/,
    );
    // MS-RES-01: the kernel may answer ENOMEM to a create; serve follows it and tells the client so.
    expect(await s.handle(set(2, 8n * MB, MB, U))).toBe('{"errno":"ENOMEM"}');
    expect(seen).toHaveLength(1);
    expect(s.differences).toBe(1);
  });

  it('--check-against a SUT that lacks an op that changes the VM: a note, and the rest is not checked', async () => {
    const notes: string[] = [];
    const s = session(NOSMM, {
      checkAgainst: { description: 'tiny', supports: (op) => op !== 'set_internal_memslot', request: async () => ({ kind: 'ok' }) },
      onNote: (t) => notes.push(t),
    });
    await s.handle('{"op":"set_internal_memslot","id":32765,"guest_phys_addr":"0xfee00000","memory_size":"0x1000","userspace_addr":"0x7e0000000000"}');
    expect(notes).toEqual(['stdin line 1: tiny does not list set_internal_memslot, which changes the VM: the rest of this session is not checked']);
    expect(s.uncheckable).toBe(true);
  });

  it('--record writes the exchange as a trace that replays with zero mismatches', async () => {
    const out: string[] = [];
    const s = session(SMALL, { record: (l) => out.push(l) });
    for (const l of ['{"op":"hello","protocol":1}', set(0, MB, MB, U), set(1, MB, MB, U), '{"op":"get_slots","as_id":0}', '{"op":"reset"}', 'bad'])
      await s.handle(l);
    expect(out).toHaveLength(4);
    expect(out[1]).toBe(`${set(1, MB, MB, U).slice(0, -1)},"expect":{"errno":"EEXIST"}}`);
    const summary = await replay(readTrace(out), { profile: SMALL });
    expect([summary.steps, summary.mismatches]).toEqual([4, 0]);
  });

  // Planted slot-manager bugs, each driven against serve under the 32-id profile; serve's VMM checks name each.
  async function drive(vmm: (ask: (line: string) => Promise<Answer>) => Promise<void>): Promise<string[]> {
    const s = session(SMALL, { lint: true });
    await vmm(async (line) => {
      const a = JSON.parse((await s.handle(line))!);
      return 'ret' in a ? { kind: 'ret' } : { kind: 'errno', errno: a.errno };
    });
    return s.finish().map((f) => f.check);
  }

  it('[VMM-IDS-01][VMM-IDS-02] a planted "highest id plus one" allocator runs out at id 32 in 65 requests, with 31 ids free', async () => {
    let requests = 0;
    let failedAt = -1;
    const found = await drive(async (ask) => {
      let next = 0;
      let mapped: number | null = null;
      // Remap one BAR over and over (VFIO, the guest moves the BAR): delete the old slot, create the new one at next++.
      for (let remap = 0; remap < 40 && failedAt < 0; remap++) {
        if (mapped !== null) {
          await ask(set(mapped, 0xe000_0000n, 0n, 0n));
          requests++;
        }
        const a = await ask(set(next, 0xe000_0000n + BigInt(remap % 2) * MB, MB, U));
        requests++;
        if (a.kind === 'errno') failedAt = next;
        else mapped = next;
        next++;
      }
    });
    expect(failedAt).toBe(32);
    expect(requests).toBe(65);
    expect(found).toEqual(['VMM-IDS-02', 'VMM-IDS-01']);
  });

  it('[VMM-WIN-01] a planted split done as delete then create, and [VMM-X86-01] a planted scratch slot over the APIC page', async () => {
    expect(
      await drive(async (ask) => {
        await ask(set(0, 0n, 4n * MB, U));
        await ask(set(0, 0n, 0n, 0n)); // split [0, 4M) at 1M: delete ...
        await ask(set(0, 0n, MB, U)); // ... then create both halves
        await ask(set(1, MB, 3n * MB, U + MB));
      }),
    ).toEqual(['VMM-WIN-01', 'VMM-WIN-01']);
    expect(await drive(async (ask) => void (await ask(set(0, 0xf977_e000n, 0x1_0000_0000n - 0xf977_e000n, U))))).toEqual(['VMM-X86-01', 'VMM-X86-01']);
  });

  it('[VMM-REJ-01][VMM-REJ-02] a planted slot manager that ignores errors retries an overlap unchanged and later deletes the slot it never got', async () => {
    expect(
      await drive(async (ask) => {
        await ask(set(0, 0n, 2n * MB, U));
        for (let i = 0; i < 2; i++) await ask(set(1, MB, MB, U + 4n * MB)); // EEXIST, twice
        await ask(set(1, MB, 0n, 0n)); // unplug what it believes it plugged
      }),
    ).toEqual(['VMM-REJ-01', 'VMM-REJ-02']);
  });

  it('the session never throws on what a client sends (a request text equal to its canonical form round-trips)', async () => {
    const s = session(NOSMM);
    const r: Request = { op: 'gfn_to_memslot', asId: 0, gfn: 0x100n };
    expect(await s.handle(requestText(r))).toBe('{"slot":null}');
  });
});
