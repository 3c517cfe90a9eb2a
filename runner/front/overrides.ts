// Parameters without editing the file: `--set a.b.c=value`, `-p name=value` (= params.name),
// and `--params-file other.yaml` (a mapping merged over `params:`). Values are YAML scalars or
// flow collections ("500" -> 500, "[a, b]" -> list); where the stage's schema wants a string,
// the raw text is kept ("--set ...with.run=007" stays "007").
import { parse } from 'yaml';
import type { Diagnostic } from '../pipeline.js';
import type { JsonSchema, Stage } from '../types.js';

export interface Override {
  readonly path: string[];
  readonly raw: string;
  readonly flag: string; // "--set stages.x.with.y=..." as the user wrote it, for messages
}

export function parseOverride(text: string, flag: '--set' | '-p'): Override | Diagnostic {
  const eq = text.indexOf('=');
  const where = `${flag} ${text}`;
  if (eq <= 0) return { file: where, path: '', message: `expected ${flag === '-p' ? 'name=value' : 'path=value'}` };
  const key = text.slice(0, eq).trim();
  const path = flag === '-p' ? ['params', ...key.split('.')] : key.split('.');
  if (path.some((p) => p === '' || p === '__proto__' || p === 'constructor' || p === 'prototype')) {
    return { file: where, path: key, message: 'invalid path' };
  }
  return { path, raw: text.slice(eq + 1), flag: where };
}

function wantsString(schema: JsonSchema | undefined): boolean {
  if (!schema) return false;
  if (schema.type === 'string') return true;
  if (Array.isArray(schema.enum)) return (schema.enum as unknown[]).every((v) => typeof v === 'string');
  return false;
}

/** The schema of the param an override targets (stages.<id>.with.<param>...), if any. */
function targetSchema(doc: Record<string, unknown>, path: readonly string[], registry: ReadonlyMap<string, Stage<any>>): JsonSchema | undefined {
  if (path[0] !== 'stages' || path[2] !== 'with' || path.length < 4) return undefined;
  const spec = (doc.stages as Record<string, { uses?: unknown }> | undefined)?.[path[1]!];
  const stage = typeof spec?.uses === 'string' ? registry.get(spec.uses) : undefined;
  let schema: JsonSchema | undefined = stage?.params;
  for (const seg of path.slice(3)) schema = (schema?.properties as Record<string, JsonSchema> | undefined)?.[seg];
  return schema;
}

export function typedValue(raw: string, schema: JsonSchema | undefined): unknown {
  if (wantsString(schema)) return raw;
  try {
    return parse(raw, { maxAliasCount: 10 });
  } catch {
    return raw;
  }
}

/** Apply overrides to the parsed document (in place). Returns problems. */
export function applyOverrides(doc: Record<string, unknown>, overrides: readonly Override[], registry: ReadonlyMap<string, Stage<any>>): Diagnostic[] {
  const errors: Diagnostic[] = [];
  for (const o of overrides) {
    if (o.path[0] === 'stages' && !(doc.stages as Record<string, unknown> | undefined)?.[o.path[1] ?? '']) {
      // Creating a stage through --set is almost always a typo.
      const known = Object.keys((doc.stages as Record<string, unknown>) ?? {});
      errors.push({ file: o.flag, path: o.path.join('.'), message: `no stage named ${o.path[1]} (stages: ${known.join(', ')})` });
      continue;
    }
    let node: Record<string, unknown> = doc;
    let ok = true;
    for (const seg of o.path.slice(0, -1)) {
      const next = node[seg];
      if (next === undefined) node[seg] = {};
      else if (next === null || typeof next !== 'object' || Array.isArray(next)) {
        errors.push({ file: o.flag, path: o.path.join('.'), message: `cannot set inside ${seg}: it is not a mapping` });
        ok = false;
        break;
      }
      node = node[seg] as Record<string, unknown>;
    }
    if (!ok) continue;
    node[o.path.at(-1)!] = typedValue(o.raw, targetSchema(doc, o.path, registry));
  }
  return errors;
}
