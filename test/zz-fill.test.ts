import { it } from 'vitest';
import * as m from '/work/main/model/index.js';
it('fill', () => {
  let vm = m.createVm(m.PROFILES['x86_64-nosmm']!);
  const t0 = performance.now();
  for (let i = 0; i < 32764; i++) {
    const s = m.setUserMemoryRegion(vm, { slot: i, flags: 0, guestPhysAddr: BigInt(i) * 0x200000n, memorySize: 0x200000n, userspaceAddr: 0x10000000n + BigInt(i) * 0x200000n });
    if (!s.result.ok) throw new Error('x');
    vm = s.state;
  }
  console.log('fill ms', performance.now() - t0);
});
