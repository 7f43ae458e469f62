import { describe, expect, it } from 'vitest';
import type { MemslotImpl } from '../impl/interface.js';
import { IMPLEMENTATIONS } from '../impl/index.js';
import type { MemoryRegion, SetOutcome } from '../model/types.js';
import type { AsyncMemslotImpl } from '../impl/interface.js';
import { checkImplementation } from './check-implementation.js';
import * as model from '../model/index.js';

/** An async wrapper: every method answers through a promise. */
function asyncOf(impl: MemslotImpl): AsyncMemslotImpl {
  return new Proxy(impl, {
    get: (t, k) => {
      const v = Reflect.get(t, k);
      return typeof v === 'function' ? (...a: unknown[]) => Promise.resolve(v.apply(t, a)) : v;
    },
  }) as unknown as AsyncMemslotImpl;
}

describe('checkImplementation (library API)', () => {
  it('a sync implementation passes the stateful suite', async () => {
    const r = await checkImplementation(IMPLEMENTATIONS.scalable, { seed: 4, runs: 10 });
    expect(r.ok).toBe(true);
  });

  it('an async implementation passes, and one that accepts deleting a missing slot is caught', async () => {
    const good = await checkImplementation((p) => asyncOf(IMPLEMENTATIONS.scalable(p)), { seed: 4, runs: 10 });
    expect(good.ok).toBe(true);
    const buggy = (p: Parameters<typeof IMPLEMENTATIONS.scalable>[0]): AsyncMemslotImpl => {
      const inner = IMPLEMENTATIONS.scalable(p);
      const a = asyncOf(inner);
      return new Proxy(a, {
        get: (t, k) =>
          k === 'setUserMemoryRegion'
            ? async (m: MemoryRegion): Promise<SetOutcome> => {
                const r = inner.setUserMemoryRegion(m);
                // Only the delete of a missing slot ([MS-DEL-01]), not every failing delete (a misaligned one fails MS-VAL-05 first).
                const missing = model.setUserMemoryRegion(model.createVm(p), m).result.rule === 'MS-DEL-01';
                return m.memorySize === 0n && !r.ok && missing ? { ok: true, change: 'DELETE' } : r;
              }
            : Reflect.get(t, k),
      });
    };
    const bad = await checkImplementation(buggy, { seed: 4, runs: 50 });
    if (bad.ok) throw new Error('the planted bug was not caught');
    // The same runner and counterexample as for a sync implementation.
    const cx = bad.counterexample;
    expect(cx.report).toContain('[MS-DEL-01]');
    expect(cx.steps.length).toBeLessThanOrEqual(3);
    expect(cx.c).toContain('KVM_SET_USER_MEMORY_REGION');
  });
});
