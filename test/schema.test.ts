// The pipeline JSON Schema (for editors) is generated from the stage registry: the committed
// file must be current, must accept the valid pipelines and reject broken ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { pipelineJsonSchema, pipelineSchemaText } from '../runner/pipeline-schema.js';
import { SCHEMA_FILE, VALIDATORS_FILE, validatorsText } from '../runner/write-schema.js';
import { checkParams, validatorFor } from '../runner/validate-params.js';
import type { Stage } from '../runner/types.js';
import { registry } from '../stages/registry.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function compile(schema: object): ValidateFunction {
  return new Ajv({ strict: false, allErrors: true }).compile(schema);
}

async function yamlFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => /\.ya?ml$/.test(n)).map((n) => path.join(dir, n));
}

test('schema/pipeline.schema.json is current (else: run npm run schema)', async () => {
  const committed = await readFile(SCHEMA_FILE, 'utf8').catch(() => '');
  assert.ok(committed === pipelineSchemaText(registry), 'schema/pipeline.schema.json is stale or missing: run npm run schema, and commit the result');
  assert.ok(committed.endsWith('}\n'));
});

test('schema/stage-validators.cjs is current (else: run npm run schema)', async () => {
  const committed = await readFile(VALIDATORS_FILE, 'utf8').catch(() => '');
  assert.ok(committed === validatorsText(), 'schema/stage-validators.cjs is stale or missing: run npm run schema, and commit the result');
});

test('precompiled validators are used while their schema is unchanged, ajv otherwise', () => {
  const command = registry.get('command')!;
  const pre = validatorFor(command.params, 'command');
  assert.equal(validatorFor(command.params, 'command'), pre);
  const edited = { ...command.params, required: [] };
  const compiled = validatorFor(edited, 'command');
  assert.notEqual(compiled, pre, 'a changed schema is compiled, not matched by name');
  assert.deepEqual(checkParams(edited, {}).params, { deps: [], env: {}, kind: 'files', workdir: 'pipeline' });
  assert.deepEqual(checkParams(command.params, { run: 'x' }, 'command').params, { run: 'x', deps: [], env: {}, kind: 'files', workdir: 'pipeline' });
  assert.deepEqual(
    checkParams(command.params, { run: 1 }, 'command').problems.map((p) => p.message),
    ['must be a string or a list of strings'],
  );
});

test('loading a pipeline of built-in stages never loads ajv itself', async () => {
  const script = `
    import { createRequire } from 'node:module';
    const { loadPipeline } = await import(${JSON.stringify(path.join(ROOT, 'dist/runner/load.js'))});
    const { registry } = await import(${JSON.stringify(path.join(ROOT, 'dist/stages/registry.js'))});
    const r = await loadPipeline(${JSON.stringify(path.join(ROOT, 'test/fixtures/valid/six-stages.yaml'))}, { registry });
    const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => /node_modules[\\/]ajv[\\/]dist[\\/](ajv|core|compile)/.test(k));
    console.log(JSON.stringify({ ok: r.ok, loaded }));`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
  assert.deepEqual(JSON.parse(stdout), { ok: true, loaded: [] });
});

async function assertAccepted(files: readonly string[]): Promise<void> {
  const validate = compile(JSON.parse(await readFile(SCHEMA_FILE, 'utf8')));
  for (const f of files) {
    // Editors resolve merge keys themselves, as the loader does.
    const doc: unknown = parse(await readFile(f, 'utf8'), { merge: true });
    assert.ok(validate(doc), `${path.relative(ROOT, f)}: ${JSON.stringify(validate.errors, null, 1)}`);
  }
}

test('the schema accepts the valid fixtures', async () => {
  const files = await yamlFiles(path.join(ROOT, 'test/fixtures/valid'));
  assert.ok(files.length >= 3);
  await assertAccepted(files);
});

test('the schema accepts the shipped pipelines (pipelines/*.yaml)', async () => {
  await assertAccepted(await yamlFiles(path.join(ROOT, 'pipelines')));
});

