// Where the remote cache keeps its objects: the object-store interface every store implements,
// the remote's error, and the table from a remote URL's scheme to its store. Adding a store
// (docs/architecture.md, "Adding a remote store"): implement ObjectStore in its own module,
// add its scheme below, and run test/store-conformance.test.ts on it.
import { RemoteError, type ObjectStore } from './remote-error.js';
import { S3Store, type S3StoreOptions } from './s3-store.js';
import { FileStore } from './file-store.js';

export { RemoteError, MULTIPART_THRESHOLD, type RemoteErrorKind, type ObjectInfo, type ObjectStore } from './remote-error.js';

/** What a store may be given besides its URL (S3: endpoint, region, credentials, env). */
export type StoreOptions = S3StoreOptions;

/** Scheme (with its `://`) -> how to open a store for a URL. Opening touches no network. */
export const STORES: Readonly<Record<string, { readonly what: string; readonly example: string; open(url: string, options: StoreOptions): ObjectStore }>> = {
  's3://': { what: 'an s3:// URL', example: 's3://bucket/prefix', open: (url, options) => S3Store.create(url, options) },
  'file://': { what: 'a file:// URL', example: 'file:///mnt/team/pipe-cache', open: (url) => FileStore.create(url) },
};

/** The store for a remote URL; RemoteError('config') for an unknown scheme or a malformed URL. */
export function openStore(url: string, options: StoreOptions = {}): ObjectStore {
  const u = url.trim();
  const scheme = Object.keys(STORES).find((s) => u.startsWith(s));
  if (!scheme) {
    const schemes = Object.values(STORES)
      .map((s) => s.what)
      .join(' or ');
    const examples = Object.values(STORES)
      .map((s) => s.example)
      .join(' or ');
    throw new RemoteError('config', `remote '${url}' is not ${schemes} (expected ${examples})`);
  }
  return STORES[scheme]!.open(u, options);
}
