/** Reads a text file (or `-` for stdin) line by line, gunzipping `.gz` files on the way. */
import { createReadStream, existsSync } from 'node:fs';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';

/** A trace file that is not there: bad input, reported as such (exit status 2), never a verdict. */
export class MissingFileError extends Error {
  constructor(readonly path: string) {
    super(`${path}: no such file`);
    this.name = 'MissingFileError';
  }
}

/**
 * The lines of `path`, a batch per chunk read: split as readline splits with `crlfDelay:
 * Infinity` (a line ends at `\n`, `\r\n` or a lone `\r`; a last line without its end counts),
 * without readline's event and promise per line, which `replay` paid on every line. The file is
 * opened only when iteration starts: a stream opened earlier may emit chunks to nobody while the
 * caller awaits something else (a slow SUT's first answer, say), and they would be lost.
 */
export function fileLineBatches(path: string): AsyncIterable<readonly string[]> {
  if (path !== '-' && !existsSync(path)) throw new MissingFileError(path);
  return {
    async *[Symbol.asyncIterator]() {
      let input: Readable = process.stdin;
      if (path !== '-') {
        const raw = createReadStream(path, { highWaterMark: 1 << 16 });
        input = path.endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
      }
      input.setEncoding('utf8'); // a character split across chunks is decoded whole
      let carry = '';
      for await (const chunk of input as AsyncIterable<string>) {
        const text = carry === '' ? chunk : carry + chunk;
        const batch: string[] = [];
        let from = 0;
        for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', from)) {
          pushLines(batch, text.slice(from, nl));
          from = nl + 1;
        }
        carry = text.slice(from);
        if (batch.length > 0) yield batch;
      }
      if (carry !== '') {
        const batch: string[] = [];
        pushLines(batch, carry);
        yield batch;
      }
    },
  };
}

/** The lines of `segment`, text up to a `\n` (or the end): a `\r` before it is the `\r\n`, any other ends a line. */
function pushLines(batch: string[], segment: string): void {
  const s = segment.endsWith('\r') ? segment.slice(0, -1) : segment;
  if (s.indexOf('\r') === -1) batch.push(s);
  else for (const part of s.split('\r')) batch.push(part);
}

/** The lines of `path`, one at a time (fileLineBatches() flattened). */
export function fileLines(path: string): AsyncIterable<string> {
  const batches = fileLineBatches(path);
  return {
    async *[Symbol.asyncIterator]() {
      for await (const batch of batches) yield* batch;
    },
  };
}
