/** Reads a text file (or `-` for stdin) line by line, gunzipping `.gz` files on the way. */
import { closeSync, createReadStream, existsSync, openSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
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
      const split = new LineSplitter();
      if (path === '-' || path.endsWith('.gz')) {
        let input: Readable = process.stdin;
        if (path !== '-') input = createReadStream(path).pipe(createGunzip());
        input.setEncoding('utf8'); // a character split across chunks is decoded whole
        for await (const chunk of input as AsyncIterable<string>) {
          const batch = split.push(chunk);
          if (batch.length > 0) yield batch;
        }
      } else {
        // A plain file is read with readSync() into one buffer: a read stream cost a third of
        // a 130,000-line replay (--cpu-prof), in its buffers, events and promises per chunk.
        // Small chunks keep the batch of parsed lines alive at a time small, which the
        // garbage collector's young generation handles best (64 KiB cost more, 1 MiB far more).
        const fd = openSync(path, 'r');
        try {
          const buf = Buffer.allocUnsafe(CHUNK);
          const decoder = new StringDecoder('utf8'); // a character split across chunks is decoded whole
          for (let got = readSync(fd, buf, 0, CHUNK, null); got > 0; got = readSync(fd, buf, 0, CHUNK, null)) {
            const batch = split.push(decoder.write(got === CHUNK ? buf : buf.subarray(0, got)));
            if (batch.length > 0) yield batch;
          }
          const tail = decoder.end();
          if (tail !== '') {
            const batch = split.push(tail);
            if (batch.length > 0) yield batch;
          }
        } finally {
          closeSync(fd);
        }
      }
      const last = split.end();
      if (last.length > 0) yield last;
    },
  };
}

const CHUNK = 1 << 14;

/** Text in chunks to whole lines; the text after the last `\n` waits for the next chunk. */
class LineSplitter {
  private carry = '';

  push(chunk: string): string[] {
    const text = this.carry === '' ? chunk : this.carry + chunk;
    const batch: string[] = [];
    let from = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', from)) {
      pushLines(batch, text.slice(from, nl));
      from = nl + 1;
    }
    this.carry = text.slice(from);
    return batch;
  }

  /** The last line, when the text does not end with its `\n`. */
  end(): string[] {
    const batch: string[] = [];
    if (this.carry !== '') pushLines(batch, this.carry);
    this.carry = '';
    return batch;
  }
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
