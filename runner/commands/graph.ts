// `pipe graph FILE`: the DAG as indented text, mermaid or Graphviz dot.
import { openPipeline, type PipelineOptions } from '../open.js';
import { ExitError, EXIT } from '../errors.js';
import type { Pipeline } from '../pipeline.js';
import type { Graph } from '../graph.js';

export function renderGraph(pipeline: Pipeline, graph: Graph, format: string): string {
  const edges: [string, string, string][] = [];
  for (const [id, spec] of pipeline.stages) {
    for (const [port, up] of Object.entries(spec.inputs)) edges.push([up, id, port]);
    for (const up of spec.needs) edges.push([up, id, 'needs']);
    if (spec.runsOn) edges.push([spec.runsOn, id, 'runs_on']);
  }
  switch (format) {
    case 'mermaid':
      return [
        'flowchart TD',
        ...graph.order.map((id) => `  ${id}["${id}<br/>${pipeline.stages.get(id)?.uses}"]`),
        ...edges.map(([a, b, l]) => `  ${a} -->|${l}| ${b}`),
      ].join('\n');
    case 'dot':
      return [
        'digraph pipeline {',
        '  rankdir=LR;',
        ...graph.order.map((id) => `  "${id}" [label="${id}\\n${pipeline.stages.get(id)?.uses}"];`),
        ...edges.map(([a, b, l]) => `  "${a}" -> "${b}" [label="${l}"];`),
        '}',
      ].join('\n');
    case 'text': {
      const lines: string[] = [];
      for (const id of graph.order) {
        const spec = pipeline.stages.get(id)!;
        const from = edges.filter(([, b]) => b === id).map(([a, , l]) => `${l} <- ${a}`);
        lines.push(`${id} (${spec.uses})${from.length ? `  ${from.join(', ')}` : ''}`);
      }
      return lines.join('\n');
    }
    default:
      throw new ExitError(EXIT.usage, `--format: expected text, mermaid or dot, got ${format}`);
  }
}

export async function graphCommand(file: string, flags: PipelineOptions & { format?: string }): Promise<number> {
  const { pipeline, graph } = await openPipeline(file, flags);
  process.stdout.write(`${renderGraph(pipeline, graph, flags.format ?? 'text')}\n`);
  return EXIT.ok;
}
