// `pipe status FILE`: one line per stage: cached / would run (why) / waits on upstream.
import { openPipeline, type PipelineOptions } from '../open.js';
import { planStages, type PlanEntry } from '../plan.js';
import { Output } from '../output.js';
import { EXIT } from '../errors.js';

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
  const { pipeline, graph, cache } = await openPipeline(file, flags);
  const plan = await planStages(pipeline, graph, cache, graph.order);
  if (flags.json) {
    const rows = plan.map((p) => ({
      stage: p.stage,
      uses: p.uses,
      state: p.state === 'run' ? (p.reason === 'new' ? 'never-run' : 'stale') : p.state,
      reason: p.reason,
      ...(p.key ? { key: p.key } : {}),
      ...(p.artifact ? { path: p.artifact.dir, contentHash: p.artifact.contentHash, metrics: p.artifact.meta.metrics } : {}),
    }));
    process.stdout.write(`${JSON.stringify({ pipeline: pipeline.name, stages: rows }, null, 2)}\n`);
    return EXIT.ok;
  }
  printPlan(plan, new Output({ stream: process.stdout, live: false }));
  return EXIT.ok;
}
