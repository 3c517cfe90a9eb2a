// An entry's meta.json as the cache stores it, and what sparse.ts needs of the cache to seal,
// extend and replace sparse entries (cache.ts's Cache is that store): in a module of their own,
// so that cache.ts and sparse.ts do not import each other.
import type { Artifact, ArtifactKind, ArtifactMeta, ManifestEntry } from './types.js';
import type { EntryShape } from './entry-check.js';

export interface StoredMeta extends ArtifactMeta {
  readonly kind: ArtifactKind;
  /** The entry's layout as sealed here, for the structural check on every hit (entry-check.ts). */
  readonly shape?: EntryShape;
}

export type MetaDraft = Omit<StoredMeta, 'contentHash'>;

/** The part of the cache (cache.ts) that seals and swaps entries: what sparse.ts works on. */
export interface EntryStore {
  readonly cacheDir: string;
  entryDir(key: string): string;
  find(key: string): Promise<Artifact | undefined>;
  readManifest(key: string): Promise<ManifestEntry[]>;
  seal(
    tmpDir: string,
    meta: StoredMeta,
    manifest: readonly ManifestEntry[],
    dataPaths: readonly string[],
    extra?: Readonly<Record<string, string>>,
  ): Promise<boolean>;
  swapIn(tmpDir: string, key: string): Promise<void>;
}
