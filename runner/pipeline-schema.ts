// The pipeline JSON Schema, generated from the stage registry (the single source of truth) so
// editors autocomplete and check pipelines: `# yaml-language-server: $schema=...`. Each stage's
// `with` is checked against that stage's own params schema through an if/then keyed by `uses`.
// What a schema cannot say (references between stages, kinds, cycles) is `pipe validate`'s job.
import type { JsonSchema, Stage } from './types.js';
import { NAME_PATTERN, STAGE_ID_PATTERN } from './validate.js';
import { SECRET_NAME } from './secrets.js';

const REF = '#/definitions/paramRef';

function isObject(v: unknown): v is JsonSchema {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A schema that any string satisfies: `${params.x}` needs no alternative there. */
function takesAnyString(s: JsonSchema): boolean {
  return s.type === 'string' && !('enum' in s) && !('const' in s) && !('pattern' in s) && !('format' in s) && !('maxLength' in s);
}

/**
 * The params schema, where every value may also be a whole `${params.x}` reference (resolved
 * before the stage's own schema is applied), so pipelines that use params do not show errors.
 */
function allowReferences(schema: unknown, depth = 0): unknown {
  if (!isObject(schema) || depth > 20) return schema;
  const out: JsonSchema = { ...schema };
  if (isObject(schema.properties)) {
    out.properties = Object.fromEntries(Object.entries(schema.properties).map(([k, v]) => [k, withRef(allowReferences(v, depth + 1))]));
  }
  if (isObject(schema.items)) out.items = withRef(allowReferences(schema.items, depth + 1));
  if (isObject(schema.additionalProperties)) out.additionalProperties = withRef(allowReferences(schema.additionalProperties, depth + 1));
  for (const k of ['oneOf', 'anyOf', 'allOf'] as const) {
    if (Array.isArray(schema[k])) out[k] = (schema[k] as unknown[]).map((b) => allowReferences(b, depth + 1));
  }
  return out;
}

function withRef(schema: unknown): unknown {
  if (!isObject(schema) || takesAnyString(schema)) return schema;
  const { description, default: def, title, ...rest } = schema;
  return {
    ...(title !== undefined ? { title } : {}),
    ...(description !== undefined ? { description } : {}),
    ...(def !== undefined ? { default: def } : {}),
    anyOf: [rest, { $ref: REF }],
  };
}

function stageDefinition(stage: Stage<any>): JsonSchema {
  const params = allowReferences(stage.params) as JsonSchema;
  const ports = Object.entries(stage.inputs);
  const requiredPorts = ports.filter(([, p]) => p.required !== false).map(([name]) => name);
  const portSchema = (kind: string, description?: string): JsonSchema => ({
    $ref: '#/definitions/stageId',
    description: `Upstream stage producing a '${kind}' artifact${description ? `: ${description}` : ''}.`,
  });
  const inputs: JsonSchema = {
    type: 'object',
    description:
      ports.length > 0
        ? `Input ports of '${stage.name}': ${ports.map(([n, p]) => `${n} (${p.kind})`).join(', ')}.`
        : `'${stage.name}' has no declared input ports.`,
    properties: Object.fromEntries(ports.map(([name, p]) => [name, portSchema(p.kind, p.description)])),
    additionalProperties: stage.extraInputs ? portSchema(stage.extraInputs.kind, stage.extraInputs.description) : false,
    ...(requiredPorts.length > 0 ? { required: requiredPorts } : {}),
  };
  const paramsRequired = Array.isArray(stage.params.required) && stage.params.required.length > 0;
  const required = [...(paramsRequired ? ['with'] : []), ...(requiredPorts.length > 0 ? ['inputs'] : [])];
  return {
    description: stage.description,
    properties: {
      with: { ...params, description: `Parameters of '${stage.name}'. ${stage.description}`.trim() },
      inputs,
    },
    ...(required.length > 0 ? { required } : {}),
  };
}

export function pipelineJsonSchema(registry: ReadonlyMap<string, Stage<any>>): object {
  const stages = [...registry.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const definitions: Record<string, JsonSchema> = {
    paramRef: {
      type: 'string',
      pattern: '^\\$\\{\\s*params\\.[^}]+\\}$',
      description: 'A whole `${params.name}` reference: replaced by the pipeline param, keeping its type.',
    },
    secrets: {
      type: 'array',
      description:
        'Environment variables holding credentials (API_TOKEN): passed from the environment pipe runs in to the stage, on a `runs_on` host too, and checked before it starts. Their values are never stored (key, meta.json, run records, logs, remotes); their names are.',
      items: { type: 'string', pattern: SECRET_NAME.source },
    },
    stageId: {
      type: 'string',
      pattern: STAGE_ID_PATTERN.source,
      description: 'The id of another stage of this pipeline.',
    },
    stage: {
      type: 'object',
      description: 'A stage: which stage type it runs (`uses`), its parameters (`with`) and where its inputs come from.',
      required: ['uses'],
      additionalProperties: false,
      properties: {
        uses: {
          description: 'The stage type to run.',
          enum: stages.map((s) => s.name),
          enumDescriptions: stages.map((s) => s.description),
          markdownEnumDescriptions: stages.map((s) => s.description),
        },
        with: { type: 'object', description: "The stage's parameters, checked against its own schema. `${params.name}` may be used anywhere." },
        inputs: {
          type: 'object',
          description: 'Input ports -> upstream stage ids. The dependency graph comes from here; artifact kinds must match.',
          additionalProperties: { $ref: '#/definitions/stageId' },
        },
        needs: {
          type: 'array',
          description: 'Stages that must run first, without passing data (pure ordering).',
          items: { $ref: '#/definitions/stageId' },
        },
        runs_on: {
          $ref: '#/definitions/stageId',
          description: 'A provision stage whose host this stage runs on (placement: not part of the cache key).',
        },
        secrets: { $ref: '#/definitions/secrets' },
        description: { type: 'string', description: 'What this stage is for (shown by pipe graph and the report).' },
      },
      allOf: stages.map((s) => ({
        if: { properties: { uses: { const: s.name } }, required: ['uses'] },
        then: { $ref: `#/definitions/stage.${s.name}` },
      })),
    },
  };
  for (const s of stages) definitions[`stage.${s.name}`] = stageDefinition(s);
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'pipe pipeline',
    description: 'A declarative, cached pipeline for pipe. Generated from the stage registry by `npm run schema`: do not edit.',
    type: 'object',
    required: ['stages'],
    additionalProperties: false,
    properties: {
      name: {
        type: 'string',
        pattern: NAME_PATTERN.source,
        maxLength: 100,
        description: "The pipeline's name (default: the file name without extension). It names directories under .pipe/.",
      },
      description: { type: 'string', description: 'What this pipeline does.' },
      secrets: { $ref: '#/definitions/secrets', description: "Secrets every stage is given (and needs): see a stage's `secrets`." },
      params: {
        type: 'object',
        description: 'Pipeline parameters, used as `${params.name}` in stage parameters; override with -p name=value or --params-file.',
      },
      cache: {
        type: 'object',
        description: 'Where artifacts are kept.',
        additionalProperties: false,
        properties: {
          remote: { type: 'string', minLength: 1, description: 'A shared remote cache (e.g. s3://bucket/prefix) to pull from and push to.' },
          dir: { type: 'string', minLength: 1, description: 'The local cache directory, relative to the pipeline file (default .pipe).' },
        },
      },
      stages: {
        type: 'object',
        description: 'Stage id -> stage. Ids become directory names: letters, digits, `_` and `-`.',
        minProperties: 1,
        propertyNames: { pattern: STAGE_ID_PATTERN.source },
        additionalProperties: { $ref: '#/definitions/stage' },
      },
    },
    definitions,
  };
}

/** The schema file's exact text: pretty, with a trailing newline. */
export function pipelineSchemaText(registry: ReadonlyMap<string, Stage<any>>): string {
  return `${JSON.stringify(pipelineJsonSchema(registry), null, 2)}\n`;
}
