// Streaming zip extraction (yauzl: reads the central directory, inflates one entry at a time
// straight to disk), with the checks an archive from the internet needs: entries whose path
// is absolute or climbs out with `..` (zip-slip), links and device files are refused with an
// error naming the entry; an entry that inflates more than `maxRatio` times its compressed
// size (a zip bomb) is refused before it is read. Zips inside the zip are extracted too when
// asked (the all-files download of dogs-vs-cats holds train.zip and test1.zip).
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Entry, ZipFile } from 'yauzl';
import { StageError } from '../../runner/types.js';

export interface ExtractOptions {
  /** Name of the archive in messages (default: its file name). */
  readonly label?: string;
  /** Also extract `.zip` entries, recursively (each replaced by its content). Default false. */
  readonly nested?: boolean;
  /** Nesting levels followed when `nested` (default 3). */
  readonly maxDepth?: number;
  /** Largest uncompressed/compressed ratio accepted for an entry (default 100). */
  readonly maxRatio?: number;
  /** Entries smaller than this are not ratio-checked (a tiny run of zeros is harmless). Default 1 MiB. */
  readonly ratioFloorBytes?: number;
  /** Refuse archives that would write more than this many bytes in all (default: no limit). */
  readonly maxTotalBytes?: number;
  /** Paths the results are made relative to (default: destDir). */
  readonly root?: string;
  readonly signal?: AbortSignal;
  /** Called with the uncompressed bytes written, as they are written. */
  readonly onBytes?: (n: number) => void;
}

export interface ExtractResult {
  /** Files written, relative to `root`, '/'-separated, in archive order. */
  readonly files: string[];
  readonly bytes: number;
  /** Entries left out on purpose (macOS resource forks). */
  readonly skipped: string[];
}

export interface ZipListing {
  readonly name: string;
  readonly size: number;
  readonly isDirectory: boolean;
}

type Yauzl = typeof import('yauzl');
let yauzlModule: Promise<Yauzl> | undefined;
function loadYauzl(): Promise<Yauzl> {
  yauzlModule ??= import('yauzl').then((m) => ((m as unknown as { default?: Yauzl }).default ?? m) as Yauzl);
  return yauzlModule;
}

/** Why a zip entry name is unsafe to extract, or undefined when it is fine. */
export function unsafeEntryName(name: string): string | undefined {
  if (name.includes('\0')) return 'its name contains a NUL byte';
  if (name.startsWith('/') || /^[a-zA-Z]:/.test(name) || name.startsWith('//')) return 'it is an absolute path';
  if (name.split('/').includes('..')) return "its path climbs out of the output folder with '..'";
  return undefined;
}

/** Resource forks and Finder files that macOS zips carry: never data. */
function isJunk(name: string): boolean {
  return name.startsWith('__MACOSX/') || name === '__MACOSX' || path.posix.basename(name.replace(/\/$/, '')) === '.DS_Store';
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

function entryType(entry: Entry): 'file' | 'dir' | 'link' | 'special' {
  const made = entry.versionMadeBy >> 8; // 3 = Unix: the high 16 bits of the attributes are st_mode
  const mode = (entry.externalFileAttributes >>> 16) & S_IFMT;
  if (made === 3 && mode !== 0) {
    if (mode === S_IFLNK) return 'link';
    if (mode === S_IFDIR) return 'dir';
    if (mode !== S_IFREG) return 'special';
  }
  return 'file';
}

function entryName(yauzl: Yauzl, entry: Entry): string {
  // decodeStrings is off so that yauzl does not reject unsafe names with its own, less helpful
  // error before we can name the entry: decode as yauzl would (UTF-8 flag, Info-ZIP extra field, CP437).
  return yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileName as unknown as Buffer, entry.extraFields, false);
}

async function openZip(yauzl: Yauzl, zipPath: string, label: string): Promise<ZipFile> {
  try {
    return await yauzl.openPromise(zipPath, { lazyEntries: true, decodeStrings: false, validateEntrySizes: true, autoClose: false });
  } catch (e) {
    throw new StageError(`${label} is not a readable zip archive (${(e as Error).message})`);
  }
}

/** Names and sizes of a zip's entries (reads only the central directory). */
export async function listZip(zipPath: string, label = path.basename(zipPath)): Promise<ZipListing[]> {
  const yauzl = await loadYauzl();
  const zip = await openZip(yauzl, zipPath, label);
  const out: ZipListing[] = [];
  try {
    for await (const entry of zip.eachEntry()) {
      const name = entryName(yauzl, entry);
      out.push({ name, size: entry.uncompressedSize, isDirectory: name.endsWith('/') || entryType(entry) === 'dir' });
    }
  } catch (e) {
    throw new StageError(`${label}: ${(e as Error).message}`);
  } finally {
    zip.close();
  }
  return out;
}

/**
 * Where a nested zip's content goes, relative to the folder the zip sits in: '' when its
 * entries already sit under a folder named after it (train.zip -> train/cat.0.jpg) or it holds
 * a single file (sample_submission.csv.zip -> sample_submission.csv), else a folder named after it (train.zip holding
 * cat.0.jpg directly -> train/cat.0.jpg).
 */
