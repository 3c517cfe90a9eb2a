// Small helpers of the remote cache: bounded concurrency that never leaves work running behind
// a failure, and checks on paths and files.
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { RemoteError } from './remote-error.js';

export function positive(s: string | undefined): number | undefined {
  const n = Number(s);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/** A relative '/'-path that stays inside its directory (manifests from a remote are untrusted). */
export function safeRelPath(p: string): boolean {
  if (p.length === 0 || p.length > 4096 || p.startsWith('/') || p.includes('\\') || p.includes('\0')) return false;
  return p.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

export async function hasSize(file: string, size: number): Promise<boolean> {
  try {
    const st = await stat(file);
    return st.isFile() && st.size === size;
  } catch {
    return false;
  }
}

/** Wait for both (so nothing runs on behind the caller), then throw the first failure. */
export async function both(a: Promise<void>, b: Promise<void>): Promise<void> {
  const [x, y] = await Promise.allSettled([a, b]);
  if (x.status === 'rejected') throw x.reason;
  if (y.status === 'rejected') throw y.reason;
}

/**
 * Run fn over items, at most `limit` at once. After the first failure no new item starts; the
 * ones in flight settle, then the first error is thrown (no work continues behind the caller).
 */
export async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (!failure && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        failure ??= { error: e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}

/** Requests in flight at once for small objects (latency-bound: S3 answers in tens of ms). PIPE_REMOTE_JOBS overrides. */
export const PARALLEL = positive(process.env.PIPE_REMOTE_JOBS) ?? 32;
/** Large files in flight at once (each a multipart upload or a streamed download). */
export const PARALLEL_LARGE = 2;
/** Up to this many candidate blobs are checked with HEAD; more, by listing their shards. */
export const HEAD_LIMIT = 256;

export const HEX64 = /^[0-9a-f]{64}$/;

/** Throws unless `key` looks like a cache key (64 hex digits). */
export function checkKey(key: string): void {
  if (!HEX64.test(key)) throw new RemoteError('other', `not a cache key: ${key}`);
}

/** Where a blob and an entry's files live under the remote's prefix. */
export const blobPath = (sha: string): string => `blobs/${sha.slice(0, 2)}/${sha}`;
export const entryPath = (key: string, file: 'meta.json' | 'manifest.json'): string => `entries/${key}/${file}`;
