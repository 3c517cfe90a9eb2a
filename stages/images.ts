// `uses: images`: a local folder (or .zip / .tar archive) of pictures as the data source, so a
// user swaps in their own photos by editing one line. Files are copied into the artifact with
// their layout kept (a reflink where the file system can: no extra space on btrfs/xfs), never
// hard-linked: a cache file that is the user's file would let an edit of one change the other.
// The cache key covers their content through the stat cache, so a no-op run over 25,000 files
// does not re-read them. A symbolic link that leads out of the folder is refused unless
// `follow_symlinks` (a stray link to /etc/passwd would land in the cache, and on a remote).
import { constants, copyFile, link, mkdir, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Stage } from '../runner/types.js';
import { StageError } from '../runner/types.js';
import { cachedFileHash, hashFiles, mapLimit } from '../runner/stage-api.js';

export interface ImagesParams {
  path: string;
  follow_symlinks: boolean;
}

/**
 * Hard-link `src` to `dest` (creating folders), or copy when a link is impossible (another
 * device). Only for files already in the cache (split linking its input): a file from outside
 * `.pipe/` enters it with copyIn.
 */
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

/**
 * Copy a file from outside the cache into it (creating folders): a reflink (shared blocks,
 * copy-on-write) where the file system has them, else a plain copy. Never the same inode.
 */
export async function copyIn(src: string, dest: string): Promise<void> {
  try {
    await copyFile(src, dest, constants.COPYFILE_FICLONE);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    await mkdir(path.dirname(dest), { recursive: true });
    await copyFile(src, dest, constants.COPYFILE_FICLONE);
  }
}

/**
 * Where each file of a folder source really is. A path that resolves outside the folder (through
 * a linked file or folder) is an error naming it, unless `follow`.
 */
export async function resolveInside(root: string, files: readonly string[], label: string, follow: boolean): Promise<string[]> {
  const realRoot = await realpath(root);
  return mapLimit(files, 16, async (rel) => {
    const real = await realpath(path.join(root, rel));
    if (!follow && real !== realRoot && !real.startsWith(realRoot + path.sep)) {
      throw new StageError(
        `images: ${path.posix.join(label, rel)} is a symbolic link (or inside a linked folder) that leads out of ${label}, to ${real}`,
        'move the file into the folder, or set `follow_symlinks: true` on this stage to take it',
      );
    }
    return real;
  });
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
    'Files are copied into the artifact with their layout kept (a reflink where the file system can), never hard-linked; the cache key covers their content. ' +
    'A symbolic link leading out of the folder is refused unless `follow_symlinks: true`.',
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
      follow_symlinks: {
        description: 'Take files that symbolic links in the folder lead to outside it (refused by default). Not part of the cache key: the files are.',
        type: 'boolean',
        default: false,
      },
    },
  },
  keyExclude: ['follow_symlinks'],
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
    if (kind === 'folder') {
      const { glob } = await import('tinyglobby');
      files = (await glob(FOLDER_GLOB, { cwd: abs, onlyFiles: true, dot: false, followSymbolicLinks: true })).map((f) => f.split(path.sep).join('/')).sort();
      if (files.length === 0) throw new StageError(`images: ${label} holds no files`);
      const sources = await resolveInside(abs, files, label, ctx.params.follow_symlinks);
      const bar = ctx.progress('copy images', files.length);
      const dirs = new Set(files.map((f) => path.posix.dirname(f)));
      for (const d of dirs) await mkdir(path.join(ctx.outDir, d), { recursive: true });
      // The artifact holds the files links point to, never a link.
      await mapLimit(files, 16, async (rel, i) => {
        if (ctx.signal.aborted) throw new StageError('interrupted');
        await copyIn(sources[i]!, path.join(ctx.outDir, rel));
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
      meta: { source: kind, files: files.length },
      summary: `${files.length} files from ${label}`,
    };
  },
};
