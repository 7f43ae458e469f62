/**
 * A writer for the "newc" cpio format the kernel unpacks as an initramfs
 * (Documentation/driver-api/early-userspace/buffer-format.rst). Written here rather than with
 * cpio(1) so that device nodes need no mknod and the archive is byte-for-byte reproducible
 * (fixed inode numbers, owners and times).
 */

export type CpioEntry =
  | { readonly kind: 'dir'; readonly path: string; readonly mode?: number }
  | { readonly kind: 'file'; readonly path: string; readonly data: Buffer; readonly mode?: number }
  | { readonly kind: 'symlink'; readonly path: string; readonly target: string }
  | {
      readonly kind: 'chardev';
      readonly path: string;
      readonly major: number;
      readonly minor: number;
      readonly mode?: number;
    };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

const pad4 = (n: number): number => (4 - (n % 4)) % 4;
const hex8 = (n: number): string => n.toString(16).padStart(8, '0');

function header(ino: number, mode: number, nlink: number, size: number, rmaj: number, rmin: number, name: string): Buffer {
  const nameBytes = Buffer.from(`${name}\0`, 'utf8');
  const fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, rmaj, rmin, nameBytes.length, 0];
  const head = Buffer.from(`070701${fields.map(hex8).join('')}`, 'ascii');
  return Buffer.concat([head, nameBytes, Buffer.alloc(pad4(head.length + nameBytes.length))]);
}

/** The archive: the entries in order (parents before children), then the trailer. */
export function cpioNewc(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, '');
    if (name === '' || name.split('/').includes('..')) throw new Error(`bad cpio path ${JSON.stringify(e.path)}`);
    let data: Buffer = Buffer.alloc(0);
    let mode: number;
    let rmaj = 0;
    let rmin = 0;
    switch (e.kind) {
      case 'dir':
        mode = S_IFDIR | (e.mode ?? 0o755);
        break;
      case 'file':
        mode = S_IFREG | (e.mode ?? 0o644);
        data = e.data;
        break;
      case 'symlink':
        mode = S_IFLNK | 0o777;
        data = Buffer.from(e.target, 'utf8');
        break;
      case 'chardev':
        mode = S_IFCHR | (e.mode ?? 0o600);
        rmaj = e.major;
        rmin = e.minor;
        break;
    }
    parts.push(header(ino++, mode, e.kind === 'dir' ? 2 : 1, data.length, rmaj, rmin, name), data, Buffer.alloc(pad4(data.length)));
  }
  parts.push(header(0, 0, 1, 0, 0, 0, 'TRAILER!!!'));
  return Buffer.concat(parts);
}

/** Reads a newc archive back (for tests): path, mode, data and rdev of every entry. */
export function readCpioNewc(buf: Buffer): { path: string; mode: number; data: Buffer; rmajor: number; rminor: number }[] {
  const out: { path: string; mode: number; data: Buffer; rmajor: number; rminor: number }[] = [];
  let off = 0;
  for (;;) {
    if (buf.toString('ascii', off, off + 6) !== '070701') throw new Error(`bad cpio magic at ${off}`);
    const field = (i: number): number => parseInt(buf.toString('ascii', off + 6 + i * 8, off + 14 + i * 8), 16);
    const mode = field(1);
    const size = field(6);
    const rmajor = field(9);
    const rminor = field(10);
    const namesize = field(11);
    const nameStart = off + 110;
    const name = buf.toString('utf8', nameStart, nameStart + namesize - 1);
    let p = nameStart + namesize;
    p += pad4(p);
    if (name === 'TRAILER!!!') return out;
    out.push({ path: name, mode, data: buf.subarray(p, p + size), rmajor, rminor });
    p += size;
    p += pad4(p);
    off = p;
  }
}
