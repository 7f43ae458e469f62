/** The host tools the matrix needs (kernels.ts's table included): decompressors, install hints, ELF kinds. */
import { describe, expect, it } from 'vitest';
import { KERNELS, findKernel } from './kernels.js';
import { decompressorFor, installCommand, isStaticElf } from './tools.js';

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
