/**
 * The kernels of the matrix: Debian's kernel packages, fetched with `apt-get download` from the
 * suite that carries them (through a private sources list in the project's cache, see apt.ts)
 * and unpacked with `dpkg-deb -x` (never installed on the host). Adding a kernel is one line.
 *
 * `name` is what `--kernels` takes and what the recorded trace is called
 * (test/ground-truth/kernel-matrix/<name>[-npt0].jsonl.gz). `pkg` is the kernel image package
 * (the table shows it); `debs` the packages that hold the kernel and its modules when that is
 * not `pkg` alone (from 7.x, `linux-image-VER` is a small package that depends on
 * `linux-binary-VER`, the kernel at /usr/lib/modules/VER/vmlinuz, `linux-modules-VER`, the
 * modules, and `linux-base-VER`, which holds modules.builtin and the config).
 * `suites` are the Debian suites searched (`archive`: the Debian archive, `security`: the
 * security archive; the host's apt sources say where each is). `design` is the memslot design
 * of the line: `legacy` (the sorted array with id_to_index, up to 5.16) or `scalable` (5.17+).
 *
 * Find current names with the private lists a run leaves in the cache (apt.ts), e.g.
 *   A=~/.cache/memslot-oracle/kernel-matrix/apt/trixie-backports
 *   apt-cache -o Dir::Etc::sourcelist=$A/sources.list -o Dir::Etc::sourceparts=- \
 *     -o Dir::State::Lists=$A/lists -o Dir::Cache=$A/cache search --names-only '^linux-image-7'
 */
export interface AptSuite {
  readonly archive: 'archive' | 'security';
  readonly suite: string;
}

export interface KernelEntry {
  readonly name: string;
  readonly pkg: string;
  readonly debs?: readonly string[];
  readonly suites: readonly AptSuite[];
  readonly design: 'legacy' | 'scalable';
  /** The built-in profile (model/profiles.ts) this line is checked against. */
  readonly profile: string;
}

const bookworm: readonly AptSuite[] = [
  { archive: 'archive', suite: 'bookworm' },
  { archive: 'security', suite: 'bookworm-security' },
];
const bullseye: readonly AptSuite[] = [
  { archive: 'archive', suite: 'bullseye' },
  { archive: 'security', suite: 'bullseye-security' },
];
const trixieBackports: readonly AptSuite[] = [{ archive: 'archive', suite: 'trixie-backports' }];

export const KERNELS: readonly KernelEntry[] = [
  { name: '5.10', pkg: 'linux-image-5.10.0-46-amd64', suites: bullseye, design: 'legacy', profile: 'linux-5.10-x86_64' },
  { name: '6.1', pkg: 'linux-image-6.1.0-56-amd64', suites: bookworm, design: 'scalable', profile: 'linux-6.1-x86_64' },
  { name: '6.12', pkg: 'linux-image-6.12.117+deb12-amd64', suites: bookworm, design: 'scalable', profile: 'linux-6.12-x86_64' },
  {
    name: '6.18',
    pkg: 'linux-image-6.18.15+deb13-amd64',
    suites: trixieBackports,
    design: 'scalable',
    profile: 'linux-6.18-x86_64',
  },
  {
    name: '7.3',
    pkg: 'linux-image-7.3.4+deb13-amd64',
    debs: ['linux-binary-7.3.4+deb13-amd64', 'linux-modules-7.3.4+deb13-amd64', 'linux-base-7.3.4+deb13-amd64'],
    suites: trixieBackports,
    design: 'scalable',
    profile: 'linux-7.3-x86_64',
  },
];

export function findKernel(name: string): KernelEntry | undefined {
  return KERNELS.find((k) => k.name === name || k.pkg === name);
}

/** The packages to download for an entry. */
export function debsOf(k: KernelEntry): readonly string[] {
  return k.debs ?? [k.pkg];
}
