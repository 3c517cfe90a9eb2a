// Checks for JSON the report reads from upstream artifacts: each returns the value with its
// type or throws a StageError naming the place ("metrics.json: confusion[1][0] must be ...").
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { StageError } from '../../runner/types.js';

// ---------------------------------------------------------------------------------------------
// Field checks. `at` names the place for the message: "metrics.json: confusion[1][0]".

export function fail(at: string, problem: string): never {
  throw new StageError(`${at} ${problem}`);
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function record(v: unknown, at: string): Record<string, unknown> {
  if (!isRecord(v)) fail(at, `must be an object, got ${describe(v)}`);
  return v;
}

export function array(v: unknown, at: string): readonly unknown[] {
  if (!Array.isArray(v)) fail(at, `must be an array, got ${describe(v)}`);
  return v;
}

export function finite(v: unknown, at: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(at, `must be a finite number, got ${describe(v)}`);
  return v;
}

export function fraction(v: unknown, at: string): number {
  const x = finite(v, at);
  if (x < 0 || x > 1) fail(at, `must be between 0 and 1, got ${x}`);
  return x;
}

export function count(v: unknown, at: string): number {
  const x = finite(v, at);
  if (!Number.isInteger(x) || x < 0) fail(at, `must be a non-negative integer, got ${x}`);
  return x;
}

export function text(v: unknown, at: string): string {
  if (typeof v !== 'string') fail(at, `must be a string, got ${describe(v)}`);
  return v;
}

/** A number or null (JSON has no NaN: a diverged loss arrives as null). Absent = null. */
export function maybeNumber(v: unknown, at: string): number | null {
  if (v === undefined || v === null) return null;
  return finite(v, at);
}

export function classList(v: unknown, at: string): string[] {
  const list = array(v, at).map((c, i) => text(c, `${at}[${i}]`));
  if (list.length === 0) fail(at, 'must name at least one class');
  const seen = new Set<string>();
  for (const c of list) {
    if (seen.has(c)) fail(at, `names class ${JSON.stringify(c)} twice`);
    seen.add(c);
  }
  return list;
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  if (typeof v === 'number') return String(v);
  return typeof v;
}

// ---------------------------------------------------------------------------------------------
// Files.

export async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StageError(`${path.basename(file)}: cannot read: ${(error as Error).message}`);
  }
}

export function parseJson(body: string, name: string): unknown {
  try {
    return JSON.parse(body);
  } catch (error) {
    throw new StageError(`${name}: not valid JSON: ${(error as Error).message}`);
  }
}
