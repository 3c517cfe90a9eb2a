// One resumable, streaming downloader for every large file pipe fetches (Kaggle's data through
// its API's signed URLs, the VGG16 weights from a plain URL): bytes go to `<dest>.part` as they
// arrive (a 500 MB file never sits in memory), an interrupted download resumes with `Range`
// (guarded by `If-Range` on the ETag), transient failures are retried with backoff, a server
// that sends no bytes for `stallTimeoutMs` counts as a failure, and the result is checked for
// size (Content-Length / Content-Range), digest and content (`verify`) before it is renamed into
// place: a damaged file never gets the final name.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger, Progress } from '../../runner/types.js';
import { StageError } from '../../runner/types.js';

/** A failure worth retrying: a dropped connection, a stall, a 5xx or 429, an expired storage URL. */
export class TransientError extends Error {
  override readonly name = 'TransientError';
}

export type DigestAlgorithm = 'sha256' | 'md5';

export interface DownloadOptions {
  /** Start the request with these extra headers (Range, If-Range); throws StageError or TransientError. */
  open(headers: Record<string, string>, signal: AbortSignal): Promise<Response>;
  /** Final path; the partial file is `<dest>.part`. */
  readonly dest: string;
  /** Name for messages and the progress bar. */
  readonly label: string;
  /** Digest to compute and report (default sha256); `expected` is checked against it. */
  readonly algorithm?: DigestAlgorithm;
  /** Expected digest (hex): a mismatch deletes the file and fails. */
  readonly expected?: string;
  /**
   * A check of the complete file's content before it gets its final name (e.g. an HDF5 file's
   * signature and end of file): a problem in one line, or undefined when the file is fine.
   */
  verify?(file: string): Promise<string | undefined>;
  /** Size hint for the bar before the server says (e.g. from a file listing). */
  readonly sizeHint?: number;
  progress(label: string, total?: number): Progress;
  readonly log: Logger;
  readonly signal: AbortSignal;
  /** A response that sends no bytes for this long is abandoned and retried. */
  readonly stallTimeoutMs: number;
  /** Failures in a row without any progress before giving up. */
  readonly retries: number;
  /** First backoff delay; doubles per failure without progress, capped at maxBackoffMs. */
  readonly backoffMs?: number;
  readonly maxBackoffMs?: number;
}

export interface DownloadResult {
  readonly path: string;
  readonly size: number;
  readonly algorithm: DigestAlgorithm;
  /** The file's digest under `algorithm`. */
  readonly digest: string;
  /** HTTP requests made (0 when a complete file from an earlier attempt was re-used). */
  readonly requests: number;
  /** Requests that continued a partial file with Range. */
  readonly resumes: number;
}

interface PartState {
  etag?: string;
  total?: number;
}

async function sizeOf(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).size;
  } catch {
    return undefined;
  }
}

async function readState(file: string): Promise<PartState> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as PartState;
  } catch {
    return {};
  }
}

/** `bytes a-b/total` -> {start, total}; total undefined for `*`. */
function parseContentRange(value: string | null): { start: number; total?: number } | undefined {
  const m = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(value?.trim() ?? '');
  if (!m) return undefined;
  return m[3] === '*' ? { start: Number(m[1]) } : { start: Number(m[1]), total: Number(m[3]) };
}

function unsatisfiedTotal(value: string | null): number | undefined {
  const m = /^bytes\s+\*\/(\d+)$/i.exec(value?.trim() ?? '');
  return m ? Number(m[1]) : undefined;
}

/** Errors from our own disk writes are not the network's fault: do not retry them. */
function isLocalFsError(e: unknown): boolean {
  const err = e as NodeJS.ErrnoException;
  return (
    typeof err?.syscall === 'string' && typeof err.code === 'string' && ['open', 'write', 'rename', 'mkdir', 'stat', 'unlink', 'close'].includes(err.syscall)
  );
}

/** The cause in words: fetch's body stream says only `terminated` when the server hangs up. */
function reasonOf(e: unknown): string {
  if (e instanceof TransientError) return e.message;
  const err = e as Error & { cause?: { code?: string; message?: string } };
  const cause = err?.cause?.message ?? err?.cause?.code;
  if (err?.message === 'terminated') return `the connection was lost${cause ? ` (${cause})` : ''}`;
  return cause ? `${err.message} (${cause})` : (err?.message ?? String(e));
}

