// Which stages make the hosts that `runs_on` stages run on: those whose Stage says so
// (`provisionsHosts`, runner/types.ts), never a stage named here. `pipe hosts`, `pipe down` and
// `pipe sweep` find what those stages made from their params (provider, region, endpoint,
// address), as the file has them and as earlier runs recorded them.
import type { Stage } from '../types.js';

/** A stage as `pipe hosts`/`down` need it: its id, type and params (a StageSpec, or one recorded by a run). */
export interface ProvisionSpec {
  readonly id: string;
  readonly uses: string;
  readonly with: Record<string, unknown>;
}

/** A pipeline's stages and their Stage objects (a validated Pipeline is one). */
export interface StagesOf {
  readonly stages: ReadonlyMap<string, ProvisionSpec>;
  readonly stageImpls: ReadonlyMap<string, Stage<any>>;
  /** Every stage type it could name (Pipeline.stageTypes), by type name. */
  readonly stageTypes?: ReadonlyMap<string, Stage<any>>;
}

/**
 * The type names (`uses`) that provision hosts: of every type the pipeline was loaded with, so a
 * provision stage removed from the file since a run made its hosts still counts in that run's
 * record (`pipe down` must still find what it made); and of the pipeline's own stages.
 */
export function provisionerTypes(pipeline: StagesOf): Set<string> {
  const types = new Set<string>();
  for (const [name, stage] of pipeline.stageTypes ?? []) if (stage.provisionsHosts) types.add(name);
  for (const [id, stage] of pipeline.stageImpls) {
    const spec = pipeline.stages.get(id);
    if (spec && stage.provisionsHosts) types.add(spec.uses);
  }
  return types;
}

/** The pipeline's stages that provision hosts. */
export function provisioningSpecs(pipeline: StagesOf): ProvisionSpec[] {
  return [...pipeline.stages.values()].filter((s) => pipeline.stageImpls.get(s.id)?.provisionsHosts === true);
}
