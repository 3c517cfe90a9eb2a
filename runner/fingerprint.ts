// A stage's cache key: sha256 of canonical JSON of the stage name and version, its resolved
// params (less placement and secrets), the content hash of each input artifact (not its key:
// an upstream re-run that makes the same bytes keeps downstream cached), and any extra content
// the stage declares (files named by params). No absolute paths, hosts, users or times go in,
// so two machines with the same code, pipeline and data compute the same keys.
import type { Artifact, Stage } from './types.js';
import type { StageSpec } from './pipeline.js';
import { hashOf } from './canonical.js';

export interface KeyMaterial {
  readonly stage: string;
  readonly version: number;
  readonly params: Record<string, unknown>;
  readonly inputs: Record<string, string>;
  readonly extra?: unknown;
}

/** Params that go into the key: everything but the stage's keyExclude list. */
export function keyedParams(stage: Stage<any>, spec: StageSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const excluded = new Set(stage.keyExclude ?? []);
  for (const [k, v] of Object.entries(spec.with)) if (!excluded.has(k)) out[k] = v;
  return out;
}

/** Input content hashes that go into the key. Host inputs are placement, not data. */
export function keyedInputs(stage: Stage<any>, inputs: Readonly<Record<string, Artifact>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [port, artifact] of Object.entries(inputs)) {
    if (stage.inputs[port]?.kind === 'host' || artifact.kind === 'host') continue;
    out[port] = artifact.contentHash;
  }
  return out;
}

export async function keyMaterial(stage: Stage<any>, spec: StageSpec, inputs: Readonly<Record<string, Artifact>>, pipelineDir: string): Promise<KeyMaterial> {
  const extra = stage.keyExtra ? await stage.keyExtra(spec.with, pipelineDir) : undefined;
  return {
    stage: stage.name,
    version: stage.version,
    params: keyedParams(stage, spec),
    inputs: keyedInputs(stage, inputs),
    ...(extra === undefined ? {} : { extra: hashOf(extra) }),
  };
}

export function keyOf(material: KeyMaterial): string {
  return hashOf(material);
}
