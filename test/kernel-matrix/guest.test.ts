/**
 * The pieces of the kernel matrix that need no QEMU: the cpio writer, the module load order,
 * the guest's /init script, QEMU's arguments, the fallback trace generator.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cpioNewc, readCpioNewc } from '../../kernel-matrix/cpio.js';
import { loadOrder, type PreparedKernel } from '../../kernel-matrix/fetch.js';
import { generateTrace, randomRequests, withAddressSpace1Twins } from '../../kernel-matrix/gen-trace.js';
import { READY_MARKER, initScript, qemuArgs } from '../../kernel-matrix/guest.js';
import { KERNELS, findKernel } from '../../kernel-matrix/kernels.js';
import { SetupError, decompressorFor, installCommand, isStaticElf } from '../../kernel-matrix/tools.js';
import { readTrace } from '../../trace/trace.js';

describe('cpio newc writer', () => {
  const entries = [
    { kind: 'dir', path: 'bin' },
    { kind: 'file', path: 'bin/busybox', data: Buffer.from('#!x\n'), mode: 0o755 },
    { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
    { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    { kind: 'file', path: 'odd-length', data: Buffer.from('abcde') },
  ] as const;

  it('round-trips paths, modes, data and device numbers', () => {
    const back = readCpioNewc(cpioNewc(entries));
    expect(back.map((e) => e.path)).toEqual(['bin', 'bin/busybox', 'bin/sh', 'dev/console', 'odd-length']);
    expect(back[0]!.mode).toBe(0o040755);
    expect(back[1]!.mode).toBe(0o100755);
    expect(back[1]!.data.toString()).toBe('#!x\n');
    expect(back[2]!.mode).toBe(0o120777);
    expect(back[2]!.data.toString()).toBe('busybox');
    expect(back[3]!.mode).toBe(0o020600);
    expect([back[3]!.rmajor, back[3]!.rminor]).toEqual([5, 1]);
    expect(back[4]!.data.toString()).toBe('abcde');
  });

  it('is reproducible and 4-byte aligned', () => {
    const a = cpioNewc(entries);
    expect(a.equals(cpioNewc(entries))).toBe(true);
    expect(a.length % 4).toBe(0);
  });

  it('refuses paths that climb out', () => {
    expect(() => cpioNewc([{ kind: 'dir', path: '../x' }])).toThrow(/bad cpio path/);
  });

  const cpio = spawnSync('cpio', ['--version']);
  it.skipIf(cpio.error !== undefined)('is read by cpio(1)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cpio-test-'));
    try {
      const file = path.join(dir, 'a.cpio');
      writeFileSync(file, cpioNewc(entries));
      const r = spawnSync('cpio', ['-t', '-F', file], { encoding: 'utf8' });
      expect(r.stdout.trim().split('\n')).toEqual(['bin', 'bin/busybox', 'bin/sh', 'dev/console', 'odd-length']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('module load order', () => {
  // kvm-amd and virtio on Debian's 6.1 (modinfo -F depends), virtio built in as on 6.12.
  const deps: Record<string, string[]> = {
    kvm_amd: ['kvm', 'ccp'],
    kvm: ['irqbypass'],
    ccp: [],
    irqbypass: [],
    virtio_pci: ['virtio_ring', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio'],
    virtio: ['virtio_ring'],
    virtio_console: ['virtio', 'virtio_ring'],
    virtio_ring: [],
    virtio_pci_modern_dev: [],
    virtio_pci_legacy_dev: [],
  };
  const depends = async (n: string): Promise<string[]> => deps[n] ?? [];

  it('puts every module after its dependencies, once', async () => {
    const order = await loadOrder(['virtio_pci', 'virtio_console', 'kvm-amd'], () => false, depends);
    expect(new Set(order).size).toBe(order.length);
    for (const [m, ds] of Object.entries(deps)) for (const d of ds) expect(order.indexOf(d)).toBeLessThan(order.indexOf(m));
    expect(order.slice(-4)).toEqual(['irqbypass', 'kvm', 'ccp', 'kvm_amd']);
  });

  it('skips built-in modules', async () => {
    const builtin = new Set(['virtio_pci', 'virtio_console', 'virtio', 'virtio_ring', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev']);
    expect(await loadOrder(['virtio_pci', 'virtio_console', 'kvm_amd'], (n) => builtin.has(n), depends)).toEqual(['irqbypass', 'kvm', 'ccp', 'kvm_amd']);
  });

  it('reports a cycle', async () => {
    await expect(
      loadOrder(
        ['a'],
        () => false,
        async (n) => (n === 'a' ? ['b'] : ['a']),
      ),
    ).rejects.toThrow(SetupError);
  });
});

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

describe('tools and table', () => {
  it('knows the decompressor of each module suffix', () => {
    expect(decompressorFor('kvm.ko')).toBeNull();
    expect(decompressorFor('kvm.ko.xz')).toEqual({ cmd: 'xz', pkg: 'xz-utils' });
    expect(decompressorFor('kvm.ko.zst')).toEqual({ cmd: 'zstd', pkg: 'zstd' });
  });

  it('prints one install command', () => {
    expect(installCommand(['qemu-system-x86', 'kmod', 'kmod'])).toBe('apt-get update && apt-get install -y qemu-system-x86 kmod');
  });

  it('tells static from dynamic executables', () => {
    expect(isStaticElf(process.execPath)).toBe(false);
    expect(isStaticElf('/nonexistent')).toBe(false);
  });

  it('finds kernels by name or package', () => {
    for (const k of KERNELS) {
      expect(findKernel(k.name)).toBe(k);
      expect(findKernel(k.pkg)).toBe(k);
    }
    expect(findKernel('2.6')).toBeUndefined();
  });
});

describe('the fallback trace generator', () => {
  it('is deterministic for a seed and mixes both address spaces', () => {
    const a = randomRequests(5, 3000);
    expect(a).toEqual(randomRequests(5, 3000));
    expect(a).toHaveLength(3000);
    const as = a.filter((r) => typeof r['slot'] === 'number').map((r) => (r['slot'] as number) >>> 16);
    expect(as.filter((x) => x === 0).length).toBeGreaterThan(as.length / 3);
    expect(as.filter((x) => x === 1).length).toBeGreaterThan(as.length / 3);
  });

  it('twins each address-space-0 request in address space 1', () => {
    const twins = withAddressSpace1Twins([{ op: 'reset' }, { op: 'get_dirty_log', slot: 3 }, { op: 'get_dirty_log', slot: 0x10003 }]);
    expect(twins).toEqual([{ op: 'reset' }, { op: 'get_dirty_log', slot: 3 }, { op: 'get_dirty_log', slot: 0x10003 }, { op: 'get_dirty_log', slot: 0x10003 }]);
  });

  it('writes a trace the oracle parses', async () => {
    const hp = fileURLToPath(new URL('../ground-truth/kernel-handpicked.jsonl', import.meta.url));
    const text = generateTrace(hp, 1, 500);
    let n = 0;
    for await (const t of readTrace(text.trimEnd().split('\n'))) {
      expect(t.kind).toBe('request');
      n++;
    }
    // The hand-picked requests, their twins, then the random ones.
    const handpicked = readFileSync(hp, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{"op"')).length;
    expect(n).toBeGreaterThan(handpicked * 2 + 499);
  });
});
