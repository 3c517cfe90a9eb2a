// The cheap structural check a committed cache entry passes before it is served as a hit: no
// re-hashing (that is `pipe verify`), only what a damaged entry gives away at once. meta.json and
// manifest.json parse, data/ is a folder, and data/ holds exactly the top-level names the
// manifest lists. A file edited in place keeps its size and name: only verify finds that.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ManifestEntry } from './types.js';

/** Why an entry folder cannot be served, or undefined when it looks whole. */
export async function structuralDamage(entryDir: string): Promise<string | undefined> {
  let manifest: unknown;
  try {
    manifest = JSON.parse(await readFile(path.join(entryDir, 'manifest.json'), 'utf8'));
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'manifest.json is missing' : 'manifest.json does not parse';
  }
  if (!Array.isArray(manifest) || !manifest.every(isEntry)) return 'manifest.json is not a list of files';
  let names: string[];
  try {
    names = await readdir(path.join(entryDir, 'data'));
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'data/ is missing' : `data/ is unreadable (${(e as Error).message})`;
  }
  const listed = new Set((manifest as ManifestEntry[]).map((m) => m.path.split('/', 1)[0]!));
  if (names.length !== listed.size || names.some((n) => !listed.has(n))) {
    return `data/ holds ${names.length} top-level name${names.length === 1 ? '' : 's'}, the manifest lists ${listed.size}`;
  }
  return undefined;
}

/** Whether meta.json's text is an entry's meta: the fields the runner reads from it. */
export function parseMeta<T>(text: string): T | undefined {
  try {
    const meta = JSON.parse(text) as Record<string, unknown>;
    if (meta && typeof meta === 'object' && typeof meta['kind'] === 'string' && typeof meta['contentHash'] === 'string') return meta as T;
  } catch {
    // below
  }
  return undefined;
}

function isEntry(m: unknown): boolean {
  const e = m as ManifestEntry;
  return !!e && typeof e.path === 'string' && typeof e.size === 'number' && typeof e.sha256 === 'string';
}
