/** Reads a text file (or `-` for stdin) line by line, gunzipping `.gz` files on the way. */
import { createReadStream, existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { UsageError } from './usage.js';

export function fileLines(path: string): AsyncIterable<string> {
  let input: Readable;
  if (path === '-') {
    input = process.stdin;
  } else {
    if (!existsSync(path)) throw new UsageError(`${path}: no such file`);
    const raw = createReadStream(path);
    input = path.endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
  }
  return createInterface({ input, crlfDelay: Infinity });
}
