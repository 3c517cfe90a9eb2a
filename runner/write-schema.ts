// `npm run schema`: writes what is generated from the stage registry: the pipeline JSON Schema
// (schema/pipeline.schema.json, pretty, trailing newline) for editors, and the precompiled
// params validators (schema/stage-validators.cjs) for a fast `pipe validate`.
// test/schema.test.ts fails when either committed file is stale.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pipelineSchemaText } from './pipeline-schema.js';
import { stageValidatorsText } from './stage-validators.js';
import { PRECOMPILED_FILE } from './validate-params.js';
import { registry } from '../stages/registry.js';

/** The committed schema file (this module runs from dist/runner/). */
export const SCHEMA_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../schema/pipeline.schema.json');
export const VALIDATORS_FILE = PRECOMPILED_FILE;

export function schemaText(): string {
  return pipelineSchemaText(registry);
}

export function validatorsText(): string {
  return stageValidatorsText(registry);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  await mkdir(path.dirname(SCHEMA_FILE), { recursive: true });
  for (const [file, text] of [
    [SCHEMA_FILE, schemaText()],
    [VALIDATORS_FILE, validatorsText()],
  ] as const) {
    await writeFile(file, text);
    console.log(`wrote ${path.relative(process.cwd(), file) || file}`);
  }
}
