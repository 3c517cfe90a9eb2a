// Small filesystem helpers the cache and the stages share.
import { chmod, open, readdir, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { mapLimit } from './map-limit.js';

/** The mode of every file committed to the cache. */
export const READ_ONLY = 0o444;

/** chmod 0444 the files (paths relative to dir). Folders stay writable: rm, gc and swaps still work. */
export async function makeReadOnly(dir: string, files: readonly string[]): Promise<void> {
  await mapLimit(files, 16, (rel) => chmod(path.join(dir, rel), READ_ONLY));
}

/**
 * Replace a file atomically and durably: write a sibling, fsync, rename, fsync the folder.
 * `data` may come in parts, written one after the other (a checkpoint's arrays: no 1.5 GB
 * concatenated copy in memory).
 */
export async function writeAtomic(file: string, data: string | Uint8Array | readonly Uint8Array[], mode = 0o666): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  if (typeof data === 'string' || data instanceof Uint8Array) {
    await writeFile(tmp, data, { mode });
  } else {
    const fh = await open(tmp, 'w', mode);
    try {
      for (const part of data) for (let done = 0; done < part.byteLength;) done += (await fh.write(part, done, part.byteLength - done)).bytesWritten;
    } finally {
      await fh.close();
    }
  }
  await fsyncPath(tmp);
  await rename(tmp, file);
  await fsyncPath(path.dirname(file));
}

/** A folder's entries, or none when it is missing or unreadable. */
export async function safeReaddir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

/** Why `rel` (a param's path, relative to the pipeline folder) is not a readable file, or undefined. */
export async function fileProblem(pipelineDir: string, rel: string): Promise<string | undefined> {
  const abs = path.resolve(pipelineDir, rel);
  try {
    const st = await stat(abs);
    return st.isFile() ? undefined : `${rel} is ${st.isDirectory() ? 'a folder' : 'not a regular file'}, not a file`;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES') return `${rel} cannot be read (permission denied: ${abs})`;
    return `${rel} does not exist (resolved against the pipeline folder: ${abs})`;
  }
}

export async function fsyncPath(p: string): Promise<void> {
  const fh = await open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
