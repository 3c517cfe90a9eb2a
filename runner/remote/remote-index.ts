// The per-pipeline index on the remote: stage -> key of the last push, at
// <prefix>/pipelines/<name>/latest.json. `pipe pull --latest` takes it as it is; `pipe pull`
// uses it to explain why a key it computed is missing ("the last push has X, params differ").
import type { ObjectStore } from './remote-error.js';

export interface RemoteIndexEntry {
  readonly key: string;
  readonly contentHash: string;
  readonly kind: string;
  readonly createdAt: string;
  readonly host: string;
  readonly pushedAt: string;
}

export interface RemoteIndex {
  readonly pipeline: string;
  readonly updatedAt: string;
  readonly stages: Readonly<Record<string, RemoteIndexEntry>>;
}

export const indexPath = (pipeline: string): string => `pipelines/${encodeURIComponent(pipeline)}/latest.json`;

interface IndexOwner {
  readonly store: ObjectStore;
  ready(): Promise<void>;
}

export async function readIndex(remote: IndexOwner, pipeline: string, signal?: AbortSignal): Promise<RemoteIndex | undefined> {
  await remote.ready();
  const buf = await remote.store.getBuffer(indexPath(pipeline), signal);
  if (!buf) return undefined;
  try {
    const index = JSON.parse(buf.toString('utf8')) as RemoteIndex;
    return index && typeof index.stages === 'object' ? index : undefined;
  } catch {
    return undefined;
  }
}

/** Merge stage -> key entries into the pipeline's index (last writer wins per stage). */
export async function updateIndex(
  remote: IndexOwner,
  pipeline: string,
  stages: Readonly<Record<string, RemoteIndexEntry>>,
  signal?: AbortSignal,
): Promise<RemoteIndex> {
  const previous = await readIndex(remote, pipeline, signal);
  const index: RemoteIndex = { pipeline, updatedAt: new Date().toISOString(), stages: { ...(previous?.stages ?? {}), ...stages } };
  await remote.store.putBuffer(indexPath(pipeline), JSON.stringify(index, null, 2), 'application/json', signal);
  return index;
}
