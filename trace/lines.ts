/** Reads a text file (or `-` for stdin) line by line, gunzipping `.gz` files on the way. */
import { createReadStream, existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { UsageError } from '../cli/usage.js';

/**
 * The lines of `path`. The file is opened only when iteration starts: a readline interface
 * made earlier emits lines to nobody while the caller awaits something else (a slow SUT's
 * first answer, say), and those lines would be lost.
 */
export function fileLines(path: string): AsyncIterable<string> {
  if (path !== '-' && !existsSync(path)) throw new UsageError(`${path}: no such file`);
  return {
    async *[Symbol.asyncIterator]() {
      let input: Readable = process.stdin;
      if (path !== '-') {
        const raw = createReadStream(path);
        input = path.endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
      }
      yield* createInterface({ input, crlfDelay: Infinity });
    },
  };
}
