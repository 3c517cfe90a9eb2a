// Parsed document -> validated pipeline parts, or every problem located. A list of small rules
// pushing into one reporter: the top level, each stage (keys, id, uses, with against the stage's
// own schema), links between stages (validate-links.ts), then cycles (graph.ts). Parameters
// from --params-file, -p and --set are applied first, and a problem in a value one of them set
// is reported against that flag or file, not against the pipeline's YAML.
import type { DeclaredSecret, Diagnostic, SourcePos, StageSpec } from './pipeline.js';
import type { Stage } from './types.js';
import { didYouMean, show } from './diagnostics.js';
import { joinPath, positionIn, type Positions } from './load-yaml.js';
import { interpolate, type Reference } from './interpolate.js';
import { applyOverrides, deepMerge, fitToSchema, schemaAt, unknownParam, type Override } from './overrides.js';
import { checkParams } from './validate-params.js';
import { ambiguousCounts } from './count-or-fraction.js';
import { checkLinks } from './validate-links.js';
import { buildGraph } from './graph.js';
import { SECRET_NAME } from './secrets.js';

export const TOP_KEYS = ['name', 'description', 'params', 'secrets', 'stages', 'cache'] as const;
export const STAGE_KEYS = ['uses', 'with', 'inputs', 'needs', 'runs_on', 'secrets', 'description'] as const;
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
export const STAGE_ID_PATTERN = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const MAX_NAME = 100;

export interface ParamsFile {
  readonly file: string; // display path
  readonly value: Record<string, unknown>;
  readonly positions: Positions;
}

export interface ValidateInput {
  readonly file: string; // display path of the pipeline
  readonly source: string; // its text, to point inside a scalar
  readonly doc: unknown; // parsed YAML (overrides are applied to it in place)
  readonly positions: Positions;
  readonly registry: ReadonlyMap<string, Stage<any>>;
  /** The name when `name:` is absent (the file's basename without extension). */
  readonly defaultName: string;
  readonly paramsFile?: ParamsFile;
  /** -p then --set, in the order given. */
  readonly overrides: readonly Override[];
}

export interface Validated {
  readonly name: string;
  readonly params: Record<string, unknown>;
  readonly stages: Map<string, StageSpec>;
  readonly cache?: { readonly remote?: string; readonly dir?: string };
}

type Origin = { readonly kind: 'flag'; readonly flag: string; readonly raw: string } | { readonly kind: 'params-file'; readonly pf: ParamsFile };

