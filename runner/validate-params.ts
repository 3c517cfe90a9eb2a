// A stage's `with:` against its own JSON Schema (ajv, defaults applied), with ajv's errors made
// into one helpful message per problem: "unknown parameter 'x'", "must be one of: a, b", and a
// failed oneOf reduced to the branch the value was meant for (or "must be a string or a list
// of strings"), instead of every branch's complaint.
//
// Speed (`pipe validate` must start fast): importing ajv and compiling the first schema cost
// ~60 ms. `npm run schema` therefore also writes schema/stage-validators.cjs, ajv's standalone
// code for every stage schema, each with a hash of its schema; a stage whose schema still has
// that hash uses it and ajv is never loaded. Any other schema (edited since, or a test stage)
// is compiled by ajv as usual, so a stale file is slower, never wrong.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Ajv, ErrorObject, Options, ValidateFunction } from 'ajv';
import type { JsonSchema } from './types.js';
import { didYouMean, show } from './diagnostics.js';

export interface ParamProblem {
  /** Path below `with` ("sample.train", "files[0]"); '' for `with` itself. */
  readonly path: string;
  readonly message: string;
  /** Point at the key (unknown or missing keys) rather than the value. */
  readonly at: 'key' | 'value';
}

/** The options of every validator, compiled here or ahead of time (part of the hash). */
export const AJV_OPTIONS: Options = { allErrors: true, strict: false, useDefaults: true, verbose: true };

/** schema/stage-validators.cjs, from dist/runner/ (where this module runs). */
export const PRECOMPILED_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../schema/stage-validators.cjs');

const require = createRequire(import.meta.url);
let ajv: Ajv | undefined;
let precompiled: Precompiled | null | undefined;
// One validator per stage schema, for the life of the process.
const compiled = new WeakMap<object, ValidateFunction>();

export interface Precompiled {
  readonly validators: Readonly<Record<string, { readonly hash: string; readonly validate: ValidateFunction }>>;
}

/** Identifies a schema and the options it is compiled with. */
export function schemaHash(schema: JsonSchema): string {
  return createHash('sha256')
    .update(JSON.stringify([AJV_OPTIONS, schema]))
    .digest('hex')
    .slice(0, 32);
}

/** A fresh ajv with the project's options and formats (loaded on first use only). */
export function makeAjv(extra: Options = {}): Ajv {
  const { Ajv: AjvClass } = require('ajv') as { Ajv: new (o: Options) => Ajv };
  const addFormats = require('ajv-formats') as (a: Ajv) => Ajv;
  return addFormats(new AjvClass({ ...AJV_OPTIONS, ...extra }));
}

function precompiledFor(name: string | undefined, schema: JsonSchema): ValidateFunction | undefined {
  if (name === undefined) return undefined;
  if (precompiled === undefined) {
    try {
      precompiled = require(PRECOMPILED_FILE) as Precompiled;
    } catch {
      precompiled = null; // not generated (yet): compile everything
    }
  }
  const entry = precompiled?.validators[name];
  return entry && entry.hash === schemaHash(schema) ? entry.validate : undefined;
}

/** The validator of a stage's params schema; `name` (the stage's) allows the precompiled one. */
export function validatorFor(schema: JsonSchema, name?: string): ValidateFunction {
  let v = compiled.get(schema);
  if (!v) {
    v = precompiledFor(name, schema);
    if (!v) {
      ajv ??= makeAjv();
      v = ajv.compile(schema);
    }
    compiled.set(schema, v);
  }
  return v;
}

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function typeFits(schema: unknown, value: unknown): boolean {
  if (!schema || typeof schema !== 'object') return true;
  const s = schema as JsonSchema;
  const actual = jsonType(value);
  const fits = (t: string): boolean => t === actual || (t === 'number' && actual === 'integer');
  if (typeof s.type === 'string') return fits(s.type);
  if (Array.isArray(s.type)) return (s.type as string[]).some(fits);
  if (Array.isArray(s.enum)) return (s.enum as unknown[]).some((v) => fits(jsonType(v)));
  if ('const' in s) return fits(jsonType(s.const));
  return true;
}

