/** Resolves `--profile NAME|FILE`. */
import { readFileSync } from 'node:fs';
import { DEFAULT_PROFILE_NAME, LINE_PROFILES, PROFILES, profileFromJson, withParams, type Profile } from '../model/profiles.js';
import { UsageError } from './usage.js';

export function resolveProfile(arg: string | undefined): Profile {
  const name = arg ?? DEFAULT_PROFILE_NAME;
  const builtin = withParams(name);
  if (typeof builtin === 'string') throw new UsageError(`--profile ${name}: ${builtin}`);
  if (builtin !== null) return builtin;
  let text: string;
  try {
    text = readFileSync(name, 'utf8');
  } catch {
    throw new UsageError(
      `--profile ${name}: neither a built-in profile (${[...Object.keys(PROFILES), ...Object.keys(LINE_PROFILES)].join(', ')}; NAME,max_gfn=VALUE sets the host's max gfn) nor a readable file`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--profile ${name}: not valid JSON (${(e as Error).message})`);
  }
  const p = profileFromJson(json, name);
  if (!p.ok) throw new UsageError(`--profile ${name}: ${p.error}`);
  return p.profile;
}
