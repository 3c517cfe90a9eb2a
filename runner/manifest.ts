// An artifact's manifest: every file with its relative path, size and sha256. The content hash
// of an artifact is the hash of its manifest, computed once when the artifact is committed.
import { readdir, lstat } from 'node:fs/promises';
import path from 'node:path';
import type { ManifestEntry } from './types.js';
import { hashOf } from './canonical.js';
import { sha256File } from './hash-files.js';
import { mapLimit } from './map-limit.js';
import { fsyncPath } from './fs-util.js';

export { fsyncPath };

/** Relative '/'-separated paths of every regular file under dir, sorted. Links are refused. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(path.join(dir, rel), { withFileTypes: true });
    for (const e of entries) {
      const childRel = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(childRel);
      else if (e.isFile()) out.push(childRel);
      else if (e.isSymbolicLink()) throw new Error(`artifact contains a symbolic link: ${childRel} (write real files)`);
    }
  };
  await walk('');
  return out.sort();
}

export async function buildManifest(dir: string, onFile?: () => void): Promise<ManifestEntry[]> {
  const files = await listFiles(dir);
  return mapLimit(files, 8, async (rel) => {
    const abs = path.join(dir, rel);
    const [st, sha256] = await Promise.all([lstat(abs), sha256File(abs)]);
    onFile?.();
    return { path: rel, size: st.size, sha256 };
  });
}

export function contentHashOf(manifest: readonly ManifestEntry[]): string {
  return hashOf(manifest.map((e) => [e.path, e.size, e.sha256]));
}

/** fsync every file, then every directory, so a rename after this publishes durable data. */
export async function fsyncTree(dir: string, files: readonly string[]): Promise<void> {
  const dirs = new Set<string>([dir]);
  await mapLimit(files, 16, async (rel) => {
    const abs = path.join(dir, rel);
    dirs.add(path.dirname(abs));
    await fsyncPath(abs);
  });
  for (const d of dirs) await fsyncPath(d);
}

export interface VerifyProblem {
  readonly path: string;
  readonly problem: string;
}

/** Re-hash an artifact's files against its manifest. */
export async function verifyAgainstManifest(dir: string, manifest: readonly ManifestEntry[]): Promise<VerifyProblem[]> {
  const problems: VerifyProblem[] = [];
  let actual: string[];
  try {
    actual = await listFiles(dir);
  } catch (e) {
    return [{ path: '.', problem: (e as Error).message }];
  }
  const listed = new Set(manifest.map((m) => m.path));
  for (const f of actual) if (!listed.has(f)) problems.push({ path: f, problem: 'not in the manifest' });
  const present = new Set(actual);
  await mapLimit(manifest, 8, async (m) => {
    if (!present.has(m.path)) {
      problems.push({ path: m.path, problem: 'missing' });
      return;
    }
    const abs = path.join(dir, m.path);
    const st = await lstat(abs);
    if (st.size !== m.size) {
      problems.push({ path: m.path, problem: `size ${st.size}, expected ${m.size}` });
      return;
    }
    const sha = await sha256File(abs);
    if (sha !== m.sha256) problems.push({ path: m.path, problem: 'content differs from the manifest (sha256)' });
  });
  return problems.sort((a, b) => a.path.localeCompare(b.path));
}
