// YAML file -> validated Pipeline, or every problem located. Reads the pipeline (and the
// --params-file), parses with positions (load-yaml.ts), applies -p/--set and validates
// (validate.ts). Problems are collected and returned, never thrown.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Diagnostic, Pipeline, Result } from './pipeline.js';
import type { Stage } from './types.js';
import { parseYaml, positionIn } from './load-yaml.js';
import { parseOverride, type Override } from './overrides.js';
import { isMapping, validatePipeline, type ParamsFile } from './validate.js';

export interface LoadOptions {
  /** --set stages.split.with.valid=500 (path=value; value parsed as YAML, typed by the schema). */
  set?: string[];
  /** -p seed=7: shorthand for --set params.seed=7. */
  params?: string[];
  /** --params-file other.yaml: a YAML mapping deep-merged over `params:`. */
  paramsFile?: string;
  /** For relative paths and displayPath (default process.cwd()). */
  cwd?: string;
  /**
   * The stage types `uses:` may name: the CLI passes the built-in registry (stages/registry.ts);
   * the runner itself knows no stage types.
   */
  registry: ReadonlyMap<string, Stage<any>>;
  /** Check that the local files and folders stages read exist (validate, run, status). */
  checkPaths?: boolean;
}

// Refuse absurd inputs before parsing them: a pipeline is a few kilobytes.
const MAX_BYTES = 4 * 1024 * 1024;

/** `file` relative to `cwd` when it lies inside it, else absolute. */
export function displayPathOf(file: string, cwd: string): string {
  const rel = path.relative(cwd, file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

async function readText(abs: string, display: string): Promise<{ ok: true; text: string } | { ok: false; error: Diagnostic }> {
  try {
    const buf = await readFile(abs);
    if (buf.length > MAX_BYTES)
      return { ok: false, error: { file: display, path: '', message: `file is too large (${buf.length} bytes; a pipeline is at most ${MAX_BYTES})` } };
    // A UTF-8 byte-order mark is not part of the YAML.
    const text = buf.toString('utf8');
    return { ok: true, text: text.charCodeAt(0) === 0xfeff ? text.slice(1) : text };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a directory, not a YAML file'
          : code === 'EACCES'
            ? 'permission denied'
            : `cannot read: ${(e as Error).message}`;
    return { ok: false, error: { file: display, path: '', message: why } };
  }
}

async function loadParamsFile(file: string, cwd: string): Promise<{ value?: ParamsFile; errors: Diagnostic[] }> {
  const abs = path.resolve(cwd, file);
  const display = displayPathOf(abs, cwd);
  const read = await readText(abs, display);
  if (!read.ok) return { errors: [read.error] };
  const parsed = parseYaml(read.text, display);
  if (parsed.fatal) return { errors: [...parsed.errors] };
  const value = parsed.value ?? {};
  if (!isMapping(value)) {
    return {
      errors: [
        ...parsed.errors,
        { file: display, pos: positionIn(parsed.positions, '') ?? { line: 1, col: 1 }, path: '', message: 'a params file must be a mapping of name: value' },
      ],
    };
  }
  return { errors: [...parsed.errors], value: { file: display, value, positions: parsed.positions } };
}

/** Flags first (they have no position), then by file as met, line and column. */
function sorted(errors: readonly Diagnostic[], mainFile: string): Diagnostic[] {
  const fileRank = (d: Diagnostic): number => (d.pos === undefined && d.file !== mainFile ? 0 : d.file === mainFile ? 2 : 1);
  return [...errors].sort((a, b) => fileRank(a) - fileRank(b) || (a.pos?.line ?? 0) - (b.pos?.line ?? 0) || (a.pos?.col ?? 0) - (b.pos?.col ?? 0));
}

export async function loadPipeline(file: string, options: LoadOptions): Promise<Result<Pipeline>> {
  const cwd = options.cwd ?? process.cwd();
  const registry = options.registry;
  const abs = path.resolve(cwd, file);
  const display = displayPathOf(abs, cwd);
  const errors: Diagnostic[] = [];

  const read = await readText(abs, display);
  if (!read.ok) return { ok: false, errors: [read.error] };
  const source = read.text;
  const parsed = parseYaml(source, display);
  errors.push(...parsed.errors);

  let paramsFile: ParamsFile | undefined;
  if (options.paramsFile !== undefined) {
    const pf = await loadParamsFile(options.paramsFile, cwd);
    errors.push(...pf.errors);
    paramsFile = pf.value;
  }
  const overrides: Override[] = [];
  for (const [kind, list] of [
    ['-p', options.params ?? []],
    ['--set', options.set ?? []],
  ] as const) {
    for (const text of list) {
      const o = parseOverride(text, kind);
      if ('raw' in o) overrides.push(o);
      else errors.push(o);
    }
  }
  if (parsed.fatal) return { ok: false, errors: sorted(errors, display) };

  const defaultName = path.basename(abs).replace(/\.(ya?ml|json)$/i, '');
  const validated = validatePipeline({
    file: display,
    source,
    doc: parsed.value,
    positions: parsed.positions,
    registry,
    defaultName,
    overrides,
    ...(paramsFile ? { paramsFile } : {}),
  });
  errors.push(...validated.errors);
  if (errors.length === 0 && validated.value && options.checkPaths) {
    for (const spec of validated.value.stages.values()) {
      const stage = registry.get(spec.uses);
      if (!stage?.checkPaths) continue;
      for (const p of await stage.checkPaths(spec.with, path.dirname(abs))) errors.push(validated.locate(`stages.${spec.id}.with.${p.param}`, p.message));
    }
  }
  if (errors.length > 0 || !validated.value) return { ok: false, errors: sorted(errors, display) };

  const { name, params, stages, cache } = validated.value;
  const positions = parsed.positions;
  const pipeline: Pipeline = {
    file: abs,
    displayPath: display,
    dir: path.dirname(abs),
    name,
    params,
    stages,
    stageImpls: new Map([...stages.values()].map((s) => [s.id, registry.get(s.uses)!])),
    stageTypes: registry,
    ...(cache ? { cache } : {}),
    source,
    positionOf: (p) => positionIn(positions, p),
  };
  return { ok: true, value: pipeline };
}
