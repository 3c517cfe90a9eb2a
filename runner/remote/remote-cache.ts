// The shared remote cache: artifacts in S3, content-addressed like the local store.
//   <prefix>/blobs/<sha[0:2]>/<sha256>            file contents, once per distinct content
//   <prefix>/entries/<key>/manifest.json          the artifact's manifest (path, size, sha256)
//   <prefix>/entries/<key>/meta.json              its meta; written LAST: an entry exists iff this does
//   <prefix>/pipelines/<name>/latest.json         stage -> key of the last push (what `pull --latest` takes)
// Blobs are keyed by content, so a file shared by two artifacts (split's hard links into the
// data, a model re-trained to the same weights) is uploaded once. A push that dies leaves blobs
// but no meta.json, so nothing looks complete; the next push re-uses the blobs it finds.
// A pull downloads into a resumable staging dir (work/pull-<key>/), checks every file's sha256 against the
// manifest (refusing a corrupt object by name), then commits through Cache.commit, which
// re-derives the content hash: it must equal the remote's, or the entry is refused.
// A partial pull (`reads`: the files the running stages declare) downloads only the matching
// files and commits a sparse entry (commitSparse in ../sparse.ts: the full manifest, whose hash is the
// meta's content hash, and the verified files); a later pull of more files adds them in place
// (extendSparse) and the entry becomes complete once it holds every file.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Cache, MetaDraft, StoredMeta } from '../cache.js';
import { commitSparse, extendSparse, sparseOf } from '../sparse.js';
import type { Artifact, ManifestEntry, Progress } from '../types.js';
import { contentHashOf, listFiles } from '../manifest.js';
import { MULTIPART_THRESHOLD, RemoteError, type ObjectStore } from './remote-error.js';
import type { PartialInfo, PulledInfo, PulledMeta } from './stub.js';
import { selectReads } from '../reads.js';
import { readIndex, updateIndex, type RemoteIndex, type RemoteIndexEntry } from './remote-index.js';
import { blobPath, both, checkKey, entryPath, forEachLimit, hasSize, HEX64, PARALLEL, PARALLEL_LARGE, safeRelPath } from './util.js';
import { pushEntries, type PushOptions, type PushStats } from './remote-push.js';

export { blobPath, entryPath, forEachLimit, PARALLEL, safeRelPath };
export type { PushOptions, PushStats };

export type { PartialInfo, PulledInfo, PulledMeta, RemoteIndex, RemoteIndexEntry };

export interface PullResult {
  readonly artifact: Artifact;
  /** This pull: `files`/`bytes` it made local, what it downloaded, how long it took; `partial` when the entry is still sparse. */
  readonly info: PulledInfo;
  /** False when the entry was already here (complete, or sparse holding every file asked for). */
  readonly fresh: boolean;
}

export interface PullOptions {
  readonly progress?: Progress;
  readonly signal?: AbortSignal;
  /** The caller holds cache.lockKey(key) already (the executor's compute does). */
  readonly locked?: boolean;
  /**
   * Glob patterns (runner/reads.ts) of the files wanted; undefined: all. With fewer than all,
   * the entry is committed sparse (or the files are added to a sparse one).
   */
  readonly reads?: readonly string[];
  /** The stage the files are pulled for (recorded with a sparse entry). */
  readonly reader?: string;
  /**
   * Called once the remote entry is found, before downloading: the files this pull makes local
   * (`files`, `bytes`, of which `toDownload` bytes are not staged yet), of the artifact's `of`
   * files (`ofBytes`), `present` of which are here already (a sparse entry).
   */
  readonly onStart?: (plan: { files: number; bytes: number; toDownload: number; of: number; ofBytes: number; present: number }) => void;
}

export class RemoteCache {
  constructor(readonly store: ObjectStore) {}

  get url(): string {
    return this.store.url;
  }

  /** Credentials and bucket, checked once; throws RemoteError. */
  ready(): Promise<void> {
    return this.store.ready();
  }

  /** The remote's meta for a key, or undefined when the entry is not (completely) there. */
  async meta(key: string, signal?: AbortSignal): Promise<StoredMeta | undefined> {
    checkKey(key);
    await this.ready();
    const buf = await this.store.getBuffer(entryPath(key, 'meta.json'), signal);
    if (!buf) return undefined;
    let meta: StoredMeta;
    try {
      meta = JSON.parse(buf.toString('utf8')) as StoredMeta;
    } catch {
      throw new RemoteError('corrupt', `remote entry ${key} has an unreadable meta.json (${this.url}/${entryPath(key, 'meta.json')})`);
    }
    if (meta?.key !== key || typeof meta.contentHash !== 'string' || !HEX64.test(meta.contentHash) || typeof meta.kind !== 'string') {
      throw new RemoteError('corrupt', `remote entry ${key} has a meta.json for another key or without a content hash`);
    }
    return meta;
  }

