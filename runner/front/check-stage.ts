// Rules for one stage entry: its keys, `uses`, `with` against the stage's own JSON Schema
// (defaults applied), and the shape of `inputs`, `needs` and `runs_on`. Cross-stage rules
// (references, kinds, cycles) are in check-links.ts.
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { Stage } from '../types.js';
import { toProblems } from './ajv-messages.js';
import { closest } from './suggest.js';

export const STAGE_KEYS = ['uses', 'with', 'inputs', 'needs', 'runs_on', 'description'] as const;

export interface Problem {
  readonly path: string;
  readonly message: string;
  readonly atKey?: boolean;
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
let ajv: Ajv | undefined;
const compiled = new WeakMap<object, ValidateFunction>();

function validatorFor(stage: Stage<any>): ValidateFunction {
  let v = compiled.get(stage.params);
  if (!v) {
    ajv ??= addFormats(new Ajv({ allErrors: true, strict: false, useDefaults: true, verbose: true }));
    v = ajv.compile(stage.params);
    compiled.set(stage.params, v);
  }
  return v;
}

export function isMapping(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Checks one stage; returns its problems and, when `with` is valid, the params with defaults. */
export function checkStage(
  id: string,
  raw: unknown,
  registry: ReadonlyMap<string, Stage<any>>,
): { problems: Problem[]; stage?: Stage<any>; params?: Record<string, unknown> } {
  const base = `stages.${id}`;
  const problems: Problem[] = [];
  if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(id)) {
    problems.push({ path: base, message: `invalid stage name '${id}': use letters, digits, '_' and '-' (it becomes a directory name)`, atKey: true });
  }
  if (!isMapping(raw)) {
    problems.push({ path: base, message: 'a stage must be a mapping with at least `uses:`' });
    return { problems };
  }
  for (const k of Object.keys(raw)) {
    if (!(STAGE_KEYS as readonly string[]).includes(k)) {
      const hint = closest(k, STAGE_KEYS);
      problems.push({ path: `${base}.${k}`, message: `unknown key '${k}'${hint ? ` (did you mean '${hint}'?)` : ''}; a stage has ${STAGE_KEYS.join(', ')}`, atKey: true });
    }
  }
  if (raw.inputs !== undefined && !isMapping(raw.inputs)) problems.push({ path: `${base}.inputs`, message: 'must be a mapping of port: upstream stage' });
  else if (isMapping(raw.inputs)) {
    for (const [port, up] of Object.entries(raw.inputs)) {
      if (typeof up !== 'string') problems.push({ path: `${base}.inputs.${port}`, message: 'must be the name of an upstream stage' });
    }
  }
  if (raw.needs !== undefined && (!Array.isArray(raw.needs) || raw.needs.some((n) => typeof n !== 'string'))) {
    problems.push({ path: `${base}.needs`, message: 'must be a list of stage names' });
  }
  if (raw.runs_on !== undefined && typeof raw.runs_on !== 'string') problems.push({ path: `${base}.runs_on`, message: 'must be the name of a provision stage' });
  if (raw.description !== undefined && typeof raw.description !== 'string') problems.push({ path: `${base}.description`, message: 'must be a string' });

  if (raw.uses === undefined) {
    problems.push({ path: base, message: "missing 'uses': which built-in stage this is (e.g. uses: command)" });
    return { problems };
  }
  if (typeof raw.uses !== 'string') {
    problems.push({ path: `${base}.uses`, message: 'must be a stage name' });
    return { problems };
  }
  const stage = registry.get(raw.uses);
  if (!stage) {
    const hint = closest(raw.uses, [...registry.keys()]);
    problems.push({ path: `${base}.uses`, message: `unknown stage '${raw.uses}'${hint ? ` (did you mean '${hint}'?)` : ''}; built-in stages: ${[...registry.keys()].sort().join(', ')}` });
    return { problems };
  }
  const withValue = raw.with ?? {};
  if (!isMapping(withValue)) {
    problems.push({ path: `${base}.with`, message: 'must be a mapping of parameters' });
    return { problems, stage };
  }
  const params = structuredClone(withValue);
  const validate = validatorFor(stage);
  if (!validate(params)) {
    for (const p of toProblems(validate.errors ?? [])) {
      problems.push({ path: p.path ? `${base}.with.${p.path}` : `${base}.with`, message: p.message, atKey: p.atKey });
    }
    return { problems, stage };
  }
  return { problems, stage, params };
}
