// Parameters without editing the file: `--set a.b.c=value`, `-p name=value` (= params.name),
// and `--params-file other.yaml` (a mapping merged over `params:`). Values are YAML scalars or
// flow collections ("500" -> 500, "[a, b]" -> list); where the stage's schema wants a string,
// the raw text is kept ("--set ...with.run=007" stays "007").
import { parse } from 'yaml';
import type { Diagnostic } from '../pipeline.js';
import type { Stage } from '../types.js';
import { stringPathsOf } from './interpolate.js';

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

/** Whether the stage's schema wants a string at the path an override targets. */
function wantsStringAt(doc: Record<string, unknown>, path: readonly string[], registry: ReadonlyMap<string, Stage<any>>): boolean {
  if (path[0] !== 'stages' || path[2] !== 'with' || path.length < 4) return false;
  const spec = (doc.stages as Record<string, { uses?: unknown }> | undefined)?.[path[1]!];
  const stage = typeof spec?.uses === 'string' ? registry.get(spec.uses) : undefined;
  return stage ? stringPathsOf(stage.params, `stages.${path[1]}.with`)(path.join('.')) : false;
}

export function typedValue(raw: string, wantsString: boolean): unknown {
  if (wantsString) return raw;
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
    node[o.path.at(-1)!] = typedValue(o.raw, wantsStringAt(doc, o.path, registry));
  }
  return errors;
}
