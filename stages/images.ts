// `uses: images`: a local folder (or .zip / .tar archive) of pictures as the data source, so a
// user swaps in their own photos by editing one line. Files are hard-linked into the artifact
// with their layout kept (copied when the cache is on another device); the cache key covers
// their content through the stat cache, so a no-op run over 25,000 files does not re-read them.
import { copyFile, link, lstat, mkdir, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Stage } from '../runner/types.js';
import { StageError } from '../runner/types.js';
import { cachedFileHash, hashFiles, mapLimit } from '../runner/hash-files.js';

export interface ImagesParams {
  path: string;
}

/** Hard-link `src` to `dest` (creating folders), or copy when a link is impossible (another device). */
export async function linkOrCopy(src: string, dest: string): Promise<'link' | 'copy'> {
  try {
    await link(src, dest);
    return 'link';
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      await mkdir(path.dirname(dest), { recursive: true });
      return linkOrCopy(src, dest);
    }
    // EXDEV: another file system; EPERM/ENOTSUP/EMLINK: links not allowed or too many.
    if (code === 'EXDEV' || code === 'EPERM' || code === 'ENOTSUP' || code === 'EMLINK' || code === 'EACCES') {
      await mkdir(path.dirname(dest), { recursive: true });
      await copyFile(src, dest);
      return 'copy';
    }
    throw e;
  }
}

type SourceKind = 'folder' | 'zip' | 'tar';

function archiveKind(file: string): SourceKind | undefined {
  if (/\.zip$/i.test(file)) return 'zip';
  if (/\.(tar|tar\.gz|tgz|tar\.bz2|tbz2|tar\.xz|txz)$/i.test(file)) return 'tar';
  return undefined;
}

