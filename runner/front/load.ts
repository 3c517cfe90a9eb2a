// YAML file -> validated Pipeline, or every problem located. Order: parse, overrides, top-level
// shape, params, each stage (keys, uses, with), references between stages (inputs, needs,
// runs_on, kinds), cycles. Problems are collected, never thrown.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Diagnostic, Pipeline, Result, SourcePos, StageSpec } from '../pipeline.js';
import type { Stage } from '../types.js';
import { kindFits } from '../types.js';
import { registry as defaultRegistry } from '../../stages/registry.js';
import { parseYaml } from './parse.js';
import { nearest, type NodePositions } from './positions.js';
import { applyOverrides, parseOverride, type Override } from './overrides.js';
import { interpolate, stringPathsOf, type Unresolved } from './interpolate.js';
import { checkStage, isMapping, type Problem } from './check-stage.js';
import { buildGraph } from './graph.js';
import { closest } from './suggest.js';

export interface LoadOptions {
  set?: string[];
  params?: string[];
  paramsFile?: string;
  cwd?: string;
  registry?: ReadonlyMap<string, Stage<any>>;
}

const TOP_KEYS = ['name', 'description', 'params', 'stages', 'cache'];

export function displayPathOf(file: string, cwd: string): string {
  const rel = path.relative(cwd, file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

export async function loadPipeline(file: string, options: LoadOptions = {}): Promise<Result<Pipeline>> {
  const cwd = options.cwd ?? process.cwd();
  const registry = options.registry ?? defaultRegistry;
  const abs = path.resolve(cwd, file);
  const display = displayPathOf(abs, cwd);
  let source: string;
  try {
    source = await readFile(abs, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { ok: false, errors: [{ file: display, path: '', message: code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory, not a pipeline file' : `cannot read: ${(e as Error).message}` }] };
  }
  const parsed = parseYaml(source, display);
  if (!parsed.ok) return parsed;
  const { positions } = parsed.value;
  const errors: Diagnostic[] = [];
  const push = (p: Problem, pos?: SourcePos): void => {
    const at = pos ?? nearest(positions, p.path, p.atKey);
    errors.push({ file: display, path: p.path, message: p.message, ...(at ? { pos: at } : {}) });
  };

  const doc = parsed.value.value;
  if (!isMapping(doc)) {
    push({ path: '', message: doc === null || doc === undefined ? 'empty pipeline: expected a mapping with `stages:`' : 'the top level must be a mapping with `stages:`' }, { line: 1, col: 1 });
    return { ok: false, errors };
  }

  // Params from --params-file, -p and --set, applied before anything is checked.
  const overrides: Override[] = [];
  if (options.paramsFile) {
    const pf = await loadParamsFile(path.resolve(cwd, options.paramsFile), displayPathOf(path.resolve(cwd, options.paramsFile), cwd));
    if (!pf.ok) errors.push(...pf.errors);
    else doc.params = { ...(isMapping(doc.params) ? doc.params : {}), ...pf.value };
  }
  for (const [flag, list] of [['-p', options.params ?? []], ['--set', options.set ?? []]] as const) {
    for (const text of list) {
      const o = parseOverride(text, flag);
      if ('raw' in o) overrides.push(o);
      else errors.push(o);
    }
  }
  errors.push(...applyOverrides(doc, overrides, registry));

  for (const k of Object.keys(doc)) {
    if (!TOP_KEYS.includes(k)) {
      const hint = closest(k, TOP_KEYS);
      push({ path: k, message: `unknown top-level key '${k}'${hint ? ` (did you mean '${hint}'?)` : ''}; expected ${TOP_KEYS.join(', ')}`, atKey: true });
    }
  }
  const name = doc.name ?? path.basename(abs).replace(/\.ya?ml$/i, '');
  if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name) || name.length > 100) {
    push({ path: 'name', message: 'must be a name of letters, digits, ".", "_" and "-" (it becomes a directory name)' });
  }
  if (doc.description !== undefined && typeof doc.description !== 'string') push({ path: 'description', message: 'must be a string' });
  const params = doc.params ?? {};
  if (!isMapping(params)) push({ path: 'params', message: 'must be a mapping of name: value' });
  const cache = doc.cache;
  if (cache !== undefined) {
    if (!isMapping(cache)) push({ path: 'cache', message: 'must be a mapping (remote, dir)' });
    else {
      for (const [k, v] of Object.entries(cache)) {
        if (k !== 'remote' && k !== 'dir') push({ path: `cache.${k}`, message: `unknown key '${k}'; expected remote, dir`, atKey: true });
        else if (typeof v !== 'string' || v === '') push({ path: `cache.${k}`, message: 'must be a non-empty string' });
      }
    }
  }
  if (!isMapping(doc.stages)) {
    push({ path: 'stages', message: doc.stages === undefined ? "missing 'stages': a mapping of stage name to stage" : 'must be a mapping of stage name to stage' }, doc.stages === undefined ? { line: 1, col: 1 } : undefined);
    return { ok: false, errors };
  }
  if (Object.keys(doc.stages).length === 0) push({ path: 'stages', message: 'no stages: add at least one' });

  // Each stage on its own, with ${params.x} substituted first.
  const specs = new Map<string, StageSpec>();
  const stageTypes = new Map<string, Stage<any>>();
  const paramValues = isMapping(params) ? params : {};
  for (const [id, raw] of Object.entries(doc.stages)) {
    let entry = raw;
    if (isMapping(raw) && raw.with !== undefined) {
      const unresolved: Unresolved[] = [];
      const stageType = typeof raw.uses === 'string' ? registry.get(raw.uses) : undefined;
      const wantsString = stageType ? stringPathsOf(stageType.params, `stages.${id}.with`) : undefined;
      entry = { ...raw, with: interpolate(raw.with, paramValues, `stages.${id}.with`, unresolved, wantsString) };
      for (const u of unresolved) push({ path: u.path, message: u.message });
    }
    const checked = checkStage(id, entry, registry);
    for (const p of checked.problems) push(p);
    if (checked.stage) stageTypes.set(id, checked.stage);
    if (!isMapping(entry)) continue;
    specs.set(id, {
      id,
      uses: typeof entry.uses === 'string' ? entry.uses : '',
      with: checked.params ?? (isMapping(entry.with) ? entry.with : {}),
      inputs: isMapping(entry.inputs) ? (Object.fromEntries(Object.entries(entry.inputs).filter(([, v]) => typeof v === 'string')) as Record<string, string>) : {},
      needs: Array.isArray(entry.needs) ? entry.needs.filter((n): n is string => typeof n === 'string') : [],
      ...(typeof entry.runs_on === 'string' ? { runsOn: entry.runs_on } : {}),
    });
  }
  for (const p of checkLinks(specs, stageTypes)) push(p);

  const pipeline: Pipeline = {
    file: abs,
    displayPath: display,
    dir: path.dirname(abs),
    name: typeof name === 'string' ? name : 'pipeline',
    params: paramValues,
    stages: specs,
    ...(isMapping(cache) ? { cache: cache as { remote?: string; dir?: string } } : {}),
    source,
    positionOf: (p) => nearest(positions, p),
  };
  if (errors.length === 0) {
    const graph = buildGraph(specs, { file: display, positionOf: pipeline.positionOf });
    if (!graph.ok) errors.push(...graph.errors);
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value: pipeline };
}

function outputKind(stage: Stage<any>, spec: StageSpec): string | undefined {
  try {
    return typeof stage.output === 'function' ? stage.output(spec.with) : stage.output;
  } catch {
    return undefined;
  }
}

/** References between stages: inputs, needs, runs_on; port names and kinds; required ports. */
function checkLinks(specs: ReadonlyMap<string, StageSpec>, types: ReadonlyMap<string, Stage<any>>): Problem[] {
  const problems: Problem[] = [];
  const names = [...specs.keys()];
  const missing = (ref: string): string => {
    const hint = closest(ref, names);
    return `no stage named '${ref}'${hint ? ` (did you mean '${hint}'?)` : ''}`;
  };
  for (const [id, spec] of specs) {
    const stage = types.get(id);
    for (const [port, up] of Object.entries(spec.inputs)) {
      const path = `stages.${id}.inputs.${port}`;
      if (up === id) {
        problems.push({ path, message: `a stage cannot take its own output as input` });
        continue;
      }
      if (!specs.has(up)) {
        problems.push({ path, message: missing(up) });
        continue;
      }
      if (!stage) continue;
      const declared = stage.inputs[port] ?? stage.extraInputs;
      if (!declared) {
        const ports = Object.keys(stage.inputs);
        problems.push({ path, message: `stage '${stage.name}' has no input port '${port}'${ports.length ? ` (ports: ${ports.join(', ')})` : ' (it takes no inputs)'}`, atKey: true });
        continue;
      }
      const upType = types.get(up);
      const kind = upType ? outputKind(upType, specs.get(up)!) : undefined;
      if (kind && !kindFits(declared.kind, kind as never)) {
        problems.push({ path, message: `port '${port}' takes a ${declared.kind} artifact, but '${up}' (${upType!.name}) produces ${kind}` });
      }
    }
    if (stage) {
      for (const [port, p] of Object.entries(stage.inputs)) {
        if (p.required !== false && !(port in spec.inputs)) {
          problems.push({ path: `stages.${id}`, message: `missing input '${port}' (a ${p.kind} artifact): add inputs: { ${port}: <stage> }` });
        }
      }
    }
    spec.needs.forEach((n, i) => {
      if (n === id) problems.push({ path: `stages.${id}.needs[${i}]`, message: 'a stage cannot need itself' });
      else if (!specs.has(n)) problems.push({ path: `stages.${id}.needs[${i}]`, message: missing(n) });
    });
    if (spec.runsOn !== undefined) {
      const path = `stages.${id}.runs_on`;
      const host = specs.get(spec.runsOn);
      const hostType = types.get(spec.runsOn);
      if (spec.runsOn === id) problems.push({ path, message: 'a stage cannot run on itself' });
      else if (!host) problems.push({ path, message: missing(spec.runsOn) });
      else if (hostType && outputKind(hostType, host) !== 'host') problems.push({ path, message: `'${spec.runsOn}' is not a host: runs_on names a provision stage` });
    }
  }
  return problems;
}

async function loadParamsFile(abs: string, display: string): Promise<Result<Record<string, unknown>>> {
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch {
    return { ok: false, errors: [{ file: display, path: '', message: 'cannot read the params file' }] };
  }
  const parsed = parseYaml(text, display);
  if (!parsed.ok) return parsed;
  const value = parsed.value.value;
  if (!isMapping(value)) return { ok: false, errors: [{ file: display, pos: { line: 1, col: 1 }, path: '', message: 'a params file must be a mapping of name: value' }] };
  return { ok: true, value };
}

export type { NodePositions };
