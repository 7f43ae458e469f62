#!/usr/bin/env node
/**
 * The command line. Exit status: 0 all agree, 1 a disagreement, 2 bad input, usage or a
 * broken SUT. Only this file calls process.exit.
 */
import { parseArgs } from 'node:util';
import { LINE_PROFILES, PROFILES, profileToJson } from '../model/profiles.js';
import { MissingFileError, fileLines, fileText } from '../trace/lines.js';
import { resolveProfile } from './profile-arg.js';
import { formatReplay, replay } from '../trace/replay.js';
import { InputError, readTrace, readTraceText } from '../trace/trace.js';
import { intOption, parseTimeout } from './options.js';
import { USAGE, UsageError } from './usage.js';

type Command = (args: string[]) => Promise<number>;

async function replayCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { profile: { type: 'string' }, sut: { type: 'string' }, timeout: { type: 'string' }, record: { type: 'string' }, lint: { type: 'boolean' } },
  });
  if (values.record !== undefined && values.sut === undefined) throw new UsageError("--record needs --sut (it writes the SUT's answers)");
  if (positionals.length !== 1) throw new UsageError('replay takes one TRACE file (or - for stdin)');
  const profile = resolveProfile(values.profile);
  const path = positionals[0]!;
  if (values.sut !== undefined) {
    const { replayWithSut } = await import('./sut/replay-sut.js');
    return replayWithSut(path, profile, values.sut, values.profile !== undefined, parseTimeout(values.timeout), values.record, values.lint === true);
  }
  // The VMM checks are a report on the caller, not part of the verdict: asked for with --lint
  // (or `memslot-oracle lint`), they cost more than the replay itself.
  if (values.lint !== true) {
    const summary = await replay(readTraceText(fileText(path), path), { profile });
    process.stdout.write(`${formatReplay(summary, false)}\n`);
    return summary.mismatches === 0 ? 0 : 1;
  }
  // Loaded only here: a plain replay does not pay for loading the VMM checks.
  const { VmmLinter, formatLint } = await import('../lint/vmm-lint.js');
  const linter = new VmmLinter(profile);
  const summary = await replay(readTraceText(fileText(path), path), {
    profile,
    onStep: (s) => linter.step(s),
    onReset: async (p) => linter.reset(p),
  });
  process.stdout.write(`${formatReplay(summary, false)}\n\n${formatLint(linter.finish())}\n`);
  return summary.mismatches === 0 ? 0 : 1;
}

async function lintCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { profile: { type: 'string' }, limit: { type: 'string' } } });
  if (positionals.length !== 1) throw new UsageError('lint takes one TRACE file (or - for stdin)');
  const path = positionals[0]!;
  const { lintTrace, formatLint } = await import('../lint/vmm-lint.js');
  const report = await lintTrace(readTrace(fileLines(path), path), resolveProfile(values.profile));
  process.stdout.write(`${report.steps} steps\n${formatLint(report.findings, intOption('limit', values.limit, 20, 1))}\n`);
  return report.findings.length === 0 ? 0 : 1;
}

async function serveCommand(args: string[]): Promise<number> {
  const { serveCli } = await import('./serve.js');
  return serveCli(args);
}

async function profilesCommand(): Promise<number> {
  for (const [name, p] of Object.entries({ ...PROFILES, ...LINE_PROFILES })) process.stdout.write(`${name} ${JSON.stringify(profileToJson(p))}\n`);
  return 0;
}

async function checkCommand(args: string[]): Promise<number> {
  const { checkCli } = await import('./check.js');
  return checkCli(args);
}

async function recordCommand(args: string[]): Promise<number> {
  const { recordCli } = await import('./sut/record.js');
  return recordCli(args);
}

async function reproCommand(args: string[]): Promise<number> {
  const { reproCli } = await import('./repro.js');
  return reproCli(args);
}

async function vectorsCommand(args: string[]): Promise<number> {
  const { vectorsCli } = await import('./vectors.js');
  return vectorsCli(args);
}

const COMMANDS: Record<string, Command> = {
  vectors: vectorsCommand,
  repro: reproCommand,
  check: checkCommand,
  replay: replayCommand,
  lint: lintCommand,
  serve: serveCommand,
  record: recordCommand,
  profiles: profilesCommand,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) throw new UsageError(`unknown command "${name}" (try --help)`);
  return command(rest);
}

// A reader that went away (`memslot-oracle replay t.jsonl | head -1`) cannot take the rest of
// the report; the exit status still carries the verdict. Node reports the closed pipe as an
// 'error' event, which unhandled ended the process with a stack trace instead.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof UsageError || e instanceof InputError || e instanceof MissingFileError) {
      process.stderr.write(`memslot-oracle: ${e.message}\n`);
    } else if (e instanceof Error && e.name === 'SutError') {
      process.stderr.write(`memslot-oracle: SUT error: ${e.message}\n`);
    } else if (e instanceof Error && String((e as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`memslot-oracle: ${e.message}\n`);
    } else {
      process.stderr.write(`memslot-oracle: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    }
    process.exitCode = 2;
  },
);