test('the schema rejects broken pipelines', () => {
  const validate = compile(pipelineJsonSchema(registry));
  const ok = { stages: { a: { uses: 'command', with: { run: 'x' } } } };
  assert.ok(validate(ok));
  assert.ok(
    validate({
      params: { t: 64 },
      stages: {
        e: { uses: 'command', with: { run: 'x', kind: 'evaluation' } },
        r: { uses: 'report', inputs: { evaluation: 'e' }, with: { thumbnails: '${params.t}' } },
      },
    }),
    'a whole reference stands for any type',
  );
  const bad: [string, unknown][] = [
    ['unknown stage', { stages: { a: { uses: 'nope' } } }],
    ['unknown param', { stages: { a: { uses: 'command', with: { run: 'x', bogus: 1 } } } }],
    ['missing required param', { stages: { a: { uses: 'command' } } }],
    ['wrong param type', { stages: { a: { uses: 'command', with: { run: 'x', deps: 'a.txt' } } } }],
    ['enum', { stages: { a: { uses: 'command', with: { run: 'x', kind: 'pictures' } } } }],
    ['range', { stages: { r: { uses: 'report', inputs: { evaluation: 'a' }, with: { thumbnails: 1 } } } }],
    ['missing required port', { stages: { r: { uses: 'report' } } }],
    ['unknown stage key', { stages: { a: { uses: 'command', with: { run: 'x' }, extra: 1 } } }],
    ['unknown top-level key', { ...ok, stage: {} }],
    ['no stages', { stages: {} }],
    ['stage id escaping its directory', { stages: { '../a': { uses: 'command', with: { run: 'x' } } } }],
    ['bad name', { name: '../x', ...ok }],
    ['input not a stage id', { stages: { a: { uses: 'command', with: { run: 'x' }, inputs: { x: 3 } } } }],
    ['needs not a list', { stages: { a: { uses: 'command', with: { run: 'x' }, needs: 'b' } } }],
    ['a reference is whole or nothing', { stages: { r: { uses: 'report', inputs: { evaluation: 'a' }, with: { thumbnails: 'big ${params.t}' } } } }],
  ];
  for (const [what, doc] of bad) assert.equal(validate(doc), false, what);
});

test('ports and required params of each stage type are in the schema, with descriptions', () => {
  const none = async (): Promise<void> => undefined;
  const train: Stage<any> = {
    name: 'train',
    version: 1,
    description: 'Trains.',
    params: {
      type: 'object',
      additionalProperties: false,
      required: ['epochs'],
      properties: { epochs: { type: 'integer', minimum: 1, description: 'Passes over the data.' } },
    },
    inputs: { dataset: { kind: 'dataset', description: 'The split.' }, extra: { kind: 'files', required: false } },
    output: 'model',
    run: none,
  };
  const schema = pipelineJsonSchema(new Map([['train', train]])) as { definitions: Record<string, { properties: Record<string, { description?: string }> }> };
  const validate = compile(schema);
  assert.ok(validate({ stages: { t: { uses: 'train', inputs: { dataset: 'd' }, with: { epochs: 2 } } } }));
  assert.ok(validate({ stages: { t: { uses: 'train', inputs: { dataset: 'd', extra: 'e' }, with: { epochs: '${params.n}' } } } }));
  assert.equal(validate({ stages: { t: { uses: 'train', inputs: { dataset: 'd' } } } }), false, 'required params need `with`');
  assert.equal(validate({ stages: { t: { uses: 'train', with: { epochs: 2 } } } }), false, 'required port');
  assert.equal(validate({ stages: { t: { uses: 'train', inputs: { dataset: 'd', pictures: 'p' }, with: { epochs: 2 } } } }), false, 'unknown port');
  assert.equal(validate({ stages: { t: { uses: 'train', inputs: { dataset: 'd' }, with: { epochs: 0 } } } }), false, 'range');
  const def = schema.definitions['stage.train']!;
  assert.match(def.properties.with!.description!, /Trains\./);
  assert.match(def.properties.inputs!.description!, /dataset \(dataset\)/);
  assert.match(JSON.stringify(def), /Passes over the data\./);
});
