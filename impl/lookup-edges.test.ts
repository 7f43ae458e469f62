/**
 * Lookups with ids outside every table, for both implementations against the model: the
 * random sequences send ids up to 0xffff but rarely, and never a negative or fractional one
 * (a caller of the library can). Mutation testing found the legacy guard unchecked.
 */
import { describe, expect, it } from 'vitest';
import * as model from '../model/index.js';
import { L510, NOSMM, PAGE, X86, region } from '../test/rules/helpers.js';
import { IMPLEMENTATIONS, type ConcurrentMemslotImpl } from './index.js';

describe.each(Object.entries(IMPLEMENTATIONS))('%s', (_name, make) => {
  it.each([NOSMM, X86, L510])('[MS-LKP-01] id_to_memslot() of an id no table holds is none, as the model says ($name)', (p) => {
    const impl = make(p) as ConcurrentMemslotImpl;
    const vm = model.setUserMemoryRegion(model.createVm(p), region(0, 0n, PAGE, 0x7f00_0000_0000n)).state;
    expect(impl.setUserMemoryRegion(region(0, 0n, PAGE, 0x7f00_0000_0000n)).ok).toBe(true);
    for (const id of [-1, 0.5, p.memSlotsNum, 0xffff, 0x10000, Number.NaN]) {
      expect(model.idToMemslot(vm, 0, id), `model, id ${id}`).toBeNull();
      expect(impl.idToMemslot(0, id), `id ${id}`).toBeNull();
      const reader = impl.srcuReadLock(0);
      expect(reader.idToMemslot(id), `reader, id ${id}`).toBeNull();
      impl.srcuReadUnlock(reader);
    }
    expect(impl.idToMemslot(0, 0)?.id).toBe(0);
  });
});
