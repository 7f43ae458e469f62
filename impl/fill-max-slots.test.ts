/**
 * The selftest test_add_max_memory_regions() through each implementation: create every user
 * slot of one address space (2 MiB each, at gpa id * 2 MiB, ascending, the legacy array's
 * worst case), then one more, which fails with EINVAL.
 */
import { describe, expect, it } from 'vitest';
import { PROFILES } from '../model/profiles.js';
import { PAGE_SHIFT, type SetOutcome } from '../model/types.js';
import { IMPLEMENTATIONS } from './index.js';

const MEM_REGION_SIZE = 0x20_0000n;
const HOST_BASE = 0x1000_0000_0000n;
const CREATE: SetOutcome = { ok: true, change: 'CREATE' };

describe('add max memory regions', () => {
  const profile = PROFILES['x86_64-nosmm']!;
  const max = profile.userMemSlots;

  for (const [name, factory] of Object.entries(IMPLEMENTATIONS)) {
    it(`[MS-CRT-02][MS-VAL-02] ${name}: all ${max} user slots are created, slot ${max} fails with EINVAL`, () => {
      const impl = factory(profile);
      // CPU time of this worker process rather than wall time, so that other test files
      // running in parallel on a busy machine do not count against the bound.
      const start = process.cpuUsage();
      for (let id = 0; id < max; id++) {
        const r = impl.setUserMemoryRegion({
          slot: id,
          flags: 0,
          guestPhysAddr: BigInt(id) * MEM_REGION_SIZE,
          memorySize: MEM_REGION_SIZE,
          userspaceAddr: HOST_BASE + BigInt(id) * MEM_REGION_SIZE,
        });
        // One expect per failure only: 32764 expect() calls would dominate the timing.
        if (!r.ok || r.change !== 'CREATE') expect({ id, r }).toEqual({ id, r: CREATE });
      }
      const extra = impl.setUserMemoryRegion({
        slot: max,
        flags: 0,
        guestPhysAddr: BigInt(max) * MEM_REGION_SIZE,
        memorySize: MEM_REGION_SIZE,
        userspaceAddr: HOST_BASE + BigInt(max) * MEM_REGION_SIZE,
      });
      const used = process.cpuUsage(start);
      const elapsedMs = (used.user + used.system) / 1000;
      expect(extra).toEqual({ ok: false, errno: 'EINVAL' });

      const pages = MEM_REGION_SIZE >> PAGE_SHIFT;
      expect(impl.slots(0)).toHaveLength(max);
      expect(impl.nrMemslotPages()).toBe(BigInt(max) * pages);
      // [MS-GEN-02] One publish per CREATE, N = 1.
      expect(impl.generation(0)).toBe(BigInt(max));
      for (const id of [0, 1, 4097, max - 1]) {
        const gfn = BigInt(id) * pages + 7n;
        expect(impl.gfnToMemslot(0, gfn)?.id).toBe(id);
        expect(impl.idToMemslot(0, id)?.baseGfn).toBe(BigInt(id) * pages);
      }
      // The overlap check still sees every slot: a slot across the last two fails with EEXIST.
      const across = impl.setUserMemoryRegion({
        slot: 0,
        flags: 0,
        guestPhysAddr: BigInt(max - 1) * MEM_REGION_SIZE - 0x1000n,
        memorySize: MEM_REGION_SIZE,
        userspaceAddr: HOST_BASE,
      });
      expect(across).toEqual({ ok: false, errno: 'EEXIST' });
      if (name === 'scalable') expect(elapsedMs).toBeLessThan(2000);
    }, 180_000);
  }
});
