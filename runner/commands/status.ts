// `pipe status FILE`: one line per stage: cached / partial (a partial pull) / would run (why) /
// waits on upstream.
import { openPipeline, type PipelineOptions } from '../open.js';
import { planStages, type PlanEntry } from '../plan.js';
import { Output } from '../output.js';
import { EXIT } from '../errors.js';
import { sparseOf } from '../sparse.js';
import type { Artifact } from '../types.js';
import { withSecretNotes } from '../secrets-plan.js';
import { secretNames } from '../secrets.js';

/** For --json: what a partial pull holds. */
function partialOf(
  a: Artifact | undefined,
): { partial: { files: number; of: number; reads: readonly string[]; remote: string; readers: readonly string[] } } | undefined {
  const s = a ? sparseOf(a) : undefined;
  return s ? { partial: { files: s.present.length, of: s.files, reads: s.reads, remote: s.remote, readers: s.readers } } : undefined;
}

export function printPlan(plan: readonly PlanEntry[], output: Output, selected?: ReadonlySet<string>): void {
  const c = output.colors;
  const width = Math.max(...plan.map((p) => p.stage.length), 5);
  for (const p of plan) {
    const name = p.stage.padEnd(width);
    const from = selected && !selected.has(p.stage) ? c.dim(' (needed upstream)') : '';
    switch (p.state) {
      case 'cached':
        output.line(`${c.green('cached ')} ${name} ${c.dim(p.reason)}${from}`);
        break;
      case 'partial':
        output.line(`${c.green('partial')} ${name} ${c.dim(p.reason)}${from}`);
        break;
      case 'run':
        output.line(`${c.yellow('run    ')} ${name} ${p.reason}${from}`);
        break;
      case 'blocked':
        output.line(`${c.dim('waits  ')} ${name} ${c.dim(p.reason)}${from}`);
        break;
      default: {
        const never: never = p.state;
        void never;
      }
    }
  }
}

export async function statusCommand(file: string, flags: PipelineOptions & { json?: boolean }): Promise<number> {
  const { pipeline, graph, cache } = await openPipeline(file, flags, { checkPaths: true });
  const planned = await planStages(pipeline, graph, cache, graph.order);
  // A stage that would run without a secret it needs says so ("needs API_TOKEN, not set").
  const noted = withSecretNotes(planned, pipeline);
  const unsetOf = new Map(noted.map((n) => [n.entry.stage, n.unset]));
  // A stage whose key cannot be computed here (its raw data was only looked up on the remote)
  // may still have a partial pull as its latest artifact: say so.
  const plan = await Promise.all(
    noted
      .map((n) => n.entry)
      .map(async (p) => {
        if (p.state === 'cached' || p.state === 'partial') return p;
        const latest = await cache.latestKey(pipeline.name, p.stage);
        const a = latest ? await cache.find(latest) : undefined;
        const s = a ? sparseOf(a) : undefined;
        return s ? { ...p, reason: `${p.reason}; latest: a partial pull (${s.present.length} of ${s.files} files) from ${s.remote || 'a remote'}` } : p;
      }),
  );
  // Names only: which variables a stage is given, and which of those it needs are not set.
  const secretsRow = (id: string): { secrets?: { names: string[]; unset: string[] } } => {
    const spec = pipeline.stages.get(id);
    const names = spec ? secretNames(pipeline.stageImpls.get(id), spec) : [];
    return names.length ? { secrets: { names, unset: unsetOf.get(id) ?? [] } } : {};
  };
  if (flags.json) {
    const rows = plan.map((p) => ({
      stage: p.stage,
      uses: p.uses,
      state: p.state === 'run' ? (p.reason === 'new' ? 'never-run' : 'stale') : p.state,
      reason: p.reason,
      ...(p.key ? { key: p.key } : {}),
      ...(p.artifact ? { path: p.artifact.dir, contentHash: p.artifact.contentHash, metrics: p.artifact.meta.metrics } : {}),
      ...(partialOf(p.artifact) ?? {}),
      ...secretsRow(p.stage),
    }));
    process.stdout.write(`${JSON.stringify({ pipeline: pipeline.name, stages: rows }, null, 2)}\n`);
    return EXIT.ok;
  }
  printPlan(plan, new Output({ stream: process.stdout, live: false }));
  return EXIT.ok;
}
