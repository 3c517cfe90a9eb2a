// The remote cache as the runner sees it: which remote a pipeline uses, and the two calls the
// executor makes under `pipe run --pull`:
//   peek(key)          an artifact the remote holds, as a stub: its meta (content hash) is known,
//                      its files are not local. Enough to compute downstream keys, so the raw
//                      data under a cached split is never downloaded when nothing reads it.
//   materialize(a)     the real local artifact: pulls a stub (verified, committed) before a stage
//                      that reads it runs.
//   fetch(key)         pull a stage's own key (a stage that would run, found on the remote).
//   fetchFiles(key, reads)  the files a running stage declares it reads (Stage.reads) of an
//                      upstream artifact: a partial pull, committed as a sparse entry.
// This module loads the AWS SDK: import it lazily, only when a remote is in use; the executor
// can import ./stub.js (isStub) statically.
import path from 'node:path';
import type { Pipeline } from '../pipeline.js';
import type { Cache } from '../cache.js';
import type { Artifact, Progress } from '../types.js';
import type { Output } from '../output.js';
import { ExitError, EXIT } from '../errors.js';
import { RemoteCache, type PullResult } from './remote-cache.js';
import { RemoteError, openStore, type StoreOptions } from './store.js';
import { isStub, makeStub, pulledInfo, type PulledInfo } from './stub.js';

export { RemoteCache, RemoteError, isStub, pulledInfo };
export type { PulledInfo };

/** Where a pipeline's remote is configured: --remote, then PIPE_REMOTE, then `cache.remote` in the YAML. */
export function remoteUrlFor(pipeline: Pipeline, env: NodeJS.ProcessEnv = process.env, flag?: string): string | undefined {
  const url = flag ?? (env.PIPE_REMOTE?.trim() || undefined) ?? pipeline.cache?.remote;
  return url?.trim() ? url.trim() : undefined;
}

/** The pipeline's remote cache, or undefined when none is configured. A malformed URL is a usage error (exit 2). */
export function remoteFor(pipeline: Pipeline, env: NodeJS.ProcessEnv = process.env, flag?: string, options: StoreOptions = {}): RemoteCache | undefined {
  const url = remoteUrlFor(pipeline, env, flag);
  if (!url) return undefined;
  try {
    return new RemoteCache(openStore(url, { env, ...options }));
  } catch (e) {
    if (e instanceof RemoteError) throw new ExitError(EXIT.usage, e.message);
    throw e;
  }
}

/** The "no remote configured" usage error, worded the same by every command. */
export function noRemoteError(command: string): ExitError {
  return new ExitError(
    EXIT.usage,
    `${command}: no remote cache configured: add \`cache: { remote: s3://bucket/prefix }\` (or file:///shared/folder) to the pipeline or set PIPE_REMOTE`,
  );
}

/** A remote failure as the one line a user sees (the commands exit 1 with it). */
export function remoteFailure(e: unknown): ExitError | undefined {
  return e instanceof RemoteError ? new ExitError(EXIT.failed, e.message) : undefined;
}

/**
 * Pull one artifact by key into the cache (verified, atomic). Undefined when the remote does not
 * have it. Throws RemoteError for remote trouble (credentials, bucket, a corrupt object).
 * Pass `locked` when the caller holds cache.lockKey(key) (the per-key lock is not re-entrant).
 * `reads`: only the files matching these patterns (a sparse entry), for the stage `reader`.
 */
export async function tryPull(
  remote: RemoteCache,
  cache: Cache,
  key: string,
  output: Output,
  options: { stage?: string; signal?: AbortSignal; locked?: boolean; reads?: readonly string[]; reader?: string } = {},
): Promise<PullResult | undefined> {
  const label = options.stage ?? key.slice(0, 12);
  const progress = lazyProgress(() => output.progress(label, 'pulling'));
  return remote.pull(cache, key, {
    progress,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.locked ? { locked: true } : {}),
    ...(options.reads ? { reads: options.reads } : {}),
    ...(options.reader ? { reader: options.reader } : {}),
    onStart: ({ files, bytes, toDownload, of, present }) => {
      if (toDownload <= 0 && files === 0) return;
      const part =
        files + present < of ? ` of ${of} (what ${options.reader ?? 'the stage'} reads)` : present > 0 ? ` (completing it: ${present} here already)` : '';
      output.line(
        `⇣ ${label}: pulling ${files} file${files === 1 ? '' : 's'}${part} (${formatBytes(bytes)}${toDownload < bytes ? `, ${formatBytes(toDownload)} left` : ''}) from ${remote.url}`,
      );
    },
  });
}

