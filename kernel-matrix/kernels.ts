/**
 * The kernels of the matrix: Debian's kernel image packages, fetched with `apt-get download`
 * and unpacked with `dpkg-deb -x` (never installed on the host). Adding a kernel is one line.
 *
 * `name` is what `--kernel` takes and what the recorded trace is called
 * (test/ground-truth/kernel-matrix/<name>.jsonl.gz). `pkg` is the exact package name: find
 * the current one with `apt-cache depends linux-image-amd64` (6.1) or
 * `apt-cache depends linux-image-6.12-amd64` (6.12) after `apt-get update`.
 */
export interface KernelEntry {
  readonly name: string;
  readonly pkg: string;
}

export const KERNELS: readonly KernelEntry[] = [
  { name: '6.1', pkg: 'linux-image-6.1.0-56-amd64' },
  { name: '6.12', pkg: 'linux-image-6.12.117+deb12-amd64' },
];

export function findKernel(name: string): KernelEntry | undefined {
  return KERNELS.find((k) => k.name === name || k.pkg === name);
}
