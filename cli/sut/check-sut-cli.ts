/** `memslot-oracle check --sut kvm|CMD`: the runner of `check` against a SUT over the protocol. */
import { join } from 'node:path';
import { DEFAULT_MAX_STEPS, DEFAULT_RUNS, runCheck } from '../../properties/run-check.js';
import { sutTarget } from '../../properties/target.js';
import { SutClient } from '../../sut/protocol.js';
import { printCheck } from '../check-report.js';
import { intOption, parseTimeout, seedOption } from '../options.js';
import { resolveProfile } from '../profile-arg.js';
import { UsageError } from '../usage.js';
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
  readonly path?: string | undefined;
  readonly 'replay-path'?: string | undefined;
}

export async function checkSutCli(values: SutCheckArgs): Promise<number> {
  if (values.workers !== undefined || values.shard !== undefined)
    throw new UsageError('--workers and --shard run implementations in process; with --sut run one check per SUT');
  const seed = seedOption(values.seed);
  const runs = intOption('runs', values.runs, DEFAULT_RUNS, 1);
  const maxSteps = intOption('max-steps', values['max-steps'], DEFAULT_MAX_STEPS, 1);
  const sut = await SutClient.start(values.sut!, { timeoutMs: parseTimeout(values.timeout) });
  try {
    const profile = sut.resolveProfile(values.profile === undefined ? null : resolveProfile(values.profile), resolveProfile(undefined));
    const target = sutTarget(sut, { maxPages: values.sut === 'kvm' ? RECORD_MAX_PAGES : null });
    const under = sut.hello.profile !== null && values.profile === undefined ? 'its declared profile' : `profile ${profile.name}`;
    const profileArg = values.profile === undefined ? '' : ` --profile ${values.profile}`;
    const result = await runCheck({
      target: async () => {
        await target.reset();
        return target;
      },
      implName: sut.description,
      profile,
      seed,
      runs,
      maxSteps,
      outDir: values.out ?? join('memslot-oracle-out', new Date().toISOString().replace(/[:.]/g, '-')),
      reproduce: `memslot-oracle check --sut ${JSON.stringify(values.sut)}${profileArg} --seed {seed} --path "{path}" --replay-path "{replayPath}" --max-steps ${maxSteps}`,
      ...(values.path !== undefined ? { path: values.path } : {}),
      ...(values['replay-path'] !== undefined ? { replayPath: values['replay-path'] } : {}),
    });
    return printCheck([result], profile, `${sut.description} under ${under}`, `seed ${seed}`);
  } finally {
    await sut.close();
  }
}