export function nestedPlacement(zipName: string, entries: readonly ZipListing[]): string {
  const stem = path.posix.basename(zipName).replace(/\.zip$/i, '');
  const meaningful = entries.filter((e) => !isJunk(e.name));
  const files = meaningful.filter((e) => !e.isDirectory);
  if (files.length <= 1) return '';
  if (meaningful.every((e) => e.name === `${stem}/` || e.name.startsWith(`${stem}/`))) return '';
  return stem;
}

/** Extract `zipPath` into `destDir` (created if needed). */
export async function extractZip(zipPath: string, destDir: string, options: ExtractOptions = {}): Promise<ExtractResult> {
  const result = { files: [] as string[], bytes: 0, skipped: [] as string[] };
  await extractInto(zipPath, path.resolve(destDir), options, 0, result, options.label ?? path.basename(zipPath));
  return result;
}

async function extractInto(
  zipPath: string,
  destDir: string,
  o: ExtractOptions,
  depth: number,
  result: { files: string[]; bytes: number; skipped: string[] },
  label: string,
): Promise<void> {
  const yauzl = await loadYauzl();
  const root = path.resolve(o.root ?? destDir);
  const maxRatio = o.maxRatio ?? 100;
  const floor = o.ratioFloorBytes ?? 1024 * 1024;
  await mkdir(destDir, { recursive: true });
  const zip = await openZip(yauzl, zipPath, label);
  const nestedZips: string[] = [];
  try {
    let iter: AsyncIterable<Entry>;
    try {
      iter = zip.eachEntry();
    } catch (e) {
      throw new StageError(`${label}: ${(e as Error).message}`);
    }
    for await (const entry of iter) {
      if (o.signal?.aborted) throw new StageError(`interrupted while extracting ${label}`);
      const name = entryName(yauzl, entry);
      const refuse = (why: string, hint?: string): never => {
        throw new StageError(`refusing zip entry '${name}' in ${label}: ${why}`, hint);
      };
      const unsafe = unsafeEntryName(name);
      if (unsafe) refuse(unsafe, 'the archive is malformed or malicious (zip-slip): nothing outside the output folder is written');
      const type = entryType(entry);
      if (type === 'link') refuse('it is a symbolic link');
      if (type === 'special') refuse('it is not a regular file or folder');
      if (isJunk(name)) {
        result.skipped.push(name);
        continue;
      }
      const target = path.resolve(destDir, name);
      if (target !== destDir && !target.startsWith(destDir + path.sep)) refuse('its path leaves the output folder');
      if (name.endsWith('/') || type === 'dir') {
        await mkdir(target, { recursive: true });
        continue;
      }
      if (entry.isEncrypted()) refuse('it is encrypted');
      if (!entry.canDecodeFileData()) refuse(`unsupported compression method ${entry.compressionMethod}`);
      const ratio = entry.uncompressedSize / Math.max(1, entry.compressedSize);
      if (entry.uncompressedSize > floor && ratio > maxRatio) {
        refuse(
          `it would inflate ${Math.round(ratio)} times (${entry.uncompressedSize} bytes from ${entry.compressedSize}), over the limit of ${maxRatio} (a zip bomb?)`,
        );
      }
      if (o.maxTotalBytes !== undefined && result.bytes + entry.uncompressedSize > o.maxTotalBytes) {
        refuse(`the archive would write more than ${o.maxTotalBytes} bytes`);
      }
      await mkdir(path.dirname(target), { recursive: true });
      const input = await zip.openReadStreamPromise(entry);
      const counter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          result.bytes += chunk.length;
          o.onBytes?.(chunk.length);
          cb(null, chunk);
        },
      });
      try {
        await pipeline(input, counter, createWriteStream(target, { flags: 'wx' }), ...(o.signal ? [{ signal: o.signal }] : []));
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        if (o.signal?.aborted) throw new StageError(`interrupted while extracting ${label}`);
        if (err.code === 'EEXIST')
          refuse(`${path.relative(root, target).split(path.sep).join('/')} already exists (a duplicate entry, or two archives with the same file)`);
        if (err.syscall) throw e;
        refuse(`cannot inflate it (${err.message})`);
      }
      const rel = path.relative(root, target).split(path.sep).join('/');
      if (o.nested && depth < (o.maxDepth ?? 3) && /\.zip$/i.test(name)) nestedZips.push(target);
      else result.files.push(rel);
    }
  } catch (e) {
    if (e instanceof StageError || (e as NodeJS.ErrnoException).syscall) throw e;
    throw new StageError(`${label}: ${(e as Error).message}`);
  } finally {
    zip.close();
  }
  for (const inner of nestedZips) {
    const innerLabel = `${path.basename(inner)} (in ${label})`;
    const place = nestedPlacement(path.basename(inner), await listZip(inner, innerLabel));
    await extractInto(inner, path.join(path.dirname(inner), place), { ...o, root }, depth + 1, result, innerLabel);
    await rm(inner, { force: true });
  }
}
