/** Reads a text file (or `-` for stdin) line by line, gunzipping `.gz` files on the way. */
import { closeSync, createReadStream, existsSync, openSync, readSync, statSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';

/** A trace file that is not there: bad input, reported as such (exit status 2), never a verdict. */
export class MissingFileError extends Error {
  constructor(readonly path: string) {
    super(`${path}: no such file`);
    this.name = 'MissingFileError';
  }
}

/**
 * The text of `path` in pieces of whole lines: each piece ends with a `\n`, the last one
 * possibly not (a last line without its end). The file is opened only when iteration starts: a
 * stream opened earlier may emit chunks to nobody while the caller awaits something else (a
 * slow SUT's first answer, say), and they would be lost.
 */
export function fileText(path: string): AsyncIterable<string> {
  if (path !== '-' && !existsSync(path)) throw new MissingFileError(path);
  return {
    async *[Symbol.asyncIterator]() {
      let carry = '';
      // The whole lines of a chunk, as at most two pieces: the line begun in the chunk before,
      // finished here, and the chunk's own whole lines, a slice of it. Joining the carry to the
      // whole chunk instead copied every chunk once more when the parser flattened it (a
      // small gain on a replay, within its noise). The unfinished last line waits for the next chunk.
      const pieces: string[] = [];
      const whole = (chunk: string): readonly string[] => {
        pieces.length = 0;
        let from = 0;
        if (carry !== '') {
          const nl = chunk.indexOf('\n');
          if (nl === -1) {
            carry += chunk;
            return pieces;
          }
          pieces.push(carry + chunk.slice(0, nl + 1));
          carry = '';
          from = nl + 1;
        }
        const last = chunk.lastIndexOf('\n');
        if (last < from) {
          carry = chunk.slice(from);
          return pieces;
        }
        pieces.push(from === 0 && last === chunk.length - 1 ? chunk : chunk.slice(from, last + 1));
        carry = chunk.slice(last + 1);
        return pieces;
      };
      // A pipe or a device (a FIFO as the trace, say) is read as a stream: readSync() would
      // block the event loop while its writer is slow, and with it a SUT's timeouts.
      if (path === '-' || path.endsWith('.gz') || !statSync(path).isFile()) {
        let input: Readable = process.stdin;
        // zlib is loaded only for a .gz file: the trace parser imports this module too.
        if (path.endsWith('.gz')) input = createReadStream(path).pipe((await import('node:zlib')).createGunzip());
        else if (path !== '-') input = createReadStream(path);
        input.setEncoding('utf8'); // a character split across chunks is decoded whole
        for await (const chunk of input as AsyncIterable<string>) {
          yield* whole(chunk);
        }
      } else {
        // A plain file is read with readSync() into one buffer: a read stream cost a third of
        // a 130,000-line replay (--cpu-prof), in its buffers, events and promises per chunk.
        // Read and decoded 64 KiB at a time (an 18.8 MB trace: 5 ms of CPU, 16 to 21 ms in reads
        // of 16 KiB), handed on in pieces of 16 KiB: small pieces keep the batch of parsed lines
        // alive at a time small, as the garbage collector's young generation handles best
        // (batches of 64 KiB cost more, 1 MiB far more).
        const fd = openSync(path, 'r');
        try {
          const buf = Buffer.allocUnsafe(READ);
          const decoder = new StringDecoder('utf8'); // a character split across reads is decoded whole
          for (let got = readSync(fd, buf, 0, READ, null); got > 0; got = readSync(fd, buf, 0, READ, null)) {
            const text = decoder.write(got === READ ? buf : buf.subarray(0, got));
            for (let at = 0; at < text.length; at += PIECE) yield* whole(at === 0 && text.length <= PIECE ? text : text.slice(at, at + PIECE));
          }
          yield* whole(decoder.end());
        } finally {
          closeSync(fd);
        }
      }
      if (carry !== '') yield carry;
    },
  };
}

const READ = 1 << 16;
const PIECE = 1 << 14;

/**
 * The lines of `path`, a batch per piece of fileText(): split as readline splits with
 * `crlfDelay: Infinity` (a line ends at `\n`, `\r\n` or a lone `\r`; a last line without its
 * end counts), without readline's event and promise per line, which `replay` paid on every line.
 */
export function fileLineBatches(path: string): AsyncIterable<readonly string[]> {
  const pieces = fileText(path);
  return {
    async *[Symbol.asyncIterator]() {
      for await (const piece of pieces) {
        const batch: string[] = [];
        let from = 0;
        for (let nl = piece.indexOf('\n'); nl !== -1; nl = piece.indexOf('\n', from)) {
          segmentLines(piece.slice(from, nl), batch);
          from = nl + 1;
        }
        if (from < piece.length) segmentLines(piece.slice(from), batch);
        yield batch;
      }
    },
  };
}

/** The lines of `segment`, text up to a `\n` (or the end), added to `out`: a `\r` before it is the `\r\n`, any other ends a line. */
export function segmentLines(segment: string, out: string[]): void {
  const s = segment.endsWith('\r') ? segment.slice(0, -1) : segment;
  if (s.indexOf('\r') === -1) out.push(s);
  else for (const part of s.split('\r')) out.push(part);
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
