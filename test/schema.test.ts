import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { SCHEMA_FILE, schemaText } from '../runner/write-schema.js';
import { REPO } from './e2e/rig.js';

test('schema/pipeline.schema.json is generated from the registry and current', async () => {
  assert.equal(await readFile(SCHEMA_FILE, 'utf8'), schemaText(), 'schema/pipeline.schema.json is stale: run `npm run schema`');
});

test('the JSON Schema accepts the example pipelines and rejects bad ones', async () => {
  const validate = new Ajv({ strict: false, allErrors: true }).compile(JSON.parse(schemaText()));
  const dir = path.join(REPO, 'pipelines');
  for (const f of (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.yaml'))) {
    const doc = parse(await readFile(path.join(dir, f), 'utf8'));
    assert.ok(validate(doc), `${f}: ${JSON.stringify(validate.errors)}`);
  }
  assert.ok(validate({ params: { seed: 1 }, stages: { a: { uses: 'command', with: { run: 'x', kind: '${params.kind}' } } } }));
  assert.equal(validate({ stages: { a: { uses: 'command', with: { run: 'x', bogus: 1 } } } }), false);
  assert.equal(validate({ stages: { a: { uses: 'nope' } } }), false);
  assert.equal(validate({ stages: { a: { uses: 'command', with: { run: 'x' }, extra: 1 } } }), false);
  assert.equal(validate({ stages: {} }), false);
});
