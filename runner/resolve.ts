// Resolution, written once for plan (`status`, `run --dry-run`), pull and execute: a stage's
// Stage object, its inputs from the artifacts of its upstream, its key material and key
// (fingerprint.ts), and what the local cache holds for that key. What "cached" means (a whole
// entry; a partial pull is never a hit for its own stage) lives here and nowhere else.
import type { Artifact, Stage } from './types.js';
import type { Pipeline, StageSpec } from './pipeline.js';
import type { Cache } from './cache.js';
import { sparseOf, type SparseInfo } from './sparse.js';
import { keyMaterial, keyOf, type KeyMaterial } from './fingerprint.js';
import { hashOf } from './canonical.js';

export interface Resolved {
  readonly id: string;
  readonly spec: StageSpec;
  readonly stage: Stage<any>;
  /** Port -> upstream artifact, for the ports whose upstream has one. */
  readonly inputs: Record<string, Artifact>;
  readonly material: KeyMaterial;
  readonly key: string;
}

/** The entry of a key in the local cache: whole (a hit), partial (a sparse pull), or none. */
export type LocalState =
  | { readonly state: 'cached'; readonly artifact: Artifact }
  | { readonly state: 'partial'; readonly artifact: Artifact; readonly sparse: SparseInfo }
  | { readonly state: 'missing' };

/** Port -> artifact of the upstream stage, where `artifactOf` knows one. */
export function inputsOf(spec: StageSpec, artifactOf: (stageId: string) => Artifact | undefined): Record<string, Artifact> {
  const inputs: Record<string, Artifact> = {};
  for (const [port, upstream] of Object.entries(spec.inputs)) {
    const a = artifactOf(upstream);
    if (a) inputs[port] = a;
  }
  return inputs;
}

/**
 * Stage `id`'s key, given the artifacts of its upstream. A stage that is never cached
 * (provision) gets `runId` mixed in, when given: it runs once per run. Throws what the stage's
 * keyExtra throws (a local file it names gone or unreadable).
 */
export async function resolveKey(pipeline: Pipeline, id: string, artifactOf: (stageId: string) => Artifact | undefined, runId?: string): Promise<Resolved> {
  const spec = pipeline.stages.get(id);
  const stage = pipeline.stageImpls.get(id);
  if (!spec || !stage) throw new Error(`unknown stage ${id}`);
  const inputs = inputsOf(spec, artifactOf);
  const material = await keyMaterial(stage, spec, inputs, pipeline.dir);
  const key = stage.cache === 'never' && runId !== undefined ? hashOf([keyOf(material), runId]) : keyOf(material);
  return { id, spec, stage, inputs, material, key };
}

/** What the local cache holds for `key`. */
export async function localState(cache: Cache, key: string): Promise<LocalState> {
  const artifact = await cache.find(key);
  if (!artifact) return { state: 'missing' };
  const sparse = sparseOf(artifact);
  return sparse ? { state: 'partial', artifact, sparse } : { state: 'cached', artifact };
}
