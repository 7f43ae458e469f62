import { describe, expect, it } from 'vitest';
import { ChunkedArray } from './chunked.js';

describe('ChunkedArray', () => {
  it('holds what was set, across chunks, and the fill elsewhere', () => {
    const a = new ChunkedArray<number | undefined>(undefined);
    for (const i of [0, 1, 4095, 4096, 10_000]) a.set(i, i * 2);
    for (const i of [0, 1, 4095, 4096, 10_000]) expect(a.get(i)).toBe(i * 2);
    expect(a.get(2)).toBeUndefined();
    expect(a.get(8191)).toBeUndefined();
    expect(a.get(12_288)).toBeUndefined();
  });

  it('keeps what it holds while the first chunk grows from a few entries to a whole chunk', () => {
    const a = new ChunkedArray<number>(-1);
    for (let i = 0; i < 5000; i++) {
      a.set(i, i);
      // Every earlier entry survives each growth; the next one is not there yet.
      if ((i & (i + 1)) === 0 || i === 4095 || i === 4096) for (let j = 0; j <= i; j++) expect(a.get(j)).toBe(j);
      expect(a.get(i + 1)).toBe(-1);
    }
    const b = new ChunkedArray<string>('none');
    b.set(3, 'three');
    b.set(9000, 'far'); // past the first chunk while it is still small
    expect([b.get(3), b.get(9000), b.get(17), b.get(4096), b.get(8999)]).toEqual(['three', 'far', 'none', 'none', 'none']);
  });

  it('no entry for a fraction, a negative or a huge index, as a plain array has none', () => {
    const a = new ChunkedArray<string>('none');
    a.set(0, 'zero');
    a.set(1, 'one');
    for (const i of [0.5, -1, -4096, 2 ** 32, 2 ** 32 + 1, 2 ** 53, NaN, Infinity]) expect(a.get(i), String(i)).toBe('none');
    for (const i of [0.5, -1, 2 ** 31]) expect(() => a.set(i, 'x')).toThrow(RangeError);
  });
});
