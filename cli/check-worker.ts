/**
 * A worker thread of `memslot-oracle check --workers N`: runs one slice (its own seed and run
 * count) and posts the CheckResult back. Loaded from the built JS (dist/cli/).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { profileFromJson } from '../model/profiles.js';
import { runCheck, type CheckResult, type Progress } from '../properties/run-check.js';
import { implFactory } from './implementations.js';

/** What the parent sends. */
export interface WorkerJob {
  readonly impl: string;
  readonly profileName: string;
  readonly profile: Record<string, unknown>;
  readonly seed: number;
  readonly runs: number;
  readonly maxSteps: number;
  readonly outDir?: string;
  readonly reproduce: string;
}

/** What the worker posts. */
export type WorkerMessage =
  | { readonly kind: 'progress'; readonly progress: Progress }
  | { readonly kind: 'done'; readonly result: CheckResult }
  | { readonly kind: 'error'; readonly message: string };

async function main(): Promise<void> {
  const job = workerData as WorkerJob;
  const post = (m: WorkerMessage): void => parentPort?.postMessage(m);
  try {
    const p = profileFromJson(job.profile, job.profileName);
    if (!p.ok) throw new Error(p.error);
    const impl = implFactory(job.impl);
    const result = await runCheck({
      impl,
      implName: job.impl,
      profile: p.profile,
      seed: job.seed,
      runs: job.runs,
      maxSteps: job.maxSteps,
      reproduce: job.reproduce,
      ...(job.outDir !== undefined ? { outDir: job.outDir } : {}),
      onProgress: (progress) => post({ kind: 'progress', progress }),
    });
    post({ kind: 'done', result });
  } catch (e) {
    post({ kind: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  }
}

void main();
