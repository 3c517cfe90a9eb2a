// `pipe push`: upload committed artifacts to the remote, skipping entries and blobs it has.
// Blobs first (small ones many at a time, large ones as multipart uploads, each re-hashed while
// read so a file changed since its commit is refused), then manifests, then the metas: an entry
// exists on the remote only once its meta.json does.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline as pipe, Transform } from 'node:stream';
import type { Cache, StoredMeta } from '../cache.js';
import { sparseOf } from '../sparse.js';
import type { ManifestEntry, Progress } from '../types.js';
import { MULTIPART_THRESHOLD, RemoteError, type ObjectStore } from './remote-error.js';
import type { PulledMeta } from './stub.js';
import { blobPath, both, checkKey, entryPath, forEachLimit, HEAD_LIMIT, PARALLEL, PARALLEL_LARGE, sha256 } from './util.js';

export interface PushStats {
  readonly entries: number;
  readonly entriesPresent: number;
  readonly uploadedFiles: number;
  readonly uploadedBytes: number;
  readonly presentFiles: number;
  readonly presentBytes: number;
  /** Keys whose entry the remote already had (nothing uploaded for them). */
  readonly present: readonly string[];
  /** Keys the remote already had with a different content hash (a non-deterministic stage): the remote's was kept. */
  readonly differing: readonly string[];
  readonly durationMs: number;
}

export interface PushOptions {
  /** Bytes; its total is set once the missing blobs are known. */
  readonly progress?: Progress;
  readonly signal?: AbortSignal;
}

/** What a push needs of the remote cache (remote-cache.ts's RemoteCache is one): its store, and an entry's meta. */
export interface PushTarget {
  readonly store: ObjectStore;
  ready(): Promise<void>;
  meta(key: string, signal?: AbortSignal): Promise<StoredMeta | undefined>;
}

/** Upload the given committed artifacts, skipping entries and blobs the remote already has. */
export async function pushEntries(remote: PushTarget, cache: Cache, keys: readonly string[], options: PushOptions = {}): Promise<PushStats> {
  const started = Date.now();
  const { signal } = options;
  await remote.ready();
  const unique = [...new Set(keys)];
  for (const k of unique) checkKey(k);
  const differing: string[] = [];
  const presentKeys: string[] = [];
  const todo: { meta: StoredMeta; manifest: ManifestEntry[]; dir: string }[] = [];
  await forEachLimit(unique, PARALLEL, async (key) => {
    const local = await cache.find(key);
    if (!local) throw new RemoteError('other', `artifact ${key} is not in the local cache (${cache.cacheDir})`);
    if (sparseOf(local))
      throw new RemoteError('other', `artifact ${key} (${local.meta.stage}) is only partly in the local cache (a partial pull): it cannot be pushed`);
    const theirs = await remote.meta(key, signal);
    if (theirs) {
      presentKeys.push(key);
      if (theirs.contentHash !== local.contentHash) differing.push(key);
      return;
    }
    todo.push({ meta: local.meta as StoredMeta, manifest: await cache.readManifest(key), dir: local.dir });
  });

  // Distinct blobs of the entries to publish, each with one local file that holds it.
  const blobs = new Map<string, { size: number; file: string; label: string }>();
  for (const e of todo) {
    for (const m of e.manifest)
      if (!blobs.has(m.sha256)) blobs.set(m.sha256, { size: m.size, file: path.join(e.dir, m.path), label: `${e.meta.stage}/${m.path}` });
  }
  const present = await presentBlobs(remote.store, new Map([...blobs].map(([sha, b]) => [sha, b.size])), signal);
  const missing = [...blobs].filter(([sha]) => !present.has(sha));
  const uploadBytes = missing.reduce((n, [, b]) => n + b.size, 0);
  options.progress?.setTotal(uploadBytes);
  let uploadedFiles = 0;
  const upload = async ([sha, b]: (typeof missing)[number]): Promise<void> => {
    if (signal?.aborted) throw new RemoteError('other', 'push interrupted');
    await uploadBlob(remote.store, sha, b, options.progress, signal);
    uploadedFiles++;
    if (b.size < MULTIPART_THRESHOLD) options.progress?.tick(b.size, `${uploadedFiles}/${missing.length} files`);
  };
  await both(
    forEachLimit(
      missing.filter(([, b]) => b.size >= MULTIPART_THRESHOLD),
      PARALLEL_LARGE,
      upload,
    ),
    forEachLimit(
      missing.filter(([, b]) => b.size < MULTIPART_THRESHOLD),
      PARALLEL,
      upload,
    ),
  );

  // Every blob is there: publish manifests, then metas (the "entry exists" marker) last.
  await forEachLimit(todo, PARALLEL, async (e) => {
    await remote.store.putBuffer(entryPath(e.meta.key, 'manifest.json'), JSON.stringify(e.manifest), 'application/json', signal);
  });
  await forEachLimit(todo, PARALLEL, async (e) => {
    const { pulled: _pulled, ...meta } = e.meta as PulledMeta;
    await remote.store.putBuffer(entryPath(e.meta.key, 'meta.json'), JSON.stringify(meta, null, 2), 'application/json', signal);
  });
  options.progress?.done();
  const presentBytes = [...present].reduce((n, sha) => n + (blobs.get(sha)?.size ?? 0), 0);
  return {
    entries: todo.length,
    entriesPresent: unique.length - todo.length,
    uploadedFiles,
    uploadedBytes: uploadBytes,
    presentFiles: present.size,
    presentBytes,
    present: presentKeys,
    differing,
    durationMs: Date.now() - started,
  };
}

