/** The order the guest loads a kernel's modules in (modinfo's dependencies, built-ins skipped). */
import { describe, expect, it } from 'vitest';
import { loadOrder } from './fetch.js';
import { SetupError } from './tools.js';

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
