#!/usr/bin/env node
/**
 * A tiny system under test for the protocol benchmark: speaks spec/80-protocol.md on
 * stdin/stdout and answers every request from the scalable implementation. Run as
 * `node dist/bench/sut.js [PROFILE]` (default x86_64-nosmm).
 */
import { createInterface } from 'node:readline';
import { IMPLEMENTATIONS } from '../impl/index.js';
import { DEFAULT_PROFILE_NAME, PROFILES, profileToJson } from '../model/index.js';
import { implStep } from '../trace/execute.js';
import { OPS, RequestFields, answerToJson, parseRequest } from '../trace/trace.js';

const profileName = process.argv[2] ?? DEFAULT_PROFILE_NAME;
const profile = PROFILES[profileName];
if (profile === undefined) {
  process.stderr.write(`bench sut: unknown profile ${profileName}\n`);
  process.exit(2);
}
const impl = IMPLEMENTATIONS.scalable(profile);

function answer(text: string, line: number): unknown {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch {
    return { error: 'not JSON' };
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return { error: 'not an object' };
  const o = obj as Record<string, unknown>;
  if (o['op'] === 'hello') return { protocol: 1, name: 'bench-scalable', ops: [...OPS], profile: profileToJson(profile!) };
  try {
    // Requests may carry fields this SUT does not need (a trace's expect): ignore them.
    const request = parseRequest(new RequestFields(o, line, 'request'), Object.keys(o));
    return answerToJson(implStep(impl, request));
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

let n = 0;
const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', (text) => {
  n++;
  process.stdout.write(`${JSON.stringify(answer(text, n))}\n`);
});
rl.on('close', () => process.exit(0));
