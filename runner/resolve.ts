// Resolution, written once for plan (`status`, `run --dry-run`), pull and execute: a stage's
// Stage object, its inputs from the artifacts of its upstream, its key material and key
// (fingerprint.ts), and its state with the reason: what the local cache holds for that key, or
// the remote's stub of it. What "cached" means (a whole entry; a partial pull is never a hit
// for its own stage; a stub only stands in for a stage that does not run) lives here and
// nowhere else: the callers decide only what they do with each state.
import type { Artifact, Stage } from './types.js';
import type { Pipeline, StageSpec } from './pipeline.js';
import type { Cache, StoredMeta } from './cache.js';
import { sparseOf, type SparseInfo } from './sparse.js';
import { keyMaterial, keyOf, type KeyMaterial } from './fingerprint.js';
import { canonicalJson, hashOf } from './canonical.js';
import { stubRemote } from './remote/stub.js';

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

/**
 * What stands for a stage's key, with why: a whole local entry ('cached'), a partial pull
 * ('partial': enough for its dependents' keys, never a hit for itself), the remote's meta of it
 * ('stub': its content hash is known, its files are not local; only looked up when the caller
 * passes `stubFrom`), or nothing ('missing': the reason is why it would run).
 */
export type StageState =
  | { readonly state: 'cached'; readonly artifact: Artifact; readonly reason: string }
  | { readonly state: 'partial'; readonly artifact: Artifact; readonly sparse: SparseInfo; readonly reason: string }
  | { readonly state: 'stub'; readonly artifact: Artifact; readonly reason: string }
  | { readonly state: 'missing'; readonly reason: string };

/** One stage of a run, resolved: the record plan, pull and execute consume. */
export type ResolvedStage = Resolved & StageState;

/** Where a stub comes from: the remote resolver (remote/index.ts), which memoises its peeks. */
export interface StubSource {
  peek(key: string): Promise<Artifact | undefined>;
}

export interface ResolveOptions {
  /** Mixed into the key of a stage that is never cached (provision): it runs once per run. */
  readonly runId?: string;
  /** A stub will do for this stage (it does not run): look its key up there when nothing is local. */
  readonly stubFrom?: StubSource;
  /** Keys to try on `stubFrom` after the stage's own (pull --latest: the last push's key). */
  readonly stubFallback?: readonly string[];
}

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

/**
 * Stage `id` resolved: key (resolveKey) and state. A stage that is never cached has no entry to
 * find (its key is new every run). Throws what resolveKey throws, and a remote failure of the
 * stub's look-up.
 */
export async function resolveStage(
  pipeline: Pipeline,
  cache: Cache,
  id: string,
  artifactOf: (stageId: string) => Artifact | undefined,
  options: ResolveOptions = {},
): Promise<ResolvedStage> {
  const r = await resolveKey(pipeline, id, artifactOf, options.runId);
  if (r.stage.cache !== 'never') {
    const local = await localState(cache, r.key);
    if (local.state === 'cached') return { ...r, ...local, reason: `made ${local.artifact.meta.createdAt} in ${local.artifact.meta.runId}` };
    if (local.state === 'partial') return { ...r, ...local, reason: partialReason(local.sparse) };
    if (options.stubFrom) {
      for (const key of [r.key, ...(options.stubFallback ?? [])]) {
        const stub = await options.stubFrom.peek(key);
        if (stub) return { ...r, state: 'stub', artifact: stub, reason: `on ${stubRemote(stub) ?? 'the remote'} (its meta only, files not pulled)` };
      }
    }
  }
  const damage = cache.damageOf(r.key);
  const reason = damage ? `cache entry damaged (${damage})` : await explainRun(cache, pipeline.name, id, r.material, r.stage.keyExclude);
  return { ...r, state: 'missing', reason };
}

function partialReason(sparse: SparseInfo): string {
  return `${sparse.present.length} of ${sparse.files} files (${sparse.reads.join(', ')}) pulled from ${sparse.remote || 'a remote'} for ${sparse.readers.join(', ') || 'another stage'}; the rest is fetched with --pull when a stage reads it`;
}

/** Compare what the stage would be keyed on with the artifact it made last time. */
export async function explainRun(cache: Cache, pipeline: string, stageId: string, material: KeyMaterial, excluded: readonly string[] = []): Promise<string> {
  const latest = await cache.latestKey(pipeline, stageId);
  const prev = latest ? await cache.find(latest) : undefined;
  if (!prev) return 'new';
  if (sparseOf(prev) && prev.key === keyOf(material)) return 'only partly in the cache (a partial pull)';
  const meta = prev.meta as StoredMeta & { extra?: string };
  if (meta.uses !== material.stage) return `stage type changed (${meta.uses} -> ${material.stage})`;
  if (meta.version !== material.version) return `stage version changed (v${meta.version} -> v${material.version})`;
  // meta.json records every param; those the stage leaves out of its key (placement) do not count.
  const keyed = diffKeys(meta.params ?? {}, material.params).filter((k) => !excluded.includes(k));
  if (keyed.length > 0) return `params changed: ${keyed.join(', ')}`;
  const changedInputs = diffKeys(meta.inputs ?? {}, material.inputs);
  if (changedInputs.length > 0) return `input changed: ${changedInputs.join(', ')}`;
  if ((meta.extra ?? undefined) !== (material.extra ?? undefined)) return 'dependency files changed';
  return 'not in the cache';
}

/** The top-level keys whose values differ between `a` and `b`, sorted. */
export function diffKeys(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => canonicalJson(a[k]) !== canonicalJson(b[k])).sort();
}
