// The remote's error and the object-store interface, in a module with no dependencies on a
// store, so that every store (s3-store.ts, file-store.ts) and the table of stores (store.ts)
// import it without a cycle. Users import them from store.ts.
import type { Readable } from 'node:stream';
import { StageError } from '../types.js';

export type RemoteErrorKind = 'config' | 'credentials' | 'no-bucket' | 'access-denied' | 'unreachable' | 'corrupt' | 'other';

/**
 * An expected remote failure: printed as one line, never with a stack trace or a secret. A
 * StageError, so the executor reports it as a stage's failure message as it is.
 */
export class RemoteError extends StageError {
  constructor(
    readonly kind: RemoteErrorKind,
    message: string,
  ) {
    super(message);
  }
}

export interface ObjectInfo {
  /** Relative to the store's root ('blobs/ab/ab12...'). */
  readonly key: string;
  readonly size: number;
}

/** Bodies at least this large go through `putLarge` (S3: a multipart upload). */
export const MULTIPART_THRESHOLD = 16 * 2 ** 20;

/**
 * What the remote cache needs of a store: flat objects under '/'-separated relative keys. Every
 * method turns the store's own failures into a RemoteError with one clear, secret-free line
 * (`explain`); a missing object is `undefined`, not an error. test/store-conformance.test.ts is
 * the contract: a new store passes it.
 */
export interface ObjectStore {
  /** The remote as the user wrote it, normalised (`s3://bucket/prefix`, `file:///srv/pipe`). */
  readonly url: string;
  /** The store is reachable and exists (credentials, bucket, folder), checked once. */
  ready(): Promise<void>;
  head(rel: string, signal?: AbortSignal): Promise<ObjectInfo | undefined>;
  getStream(rel: string, signal?: AbortSignal): Promise<{ body: Readable; size: number } | undefined>;
  getBuffer(rel: string, signal?: AbortSignal): Promise<Buffer | undefined>;
  /** Replaces the object whole: a reader sees the old object or the new one. */
  putBuffer(rel: string, body: Buffer | string, contentType?: string, signal?: AbortSignal): Promise<void>;
  /** A large body, streamed; `onBytes` gets running totals. Whole or nothing, like putBuffer. */
  putLarge(rel: string, body: Readable, onBytes?: (loaded: number) => void, signal?: AbortSignal): Promise<void>;
  /** Absent objects are fine. */
  delete(rel: string): Promise<void>;
  /** Every object whose key starts with `relPrefix` (a string prefix, as S3 lists). */
  list(relPrefix: string, signal?: AbortSignal): AsyncIterable<ObjectInfo>;
  /** One clear, secret-free RemoteError for a failure of this store while `doing`. */
  explain(e: unknown, doing: string): RemoteError;
}
