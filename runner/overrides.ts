// Parameters without editing the file: `--set a.b.c=value`, `-p name=value` (= params.name),
// `--params-file other.yaml` (a mapping deep-merged over `params:`). A value is parsed as a YAML
// scalar or flow collection ("500" -> 500, "[a, b]" -> a list), then typed by the schema of
// what it sets: where that wants a string, the raw text is kept ("run=007" stays "007").
import { parseDocument } from 'yaml';
import type { Diagnostic } from './pipeline.js';
import type { JsonSchema, Stage } from './types.js';
import { didYouMean, show } from './diagnostics.js';

export interface Override {
  /** Path segments ("stages", "split", "with", "valid"). */
  readonly path: readonly string[];
  readonly raw: string;
  /** The flag as the user wrote it ("--set stages.x.with.y=abc"): the "file" of its problems. */
  readonly flag: string;
}

const RESERVED = new Set(['__proto__', 'constructor', 'prototype']);

export function parseOverride(text: string, kind: '--set' | '-p'): Override | Diagnostic {
  const flag = `${kind} ${text}`;
  const eq = text.indexOf('=');
  const key = eq > 0 ? text.slice(0, eq).trim() : '';
  if (!key) return { file: flag, path: '', message: `expected ${kind === '-p' ? 'name=value' : 'path=value (e.g. stages.split.with.valid=500)'}` };
  const segments = key.split('.');
  const path = kind === '-p' ? ['params', ...segments] : segments;
  if (segments.some((s) => s === '' || RESERVED.has(s))) return { file: flag, path: key, message: `invalid path '${key}'` };
  return { path, raw: text.slice(eq + 1), flag };
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Types a schema admits ('integer' also admits 'number' values that are whole). */
function typesOf(schema: JsonSchema | undefined, depth = 0): Set<string> | undefined {
  if (!schema || depth > 10) return undefined;
  const out = new Set<string>();
  const t = schema.type;
  if (typeof t === 'string') out.add(t);
  else if (Array.isArray(t)) for (const x of t) out.add(String(x));
  if (Array.isArray(schema.enum)) for (const v of schema.enum as unknown[]) out.add(v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
  if ('const' in schema) out.add(typeof schema.const);
  for (const k of ['oneOf', 'anyOf'] as const) {
    const branches = schema[k];
    if (Array.isArray(branches)) {
      for (const b of branches as JsonSchema[]) {
        const sub = typesOf(b, depth + 1);
        if (!sub) return undefined; // a branch of any type
        for (const x of sub) out.add(x);
      }
    }
  }
  return out.size > 0 ? out : undefined;
}

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/**
 * A value made to fit the schema where only its YAML typing is in the way: a number, boolean
 * or null where the schema wants a string becomes text (`raw`, the text as typed, if known:
 * "007" stays "007"). Anything else is left for the schema to judge.
 */
export function fitToSchema(value: unknown, schema: JsonSchema | undefined, raw?: string): unknown {
  const types = typesOf(schema);
  if (!types) return value;
  const t = jsonType(value);
  if (types.has(t) || (t === 'integer' && types.has('number'))) return value;
  if (types.has('string') && (t === 'integer' || t === 'number' || t === 'boolean')) return raw ?? String(value);
  if (types.has('string') && t === 'null' && raw !== undefined) return raw;
  return value;
}

function branches(schema: JsonSchema): JsonSchema[] {
  const out: JsonSchema[] = [];
  for (const k of ['oneOf', 'anyOf'] as const) {
    if (Array.isArray(schema[k])) for (const b of schema[k] as unknown[]) if (isMapping(b)) out.push(...branches(b));
  }
  return out.length > 0 ? out : [schema];
}

/** The schema at a path below a params schema (["sample", "train"], ["run", "1"]), if it can be told. */
export function schemaAt(schema: JsonSchema | undefined, path: readonly string[]): JsonSchema | undefined {
  if (!schema) return undefined;
  let candidates: JsonSchema[] = [schema];
  for (const seg of path) {
    const next: JsonSchema[] = [];
    for (const c of candidates.flatMap(branches)) {
      const props = c.properties as Record<string, JsonSchema> | undefined;
      if (props && Object.prototype.hasOwnProperty.call(props, seg)) next.push(props[seg]!);
      else if (/^\d+$/.test(seg) && isMapping(c.items)) next.push(c.items);
      else if (isMapping(c.additionalProperties)) next.push(c.additionalProperties);
    }
    if (next.length === 0) return undefined;
    candidates = next;
  }
  return candidates.length === 1 ? candidates[0] : { anyOf: candidates };
}

const STRING_PATHS = [
  /^name$/,
  /^description$/,
  /^cache\.(remote|dir)$/,
  /^stages\.[^.]+\.(uses|runs_on|description)$/,
  /^stages\.[^.]+\.inputs\.[^.]+$/,
  /^stages\.[^.]+\.needs\.\d+$/,
];

/** The schema of what an override sets, where one is known. */
function targetSchema(doc: Record<string, unknown>, path: readonly string[], registry: ReadonlyMap<string, Stage<any>>): JsonSchema | undefined {
  const joined = path.join('.');
  if (STRING_PATHS.some((re) => re.test(joined))) return { type: 'string' };
  if (path[0] !== 'stages' || path[2] !== 'with') return undefined;
  const stages = doc.stages;
  const spec = isMapping(stages) ? stages[path[1]!] : undefined;
  const stage = isMapping(spec) && typeof spec.uses === 'string' ? registry.get(spec.uses) : undefined;
  return stage ? schemaAt(stage.params, path.slice(3)) : undefined;
}

/** The value an override's text stands for, typed by the schema of its target. */
export function typedValue(raw: string, schema: JsonSchema | undefined): unknown {
  let value: unknown;
  try {
    const doc = parseDocument(raw, { logLevel: 'silent' });
    if (doc.errors.length > 0) return raw; // not YAML on its own ("[unclosed"): the text itself
    value = doc.toJS({ maxAliasCount: 10 });
  } catch {
    return raw;
  }
  return fitToSchema(value === undefined ? null : value, schema, raw);
}

/**
 * Why `path` (below `params:`) names no param the pipeline declares, or undefined when it does.
 * A value is never added silently: `-p seed=1` on a pipeline without `seed` is a typo to report,
 * not a new param nothing reads. Below a declared value that is not a mapping there is nothing
 * to check here (setting a key inside a number fails on its own; inside null it is allowed).
 */
export function unknownParam(declared: unknown, path: readonly string[]): string | undefined {
  let node: unknown = declared ?? {};
  for (const [i, seg] of path.entries()) {
    if (!isMapping(node)) return undefined;
    if (!Object.prototype.hasOwnProperty.call(node, seg)) {
      const keys = Object.keys(node);
      const where = i === 0 ? 'the pipeline declares no param' : `params.${path.slice(0, i).join('.')} has no key`;
      const known = keys.length === 0 ? (i === 0 ? '; declare it under `params:` first' : '') : `; ${i === 0 ? 'params' : 'keys'}: ${keys.join(', ')}`;
      return `${where} '${seg}'${didYouMean(seg, keys)}${known}`;
    }
    node = node[seg];
  }
  return undefined;
}

export interface AppliedOverride {
  readonly path: string;
  readonly flag: string;
  readonly raw: string;
}

/** Applies overrides to the parsed document, in place; returns what was set and problems. */
export function applyOverrides(
  doc: Record<string, unknown>,
  overrides: readonly Override[],
  registry: ReadonlyMap<string, Stage<any>>,
  /** The params the pipeline declares (with its --params-file): -p and --set params.* may only change these. */
  declared: unknown = doc.params,
): { applied: AppliedOverride[]; errors: Diagnostic[] } {
  const applied: AppliedOverride[] = [];
  const errors: Diagnostic[] = [];
  for (const o of overrides) {
    const joined = o.path.join('.');
    const fail = (message: string): void => void errors.push({ file: o.flag, path: joined, message });
    if (o.path[0] === 'params' && o.path.length >= 2) {
      const unknown = unknownParam(declared, o.path.slice(1));
      if (unknown) {
        fail(unknown);
        continue;
      }
    }
    if (o.path[0] === 'stages' && o.path.length >= 2) {
      const stages = isMapping(doc.stages) ? doc.stages : {};
      if (!Object.prototype.hasOwnProperty.call(stages, o.path[1]!)) {
        fail(`no stage named ${o.path[1]}${didYouMean(o.path[1]!, Object.keys(stages))}; --set cannot add a stage`);
        continue;
      }
    }
    const value = typedValue(o.raw, targetSchema(doc, o.path, registry));
    if (typeof value === 'number' && !Number.isFinite(value)) {
      fail(`number ${show(o.raw)} is out of range`);
      continue;
    }
    let node: Record<string, unknown> = doc;
    let ok = true;
    for (const seg of o.path.slice(0, -1)) {
      const next = Object.prototype.hasOwnProperty.call(node, seg) ? node[seg] : undefined;
      if (next === undefined || next === null) setOwn(node, seg, {});
      else if (!isMapping(next)) {
        fail(`cannot set a key inside '${seg}': it is ${Array.isArray(next) ? 'a list' : `the value ${show(next)}`}, not a mapping`);
        ok = false;
        break;
      }
      node = node[seg] as Record<string, unknown>;
    }
    if (!ok) continue;
    setOwn(node, o.path.at(-1)!, value);
    applied.push({ path: joined, flag: o.flag, raw: o.raw });
  }
  return { applied, errors };
}

/** `over` deep-merged onto `base`: mappings merge key by key, anything else replaces. */
export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(base)) setOwn(out, k, v);
  for (const [k, v] of Object.entries(over)) {
    const prev = out[k];
    setOwn(out, k, depth < 50 && isMapping(prev) && isMapping(v) && Object.prototype.hasOwnProperty.call(out, k) ? deepMerge(prev, v, depth + 1) : v);
  }
  return out;
}
