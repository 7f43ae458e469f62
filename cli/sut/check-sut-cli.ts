/** `memslot-oracle check --sut kvm|CMD`: options, output and exit status. */
import { resourceNote } from '../../trace/replay.js';
import { join } from 'node:path';
import { resolveProfile } from '../profile-arg.js';
import { intOption, parseTimeout, seedOption } from '../options.js';
import { DEFAULT_MAX_STEPS, DEFAULT_RUNS } from '../../properties/run-check.js';
import { UsageError } from '../usage.js';
import { SutClient } from '../../sut/protocol.js';
import { runSutCheck, writeSutCounterexample } from './check-sut.js';
import { RECORD_MAX_PAGES } from './record.js';

export interface SutCheckArgs {
  readonly sut?: string | undefined;
  readonly seed?: string | undefined;
  readonly runs?: string | undefined;
  readonly 'max-steps'?: string | undefined;
  readonly profile?: string | undefined;
  readonly out?: string | undefined;
  readonly timeout?: string | undefined;
  readonly workers?: string | undefined;
  readonly shard?: string | undefined;
}

export async function checkSutCli(values: SutCheckArgs): Promise<number> {
  if (values.workers !== undefined || values.shard !== undefined) throw new UsageError('--workers and --shard run implementations in process; with --sut run one check per SUT');
  const seed = seedOption(values.seed);
  const runs = intOption('runs', values.runs, DEFAULT_RUNS, 1);
  const maxSteps = intOption('max-steps', values['max-steps'], DEFAULT_MAX_STEPS, 1);
  const sut = await SutClient.start(values.sut!, { timeoutMs: parseTimeout(values.timeout) });
  try {
    const profile = sut.resolveProfile(values.profile === undefined ? null : resolveProfile(values.profile), resolveProfile(undefined));
    const result = await runSutCheck({ sut, profile, seed, runs, maxSteps, maxPages: values.sut === 'kvm' ? RECORD_MAX_PAGES : null });
    const under = sut.hello.profile !== null && values.profile === undefined ? 'its declared profile' : `profile ${profile.name}`;
    const rerun = `memslot-oracle check --sut ${JSON.stringify(values.sut)} --seed ${seed} --runs ${runs} --max-steps ${maxSteps}${values.profile === undefined ? '' : ` --profile ${values.profile}`}`;
    if (result.ok) {
      process.stdout.write(`check: ${sut.description} under ${under}: ${result.runs} runs, ${result.requests} requests, 0 disagreements (seed ${seed})${resourceNote(result.resourceSteps)}\n`);
      return 0;
    }
    const cx = result.counterexample;
    const dir = values.out ?? join('memslot-oracle-out', new Date().toISOString().replace(/[:.]/g, '-'));
    const files = await writeSutCounterexample(dir, cx, values.sut!, profile, rerun);
    process.stdout.write(
      `check: ${sut.description} under ${under} disagrees with the model (seed ${seed}, after ${result.runs} runs)\n\n${cx.text}\n\n` +
        `shrunk to ${cx.steps.length} steps (fast-check left ${cx.shrunkSteps}); rerun: ${rerun}\n` +
        `wrote ${files.report}, ${files.trace}, ${files.c}\n`,
    );
    return 1;
  } finally {
    await sut.close();
  }
}
