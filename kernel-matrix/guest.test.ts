/** The guest: its /init script and QEMU's arguments. */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { PreparedKernel } from './fetch.js';
import { READY_MARKER, initScript, qemuArgs } from './guest.js';

describe('the guest', () => {
  const mods = [
    { name: 'irqbypass', file: 'irqbypass.ko' },
    { name: 'kvm', file: 'kvm.ko' },
    { name: 'ccp', file: 'ccp.ko' },
    { name: 'kvm_amd', file: 'kvm-amd.ko' },
  ];

  it('/init loads the modules in order, kvm_amd with the command line args, then runs the driver on the port', () => {
    const s = initScript(mods);
    const at = (t: string): number => s.indexOf(t);
    expect(at("insmod /lib/modules/'irqbypass.ko'")).toBeLessThan(at("insmod /lib/modules/'kvm.ko'"));
    expect(s).toContain(`insmod /lib/modules/'kvm-amd.ko' $kvm_amd_args`);
    expect(s).not.toContain(`'kvm.ko' $kvm_amd_args`);
    expect(at(READY_MARKER)).toBeLessThan(at('/kvm-sut <&3 >&3'));
    expect(s).toContain('/dev/${p##*/}');
  });

  it('/init is valid sh', () => {
    const r = spawnSync('sh', ['-n'], { input: initScript(mods) });
    expect(r.status).toBe(0);
  });

  it('QEMU runs TCG with 4-level paging, kvm_amd args only when asked', () => {
    const kernel = { vmlinuz: '/k/vmlinuz' } as PreparedKernel;
    const a = qemuArgs({ kernel, initramfs: '/k/i.gz', memory: '1G', consoleLog: '/t/c.log' });
    expect(a.slice(0, 4)).toEqual(['-accel', 'tcg', '-cpu', 'max,la57=off']);
    expect(a[a.indexOf('-append') + 1]).toBe('console=ttyS0 panic=-1');
    const b = qemuArgs({ kernel, initramfs: '/k/i.gz', memory: '1G', consoleLog: '/t/c.log', npt: 0 });
    expect(b[b.indexOf('-append') + 1]).toBe('console=ttyS0 panic=-1 kvm_amd_args=npt=0');
  });
});