/** Which of these blobs the remote holds with the expected size (a truncated object is not "held"). */
async function presentBlobs(store: ObjectStore, wanted: ReadonlyMap<string, number>, signal?: AbortSignal): Promise<Set<string>> {
  const present = new Set<string>();
  if (wanted.size <= HEAD_LIMIT) {
    await forEachLimit([...wanted], PARALLEL * 2, async ([sha, size]) => {
      const info = await store.head(blobPath(sha), signal);
      if (info && info.size === size) present.add(sha);
    });
    return present;
  }
  const shards = [...new Set([...wanted.keys()].map((sha) => sha.slice(0, 2)))];
  await forEachLimit(shards, PARALLEL, async (shard) => {
    for await (const o of store.list(`blobs/${shard}/`, signal)) {
      const sha = o.key.slice(o.key.lastIndexOf('/') + 1);
      if (wanted.get(sha) === o.size) present.add(sha);
    }
  });
  return present;
}

async function uploadBlob(
  store: ObjectStore,
  sha: string,
  b: { size: number; file: string; label: string },
  progress: Progress | undefined,
  signal?: AbortSignal,
): Promise<void> {
  const refuse = (): RemoteError =>
    new RemoteError('corrupt', `local file ${b.label} no longer matches its manifest (sha256); run \`pipe verify\` and re-run the stage before pushing`);
  if (b.size < MULTIPART_THRESHOLD) {
    const buf = await readFile(b.file);
    if (buf.length !== b.size || sha256(buf) !== sha) throw refuse();
    await store.putBuffer(blobPath(sha), buf, 'application/octet-stream', signal);
    return;
  }
  const hash = createHash('sha256');
  let size = 0;
  const hasher = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  const body = pipe(createReadStream(b.file, { highWaterMark: 2 ** 20 }), hasher, () => undefined);
  let reported = 0;
  await store.putLarge(
    blobPath(sha),
    body,
    (loaded) => {
      progress?.tick(loaded - reported);
      reported = loaded;
    },
    signal,
  );
  if (reported < b.size) progress?.tick(b.size - reported);
  if (size !== b.size || hash.digest('hex') !== sha) {
    await store.delete(blobPath(sha)).catch(() => undefined);
    throw refuse();
  }
}