function valueAt(data: unknown, instancePath: string): unknown {
  let cur = data;
  for (const seg of segments(instancePath)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

function segments(instancePath: string): string[] {
  return instancePath === ''
    ? []
    : instancePath
        .slice(1)
        .split('/')
        .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** "/sample/train" -> "sample.train", "/files/0" -> "files[0]" (indices only inside lists). */
function pathOf(data: unknown, instancePath: string): string {
  let out = '';
  let cur = data;
  for (const seg of segments(instancePath)) {
    out = Array.isArray(cur) ? `${out}[${seg}]` : out ? `${out}.${seg}` : seg;
    cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[seg] : undefined;
  }
  return out;
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

const TYPE_WORDS: Record<string, string> = { object: 'a mapping', array: 'a list', null: 'null' };

function typeWord(t: string): string {
  return TYPE_WORDS[t] ?? t;
}

function describe(schema: unknown): string {
  if (!schema || typeof schema !== 'object') return 'any value';
  const s = schema as JsonSchema;
  if (Array.isArray(s.enum)) return `one of ${(s.enum as unknown[]).map(listValue).join(', ')}`;
  if ('const' in s) return show(s.const);
  const types = typeof s.type === 'string' ? [s.type] : Array.isArray(s.type) ? (s.type as string[]) : [];
  return (
    types
      .map((t) => {
        if (t === 'array') return s.items && typeof s.items === 'object' && !Array.isArray(s.items) ? `a list of ${plural(describe(s.items))}` : 'a list';
        if (t === 'object') return 'a mapping';
        if (t === 'integer') return 'an integer';
        if (t === 'number') return 'a number';
        if (t === 'string') return 'a string';
        if (t === 'boolean') return 'true or false';
        return t;
      })
      .join(' or ') || 'a value of another shape'
  );
}

function plural(text: string): string {
  return text.replace(/^an? (\w+)/, '$1s').replace(/^true or false$/, 'booleans');
}

function listValue(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}

/** Drops the noise of failed oneOf/anyOf: keeps the branch the value's type points at, or one summary. */
function reduce(errors: readonly ErrorObject[], data: unknown): { kept: ErrorObject[]; summaries: Set<ErrorObject> } {
  let kept = [...errors];
  const summaries = new Set<ErrorObject>();
  const combos = errors
    .filter((e) => (e.keyword === 'oneOf' || e.keyword === 'anyOf') && !(e.params as { passingSchemas?: unknown }).passingSchemas)
    .sort((a, b) => a.schemaPath.length - b.schemaPath.length);
  for (const c of combos) {
    if (!kept.includes(c)) continue; // inside a branch an outer reduction dropped
    const prefix = `${c.schemaPath}/`;
    const branches = Array.isArray(c.schema) ? (c.schema as unknown[]) : [];
    const value = valueAt(data, c.instancePath);
    const fitting = branches.map((_, i) => i).filter((i) => typeFits(branches[i], value));
    const keepPrefix = fitting.length === 1 ? `${prefix}${fitting[0]}/` : undefined;
    const fromBranch = keepPrefix ? kept.filter((e) => e.schemaPath.startsWith(keepPrefix)) : [];
    if (keepPrefix && fromBranch.length > 0) {
      kept = kept.filter((e) => e !== c && (!e.schemaPath.startsWith(prefix) || e.schemaPath.startsWith(keepPrefix)));
    } else {
      kept = kept.filter((e) => !e.schemaPath.startsWith(prefix));
      summaries.add(c);
    }
  }
  return { kept, summaries };
}

function message(e: ErrorObject, summary: boolean): { message: string; key?: string } | undefined {
  const p = e.params as Record<string, unknown>;
  if (summary) return { message: `must be ${(Array.isArray(e.schema) ? (e.schema as unknown[]) : []).map(describe).join(' or ')}` };
  switch (e.keyword) {
    case 'if':
      return undefined; // its `then`/`else` errors say what is wrong
    case 'required':
      return { message: `missing required parameter '${String(p.missingProperty)}'` };
    case 'additionalProperties': {
      const name = String(p.additionalProperty);
      const known = Object.keys((e.parentSchema?.properties as Record<string, unknown> | undefined) ?? {});
      const hint = didYouMean(name, known) || (known.length > 0 ? `; known: ${known.join(', ')}` : '; this takes no parameters');
      return { message: `unknown parameter '${name}'${hint}`, key: name };
    }
    case 'enum': {
      const allowed = (p.allowedValues as unknown[] | undefined) ?? [];
      const hint =
        typeof e.data === 'string'
          ? didYouMean(
              e.data,
              allowed.filter((v): v is string => typeof v === 'string'),
            )
          : '';
      return { message: `must be one of: ${allowed.map(listValue).join(', ')}${hint}` };
    }
    case 'type': {
      const types = Array.isArray(p.type) ? (p.type as string[]) : String(p.type).split(',');
      return { message: `must be ${types.map(typeWord).join(' or ')}` };
    }
    case 'const':
      return { message: `must be ${show(p.allowedValue)}` };
    case 'minLength':
      return { message: p.limit === 1 ? 'must not be empty' : `must be at least ${String(p.limit)} characters long` };
    case 'maxLength':
      return { message: `must be at most ${String(p.limit)} characters long` };
    case 'minItems':
      return { message: p.limit === 1 ? 'must not be empty' : `must have at least ${String(p.limit)} items` };
    case 'maxItems':
      return { message: `must have at most ${String(p.limit)} items` };
    case 'minProperties':
      return { message: p.limit === 1 ? 'must not be empty' : `must have at least ${String(p.limit)} keys` };
    case 'maxProperties':
      return { message: `must have at most ${String(p.limit)} keys` };
    case 'pattern':
      return { message: `must match the pattern ${String(p.pattern)}` };
    case 'format':
      return { message: `must be a valid ${String(p.format)}` };
    case 'multipleOf':
      return { message: `must be a multiple of ${String(p.multipleOf)}` };
    case 'uniqueItems':
      return { message: `must not contain duplicates (items ${String(p.j)} and ${String(p.i)} are equal)` };
    case 'not':
    case 'false schema':
      return { message: 'is not allowed here' };
    default:
      return { message: e.message ?? `fails ${e.keyword}` };
  }
}

/** Validates `with` (a fresh copy gets the defaults); problems are relative to `with`. */
export function checkParams(schema: JsonSchema, value: Record<string, unknown>, name?: string): { params: Record<string, unknown>; problems: ParamProblem[] } {
  const params = structuredClone(value);
  const validate = validatorFor(schema, name);
  if (validate(params)) return { params, problems: [] };
  const { kept, summaries } = reduce(validate.errors ?? [], params);
  const problems: ParamProblem[] = [];
  const seen = new Set<string>();
  for (const e of kept) {
    const m = message(e, summaries.has(e));
    if (!m) continue;
    const base = pathOf(params, e.instancePath);
    const path = m.key !== undefined ? join(base, m.key) : base;
    const at = m.key !== undefined ? 'key' : 'value'; // a missing key: the mapping it belongs in
    const id = `${path}\u0000${m.message}`;
    if (seen.has(id)) continue; // ajv may report one problem through two schema paths
    seen.add(id);
    problems.push({ path, message: m.message, at });
  }
  return { params, problems };
}
