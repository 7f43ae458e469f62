/**
 * `memslot-oracle serve`: the oracle as the kernel. Protocol requests on stdin (and, with
 * --socket, on a Unix socket, one client at a time, each connection a fresh VM) are answered
 * from the model; --record writes the exchange as a trace, --check-against forwards every
 * request to a real SUT and reports each difference at once on stderr.
 *
 * Exit status: 1 when a difference was found; else 2 when a request line was malformed, a
 * request could not be checked, or the checked SUT broke; else 0.
 */
import { createWriteStream, fstatSync, lstatSync, unlinkSync, type WriteStream } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { formatLint } from '../lint/vmm-lint.js';
import { formatProfileLine } from '../trace/trace.js';
import { SutClient } from '../sut/protocol.js';
import { ServeSession, formatDifference } from '../sut/serve.js';
import { parseTimeout } from './options.js';
import { resolveProfile } from './profile-arg.js';
import { UsageError } from './usage.js';

/** One client at a time: a session holds the floor from its first line to its end. */
class Floor {
  #tail: Promise<void> = Promise.resolve();
  acquire(): Promise<() => void> {
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const turn = this.#tail.then(() => release);
    this.#tail = this.#tail.then(() => held);
    return turn;
  }
}

function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

export async function serveCli(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      profile: { type: 'string' },
      record: { type: 'string' },
      'check-against': { type: 'string' },
      socket: { type: 'string' },
      timeout: { type: 'string' },
      lint: { type: 'boolean' },
    },
  });
  if (positionals.length > 0) throw new UsageError(`serve takes no file (requests come on stdin or --socket), got ${JSON.stringify(positionals[0])}`);
  const timeoutMs = parseTimeout(values.timeout);
  let profile = resolveProfile(values.profile);
  const socketPath = values.socket;
  if (socketPath !== undefined) {
    let stale = false;
    try {
      stale = lstatSync(socketPath).isSocket();
      if (!stale) throw new UsageError(`--socket ${socketPath}: exists and is not a socket`);
    } catch (e) {
      if (e instanceof UsageError) throw e;
    }
    if (stale) unlinkSync(socketPath); // left by a serve that was killed
  }

  const checked = values['check-against'] === undefined ? null : await SutClient.start(values['check-against'], { timeoutMs });
  let out: WriteStream | null = null;
  let server: Server | null = null;
  const sockets = new Set<Socket>();
  let status = { differences: 0, bad: 0 };
  let fatal: unknown = null;
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => {
    stop = resolve;
  });
  const onSignal = (): void => stop();
  try {
    if (checked !== null) profile = checked.resolveProfile(values.profile !== undefined ? profile : null, profile);
    if (values.record !== undefined) {
      out = createWriteStream(values.record);
      out.write(`${formatProfileLine(profile)}\n`);
    }
    const record = out;
    const name = `memslot-oracle ${version()} (the model as the kernel)`;
    const floor = new Floor();
    let sessionsRecorded = 0;
    let clients = 0;

    const runSession = async (lines: AsyncIterable<string>, write: (s: string) => void, source: string): Promise<void> => {
      let release: (() => void) | null = null;
      let session: ServeSession | null = null;
      let recorded = false;
      try {
        for await (const text of lines) {
          if (fatal !== null) break;
          if (session === null) {
            if (text.trim() === '') continue;
            release = await floor.acquire();
            session = new ServeSession({
              profile,
              name,
              source,
              ...(checked === null ? {} : { checkAgainst: checked }),
              onDifference: (d) => process.stderr.write(`memslot-oracle serve: ${formatDifference(d, checked?.description ?? 'sut')}\n`),
              onNote: (t) => process.stderr.write(`memslot-oracle serve: ${t}\n`),
              ...(record === null
                ? {}
                : {
                    record: (l: string) => {
                      // Every session after the first recorded one is a fresh VM: a reset line between.
                      if (!recorded && sessionsRecorded++ > 0) record.write(`${JSON.stringify({ op: 'reset', expect: { ok: true } })}\n`);
                      recorded = true;
                      record.write(`${l}\n`);
                    },
                  }),
              lint: values.lint === true,
            });
            await session.start();
          }
          const answer = await session.handle(text);
          if (answer !== null) write(`${answer}\n`);
        }
      } catch (e) {
        // The checked SUT broke: that ends serve (exit 2), never a verdict.
        if (fatal === null) fatal = e;
        stop();
      } finally {
        if (session !== null) {
          status = {
            differences: status.differences + session.differences,
            bad: status.bad + session.malformed + (session.uncheckable ? 1 : 0),
          };
          if (values.lint === true) process.stderr.write(`memslot-oracle serve: ${source}: ${session.requests} requests\n${formatLint(session.finish())}\n`);
        }
        release?.();
      }
    };

    const stdin = runSession(createInterface({ input: process.stdin, crlfDelay: Infinity }), (s) => process.stdout.write(s), 'stdin');
    if (socketPath === undefined) {
      await stdin;
    } else {
      server = createServer({ allowHalfOpen: true }, (conn) => {
        sockets.add(conn);
        conn.setEncoding('utf8');
        conn.on('error', () => {});
        const n = ++clients;
        void runSession(createInterface({ input: conn, crlfDelay: Infinity }), (s) => conn.write(s), `socket client ${n}`).finally(() => {
          sockets.delete(conn);
          conn.end();
        });
      });
      const srv = server;
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(socketPath, () => resolve());
      });
      process.stderr.write(`memslot-oracle serve: listening on ${socketPath} (profile ${profile.name})\n`);
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      // A pipe or a terminal on stdin ends serve when it ends (the parent closed it, or died, or Ctrl-D):
      // no serve outlives the process that started it. /dev/null or a file: serve runs until a signal.
      const st = fstatSync(0);
      if (st.isFIFO() || process.stdin.isTTY === true || st.isSocket()) void stdin.then(() => stop());
      await stopped;
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (server !== null) {
      const srv = server;
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    }
    process.stdin.destroy();
    await checked?.close();
    if (out !== null) await new Promise<void>((resolve) => out!.end(resolve));
  }
  if (fatal !== null) throw fatal;
  return status.differences > 0 ? 1 : status.bad > 0 ? 2 : 0;
}
