// The secrets module alone: what "missing" means for alternatives, what is sent to a host, and
// the stdin line `pipe exec` reads (only declared names, only strings, one line).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import type { Pipeline, StageSpec } from '../runner/pipeline.js';
import type { Stage } from '../runner/types.js';
import { StageError } from '../runner/types.js';
import { readSecretsLine, secretNames, secretsForHost, secretsLine, unsetSecrets } from '../runner/secrets.js';

const spec = (secrets: string[] = []): StageSpec => ({
  id: 's',
  uses: 't',
  with: {},
  inputs: {},
  needs: [],
  secrets: secrets.map((name, i) => ({ name, path: `stages.s.secrets[${i}]` })),
});
const pipeline = { displayPath: 'p.yaml', positionOf: (p: string) => (p === 'stages.s.secrets[0]' ? { line: 4, col: 15 } : undefined) } as unknown as Pipeline;
const stageWith = (optional: boolean): Stage<any> => ({ name: 't', secrets: [{ anyOf: [['TOKEN'], ['USER', 'KEY']], optional }] }) as unknown as Stage<any>;

test('a required credential with alternatives is met by any one whole set; a half set is named', () => {
  const stage = stageWith(false);
  const messages = (env: Record<string, string>): string[] => unsetSecrets(pipeline, stage, spec(), env).map((u) => u.message);
  assert.deepEqual(messages({ TOKEN: 't' }), []);
  assert.deepEqual(messages({ USER: 'u', KEY: 'k' }), []);
  assert.deepEqual(messages({}), ['p.yaml: stages.s: t needs TOKEN, or USER and KEY, none of them set']);
  assert.deepEqual(messages({ USER: 'u', TOKEN: '' }), ['p.yaml: stages.s: t needs TOKEN, or USER and KEY, none of them set (USER set without KEY)']);
  // An optional one (files may serve instead) is never missing.
  assert.deepEqual(unsetSecrets(pipeline, stageWith(true), spec(), {}), []);
});

test('declared names are required one by one and located where they are written', () => {
  const unset = unsetSecrets(pipeline, undefined, spec(['API_TOKEN', 'OTHER']), { OTHER: 'x' });
  assert.deepEqual(
    unset.map((u) => u.message),
    ['p.yaml:4:15: stages.s.secrets[0]: API_TOKEN is not set in the environment pipe runs in (stage s declares it)'],
  );
  assert.deepEqual(secretNames(stageWith(true), spec(['API_TOKEN'])), ['API_TOKEN', 'KEY', 'TOKEN', 'USER']);
});

test('a host is sent the declared variables that are set, and told when an optional credential has none', () => {
  const lines: string[] = [];
  const log = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m), debug: () => undefined };
  const env = { API_TOKEN: 'a', USER: 'u', KEY: '', PATH: '/bin', UNDECLARED_SECRET: 'no' };
  assert.deepEqual(secretsForHost(stageWith(true), spec(['API_TOKEN']), log, env), { API_TOKEN: 'a', USER: 'u' });
  assert.deepEqual(lines, ['TOKEN, or USER and KEY: none set here, so none is sent; on the host, t looks for its own credential files']);
});

test('pipe exec reads one JSON line of declared string values from stdin, and nothing else', async () => {
  const line = secretsLine({ API_TOKEN: 'v"al\nue' });
  assert.equal(line.split('\n').length, 2, 'one line');
  // Split across chunks, with more after the line.
  const chunks = [line.slice(0, 5), line.slice(5), 'ignored\n'];
  assert.deepEqual(await readSecretsLine(Readable.from(chunks), ['API_TOKEN']), { API_TOKEN: 'v"al\nue' });
  await assert.rejects(
    readSecretsLine(Readable.from([secretsLine({ API_TOKEN: 'x', PATH: '/evil' })]), ['API_TOKEN']),
    (e: unknown) => e instanceof StageError && /undeclared PATH/.test(e.message),
  );
  await assert.rejects(readSecretsLine(Readable.from(['{"API_TOKEN": 1}\n']), ['API_TOKEN']), /non-string API_TOKEN/);
  await assert.rejects(readSecretsLine(Readable.from([]), ['API_TOKEN']), /sent no secrets on stdin/);
  await assert.rejects(readSecretsLine(Readable.from(['not json\n']), ['API_TOKEN']), /not JSON/);
});
