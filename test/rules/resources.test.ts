/** spec/27-resource-failures.md: ENOMEM where the kernel could not allocate. */
import { describe, expect, it } from 'vitest';
import { memslots, setUserMemoryRegionNoMem, type MemoryRegion, type VmState } from '../../model/index.js';
import { judge, modelStep } from '../../trace/execute.js';
import { replay } from '../../trace/replay.js';
import { parseTraceLine, type TraceLine } from '../../trace/trace.js';
import { NOSMM, X86, L510, build, del, gen, pages, region, slotNr, slotsOf } from './helpers.js';

const UA = 0x7f00_0000_0000n;
const BIG = pages(0x7fff_ffffn); // 2^31 - 1 pages: 5.10 in a 1 GiB guest cannot allocate their metadata

function noMem(vm: VmState, r: MemoryRegion) {
  const s = setUserMemoryRegionNoMem(vm, r);
  expect(s).not.toBeNull();
  expect(s!.result).toEqual({ ok: false, errno: 'ENOMEM', rule: 'MS-RES-01' });
  return s!;
}

describe('resource failures (spec/27)', () => {
  const vm = build(X86, [region(slotNr(0, 1), 0x100000n, pages(4n), UA, 1), region(slotNr(1, 2), 0x100000n, pages(4n), UA)]);

  it('[MS-RES-01] a create, flags change, delete or move the model accepts may fail with ENOMEM', () => {
    for (const r of [
      region(slotNr(0, 3), 0x400000n, pages(0x10_0000n), UA), // CREATE
      region(slotNr(0, 1), 0x100000n, pages(4n), UA, 0), // FLAGS_ONLY
      del(slotNr(0, 1)), // DELETE
      region(slotNr(0, 1), 0x800000n, pages(4n), UA, 1), // MOVE
    ]) {
      noMem(vm, r);
    }
  });

  it('[MS-RES-01] the identical re-issue and every rejected request cannot fail with ENOMEM', () => {
    expect(setUserMemoryRegionNoMem(vm, region(slotNr(0, 1), 0x100000n, pages(4n), UA, 1))).toBeNull(); // MS-NOP-01
    expect(setUserMemoryRegionNoMem(vm, region(slotNr(0, 3), 0x101000n, pages(1n), UA))).toBeNull(); // MS-OVL-01
    expect(setUserMemoryRegionNoMem(vm, del(slotNr(0, 9)))).toBeNull(); // MS-DEL-01
    expect(setUserMemoryRegionNoMem(vm, region(slotNr(0, 3), 0x400000n, pages(0x8000_0000n), UA))).toBeNull(); // MS-VAL-11
  });

  it('[MS-RES-02] after ENOMEM the slots and page count are unchanged; CREATE, FLAGS_ONLY and DELETE publish nothing', () => {
    for (const r of [region(slotNr(0, 3), 0x400000n, pages(0x10_0000n), UA), region(slotNr(0, 1), 0x100000n, pages(4n), UA, 0), del(slotNr(0, 1))]) {
      const s = noMem(vm, r);
      expect(s.state).toBe(vm);
      expect(s.published).toEqual([]);
      expect(s.fired).toEqual(['MS-RES-01', 'MS-RES-02']);
    }
  });

  it('[MS-RES-02] a MOVE that fails with ENOMEM publishes its INVALID copy and restores it: +2N in its address space only', () => {
    const s = noMem(vm, region(slotNr(1, 2), 0x800000n, pages(4n), UA));
    expect(slotsOf(s.state, 1)).toEqual(slotsOf(vm, 1));
    expect(s.state.nrMemslotPages).toBe(vm.nrMemslotPages);
    expect(gen(s.state, 1)).toBe(gen(vm, 1) + 4n); // N = 2
    expect(gen(s.state, 0)).toBe(gen(vm, 0));
    expect(s.published.length).toBe(2);
    expect(memslots(s.published[0]!, 1)[0]!.flags & (1 << 16)).not.toBe(0); // the INVALID copy
  });

  it('[MS-RES-01] also under 5.10 (no max gfn) and without SMM', () => {
    for (const p of [L510, NOSMM]) noMem(build(p, []), region(0, 0n, BIG, 0x1000_0000n));
  });
});

function lines(texts: string[]): AsyncIterable<TraceLine> {
  return (async function* () {
    for (const [i, t] of texts.entries()) yield parseTraceLine(t, i + 1)!;
  })();
}

const set = (slot: number, gpa: string, size: string, expect: string): string =>
  `{"op":"set_user_memory_region","slot":${slot},"flags":0,"guest_phys_addr":"${gpa}","memory_size":"${size}","userspace_addr":"0x7f0000000000","expect":${expect}}`;

describe('replay and the resource branch', () => {
  it('[MS-RES-01] a kernel answer of ENOMEM at an accepted step replays with 0 mismatches, counted, and the model follows it', async () => {
    const s = await replay(
      lines([
        set(0, '0x0', '0x7ffffff000', '{"errno":"ENOMEM"}'), // 2^27 - 1 pages, not created
        set(1, '0x0', '0x1000', '{"ret":0}'), // so gfn 0 is free
        set(0, '0x0', '0x0', '{"errno":"EINVAL"}'), // and slot 0 does not exist [MS-DEL-01]
      ]),
      { profile: NOSMM },
    );
    expect(s.mismatches).toBe(0);
    expect(s.resourceSteps).toBe(1);
    expect(s.ruleCounts.get('MS-RES-01')).toBe(1);
  });

  it('[MS-RES-01] ENOMEM where the model rejects, or at an identical re-issue, stays a mismatch', async () => {
    const s = await replay(
      lines([
        set(0, '0x0', '0x1000', '{"ret":0}'),
        set(1, '0x0', '0x1000', '{"errno":"ENOMEM"}'), // overlaps slot 0: EEXIST
        set(0, '0x0', '0x1000', '{"errno":"ENOMEM"}'), // identical re-issue: 0
      ]),
      { profile: NOSMM },
    );
    expect(s.mismatches).toBe(2);
    expect(s.resourceSteps).toBe(0);
    expect(s.first.map((m) => [m.line, m.model])).toEqual([
      [2, { kind: 'errno', errno: 'EEXIST' }],
      [3, { kind: 'ret' }],
    ]);
  });

  it('[MS-RES-01] with a SUT, either answer is accepted from the trace and the SUT is followed', async () => {
    const trace = [set(0, '0x0', '0x1000', '{"errno":"ENOMEM"}'), set(0, '0x0', '0x1000', '{"ret":0}')];
    // The SUT creates the slot the trace's kernel could not, and then answers the re-issue.
    const s = await replay(lines(trace), { profile: NOSMM, sut: async () => ({ kind: 'ret' }) });
    expect(s.mismatches).toBe(0);
    expect(s.resourceSteps).toBe(0);
  });

  it('[MS-RES-01] judge() offers the branch only for set_user_memory_region', () => {
    const vm = build(NOSMM, []);
    const r = parseTraceLine('{"op":"get_dirty_log","slot":0}', 1);
    if (r?.kind !== 'request') throw new Error('not a request');
    const j = judge(vm, r.request, modelStep(vm, r.request), { kind: 'errno', errno: 'ENOMEM' });
    expect(j.resource).toBe(false);
    expect(j.allows({ kind: 'errno', errno: 'ENOMEM' })).toBe(false);
  });
});
