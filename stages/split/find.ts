// Finding and labelling the images a split starts from, for both layouts: `random` (labelled
// images under one folder, labelled by file name or class folder, split by the stage) and
// `folders` (given train/valid folders with one sub-folder per class, kept as they are).
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { StageError } from '../../runner/types.js';
import { byCodePoint } from '../random.js';

export interface Found {
  /** Path in the input artifact, '/'-separated. */
  readonly file: string;
  readonly cls: string;
  /** File name in the class folder of the output. */
  readonly outName: string;
}

export interface Excluded {
  readonly file: string;
  readonly reason: string;
}

export function isHidden(name: string): boolean {
  return name.startsWith('.') || name === '__MACOSX';
}

/** Image files under `dir` (relative to `base`), sorted; folders in `skip` (base-relative) are left out. */
export async function listImages(base: string, dir: string, exts: ReadonlySet<string>, skip: ReadonlySet<string> = new Set()): Promise<string[]> {
  const out: string[] = [];
  const stack = [dir];
  while (stack.length) {
    const rel = stack.pop()!;
    const entries = await readdir(path.join(base, rel), { withFileTypes: true });
    for (const e of entries) {
      if (isHidden(e.name)) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (!skip.has(r)) stack.push(r);
      } else if (e.isFile() && exts.has(path.posix.extname(e.name).slice(1).toLowerCase())) {
        out.push(r);
      }
    }
  }
  return out.sort(byCodePoint);
}

export function safeSegment(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\\') && !name.includes('\0');
}

export async function isDir(base: string, rel: string): Promise<boolean> {
  return stat(path.join(base, rel)).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

/** The folders of `base/rel`, sorted, for "its folders: ..." hints. */
async function foldersOf(base: string, rel: string): Promise<string[]> {
  const entries = await readdir(path.join(base, rel), { withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isDirectory() && !isHidden(e.name))
    .map((e) => e.name)
    .sort(byCodePoint);
}

export async function requireDir(base: string, rel: string, what: string, within = '', stage = 'split'): Promise<void> {
  if (await isDir(base, rel)) return;
  const top = await foldersOf(base, within);
  const where = within ? `'${within}'` : 'the input';
  throw new StageError(
    `${stage}: ${where} has no folder '${rel.slice(within ? within.length + 1 : 0)}' (${what})`,
    top.length ? `its folders: ${top.slice(0, 20).join(', ')}` : 'it has no folders',
  );
}

export function normaliseSub(p: string, what = '', stage = 'split'): string {
  const n = path.posix
    .normalize(p.replace(/\\/g, '/'))
    .replace(/^\.\/?/, '')
    .replace(/\/+$/, '');
  if (n.startsWith('/') || n === '..' || n.startsWith('../'))
    throw new StageError(`${stage}: '${p}'${what ? ` (${what})` : ''} must be a folder inside the input`);
  return n === '.' ? '' : n;
}

/** Images under `dir` labelled by their class folder: dir/<class>/.../name.jpg. */
export function labelByFolder(files: readonly string[], dir: string, excluded: Excluded[]): Found[] {
  const prefix = dir ? `${dir}/` : '';
  const out: Found[] = [];
  for (const file of files) {
    const parts = file.slice(prefix.length).split('/');
    if (parts.length < 2) {
      excluded.push({ file, reason: 'no label: not in a class folder' });
      continue;
    }
    const cls = parts[0]!;
    if (!safeSegment(cls)) {
      excluded.push({ file, reason: `no label: '${cls}' cannot be a folder name` });
      continue;
    }
    out.push({ file, cls, outName: parts.slice(1).join('_') });
  }
  return out;
}

/** Images under `dir` labelled by `pattern`'s first capture group on the file name. */
export function labelByName(files: readonly string[], dir: string, pattern: RegExp, source: string, excluded: Excluded[]): Found[] {
  const prefix = dir ? `${dir}/` : '';
  const out: Found[] = [];
  for (const file of files) {
    const below = file.slice(prefix.length);
    const cls = pattern.exec(path.posix.basename(below))?.[1];
    if (!cls) {
      excluded.push({ file, reason: `no label: the file name does not match ${source}` });
      continue;
    }
    if (!safeSegment(cls)) {
      excluded.push({ file, reason: `no label: '${cls}' cannot be a folder name` });
      continue;
    }
    out.push({ file, cls, outName: below.split('/').join('_') });
  }
  return out;
}

/** Group by class in the order given, classes sorted. */
export function byClass(found: readonly Found[], classes: readonly string[]): Found[][] {
  const groups = new Map<string, Found[]>(classes.map((c) => [c, []]));
  for (const f of found) groups.get(f.cls)?.push(f);
  return classes.map((c) => groups.get(c)!);
}
