/**
 * `memslot-oracle replay TRACE --sut kvm|CMD`: every request goes to the model and to the SUT;
 * answers are compared with each other and with the trace's `expect`. With `--record OUT`,
 * the trace is written again with the SUT's answers as `expect` (how ground truth is made).
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import type { Profile } from '../../model/profiles.js';
import { fileLines } from '../../trace/lines.js';
import { formatReplay, replay } from '../../trace/replay.js';
import { formatProfileLine, formatTraceLine, readTrace, type Answer, type Request, type TraceLine } from '../../trace/trace.js';
import { SutClient } from '../../sut/protocol.js';
import { formatLint, VmmLinter } from '../../lint/vmm-lint.js';

export async function replayWithSut(
  path: string,
  profile: Profile,
  sutSpec: string,
  explicitProfile: boolean,
  timeoutMs: number,
  recordTo?: string,
  lint = false,
): Promise<number> {
  const sut = await SutClient.start(sutSpec, { timeoutMs });
  let out: WriteStream | null = null;
  try {
    const start = sut.resolveProfile(explicitProfile ? profile : null, profile);
    if (recordTo !== undefined) out = createWriteStream(recordTo);
    const writer = out;
    const write = (line: string): void => {
      writer?.write(`${line}\n`);
    };
    const checkProfile = (p: Profile): void => {
      sut.resolveProfile(p, p);
    };
    const lines = readTrace(fileLines(path), path);
    // Profile lines of the trace must agree with what the SUT declares.
    async function* checked(): AsyncGenerator<TraceLine> {
      for await (const t of lines) {
        if (t.kind === 'profile') {
          checkProfile(t.profile);
          write(formatProfileLine(t.profile));
        }
        yield t;
      }
    }
    const linter = new VmmLinter(start);
    const summary = await replay(checked(), {
      profile: start,
      ...(lint ? { onStep: (s: Parameters<VmmLinter['step']>[0]) => linter.step(s) } : {}),
      onReset: async (p) => {
        linter.reset(p);
        if (p === start) write(formatProfileLine(p));
        await sut.request({ op: 'reset' });
      },
      sut: async (r: Request): Promise<Answer> => {
        const a = await sut.request(r);
        write(formatTraceLine(r, a));
        return a;
      },
      sutSupports: (r) => sut.supportsRequest(r),
    });
    process.stdout.write(`SUT: ${sut.description}\n${formatReplay(summary, true)}\n${lint ? `\n${formatLint(linter.finish())}\n` : ''}`);
    return summary.mismatches === 0 ? 0 : 1;
  } finally {
    await sut.close();
    if (out !== null) await new Promise<void>((resolve) => out!.end(resolve));
  }
}
