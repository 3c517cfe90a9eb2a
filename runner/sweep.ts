// Sweeps as plain data: `--sweep path=v1,v2,v3` flags -> axes -> the grid of combinations
// (cartesian product, the first flag varying slowest), each one a list of `--set` overrides.
// Values are YAML scalars (or flow collections), read as one YAML flow sequence, so quoting
// works as in the pipeline file: --sweep 'stages.a.with.name="x,y",z'.
import { parseDocument, isScalar, Scalar, parse } from 'yaml';

export interface SweepValue {
  /** The text passed on as `--set path=<text>`. */
  readonly text: string;
  /** The value as YAML reads it (for tables and JSON). */
  readonly value: unknown;
}

export interface SweepAxis {
  readonly path: string;
  readonly values: readonly SweepValue[];
}

export interface Combination {
  /** 1-based position in the grid. */
  readonly index: number;
  readonly values: readonly { readonly path: string; readonly text: string; readonly value: unknown }[];
  /** `path=text` for each axis: what goes after `--set`. */
  readonly set: readonly string[];
}

export class SweepError extends Error {
  override readonly name = 'SweepError';
}

/** One `--sweep path=v1,v2,...` flag. Throws SweepError with a message that names the flag. */
export function parseSweep(spec: string): SweepAxis {
  const where = `--sweep ${spec}`;
  const eq = spec.indexOf('=');
  if (eq <= 0) throw new SweepError(`${where}: expected path=value1,value2,... (e.g. stages.finetune.with.learning_rate=0.01,0.001)`);
  const path = spec.slice(0, eq).trim();
  if (!/^[^\s.=]+(\.[^\s.=]+)*$/.test(path)) throw new SweepError(`${where}: '${path}' is not a dotted path`);
  const list = spec.slice(eq + 1);
  if (!list.trim()) throw new SweepError(`${where}: no values`);
  const source = `[${list}]`;
  const doc = parseDocument(source);
  if (doc.errors.length > 0) throw new SweepError(`${where}: cannot read the values as a YAML list: ${doc.errors[0]!.message.split('\n')[0]}`);
  const seq = doc.contents;
  const items = seq && 'items' in seq && Array.isArray(seq.items) ? (seq.items as unknown[]) : undefined;
  if (!items) throw new SweepError(`${where}: cannot read the values as a list`);
  const js = doc.toJS({ maxAliasCount: 10 }) as unknown[];
  const values: SweepValue[] = [];
  for (const [i, item] of items.entries()) {
    const range = (item as { range?: [number, number, number] } | null)?.range;
    const raw = range ? source.slice(range[0], range[1]).trim() : '';
    if (item === null || raw === '') throw new SweepError(`${where}: empty value in the list`);
    values.push({ text: passOn(item, raw), value: js[i] });
  }
  const seen = new Set<string>();
  for (const v of values) {
    const k = JSON.stringify(v.value);
    if (seen.has(k)) throw new SweepError(`${where}: value ${v.text} is listed twice`);
    seen.add(k);
  }
  return { path, values };
}

/**
 * The text to pass on as `--set path=<text>`. The loader reads it as YAML unless the param's
 * schema wants a string, when it keeps the raw text: so a quoted string goes on unquoted when
 * YAML would read it back as the same string ("abc"), quoted only when it must ("007", "true").
 */
function passOn(item: unknown, raw: string): string {
  if (isScalar(item) && typeof item.value === 'string' && item.type !== Scalar.PLAIN) {
    const s = item.value;
    let same = false;
    try {
      same = parse(s) === s;
    } catch {
      same = false;
    }
    return same ? s : JSON.stringify(s);
  }
  return raw;
}

/** Every `--sweep` flag; two flags for one path are an error. */
export function parseSweeps(specs: readonly string[]): SweepAxis[] {
  if (specs.length === 0) throw new SweepError('--sweep: give at least one path=value1,value2,...');
  const axes = specs.map(parseSweep);
  for (let i = 0; i < axes.length; i++) {
    const dup = axes.findIndex((a, j) => j < i && a.path === axes[i]!.path);
    if (dup >= 0) throw new SweepError(`--sweep ${axes[i]!.path}: swept twice; list all its values in one flag`);
  }
  return axes;
}

/** The cartesian product of the axes, the first axis varying slowest. */
export function expandGrid(axes: readonly SweepAxis[]): Combination[] {
  let rows: { path: string; text: string; value: unknown }[][] = [[]];
  for (const axis of axes) {
    const next: typeof rows = [];
    for (const row of rows) for (const v of axis.values) next.push([...row, { path: axis.path, text: v.text, value: v.value }]);
    rows = next;
  }
  return rows.map((values, i) => ({ index: i + 1, values, set: values.map((v) => `${v.path}=${v.text}`) }));
}

/** `finetune.learning_rate=0.01 split.seed=7`, for headers and tables. */
export function describeCombination(c: Combination, short: (path: string) => string = (p) => p): string {
  return c.values.map((v) => `${short(v.path)}=${v.text}`).join(' ');
}

/** Set (to 1) in the environment of a parallel sweep's child runs: see RunFlags.sweepCombination. */
export const SWEEP_CHILD_ENV = 'PIPE_SWEEP_COMBINATION';
