// What the executor and the report need to know about remote artifacts, without loading the
// AWS SDK: a stub is an artifact the remote holds (its meta.json, so its content hash, is
// known) whose files are not local; `dir` is where they will be once pulled.
import type { StoredMeta } from '../cache.js';
import type { Artifact } from '../types.js';

/**
 * Written into meta.json of an artifact that was pulled (next to the origin's own meta): from
 * where and when, the files and bytes it holds here, what the last pull downloaded and took.
 */
export interface PulledInfo {
  readonly remote: string;
  readonly at: string;
  readonly files: number;
  readonly bytes: number;
  readonly downloadedBytes: number;
  readonly durationMs: number;
  /** A sparse entry: only the files its readers declare are here (`files` of `of`); the rest stays on the remote. */
  readonly partial?: PartialInfo;
}

export interface PartialInfo {
  /** Of the artifact's files, how many there are in all (`files` of PulledInfo are here). */
  readonly of: number;
  readonly ofBytes: number;
  /** The read patterns it was pulled for, and the stages that declared them. */
  readonly reads: readonly string[];
  readonly readers: readonly string[];
}

/** meta.json of an artifact that came from a remote: the origin's meta plus `pulled`. */
export type PulledMeta = StoredMeta & { readonly pulled?: PulledInfo };

const STUB = Symbol.for('pipe.remote-stub');

export function makeStub(meta: StoredMeta, dir: string, remote: string): Artifact {
  const artifact = { kind: meta.kind, key: meta.key, contentHash: meta.contentHash, dir, meta };
  Object.defineProperty(artifact, STUB, { value: remote, enumerable: false });
  return artifact;
}

/** True for an artifact whose files are only on the remote. Never hand one to a running stage. */
export function isStub(a: Artifact): boolean {
  return typeof (a as { [STUB]?: string })[STUB] === 'string';
}

/** The remote a stub lives on. */
export function stubRemote(a: Artifact): string | undefined {
  return (a as { [STUB]?: string })[STUB];
}

/** Provenance of a pulled artifact (persisted in its meta.json: the report can show it on later runs too). */
export function pulledInfo(a: Artifact): PulledInfo | undefined {
  return (a.meta as PulledMeta).pulled;
}
