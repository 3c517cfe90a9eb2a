// The pipeline JSON Schema, generated from the stage registry (so editors with the YAML
// language server autocomplete and check pipelines). `npm run schema` writes it to
// schema/pipeline.schema.json; a test fails when the committed file is stale.
import { registry } from '../stages/registry.js';
import type { JsonSchema } from './types.js';

const REFERENCE = { type: 'string', pattern: '^\\$\\{[^}]+\\}$', description: 'a ${params.name} reference' };

/** Let every param also be a `${params.x}` reference, which the runner substitutes. */
function allowReferences(schema: JsonSchema, depth = 0): JsonSchema {
  const props = schema.properties as Record<string, JsonSchema> | undefined;
  if (!props || depth > 4) return schema;
  const out: Record<string, JsonSchema> = {};
  for (const [k, p] of Object.entries(props)) {
    const inner = allowReferences(p, depth + 1);
    out[k] = { description: p.description, ...(p.default !== undefined ? { default: p.default } : {}), anyOf: [inner, REFERENCE] };
  }
  return { ...schema, properties: out };
}

export function pipelineJsonSchema(): JsonSchema {
  const stages = [...registry.values()].sort((a, b) => a.name.localeCompare(b.name));
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://github.com/pipe-ml/pipe/schema/pipeline.schema.json',
    title: 'pipe pipeline',
    description: 'A reproducible deep-learning pipeline: stages, their parameters and the artifacts they pass on.',
    type: 'object',
    additionalProperties: false,
    required: ['stages'],
    properties: {
      name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$', description: 'Pipeline name (default: the file name); names its folder under .pipe/latest.' },
      description: { type: 'string', description: 'What this pipeline is for.' },
      params: { type: 'object', description: 'Pipeline parameters, referenced as ${params.name} in stage params.' },
      cache: {
        type: 'object',
        additionalProperties: false,
        description: 'Where artifacts are kept.',
        properties: {
          dir: { type: 'string', description: 'Local cache directory, relative to this file (default .pipe).' },
          remote: { type: 'string', description: 'Shared remote cache, e.g. s3://bucket/prefix.' },
        },
      },
      stages: {
        type: 'object',
        minProperties: 1,
        description: 'Stage name -> stage.',
        propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_-]*$' },
        additionalProperties: { $ref: '#/definitions/stage' },
      },
    },
    definitions: {
      stage: {
        type: 'object',
        required: ['uses'],
        additionalProperties: false,
        properties: {
          uses: { enum: stages.map((s) => s.name), description: 'The built-in stage this is.' },
          with: { type: 'object', description: "The stage's parameters." },
          inputs: { type: 'object', additionalProperties: { type: 'string' }, description: 'Input port -> upstream stage name.' },
          needs: { type: 'array', items: { type: 'string' }, description: 'Stages that must finish first (ordering only).' },
          runs_on: { type: 'string', description: 'A provision stage: run this stage on that host.' },
          description: { type: 'string', description: 'What this stage does here.' },
        },
        allOf: stages.map((s) => ({
          if: { properties: { uses: { const: s.name } }, required: ['uses'] },
          then: { properties: { with: { description: s.description, ...allowReferences(s.params) } } },
        })),
      },
    },
  };
}
