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

  it('no entry for a fraction, a negative or a huge index, as a plain array has none', () => {
    const a = new ChunkedArray<string>('none');
    a.set(0, 'zero');
    a.set(1, 'one');
    for (const i of [0.5, -1, -4096, 2 ** 32, 2 ** 32 + 1, 2 ** 53, NaN, Infinity]) expect(a.get(i), String(i)).toBe('none');
    for (const i of [0.5, -1, 2 ** 31]) expect(() => a.set(i, 'x')).toThrow(RangeError);
  });
});