/** Where `path` is and what kind of source, or why it cannot be one (a user's typo, not a bug). */
async function inspectSource(params: ImagesParams, pipelineDir: string): Promise<{ abs: string; kind: SourceKind } | { problem: string }> {
  const abs = path.resolve(pipelineDir, params.path);
  let st;
  try {
    st = await stat(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES') return { problem: `${params.path} cannot be read (permission denied: ${abs})` };
    return { problem: `${params.path} does not exist (resolved against the pipeline folder: ${abs})` };
  }
  if (st.isDirectory()) return { abs, kind: 'folder' };
  const kind = archiveKind(abs);
  if (!st.isFile() || !kind) return { problem: `${params.path} is neither a folder nor a .zip/.tar archive` };
  return { abs, kind };
}

async function resolveSource(params: ImagesParams, pipelineDir: string): Promise<{ abs: string; kind: SourceKind }> {
  const source = await inspectSource(params, pipelineDir);
  if ('problem' in source) throw new StageError(`images: ${source.problem}`);
  return source;
}

/** The files a folder source contributes: the same glob for the key and for the copy. */
const FOLDER_GLOB = ['**/*'];

/** A tar member that must not be extracted, or undefined. `typeChar` is the first letter of `tar -tv`'s mode. */
export function unsafeTarMember(name: string, typeChar: string): string | undefined {
  if (name.startsWith('/')) return 'it is an absolute path';
  if (name.split('/').includes('..')) return "its path climbs out of the output folder with '..'";
  if (typeChar === 'l') return 'it is a symbolic link';
  if (typeChar === 'h') return 'it is a hard link';
  if (typeChar !== '-' && typeChar !== 'd') return 'it is not a regular file or folder';
  return undefined;
}

function firstLine(...texts: (string | undefined)[]): string {
  const text = texts.find((t) => typeof t === 'string' && t.trim() !== '') ?? 'unknown error';
  return text.trim().split('\n')[0]!;
}

async function extractTar(archive: string, outDir: string, label: string, signal: AbortSignal): Promise<void> {
  const { execa } = await import('execa');
  const common = ['--no-same-owner', '--no-same-permissions'];
  // Member names and their types, in the same order: `-t` prints names, `-tv` adds the mode.
  const names = await execa('tar', ['-tf', archive, ...common], { cancelSignal: signal, reject: false, maxBuffer: 1 << 30 });
  const long = await execa('tar', ['-tvf', archive, ...common], { cancelSignal: signal, reject: false, maxBuffer: 1 << 30 });
  if (names.failed || long.failed) throw new StageError(`images: cannot read ${label} (${firstLine(names.stderr, long.stderr, names.shortMessage)})`);
  const nameLines = names.stdout.split('\n').filter((l) => l !== '');
  const longLines = long.stdout.split('\n').filter((l) => l !== '');
  if (nameLines.length !== longLines.length) throw new StageError(`images: cannot list ${label} consistently`);
  nameLines.forEach((name, i) => {
    const why = unsafeTarMember(name, longLines[i]!.charAt(0));
    if (why) throw new StageError(`images: refusing tar member '${name}' in ${label}: ${why}`);
  });
  const x = await execa('tar', ['-xf', archive, '-C', outDir, ...common], { cancelSignal: signal, reject: false });
  if (x.failed) throw new StageError(`images: extracting ${label} failed (${firstLine(x.stderr, x.shortMessage)})`);
}

/** Every regular file under dir, relative; anything else (links, devices) is an error naming it. */
async function walkFiles(dir: string, rel = '', out: string[] = []): Promise<string[]> {
  for (const e of await readdir(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) await walkFiles(dir, r, out);
    else if (e.isFile()) out.push(r);
    else throw new StageError(`images: ${r} in the archive is not a regular file`);
  }
  return out;
}

export const imagesStage: Stage<ImagesParams> = {
  name: 'images',
  version: 1,
  description:
    'A local folder, .zip or .tar archive of images as the data source (e.g. train/cat.0.jpg ... or one folder per class). ' +
    'Files are hard-linked into the artifact with their layout kept (copied across devices); the cache key covers their content.',
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['path'],
    properties: {
      path: {
        description: 'Folder, .zip or .tar(.gz) archive, relative to the pipeline file. Hidden files (.name) in a folder are left out.',
        type: 'string',
        minLength: 1,
      },
    },
  },
  inputs: {},
  output: 'files',
  async checkPaths(params, pipelineDir) {
    const source = await inspectSource(params, pipelineDir);
    return 'problem' in source ? [{ param: 'path', message: source.problem }] : [];
  },
  async keyExtra(params, pipelineDir) {
    const { abs, kind } = await resolveSource(params, pipelineDir);
    if (kind !== 'folder') {
      const { size, sha256 } = await cachedFileHash(abs);
      return { kind, size, sha256 };
    }
    return { kind, files: (await hashFiles(abs, FOLDER_GLOB)).map((f) => [f.path, f.size, f.sha256]) };
  },
  async run(ctx) {
    const { abs, kind } = await resolveSource(ctx.params, ctx.pipelineDir);
    const label = ctx.params.path;
    let files: string[];
    let copies = 0;
    if (kind === 'folder') {
      const { glob } = await import('tinyglobby');
      files = (await glob(FOLDER_GLOB, { cwd: abs, onlyFiles: true, dot: false, followSymbolicLinks: true })).map((f) => f.split(path.sep).join('/')).sort();
      if (files.length === 0) throw new StageError(`images: ${label} holds no files`);
      const bar = ctx.progress('link images', files.length);
      const dirs = new Set(files.map((f) => path.posix.dirname(f)));
      for (const d of dirs) await mkdir(path.join(ctx.outDir, d), { recursive: true });
      await mapLimit(files, 16, async (rel) => {
        if (ctx.signal.aborted) throw new StageError('interrupted');
        let src = path.join(abs, rel);
        // A symbolic link is followed: the artifact holds the file it points to, never a link.
        if ((await lstat(src)).isSymbolicLink()) src = await realpath(src);
        if ((await linkOrCopy(src, path.join(ctx.outDir, rel))) === 'copy') copies++;
        bar.tick();
      });
      bar.done(`${files.length} files`);
    } else if (kind === 'zip') {
      const { extractZip } = await import('./kaggle/unzip.js');
      const res = await extractZip(abs, ctx.outDir, { label, nested: false, signal: ctx.signal });
      files = res.files;
    } else {
      await extractTar(abs, ctx.outDir, label, ctx.signal);
      files = await walkFiles(ctx.outDir);
    }
    if (files.length === 0) throw new StageError(`images: ${label} holds no files`);
    return {
      meta: { source: kind, files: files.length, ...(kind === 'folder' ? { copied: copies } : {}) },
      summary: `${files.length} files from ${label}${copies ? ` (${copies} copied: another device)` : ''}`,
    };
  },
};
