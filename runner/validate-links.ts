// Rules across stages: what `inputs`, `needs` and `runs_on` name must exist, not be the stage
// itself, be a port the stage has, carry an artifact kind that fits the port, and cover every
// required port; `runs_on` must name a host. Cycles are the graph's business (graph.ts).
import type { StageSpec } from './pipeline.js';
import type { ArtifactKind, Stage } from './types.js';
import { ARTIFACT_KINDS, kindFits } from './types.js';
import { didYouMean } from './diagnostics.js';

export type Report = (path: string, message: string, at?: 'key' | 'value') => void;

/** What a stage's output is for these params, or undefined when that cannot be told. */
export function outputKind(stage: Stage<any>, params: Readonly<Record<string, unknown>>): ArtifactKind | undefined {
  try {
    const kind: unknown = typeof stage.output === 'function' ? stage.output(params) : stage.output;
    return (ARTIFACT_KINDS as readonly unknown[]).includes(kind) ? (kind as ArtifactKind) : undefined;
  } catch {
    return undefined; // params too broken for the stage to say; already reported
  }
}

function article(kind: string): string {
  return /^[aeiou]/.test(kind) ? `an '${kind}'` : `a '${kind}'`;
}

/**
 * `hasInputsKey(id)`: whether the stage wrote an `inputs:` mapping (a missing port is then
 * pointed at it, else at the stage).
 */
export function checkLinks(
  specs: ReadonlyMap<string, StageSpec>,
  types: ReadonlyMap<string, Stage<any>>,
  report: Report,
  hasInputsKey: (id: string) => boolean = () => true,
): void {
  const names = [...specs.keys()];
  const missing = (ref: string): string => `no stage named '${ref}'${didYouMean(ref, names)}`;
  const kindOf = (id: string): { kind: ArtifactKind; uses: string } | undefined => {
    const stage = types.get(id);
    const spec = specs.get(id);
    const kind = stage && spec ? outputKind(stage, spec.with) : undefined;
    return kind && stage ? { kind, uses: stage.name } : undefined;
  };

  for (const [id, spec] of specs) {
    const stage = types.get(id);
    for (const [port, up] of Object.entries(spec.inputs)) {
      const path = `stages.${id}.inputs.${port}`;
      if (up === id) {
        report(path, 'a stage cannot take its own output as input');
        continue;
      }
      if (!specs.has(up)) {
        report(path, missing(up));
        continue;
      }
      if (!stage) continue;
      const declared = Object.prototype.hasOwnProperty.call(stage.inputs, port) ? stage.inputs[port] : stage.extraInputs;
      if (!declared) {
        const ports = Object.keys(stage.inputs);
        const known = ports.length > 0 ? ` (ports: ${ports.join(', ')})` : ' (it takes no inputs)';
        report(path, `stage '${stage.name}' has no input port '${port}'${known}${didYouMean(port, ports)}`, 'key');
        continue;
      }
      const upstream = kindOf(up);
      if (upstream && !kindFits(declared.kind, upstream.kind)) {
        report(path, `port '${port}' takes ${article(declared.kind)} artifact, but '${up}' (${upstream.uses}) produces ${article(upstream.kind)} artifact`);
      }
    }
    if (stage) {
      for (const [port, p] of Object.entries(stage.inputs)) {
        if (p.required === false || Object.prototype.hasOwnProperty.call(spec.inputs, port)) continue;
        const where = hasInputsKey(id) ? `stages.${id}.inputs` : `stages.${id}`;
        report(where, `missing input '${port}': '${stage.name}' needs ${article(p.kind)} artifact there (inputs: { ${port}: <stage> })`);
      }
    }
    spec.needs.forEach((n, i) => {
      const path = `stages.${id}.needs[${i}]`;
      if (n === id) report(path, 'a stage cannot need itself');
      else if (!specs.has(n)) report(path, missing(n));
    });
    if (spec.runsOn !== undefined) {
      const path = `stages.${id}.runs_on`;
      const host = spec.runsOn;
      if (host === id) report(path, 'a stage cannot run on itself');
      else if (!specs.has(host)) report(path, missing(host));
      else {
        const produced = kindOf(host);
        if (produced && produced.kind !== 'host' && produced.kind !== 'any') {
          report(path, `'${host}' is not a host (${produced.uses} produces ${article(produced.kind)} artifact): runs_on must name a provision stage`);
        }
      }
    }
  }
}