export function isMapping(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isUnder(p: string, ancestor: string): boolean {
  return p === ancestor || p.startsWith(`${ancestor}.`) || p.startsWith(`${ancestor}[`);
}

/** Collects diagnostics, each located in the file, the params file or the flag it came from. */
class Reporter {
  readonly errors: Diagnostic[] = [];
  readonly origins = new Map<string, Origin>();

  readonly #lines: string[];

  constructor(
    readonly file: string,
    readonly positions: Positions,
    source: string,
  ) {
    this.#lines = source.split(/\r?\n/);
  }

  /** `needle` found on the line of `pos`, at or after it: the position of the needle. */
  refine(pos: SourcePos, needle: string): SourcePos {
    const line = this.#lines[pos.line - 1];
    const i = line === undefined ? -1 : line.indexOf(needle, pos.col - 1);
    return i >= 0 ? { line: pos.line, col: i + 1 } : pos;
  }

  setOrigin(path: string, origin: Origin): void {
    for (const p of [...this.origins.keys()]) if (isUnder(p, path)) this.origins.delete(p);
    this.origins.set(path, origin);
  }

  originOf(path: string): { path: string; origin: Origin } | undefined {
    let best: { path: string; origin: Origin } | undefined;
    for (const [p, origin] of this.origins) if (isUnder(path, p) && (!best || p.length > best.path.length)) best = { path: p, origin };
    return best;
  }

  /** Where a value at `path` was written: for messages about a param a reference pulled in. */
  describeOrigin(path: string): string {
    const o = this.originOf(path);
    if (o?.origin.kind === 'flag') return `set by ${o.origin.flag}`;
    if (o?.origin.kind === 'params-file') {
      const pos = positionIn(o.origin.pf.positions, path.slice('params.'.length));
      return `from ${o.origin.pf.file}${pos ? `:${pos.line}:${pos.col}` : ''}`;
    }
    const pos = positionIn(this.positions, path);
    return pos ? `defined at ${pos.line}:${pos.col}` : 'defined in the pipeline';
  }

  /** The plain scalar written at `path` in the pipeline file; undefined when it came from a flag or params file. */
  writtenText(path: string): string | undefined {
    if (this.originOf(path)) return undefined;
    const pos = this.positions.get(path)?.value;
    const line = pos ? this.#lines[pos.line - 1] : undefined;
    return pos && line !== undefined ? /^[^\s#,}\]]+/.exec(line.slice(pos.col - 1))?.[0] : undefined;
  }

  error(path: string, message: string, at: 'key' | 'value' = 'value', related?: Diagnostic['related'], needle?: string): void {
    this.errors.push(this.diagnostic(path, message, at, related, needle));
  }

  /** A problem at `path`, located where its value was written (the file, a params file or a flag). */
  diagnostic(path: string, message: string, at: 'key' | 'value' = 'value', related?: Diagnostic['related'], needle?: string): Diagnostic {
    const o = this.originOf(path);
    if (o?.origin.kind === 'flag') return { file: o.origin.flag, path, message, ...(related ? { related } : {}) };
    let file = this.file;
    let pos: SourcePos | undefined;
    if (o?.origin.kind === 'params-file') {
      file = o.origin.pf.file;
      pos = positionIn(o.origin.pf.positions, path.slice('params.'.length), at);
    } else {
      pos = positionIn(this.positions, path, at);
      if (pos && needle) pos = this.refine(pos, needle);
    }
    return { file, path, message, ...(pos ? { pos } : {}), ...(related ? { related } : {}) };
  }
}

function checkKeys(r: Reporter, value: Record<string, unknown>, base: string, known: readonly string[], what: string): void {
  for (const k of Object.keys(value)) {
    if (!known.includes(k)) r.error(joinPath(base, k), `unknown ${what}key '${k}'${didYouMean(k, known)}; expected one of: ${known.join(', ')}`, 'key');
  }
}

function checkTopLevel(r: Reporter, doc: Record<string, unknown>, defaultName: string): string {
  checkKeys(r, doc, '', TOP_KEYS, 'top-level ');
  let name = defaultName;
  if (doc.name !== undefined) {
    if (typeof doc.name !== 'string') r.error('name', 'must be a string');
    else if (!NAME_PATTERN.test(doc.name) || doc.name.length > MAX_NAME) {
      r.error(
        'name',
        `must be a name of letters, digits, '.', '_' and '-', starting with a letter or digit (it becomes a directory name); got ${show(doc.name)}`,
      );
    } else name = doc.name;
  } else if (!NAME_PATTERN.test(defaultName) || defaultName.length > MAX_NAME) {
    r.error(
      'name',
      `the file name ${show(defaultName)} cannot serve as the pipeline's name (it becomes a directory name): add name: with letters, digits, '.', '_' and '-'`,
      'key',
    );
  }
  if (doc.description !== undefined && typeof doc.description !== 'string') r.error('description', 'must be a string');
  if (doc.params !== undefined && doc.params !== null && !isMapping(doc.params)) r.error('params', 'must be a mapping of name: value');
  if (doc.cache !== undefined && doc.cache !== null) {
    if (!isMapping(doc.cache)) r.error('cache', 'must be a mapping (remote, dir)');
    else {
      checkKeys(r, doc.cache, 'cache', ['remote', 'dir'], '');
      for (const k of ['remote', 'dir'] as const) {
        const v = doc.cache[k];
        if (v !== undefined && (typeof v !== 'string' || v === '')) r.error(`cache.${k}`, 'must be a non-empty string');
      }
    }
  }
  return name;
}

/** `secrets:` (at `base`): a list of environment variable names, each kept with its path. */
function checkSecrets(r: Reporter, value: unknown, base: string): DeclaredSecret[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    r.error(base, 'must be a list of environment variable names (secrets: [API_TOKEN])');
    return [];
  }
  const out: DeclaredSecret[] = [];
  value.forEach((v: unknown, i: number) => {
    if (typeof v === 'string' && SECRET_NAME.test(v)) out.push({ name: v, path: `${base}[${i}]` });
    // The value is not echoed: what was written there may be the secret itself.
    else r.error(`${base}[${i}]`, `must be the name of an environment variable (letters, digits and '_'), not its value`);
  });
  return out;
}

function splitPath(p: string): string[] {
  return p.split(/\.|\[(\d+)\]/).filter((s): s is string => s !== undefined && s !== '');
}

/**
 * A whole `${params.x}` keeps the param's type, except where the target's schema wants a
 * string and the param is a number or boolean: then its text (as typed after -p, if it was).
 */
function typeReferences(r: Reporter, stage: Stage<any>, base: string, value: Record<string, unknown>, refs: readonly Reference[]): void {
  for (const ref of refs) {
    if (!ref.whole) continue;
    const rel = splitPath(ref.path.slice(base.length + 1));
    if (rel.length === 0) continue;
    let node: unknown = value;
    for (const seg of rel.slice(0, -1)) node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[seg] : undefined;
    if (node === null || typeof node !== 'object') continue;
    const o = r.originOf(`params.${ref.param}`);
    const raw = o?.origin.kind === 'flag' && o.path === `params.${ref.param}` ? o.origin.raw : undefined;
    const key = rel.at(-1)!;
    const current = (node as Record<string, unknown>)[key];
    const fitted = fitToSchema(current, schemaAt(stage.params, rel), raw);
    if (fitted !== current) (node as Record<string, unknown>)[key] = fitted;
  }
}

function checkStage(
  r: Reporter,
  id: string,
  raw: unknown,
  params: Record<string, unknown>,
  registry: ReadonlyMap<string, Stage<any>>,
  shared: readonly DeclaredSecret[],
): { spec: StageSpec; stage?: Stage<any> } {
  const base = `stages.${id}`;
  if (!STAGE_ID_PATTERN.test(id) || id.length > MAX_NAME) {
    r.error(base, `invalid stage name ${show(id)}: use letters, digits, '_' and '-', starting with a letter or '_' (it becomes a directory name)`, 'key');
  }
  const empty: StageSpec = { id, uses: '', with: {}, inputs: {}, needs: [] };
  if (!isMapping(raw)) {
    r.error(base, raw === null || raw === undefined ? "empty stage: it needs at least 'uses:'" : "a stage must be a mapping with at least 'uses:'");
    return { spec: empty };
  }
  checkKeys(r, raw, base, STAGE_KEYS, '');
  if (raw.description !== undefined && typeof raw.description !== 'string') r.error(`${base}.description`, 'must be a string');

  const inputs: Record<string, string> = {};
  if (isMapping(raw.inputs)) {
    for (const [port, up] of Object.entries(raw.inputs)) {
      if (typeof up === 'string') inputs[port] = up;
      else r.error(`${base}.inputs.${port}`, 'must be the name of an upstream stage');
    }
  } else if (raw.inputs !== undefined && raw.inputs !== null) r.error(`${base}.inputs`, 'must be a mapping of port: upstream stage');
  const needs: string[] = [];
  if (Array.isArray(raw.needs)) {
    raw.needs.forEach((n: unknown, i: number) => {
      if (typeof n === 'string') needs.push(n);
      else r.error(`${base}.needs[${i}]`, 'must be a stage name');
    });
  } else if (raw.needs !== undefined && raw.needs !== null) r.error(`${base}.needs`, 'must be a list of stage names');
  let runsOn: string | undefined;
  if (typeof raw.runs_on === 'string') runsOn = raw.runs_on;
  else if (raw.runs_on !== undefined && raw.runs_on !== null) r.error(`${base}.runs_on`, 'must be the name of a provision stage');

  // The stage's own secrets, then the pipeline's (for every stage) that it does not repeat.
  const own = checkSecrets(r, raw.secrets, `${base}.secrets`);
  const secrets = [...own, ...shared.filter((s) => !own.some((o) => o.name === s.name))];

  let withValue: Record<string, unknown> = {};
  let refs: readonly Reference[] = [];
  if (isMapping(raw.with)) {
    const interpolated = interpolate(raw.with, params, `${base}.with`);
    for (const p of interpolated.problems) r.error(p.path, p.message, 'value', undefined, p.reference);
    withValue = interpolated.value as Record<string, unknown>;
    refs = interpolated.references;
  } else if (raw.with !== undefined && raw.with !== null) r.error(`${base}.with`, 'must be a mapping of parameters');

  let stage: Stage<any> | undefined;
  const known = [...registry.keys()].sort();
  if (raw.uses === undefined || raw.uses === null) r.error(base, `missing 'uses': the stage to run (one of: ${known.join(', ')})`);
  else if (typeof raw.uses !== 'string') r.error(`${base}.uses`, 'must be a stage name');
  else {
    stage = registry.get(raw.uses);
    if (!stage) r.error(`${base}.uses`, `unknown stage '${raw.uses}'${didYouMean(raw.uses, known)}; built-in stages: ${known.join(', ')}`);
  }
  if (stage && (isMapping(raw.with) || raw.with === undefined || raw.with === null)) {
    typeReferences(r, stage, `${base}.with`, withValue, refs);
    const checked = checkParams(stage.params, withValue, stage.name);
    for (const p of checked.problems) {
      const path = p.path ? (p.path.startsWith('[') ? `${base}.with${p.path}` : `${base}.with.${p.path}`) : `${base}.with`;
      const ref = refs.find((x) => x.whole && isUnder(path, x.path));
      const from = ref ? ` (value of \${params.${ref.param}}, ${r.describeOrigin(`params.${ref.param}`)})` : '';
      r.error(path, `${p.message}${from}`, p.at);
    }
    if (isMapping(raw.with)) {
      for (const a of ambiguousCounts(stage.params, raw.with, (key) => r.writtenText(`${base}.with.${key}`))) r.error(`${base}.with.${a.key}`, a.message);
    }
    withValue = checked.params;
  }
  return {
    spec: {
      id,
      uses: typeof raw.uses === 'string' ? raw.uses : '',
      with: withValue,
      inputs,
      needs,
      ...(runsOn !== undefined ? { runsOn } : {}),
      ...(refs.length ? { paramRefs: [...new Set(refs.map((x) => x.path))] } : {}),
      ...(secrets.length ? { secrets } : {}),
    },
    ...(stage ? { stage } : {}),
  };
}

/** Every key of a --params-file names a declared param (recursively, where both are mappings). */
function checkParamsFileKeys(r: Reporter, declared: unknown, value: Record<string, unknown>, base: readonly string[]): void {
  for (const [k, v] of Object.entries(value)) {
    const path = [...base, k];
    const unknown = unknownParam(declared, path);
    if (unknown) r.error(`params.${path.join('.')}`, unknown, 'key');
    else if (isMapping(v)) checkParamsFileKeys(r, declared, v, path);
  }
}

export interface ValidateOutput {
  readonly value?: Validated;
  readonly errors: Diagnostic[];
  /** Locates a later problem (a missing input path) as the problems found here are. */
  readonly locate: (path: string, message: string) => Diagnostic;
}

export function validatePipeline(input: ValidateInput): ValidateOutput {
  const r = new Reporter(input.file, input.positions, input.source);
  const doc = input.doc;
  if (!isMapping(doc)) {
    const pos = positionIn(input.positions, '') ?? { line: 1, col: 1 };
    const message =
      doc === null || doc === undefined
        ? "empty pipeline: expected a mapping with at least 'stages:'"
        : `the top level must be a mapping (${TOP_KEYS.join(', ')}), not ${Array.isArray(doc) ? 'a list' : `the value ${show(doc)}`}`;
    return { errors: [{ file: input.file, pos, path: '', message }], locate: (path, message) => ({ file: input.file, path, message }) };
  }
  const locate = (path: string, message: string): Diagnostic => r.diagnostic(path, message);

  // Parameters from outside the file, lowest precedence first: --params-file, -p, --set. Each
  // may change only the params the pipeline declares.
  const declared = doc.params;
  if (input.paramsFile && (doc.params === undefined || doc.params === null || isMapping(doc.params))) {
    doc.params = deepMerge(isMapping(doc.params) ? doc.params : {}, input.paramsFile.value);
    for (const k of Object.keys(input.paramsFile.value)) r.setOrigin(`params.${k}`, { kind: 'params-file', pf: input.paramsFile });
    checkParamsFileKeys(r, declared, input.paramsFile.value, []);
  }
  const applied = applyOverrides(doc, input.overrides, input.registry, declared);
  r.errors.push(...applied.errors);
  for (const a of applied.applied) r.setOrigin(a.path, { kind: 'flag', flag: a.flag, raw: a.raw });

  const name = checkTopLevel(r, doc, input.defaultName);
  const params = isMapping(doc.params) ? doc.params : {};
  const shared = checkSecrets(r, doc.secrets, 'secrets');
  const stagesValue = doc.stages;
  const specs = new Map<string, StageSpec>();
  const types = new Map<string, Stage<any>>();
  if (stagesValue === undefined) r.error('stages', "missing 'stages': a mapping of stage name to stage");
  else if (stagesValue === null || (isMapping(stagesValue) && Object.keys(stagesValue).length === 0)) r.error('stages', 'no stages: add at least one');
  else if (!isMapping(stagesValue)) r.error('stages', 'must be a mapping of stage name to stage');
  else {
    for (const [id, raw] of Object.entries(stagesValue)) {
      const { spec, stage } = checkStage(r, id, raw, params, input.registry, shared);
      specs.set(id, spec);
      if (stage) types.set(id, stage);
    }
    checkLinks(
      specs,
      types,
      (path, message, at) => r.error(path, message, at),
      (id) => isMapping(stagesValue[id]) && isMapping(stagesValue[id].inputs),
    );
    // Cycles, with self-references left out: those were reported on their own.
    const acyclic = new Map<string, StageSpec>();
    for (const [id, s] of specs) {
      acyclic.set(id, {
        ...s,
        inputs: Object.fromEntries(Object.entries(s.inputs).filter(([, up]) => up !== id)),
        needs: s.needs.filter((n) => n !== id),
        ...(s.runsOn === id ? { runsOn: undefined } : {}),
      });
    }
    const graph = buildGraph(acyclic, { file: input.file, positionOf: (p) => positionIn(input.positions, p) });
    if (!graph.ok) r.errors.push(...graph.errors);
  }
  if (r.errors.length > 0) return { errors: r.errors, locate };
  const cache = isMapping(doc.cache) ? (doc.cache as { remote?: string; dir?: string }) : undefined;
  return { value: { name, params, stages: specs, ...(cache ? { cache } : {}) }, errors: [], locate };
}
