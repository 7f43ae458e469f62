import { describe, expect, it } from 'vitest';
import { InputError, parseTraceLine } from './trace.js';

const SET = '"op":"set_user_memory_region","slot":0,"flags":0,"guest_phys_addr":"0x0","memory_size":"0x1000","userspace_addr":"0x7f0000000000"';

function expectOf(errno: string): unknown {
  const t = parseTraceLine(`{${SET},"expect":{"errno":${JSON.stringify(errno)}}}`, 7);
  return t?.kind === 'request' ? t.expect : t;
}

describe('trace answers: errno names', () => {
  it('takes every errno name of Linux uapi, aliases too, as an answer', () => {
    for (const e of ['ENOSPC', 'ENOMEM', 'EINVAL', 'E2BIG', 'ENOTTY', 'EHWPOISON', 'EWOULDBLOCK', 'EDEADLOCK']) {
      expect(expectOf(e)).toEqual({ kind: 'errno', errno: e });
    }
  });

  it('refuses a name that is not an errno, naming the line and the field', () => {
    for (const bad of ['EBOGUS', 'einval', 'ENOMEM ', '']) {
      let err: unknown;
      try {
        expectOf(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InputError);
      expect((err as InputError).message).toContain('line 7, field "expect.errno"');
      expect((err as InputError).message).toContain('is not an errno name');
    }
  });
});
