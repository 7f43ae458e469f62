/**
 * A dense differential of the dirty ring: short random sequences of the ring's requests over a
 * few small logged slots (ring sizes at every size rule's edge, writes that revisit pages, slot
 * changes between pushes and resets, resets of entries whose slot moved or shrank), answered by
 * the model and by both implementations, which must agree at every step. The general suite
 * (conformance.test.ts) reaches the ring too, but rarely this deep into one VM's ring.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IMPLEMENTATIONS } from '../impl/index.js';
import { KVM_MEM_LOG_DIRTY_PAGES, PROFILES, createVm, type Profile, type VmState } from '../model/index.js';
import { implStep, modelStep, requestDefect } from '../trace/execute.js';
import { answerText, requestText, type Request } from '../trace/trace.js';
import { runs, seed } from '../test/knobs.js';

const BASE = PROFILES['x86_64']!;
const UADDR = 0x7f00_0000_0000n;

/** Slot `id` (as `asId`) at its own 1 GiB of guest memory, `npages` long, logged or not. */
function region(asId: number, id: number, npages: number, logged: boolean, moved: boolean): Request {
  return {
    op: 'set_user_memory_region',
    region: {
      slot: (asId << 16) | id,
      flags: logged ? KVM_MEM_LOG_DIRTY_PAGES : 0,
      guestPhysAddr: BigInt(id) * 0x4000_0000n + (moved ? 0x2000_0000n : 0n),
      memorySize: BigInt(npages) << 12n,
      userspaceAddr: UADDR + BigInt(id) * 0x4000_0000n,
    },
  };
}

const requestArb: fc.Arbitrary<Request> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.constantFrom<'DIRTY_LOG_RING' | 'DIRTY_LOG_RING_ACQ_REL'>('DIRTY_LOG_RING', 'DIRTY_LOG_RING_ACQ_REL'),
        fc.constantFrom(0n, 3n, 2048n, 4096n, 0x3000n, 8192n, 0x20_0000n, 0x1_0000_1000n),
      )
      .map(([cap, args0]): Request => ({ op: 'enable_cap', cap, args0, flags: 0 })),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.nat({ max: 1 }), fc.nat({ max: 2 }), fc.constantFrom(0, 1, 2, 8, 70), fc.boolean(), fc.boolean())
      .map(([a, id, n, logged, moved]) => region(a, id, n, logged, moved)),
  },
  {
    weight: 8,
    arbitrary: fc
      .tuple(
        // Mostly the two slots of the prefix (as 0 id 0, as 1 id 1) and their first pages, so that pages are written again.
        fc.oneof({ weight: 4, arbitrary: fc.constantFrom([0, 0], [1, 1]) }, { weight: 1, arbitrary: fc.tuple(fc.nat({ max: 1 }), fc.nat({ max: 2 })) }),
        fc.oneof({ weight: 3, arbitrary: fc.nat({ max: 3 }) }, { weight: 1, arbitrary: fc.nat({ max: 80 }) }),
        fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
      )
      .map(([[asId, id], page, moved]): Request => ({
        op: 'write',
        asId: asId!,
        gpa: BigInt(id!) * 0x4000_0000n + (moved ? 0x2000_0000n : 0n) + (BigInt(page) << 12n),
      })),
  },
  { weight: 2, arbitrary: fc.constant<Request>({ op: 'harvest_dirty_ring' }) },
  { weight: 2, arbitrary: fc.constant<Request>({ op: 'reset_dirty_rings' }) },
  { weight: 1, arbitrary: fc.nat({ max: 2 }).map((id): Request => ({ op: 'get_dirty_log', slot: id })) },
  { weight: 1, arbitrary: fc.constant<Request>({ op: 'clear_dirty_log', clear: { slot: 0, firstPage: 0n, numPages: 64, bitmap: 'ff' } }) },
);

describe('the dirty ring: model and implementations agree step by step', () => {
  // 253 reserved entries: a 4096-byte ring's soft limit is 3, so sequences reach it.
  const profiles: Profile[] = [
    BASE,
    { ...BASE, name: 'x86_64,dirty_ring_rsvd_entries=253', dirtyRingRsvdEntries: 253 },
    { ...BASE, name: 'x86_64,write_drops_mappings', writeDropsMappings: true },
  ];
  for (const p of profiles) {
    it(`[MS-RNG-08][MS-RNG-10][MS-RNG-11][MS-RNG-14] under ${p.name}`, () => {
      let fired = new Set<string>();
      fc.assert(
        fc.property(fc.boolean(), fc.array(requestArb, { minLength: 10, maxLength: 40 }), (ring, random) => {
          // Mostly a VM that has its ring and two logged slots before the first write (which
          // creates the vCPU and closes the ring's enable): the random part then goes deep.
          const requests = ring
            ? [
                { op: 'enable_cap', cap: 'DIRTY_LOG_RING', args0: 4096n, flags: 0 } as Request,
                region(0, 0, 8, true, false),
                region(1, 1, 70, true, false),
                ...random,
              ]
            : random;
          let vm: VmState = createVm(p);
          const impls = [IMPLEMENTATIONS.scalable(p), IMPLEMENTATIONS.legacy(p)];
          for (const r of requests) {
            if (requestDefect(vm, r) !== null) continue;
            const m = modelStep(vm, r);
            vm = m.state;
            for (const f of m.fired) fired.add(f);
            for (const impl of impls) {
              const got = implStep(impl, r);
              if (answerText(got) !== answerText(m.answer))
                throw new Error(`${impl.name}: ${requestText(r)}: model ${answerText(m.answer)}, implementation ${answerText(got)}`);
            }
          }
        }),
        { numRuns: runs(150), seed: seed(20_261_202) },
      );
      // The sequences reach the ring's deep states under this profile.
      for (const rule of ['MS-RNG-07', 'MS-RNG-09', 'MS-RNG-11', 'MS-RNG-12', 'MS-RNG-14']) expect(fired).toContain(rule);
      if (p.dirtyRingRsvdEntries === 253) expect(fired).toContain('MS-RNG-08');
      if (!p.writeDropsMappings) expect(fired).toContain('MS-RNG-10');
      fired = new Set();
    });
  }
});
