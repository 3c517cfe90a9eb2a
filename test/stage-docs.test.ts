import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { README, spliceReference, stageReference } from '../runner/stage-docs.js';
import { registry } from '../stages/registry.js';

test('the README stage reference is generated from the registry and current', async () => {
  const readme = await readFile(README, 'utf8');
  assert.equal(readme, spliceReference(readme, stageReference()), 'README.md stage reference is stale: run `npm run docs`');
  for (const name of registry.keys()) assert.ok(readme.includes(`### \`${name}\``), `README lacks stage ${name}`);
});

test('every stage param is documented and the schema forbids unknown params', () => {
  for (const stage of registry.values()) {
    assert.equal(stage.params.additionalProperties, false, `${stage.name}: additionalProperties must be false`);
    for (const [name, p] of Object.entries((stage.params.properties ?? {}) as Record<string, { description?: string }>)) {
      assert.ok(p.description && p.description.length > 3, `${stage.name}.${name} has no description`);
    }
  }
});
