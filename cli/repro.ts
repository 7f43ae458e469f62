/** `memslot-oracle repro TRACE --format c|vitest|text [--profile P] [--out FILE]` (trace/repro.ts makes them). */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fileLines } from '../trace/lines.js';
import { resolveProfile } from './profile-arg.js';
import { reproC, reproSteps, reproText, reproVitest } from '../trace/repro.js';
import { UsageError } from './usage.js';

export async function reproCli(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { format: { type: 'string' }, profile: { type: 'string' }, out: { type: 'string' } },
  });
  if (positionals.length !== 1) throw new UsageError('repro takes one TRACE file');
  const format = values.format ?? 'text';
  if (!['c', 'vitest', 'text'].includes(format)) throw new UsageError(`--format ${format}: must be c, vitest or text`);
  const path = positionals[0]!;
  const { profile, steps } = await reproSteps(fileLines(path), resolveProfile(values.profile), path);
  const text = format === 'c' ? reproC(steps, path) : format === 'vitest' ? reproVitest(steps, profile, path) : `${reproText(steps)}\n`;
  if (values.out !== undefined) writeFileSync(values.out, text);
  else process.stdout.write(text);
  return 0;
}
