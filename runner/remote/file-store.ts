// A remote cache in a shared folder: `file:///mnt/team/pipe-cache`, an NFS or SMB mount (or any
// folder), for teams without object storage. Objects are files under the folder at their key.
// Writes go to a temp file beside the object and are renamed over it, so a reader on another
// machine sees the old object or the new one, never a partial file (rename is atomic within
// one folder on NFS and SMB too). Temp files left by a killed writer are never listed.
import { createWriteStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { RemoteError, type ObjectInfo, type ObjectStore } from './remote-error.js';

const TMP_MARK = '.pipe-tmp-';

/** `file:///abs/folder` -> the folder; anything else is a config error saying what is expected. */
export function parseFileUrl(url: string): string {
  const u = url.trim();
  const expected = `expected file:///absolute/folder, e.g. file:///mnt/team/pipe-cache`;
  if (!/^file:\/\//.test(u)) throw new RemoteError('config', `remote '${url}' is not a file:// URL (${expected})`);
  if (!u.startsWith('file:///')) throw new RemoteError('config', `remote '${url}': the folder must be absolute (${expected})`);
  let dir: string;
  try {
    dir = fileURLToPath(u);
  } catch (e) {
    throw new RemoteError('config', `remote '${url}': ${(e as Error).message} (${expected})`);
  }
  const norm = path.resolve(dir);
  return norm.length > 1 ? norm.replace(/\/+$/, '') : norm;
}

export class FileStore implements ObjectStore {
  readonly url: string;
  private checked: Promise<void> | undefined;

  private constructor(readonly root: string) {
    this.url = `file://${root}`;
  }

  /** Throws RemoteError('config') for a malformed URL; touches nothing. */
  static create(url: string): FileStore {
    return new FileStore(parseFileUrl(url));
  }

  /** The file of a key; keys come from the remote cache (hashes, keys), never with `..`. */
  private file(rel: string): string {
    const parts = rel.split('/');
    if (rel === '' || parts.some((p) => p === '' || p === '.' || p === '..') || rel.includes(TMP_MARK)) {
      throw new RemoteError('other', `${this.url}: refusing object key '${rel}'`);
    }
    return path.join(this.root, ...parts);
  }

  ready(): Promise<void> {
    this.checked ??= (async () => {
      const st = await stat(this.root).catch((e: NodeJS.ErrnoException) => {
        throw this.explain(e, `opening ${this.url}`);
      });
      if (!st.isDirectory()) throw new RemoteError('config', `remote ${this.url}: ${this.root} is not a folder`);
    })();
    return this.checked;
  }

  async head(rel: string): Promise<ObjectInfo | undefined> {
    const st = await stat(this.file(rel)).catch((e: NodeJS.ErrnoException) =>
      e.code === 'ENOENT' ? undefined : Promise.reject(this.explain(e, `reading ${this.url}/${rel}`)),
    );
    return st?.isFile() ? { key: rel, size: st.size } : undefined;
  }

  async getStream(rel: string): Promise<{ body: Readable; size: number } | undefined> {
    const file = this.file(rel);
    try {
      const fh = await open(file, 'r');
      const { size } = await fh.stat();
      return { body: fh.createReadStream(), size };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw this.explain(e, `reading ${this.url}/${rel}`);
    }
  }

  async getBuffer(rel: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.file(rel));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw this.explain(e, `reading ${this.url}/${rel}`);
    }
  }

  async putBuffer(rel: string, body: Buffer | string): Promise<void> {
    await this.replace(rel, (tmp) => writeFile(tmp, body));
  }

  async putLarge(rel: string, body: Readable, onBytes?: (loaded: number) => void, signal?: AbortSignal): Promise<void> {
    let loaded = 0;
    const count = new Transform({
      transform(chunk: Buffer, _enc, done) {
        loaded += chunk.length;
        onBytes?.(loaded);
        done(null, chunk);
      },
    });
    await this.replace(rel, (tmp) => pipeline(body, count, createWriteStream(tmp), ...(signal ? [{ signal }] : [])));
  }

  /** Write to a temp file beside the object, then rename it over the object. */
  private async replace(rel: string, write: (tmp: string) => Promise<unknown>): Promise<void> {
    const file = this.file(rel);
    const tmp = `${file}${TMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await mkdir(path.dirname(file), { recursive: true });
      await write(tmp);
      await rename(tmp, file);
    } catch (e) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw this.explain(e, `writing ${this.url}/${rel}`);
    }
  }

  async delete(rel: string): Promise<void> {
    await rm(this.file(rel), { force: true }).catch((e) => Promise.reject(this.explain(e, `deleting ${this.url}/${rel}`)));
  }

  async *list(relPrefix: string): AsyncGenerator<ObjectInfo> {
    // A key prefix, as S3 lists: walk the deepest folder the prefix names, keep what matches.
    const slash = relPrefix.lastIndexOf('/');
    const base = slash < 0 ? '' : relPrefix.slice(0, slash);
    const start = base ? this.file(base) : this.root;
    const found: ObjectInfo[] = [];
    const walk = async (dir: string, rel: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return;
        throw this.explain(e, `listing ${this.url}/${relPrefix}`);
      }
      for (const d of entries) {
        const key = rel ? `${rel}/${d.name}` : d.name;
        if (d.name.includes(TMP_MARK)) continue;
        if (d.isDirectory()) {
          if (key.startsWith(relPrefix) || relPrefix.startsWith(`${key}/`)) await walk(path.join(dir, d.name), key);
        } else if (d.isFile() && key.startsWith(relPrefix)) {
          const st = await stat(path.join(dir, d.name)).catch(() => undefined);
          if (st) found.push({ key, size: st.size });
        }
      }
    };
    await walk(start, base);
    found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    yield* found;
  }

  explain(e: unknown, doing: string): RemoteError {
    if (e instanceof RemoteError) return e;
    const code = (e as NodeJS.ErrnoException | undefined)?.code;
    if ((e as Error | undefined)?.name === 'AbortError') return new RemoteError('other', `${doing}: interrupted`);
    if (code === 'ENOENT' && doing.startsWith('opening')) {
      return new RemoteError('no-bucket', `folder ${this.root} does not exist (remote ${this.url}); create it, mount the share, or fix the remote URL`);
    }
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      return new RemoteError('access-denied', `access denied to ${this.url} while ${doing} (${code}: check the folder's permissions, or the mount's)`);
    }
    if (code === 'ESTALE' || code === 'EIO' || code === 'ETIMEDOUT' || code === 'EHOSTDOWN') {
      return new RemoteError('unreachable', `cannot reach the shared folder ${this.root} (${code}) while ${doing}: is the share mounted?`);
    }
    return new RemoteError('other', `${doing}: ${code ? `${code}: ` : ''}${(e as Error | undefined)?.message ?? String(e)}`);
  }
}
