// Which files of an input artifact a stage reads (Stage.reads): glob patterns relative to the
// artifact's data dir, and their matching. `pipe run --pull` downloads only the matching files
// of an upstream artifact when every stage that reads it declares them (a sparse cache entry).
// The syntax is deliberately small (no dependency, no surprises):
//   *      any characters within one path segment (not '/')
//   ?      one character within a segment
//   **     as a whole segment: any number of segments, none included ('valid/**', '**/x.json')
// A pattern that matches a directory covers everything below it ('valid' = 'valid/**').
import type { ManifestEntry } from './types.js';

/** Why a pattern is not acceptable, or undefined when it is. */
export function badPattern(p: unknown): string | undefined {
  if (typeof p !== 'string' || p.length === 0) return 'must be a non-empty string';
  if (p.startsWith('/') || p.includes('\\') || p.includes('\0')) return 'must be a relative, /-separated path';
  if (p.split('/').some((s) => s === '' || s === '.' || s === '..')) return "must not have empty, '.' or '..' segments";
  return undefined;
}

function compile(pattern: string): RegExp {
  const segs = pattern.split('/');
  let re = '';
  segs.forEach((s, i) => {
    const last = i === segs.length - 1;
    if (s === '**') {
      re += last ? '.*' : '(?:[^/]+/)*';
      return;
    }
    re += s
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '[^/]*')
      .replace(/\?/g, '[^/]');
    if (!last) re += '/';
  });
  return new RegExp(`^${re}$`);
}

/** A predicate over artifact-relative file paths: true when some pattern matches the file or a folder above it. */
export function readsMatcher(patterns: readonly string[]): (file: string) => boolean {
  const res = patterns.map(compile);
  return (file) => {
    if (res.some((r) => r.test(file))) return true;
    for (let i = file.indexOf('/'); i > 0; i = file.indexOf('/', i + 1)) {
      const dir = file.slice(0, i);
      if (res.some((r) => r.test(dir))) return true;
    }
    return false;
  };
}

/** The manifest entries a reader needs: all of them when `patterns` is undefined. */
export function selectReads(manifest: readonly ManifestEntry[], patterns: readonly string[] | undefined): ManifestEntry[] {
  if (patterns === undefined) return [...manifest];
  const match = readsMatcher(patterns);
  return manifest.filter((m) => match(m.path));
}

/** Sorted, de-duplicated patterns; throws (naming the stage) on a malformed declaration. */
export function normalizeReads(patterns: readonly string[] | undefined, who: string): string[] | undefined {
  if (patterns === undefined) return undefined;
  if (!Array.isArray(patterns)) throw new Error(`${who}: reads() must return a list of glob patterns or undefined`);
  for (const p of patterns) {
    const bad = badPattern(p);
    if (bad) throw new Error(`${who}: read pattern ${JSON.stringify(p)} ${bad}`);
  }
  return [...new Set(patterns)].sort();
}