/** How the remote took part in this run for one key (for the run record). */
export interface RemoteOrigin {
  readonly remote: string;
  /** false: only its meta.json was read (a stub nothing needed the files of). */
  readonly downloaded: boolean;
  readonly files?: number;
  readonly bytes?: number;
  readonly durationMs?: number;
  /** Still a sparse entry after this run's pulls: `files` of `of` are local. */
  readonly partial?: { readonly files: number; readonly of: number };
}

/** The executor's view of the remote for one run (memoised per key, and per key and reads for pulls). */
export class RemoteResolver {
  private readonly peeks = new Map<string, Promise<Artifact | undefined>>();
  private readonly pulls = new Map<string, Promise<{ artifact: Artifact; info?: PulledInfo; fresh: boolean } | undefined>>();
  private readonly origins = new Map<string, RemoteOrigin>();

  constructor(
    readonly remote: RemoteCache,
    private readonly cache: Cache,
    private readonly output: Output,
    private readonly signal?: AbortSignal,
  ) {}

  get url(): string {
    return this.remote.url;
  }

  /** A stub for a key the remote holds, from its meta.json alone (one small GET). */
  peek(key: string): Promise<Artifact | undefined> {
    let p = this.peeks.get(key);
    if (!p) {
      p = this.remote.meta(key, this.signal).then((meta) => {
        if (!meta) return undefined;
        if (!this.origins.has(key)) this.origins.set(key, { remote: this.url, downloaded: false });
        return makeStub(meta, path.join(this.cache.entryDir(meta.key), 'data'), this.url);
      });
      this.peeks.set(key, p);
    }
    return p;
  }

  /**
   * Pull a key into the local cache (once per run); undefined when the remote lacks it.
   * `locked`: the caller holds cache.lockKey(key) (the executor's compute does).
   */
  async fetch(key: string, stage?: string, locked = false): Promise<Artifact | undefined> {
    return (await this.fetchFiles(key, { ...(stage ? { stage } : {}), locked }))?.artifact;
  }

  /**
   * Make the files of `key` that `reads` matches (all, when undefined) local, pulling what is
   * missing (a partial pull leaves a sparse entry). `pulled` is set when this call downloaded.
   */
  async fetchFiles(
    key: string,
    o: { stage?: string; locked?: boolean; reads?: readonly string[]; reader?: string } = {},
  ): Promise<{ artifact: Artifact; pulled?: PulledInfo } | undefined> {
    const memo = `${key}\n${o.reads ? o.reads.join('\n') : '*'}`;
    let p = this.pulls.get(memo);
    const mine = !p;
    if (!p) {
      p = (async () => {
        const local = await this.cache.lookup(key);
        if (local) return { artifact: local, fresh: false };
        const result = await tryPull(this.remote, this.cache, key, this.output, {
          ...(o.stage ? { stage: o.stage } : {}),
          ...(this.signal ? { signal: this.signal } : {}),
          ...(o.locked ? { locked: true } : {}),
          ...(o.reads ? { reads: o.reads } : {}),
          ...(o.reader ? { reader: o.reader } : {}),
        });
        if (result?.fresh) {
          const before = this.origins.get(key);
          const info = result.info;
          this.origins.set(key, {
            remote: this.url,
            downloaded: true,
            files: (before?.downloaded ? (before.files ?? 0) : 0) + info.files,
            bytes: (before?.downloaded ? (before.bytes ?? 0) : 0) + info.downloadedBytes,
            durationMs: (before?.downloaded ? (before.durationMs ?? 0) : 0) + info.durationMs,
            ...(info.partial ? { partial: { files: pulledInfo(result.artifact)?.files ?? 0, of: info.partial.of } } : {}),
          });
        }
        return result;
      })();
      this.pulls.set(memo, p);
    }
    const result = await p;
    if (!result) return undefined;
    return mine && result.fresh && result.info ? { artifact: result.artifact, pulled: result.info } : { artifact: result.artifact };
  }

  /** The local artifact for `a`: `a` itself unless it is a stub, which is pulled (once). */
  async materialize(a: Artifact, stage?: string): Promise<Artifact> {
    if (!isStub(a)) return a;
    const pulled = await this.fetch(a.key, stage);
    if (!pulled) throw new RemoteError('other', `${a.meta.stage} (${a.key.slice(0, 12)}) disappeared from ${this.url} during the run`);
    return pulled;
  }

  /** Whether (and how) this run took the artifact of `key` from the remote (totals over its pulls). */
  origin(key: string): RemoteOrigin | undefined {
    return this.origins.get(key);
  }
}

/** A progress bar that appears only once there is something to count (no "0/0" lines). */
export function lazyProgress(make: () => Progress): Progress {
  let bar: Progress | undefined;
  return {
    setTotal: (t) => {
      if (t > 0) (bar ??= make()).setTotal(t);
    },
    tick: (n, status) => bar?.tick(n, status),
    update: (done, status) => bar?.update(done, status),
    done: (status) => bar?.done(status),
  };
}

export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}