  /** The manifest of a present entry, checked: safe paths, and its hash is the meta's content hash. */
  async manifest(meta: StoredMeta, signal?: AbortSignal): Promise<ManifestEntry[]> {
    const buf = await this.store.getBuffer(entryPath(meta.key, 'manifest.json'), signal);
    if (!buf) throw new RemoteError('corrupt', `remote entry ${meta.key} (${meta.stage}) has meta.json but no manifest.json`);
    let manifest: ManifestEntry[];
    try {
      manifest = JSON.parse(buf.toString('utf8')) as ManifestEntry[];
    } catch {
      throw new RemoteError('corrupt', `remote entry ${meta.key} (${meta.stage}) has an unreadable manifest.json`);
    }
    if (!Array.isArray(manifest)) throw new RemoteError('corrupt', `remote entry ${meta.key}: manifest.json is not a list`);
    const seen = new Set<string>();
    for (const m of manifest) {
      if (
        !m ||
        typeof m.path !== 'string' ||
        !safeRelPath(m.path) ||
        seen.has(m.path) ||
        !Number.isSafeInteger(m.size) ||
        m.size < 0 ||
        typeof m.sha256 !== 'string' ||
        !HEX64.test(m.sha256)
      ) {
        throw new RemoteError('corrupt', `remote entry ${meta.key}: manifest.json has an invalid entry ${JSON.stringify(m)?.slice(0, 200)}`);
      }
      seen.add(m.path);
    }
    if (contentHashOf(manifest) !== meta.contentHash) {
      throw new RemoteError('corrupt', `remote entry ${meta.key} (${meta.stage}): manifest.json does not match the content hash in meta.json`);
    }
    return manifest;
  }

  /** Upload the given committed artifacts, skipping entries and blobs the remote already has (remote-push.ts). */
  push(cache: Cache, keys: readonly string[], options: PushOptions = {}): Promise<PushStats> {
    return pushEntries(this, cache, keys, options);
  }

  /**
   * Download an entry into the local cache and commit it. Undefined when the remote lacks it.
   * With `reads`, only the matching files (and the manifest and meta) are downloaded: a sparse
   * entry (see runner/cache.ts), or more files added to one; once it holds every file it is
   * complete. Resumable: verified files stay in work/pull-<key>/ until the commit.
   */
  async pull(cache: Cache, key: string, options: PullOptions = {}): Promise<PullResult | undefined> {
    const started = Date.now();
    const { signal } = options;
    const meta = await this.meta(key, signal);
    if (!meta) return undefined;
    const manifest = await this.manifest(meta, signal);
    await cache.init();
    const release = options.locked ? undefined : await cache.lockKey(key, signal);
    try {
      const found = await cache.find(key);
      const sparse = found ? sparseOf(found) : undefined;
      if (found && !sparse) return { artifact: found, info: this.info(0, 0, 0, started), fresh: false };
      if (found && found.contentHash !== meta.contentHash) {
        throw new RemoteError(
          'other',
          `the partial local copy of ${meta.stage} (${key.slice(0, 12)}) has content ${found.contentHash.slice(0, 12)}, ${this.url} has ${meta.contentHash.slice(0, 12)}: cannot complete it from there (remove ${cache.entryDir(key)} and pull again)`,
        );
      }
      const have = new Set(sparse?.present ?? []);
      const files = selectReads(manifest, options.reads).filter((m) => !have.has(m.path));
      if (found && files.length === 0) return { artifact: found, info: this.info(0, 0, 0, started), fresh: false };
      const adding = new Set(files.map((m) => m.path));
      const complete = manifest.every((m) => have.has(m.path) || adding.has(m.path));
      const staging = cache.workDirFor(`pull-${key}`);
      const data = path.join(staging, 'data');
      await mkdir(data, { recursive: true });

      // One download per distinct content; duplicates, and contents the partial entry already
      // holds, are copied locally afterwards.
      const held = new Map<string, string>();
      if (found) for (const m of manifest) if (have.has(m.path) && !held.has(m.sha256)) held.set(m.sha256, path.join(found.dir, m.path));
      const first = new Map<string, ManifestEntry>();
      for (const m of files) if (!held.has(m.sha256) && !first.has(m.sha256)) first.set(m.sha256, m);
      const todo: ManifestEntry[] = [];
      for (const m of first.values()) if (!(await hasSize(path.join(data, m.path), m.size))) todo.push(m);
      const toDownload = todo.reduce((n, m) => n + m.size, 0);
      const bytes = files.reduce((n, m) => n + m.size, 0);
      const totalBytes = manifest.reduce((n, m) => n + m.size, 0);
      options.onStart?.({ files: files.length, bytes, toDownload, of: manifest.length, ofBytes: totalBytes, present: have.size });
      options.progress?.setTotal(toDownload);
      let done = 0;
      const download = async (m: ManifestEntry): Promise<void> => {
        if (signal?.aborted) throw new RemoteError('other', 'pull interrupted');
        await this.download(meta, m, path.join(data, m.path), path.join(staging, 'parts', m.sha256), options.progress, signal);
        done++;
        options.progress?.tick(0, `${done}/${todo.length} files`);
      };
      await both(
        forEachLimit(
          todo.filter((m) => m.size >= MULTIPART_THRESHOLD),
          PARALLEL_LARGE,
          download,
        ),
        forEachLimit(
          todo.filter((m) => m.size < MULTIPART_THRESHOLD),
          PARALLEL,
          download,
        ),
      );
      for (const m of files) {
        const src = first.get(m.sha256);
        if (src?.path === m.path) continue;
        const dest = path.join(data, m.path);
        if (await hasSize(dest, m.size)) continue;
        await mkdir(path.dirname(dest), { recursive: true });
        await copyFile(src ? path.join(data, src.path) : held.get(m.sha256)!, dest);
      }
      // Anything else in data/ (an earlier attempt at another manifest or other reads?) would
      // change the content hash, or land in the entry unlisted.
      for (const f of await listFiles(data)) if (!adding.has(f)) await rm(path.join(data, f), { force: true });
      options.progress?.done();

      const info = this.info(files.length, bytes, toDownload, started);
      const partial: PartialInfo | undefined = complete
        ? undefined
        : {
            of: manifest.length,
            ofBytes: totalBytes,
            reads: [...new Set([...(sparse?.reads ?? []), ...(options.reads ?? [])])].sort(),
            readers: [...new Set([...(sparse?.readers ?? []), ...(options.reader ? [options.reader] : [])])],
          };
      const presentBytes = manifest.reduce((n, m) => n + (have.has(m.path) || adding.has(m.path) ? m.size : 0), 0);
      const pulled: PulledInfo = { ...info, files: have.size + files.length, bytes: presentBytes, ...(partial ? { partial } : {}) };
      const { contentHash: _hash, pulled: _pulled, ...rest } = meta as PulledMeta;
      const stored: PulledMeta = { ...rest, contentHash: meta.contentHash, pulled };
      let artifact: Artifact;
      if (found) {
        artifact = await extendSparse(cache, key, data, [...adding], {
          meta: stored,
          reads: options.reads ?? [],
          readers: options.reader ? [options.reader] : [],
        });
      } else {
        const tmp = await cache.makeTemp(`pull-${key.slice(0, 12)}`);
        try {
          await rm(path.join(tmp, 'data'), { recursive: true, force: true });
          await rename(data, path.join(tmp, 'data'));
          if (complete) {
            const draft: MetaDraft & { pulled: PulledInfo } = { ...rest, pulled };
            artifact = await cache.commit(tmp, draft);
          } else {
            artifact = await commitSparse(cache, tmp, stored, manifest, {
              reads: partial!.reads,
              readers: partial!.readers,
              remote: this.url,
              present: [...adding],
            });
          }
        } catch (e) {
          await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
          throw e;
        }
      }
      await rm(staging, { recursive: true, force: true });
      if (artifact.contentHash !== meta.contentHash) {
        await cache.removeEntry(key).catch(() => undefined);
        throw new RemoteError('corrupt', `pulled ${meta.stage} (${key}) hashes to ${artifact.contentHash}, the remote says ${meta.contentHash}: refused`);
      }
      return { artifact, info: partial ? { ...info, partial } : info, fresh: true };
    } finally {
      await release?.().catch(() => undefined);
    }
  }

