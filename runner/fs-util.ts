// Small filesystem helpers the cache and the stages share.
import { readdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fsyncPath } from './manifest.js';

/** Replace a file atomically and durably: write a sibling, fsync, rename, fsync the folder. */
export async function writeAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, data);
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