export async function hashFile(file: string, algorithm: DigestAlgorithm): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function download(o: DownloadOptions): Promise<DownloadResult> {
  const part = `${o.dest}.part`;
  const stateFile = `${o.dest}.part.json`;
  const algorithm = o.algorithm ?? 'sha256';
  const expected = o.expected?.toLowerCase();
  const done = await sizeOf(o.dest);
  if (done !== undefined) {
    // Completed (and verified) by an earlier attempt of this same stage key.
    const digest = await hashFile(o.dest, algorithm);
    if ((!expected || expected === digest) && !(await o.verify?.(o.dest))) {
      o.log.info(`${o.label}: already downloaded (${done} bytes)`);
      return { path: o.dest, size: done, algorithm, digest, requests: 0, resumes: 0 };
    }
    await rm(o.dest, { force: true });
  }

  const bar = o.progress(`download ${o.label}`, o.sizeHint);
  let requests = 0;
  let resumes = 0;
  let failuresInARow = 0;
  let freshRetryLeft = true; // one clean restart when a resumed file fails its checks
  const backoff = o.backoffMs ?? 1000;
  const maxBackoff = o.maxBackoffMs ?? 30_000;

  for (;;) {
    let offset = (await sizeOf(part)) ?? 0;
    const state = offset > 0 ? await readState(stateFile) : {};
    const headers: Record<string, string> = { 'Accept-Encoding': 'identity' };
    if (offset > 0) {
      headers.Range = `bytes=${offset}-`;
      if (state.etag) headers['If-Range'] = state.etag;
      if (requests === 0) o.log.info(`${o.label}: resuming at ${offset} bytes`);
    }
    const attempt = new AbortController();
    const signal = AbortSignal.any([o.signal, attempt.signal]);
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => attempt.abort(), o.stallTimeoutMs);
    };
    let fh: FileHandle | undefined;
    let progressed = false;
    let total: number | undefined;
    requests++;
    try {
      arm();
      const res = await o.open(headers, signal);
      if (res.status === 416 && offset > 0) {
        await res.body?.cancel();
        const t = unsatisfiedTotal(res.headers.get('content-range'));
        if (t === offset) {
          total = t;
        } else {
          // The partial file does not fit what the server has now: start over.
          await rm(part, { force: true });
          throw new TransientError(`the server refused to resume at ${offset} bytes (HTTP 416)`);
        }
      } else {
        if (res.status === 206) {
          const range = parseContentRange(res.headers.get('content-range'));
          if (!range || range.start !== offset) {
            await res.body?.cancel();
            await rm(part, { force: true });
            throw new TransientError(`the server answered a different range (${res.headers.get('content-range') ?? 'none'}) than asked (${offset}-)`);
          }
          if (offset > 0) resumes++;
          total = range.total ?? (state.total !== undefined ? state.total : undefined);
        } else if (res.status === 200) {
          if (offset > 0) o.log.info(`${o.label}: the server does not resume (HTTP 200 to a Range request): starting over`);
          offset = 0;
          const len = res.headers.get('content-length');
          total = len !== null && /^\d+$/.test(len) ? Number(len) : undefined;
        } else {
          await res.body?.cancel();
          throw new StageError(`${o.label}: unexpected HTTP ${res.status} from the download server`);
        }
        const etag = res.headers.get('etag') ?? undefined;
        await writeFile(stateFile, JSON.stringify({ ...(etag ? { etag } : {}), ...(total !== undefined ? { total } : {}) }));
        if (total !== undefined) bar.setTotal(total);
        bar.update(offset);
        fh = await open(part, offset > 0 ? 'a' : 'w');
        if (res.body) {
          arm();
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            arm();
            await fh.write(chunk);
            offset += chunk.byteLength;
            progressed = true;
            bar.tick(chunk.byteLength);
          }
        }
        await fh.close();
        fh = undefined;
        if (total !== undefined && offset < total) throw new TransientError(`the connection closed after ${offset} of ${total} bytes`);
        if (total !== undefined && offset > total) {
          await rm(part, { force: true });
          throw new TransientError(`received ${offset} bytes, more than the ${total} announced`);
        }
      }
      clearTimeout(timer);

      const size = (await sizeOf(part)) ?? 0;
      if (total !== undefined && size !== total) throw new StageError(`${o.label}: size mismatch: expected ${total} bytes, have ${size}`);
      const digest = await hashFile(part, algorithm);
      const problem = expected && digest !== expected ? `${algorithm} mismatch: expected ${expected}, got ${digest}` : await o.verify?.(part);
      if (problem) {
        await rm(part, { force: true });
        await rm(stateFile, { force: true });
        if (resumes > 0 && freshRetryLeft) {
          // A resume may have joined two versions of the file: one clean download settles it.
          freshRetryLeft = false;
          o.log.warn(`${o.label}: ${problem} after a resumed download: downloading it again from the start`);
          continue;
        }
        throw new StageError(
          `${o.label}: ${problem} (${size} bytes received; the file was deleted)`,
          expected && digest !== expected
            ? `if the file changed upstream, update its expected ${algorithm} in the pipeline`
            : 'the server sent a damaged file: try again later or use another mirror',
        );
      }
      await rename(part, o.dest);
      await rm(stateFile, { force: true });
      bar.done(`${size} bytes`);
      return { path: o.dest, size, algorithm, digest, requests, resumes };
    } catch (e) {
      clearTimeout(timer);
      await fh?.close().catch(() => undefined);
      if (o.signal.aborted) throw new StageError(`interrupted while downloading ${o.label} (the partial file is kept: a re-run resumes it)`);
      if (e instanceof StageError || isLocalFsError(e)) throw e;
      const reason = attempt.signal.aborted ? `no data for ${Math.round(o.stallTimeoutMs / 100) / 10} s` : reasonOf(e);
      failuresInARow = progressed ? 0 : failuresInARow + 1;
      if (failuresInARow > o.retries || requests > o.retries + 100) {
        throw new StageError(`download of ${o.label} failed after ${requests} attempts: ${reason}`, 'a re-run resumes from the bytes already received');
      }
      // After progress the server is evidently up: resume at once. Otherwise back off.
      const delay = progressed ? 0 : Math.min(maxBackoff, backoff * 2 ** (failuresInARow - 1)) * (0.75 + Math.random() * 0.5);
      const have = (await sizeOf(part)) ?? 0;
      o.log.warn(`${o.label}: ${reason}; retrying${delay > 0 ? ` in ${(delay / 1000).toFixed(1)} s` : ''}${have > 0 ? ` (resuming at ${have} bytes)` : ''}`);
      if (delay > 0) {
        try {
          await sleep(delay, undefined, { signal: o.signal });
        } catch {
          throw new StageError(`interrupted while downloading ${o.label} (the partial file is kept: a re-run resumes it)`);
        }
      }
    }
  }
}