  private info(files: number, bytes: number, downloadedBytes: number, started: number): PulledInfo {
    return { remote: this.url, at: new Date().toISOString(), files, bytes, downloadedBytes, durationMs: Date.now() - started };
  }

  private async download(meta: StoredMeta, m: ManifestEntry, dest: string, part: string, progress: Progress | undefined, signal?: AbortSignal): Promise<void> {
    const where = `${meta.stage}/${m.path} (${this.url}/${blobPath(m.sha256)})`;
    const got = await this.store.getStream(blobPath(m.sha256), signal);
    if (!got) throw new RemoteError('corrupt', `remote entry ${meta.key} is incomplete: ${where} is missing`);
    await mkdir(path.dirname(dest), { recursive: true });
    await mkdir(path.dirname(part), { recursive: true });
    const hash = createHash('sha256');
    let size = 0;
    try {
      await pipeline(
        got.body,
        new Transform({
          transform(chunk: Buffer, _enc, cb) {
            hash.update(chunk);
            size += chunk.length;
            progress?.tick(chunk.length);
            cb(null, chunk);
          },
        }),
        createWriteStream(part),
      );
    } catch (e) {
      await rm(part, { force: true });
      throw this.store.explain(e, `downloading ${where}`);
    }
    const actual = hash.digest('hex');
    if (size !== m.size || actual !== m.sha256) {
      await rm(part, { force: true });
      throw new RemoteError(
        'corrupt',
        `remote file ${where} is corrupt: ${size !== m.size ? `${size} bytes, the manifest says ${m.size}` : `sha256 ${actual.slice(0, 16)}…, the manifest says ${m.sha256.slice(0, 16)}…`}; refused (nothing was committed)`,
      );
    }
    await rename(part, dest);
  }

  readIndex(pipeline: string, signal?: AbortSignal): Promise<RemoteIndex | undefined> {
    return readIndex(this, pipeline, signal);
  }

  updateIndex(pipeline: string, stages: Readonly<Record<string, RemoteIndexEntry>>, signal?: AbortSignal): Promise<RemoteIndex> {
    return updateIndex(this, pipeline, stages, signal);
  }
}
