/**
 * The selftest test_add_max_memory_regions() through each implementation: create every user
 * slot of one address space (2 MiB each, at gpa id * 2 MiB, ascending, the legacy array's
 * worst case), then one more, which fails with EINVAL.
 */
import { describe, expect, it } from 'vitest';
import { PROFILES } from '../model/profiles.js';
import { PAGE_SHIFT, type SetOutcome } from '../model/types.js';
import { IMPLEMENTATIONS } from './index.js';
import { DEEP } from '../test/knobs.js';

const MEM_REGION_SIZE = 0x20_0000n;
const HOST_BASE = 0x1000_0000_0000n;
const CREATE: SetOutcome = { ok: true, change: 'CREATE' };

// The legacy array is O(n) per update by design, so filling 32764 slots takes it tens of
// seconds: by default it fills its own kernel's 509; MEMSLOT_DEPTH=deep runs it at 32764 too.
const CASES: [string, keyof typeof IMPLEMENTATIONS, string][] = [
  ['scalable', 'scalable', 'x86_64-nosmm'],
  ['legacy', 'legacy', 'linux-5.10-x86_64'],
  ...(DEEP ? [['legacy', 'legacy', 'x86_64-nosmm'] as [string, keyof typeof IMPLEMENTATIONS, string]] : []),
];

describe('add max memory regions', () => {
  for (const [name, implName, profileName] of CASES) {
    const profile = PROFILES[profileName]!;
    const max = profile.userMemSlots;
    const factory = IMPLEMENTATIONS[implName];
    it(`[MS-CRT-02][MS-VAL-02] ${name}: all ${max} user slots are created under ${profileName}, slot ${max} fails with EINVAL`, () => {
      const impl = factory(profile);
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
      expect(extra).toEqual({ ok: false, errno: 'EINVAL' });

      const pages = MEM_REGION_SIZE >> PAGE_SHIFT;
      expect(impl.slots(0)).toHaveLength(max);
      expect(impl.nrMemslotPages()).toBe(BigInt(max) * pages);
      // [MS-GEN-02] One publish per CREATE: N per CREATE.
      expect(impl.generation(0)).toBe(BigInt(max) * BigInt(profile.addressSpaces));
      for (const id of [0, 1, Math.min(4097, max - 2), max - 1]) {
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
    }, 180_000);
  }
});
