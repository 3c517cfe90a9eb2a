// The cheap structural check a committed cache entry passes before it is served as a hit: no
// re-hashing (that is `pipe verify`), only what a damaged entry gives away at once: meta.json
// parses, manifest.json is whole, data/ is a folder holding as many top-level names as the
// manifest lists. An entry sealed with its shape (EntryShape in meta.json) is checked against it
// without parsing its manifest: that is several MB for 25,000 files, and a no-op run must stay
// fast. A file edited in place keeps its size and name: only verify finds that.
import { open, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ManifestEntry } from './types.js';

/** What meta.json records of an entry's layout when it is sealed. */
export interface EntryShape {
  /** Bytes of manifest.json as written. */
  readonly manifestBytes: number;
  /** Distinct first path segments in the manifest: the names directly under data/. */
  readonly topLevel: number;
}

export function shapeOf(manifest: readonly ManifestEntry[], manifestText: string): EntryShape {
  return { manifestBytes: Buffer.byteLength(manifestText), topLevel: topLevelNames(manifest).size };
}

/** Why an entry folder cannot be served, or undefined when it looks whole. */
export async function structuralDamage(entryDir: string, shape?: EntryShape): Promise<string | undefined> {
  const file = path.join(entryDir, 'manifest.json');
  let topLevel: Set<string> | number;
  try {
    topLevel = shape ? await checkShape(file, shape) : await parseTopLevel(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'manifest.json is missing';
    return (e as Error).message;
  }
  let names: string[];
  try {
    names = await readdir(path.join(entryDir, 'data'));
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'data/ is missing' : `data/ is unreadable (${(e as Error).message})`;
  }
  const listed = typeof topLevel === 'number' ? topLevel : topLevel.size;
  if (names.length !== listed || (typeof topLevel !== 'number' && names.some((n) => !topLevel.has(n)))) {
    return `data/ holds ${names.length} top-level name${names.length === 1 ? '' : 's'}, the manifest lists ${listed}`;
  }
  return undefined;
}

/** The manifest is the size it was sealed with, and still a JSON list: its top-level count. */
async function checkShape(file: string, shape: EntryShape): Promise<number> {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    if (size !== shape.manifestBytes) throw new Error(`manifest.json is ${size} bytes, it was sealed with ${shape.manifestBytes}`);
    const first = Buffer.alloc(1);
    const last = Buffer.alloc(1);
    await fh.read(first, 0, 1, 0);
    await fh.read(last, 0, 1, Math.max(0, size - 1));
    if (first.toString() !== '[' || last.toString() !== ']') throw new Error('manifest.json is not a JSON list');
  } finally {
    await fh.close();
  }
  return shape.topLevel;
}

/** An entry sealed without its shape (an older pipe): parse the manifest. */
async function parseTopLevel(file: string): Promise<Set<string>> {
  let manifest: unknown;
  try {
    manifest = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw e;
    throw new Error('manifest.json does not parse');
  }
  if (!Array.isArray(manifest) || !manifest.every(isEntry)) throw new Error('manifest.json is not a list of files');
  return topLevelNames(manifest as ManifestEntry[]);
}

function topLevelNames(manifest: readonly ManifestEntry[]): Set<string> {
  return new Set(manifest.map((m) => m.path.split('/', 1)[0]!));
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
