// `pipe lr-find FILE --stage NAME`: the learning-rate range test of a fine-tuning stage, on its
// cached inputs (the stages upstream run first when they are not cached, as `pipe run --until`
// would run them). The stage does the work through its `lr-find` tool; this prints the table and
// the suggestion and writes the plot (SVG) and the numbers (JSON) under the cache, saying where.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Artifact, Progress } from '../types.js';
import { StageError } from '../types.js';
import { openPipeline, type PipelineOptions } from '../open.js';
import { planStages } from '../plan.js';
import { upstreamOf } from '../graph.js';
import { describeError } from '../outcome.js';
import { EXIT, ExitError } from '../errors.js';
import { Output } from '../output.js';

export interface LrFindFlags extends PipelineOptions {
  stage: string;
  steps?: string;
  start?: string;
  end?: string;
  out?: string;
}

export async function lrFindCommand(file: string, flags: LrFindFlags): Promise<number> {
  const opened = await openPipeline(file, flags, { checkPaths: true });
  const { pipeline, graph } = opened;
  const spec = pipeline.stages.get(flags.stage);
  if (!spec)
    throw new ExitError(EXIT.usage, `pipe lr-find: ${pipeline.displayPath} has no stage '${flags.stage}' (stages: ${[...pipeline.stages.keys()].join(', ')})`);
  const stage = pipeline.stageImpls.get(spec.id);
  const tool = stage?.tools?.['lr-find'];
  if (!stage || !tool) {
    const able = [...pipeline.stages.values()].filter((s) => pipeline.stageImpls.get(s.id)?.tools?.['lr-find']).map((s) => s.id);
    throw new ExitError(
      EXIT.usage,
      `pipe lr-find: stage '${flags.stage}' (uses: ${spec.uses}) has no learning-rate finder${able.length ? `; in this pipeline: ${able.join(', ')}` : ''}`,
    );
  }

  // Its upstream, from the cache; what is not there runs first.
  const upstream = upstreamOf(graph, spec.id);
  let plan = await planStages(pipeline, graph, opened.cache, upstream);
  if (plan.some((p) => p.state !== 'cached' && p.state !== 'partial')) {
    process.stderr.write(
      `lr-find: running what '${spec.id}' needs first (${plan
        .filter((p) => p.state !== 'cached')
        .map((p) => p.stage)
        .join(', ')})\n`,
    );
    const { runCommand } = await import('./run.js');
    for (const up of Object.values(spec.inputs)) {
      const code = await runCommand(file, { ...flags, until: up });
      if (code !== EXIT.ok) return code;
    }
    plan = await planStages(pipeline, graph, opened.cache, upstream);
  }
  const artifacts = new Map(plan.flatMap((p) => (p.artifact ? [[p.stage, p.artifact] as const] : [])));
  const inputs: Record<string, Artifact> = {};
  for (const [port, up] of Object.entries(spec.inputs)) {
    const a = artifacts.get(up);
    if (!a) throw new ExitError(EXIT.failed, `pipe lr-find: input '${port}' (stage '${up}') is not in the cache after running it`);
    inputs[port] = a;
  }

  const cache = opened.cache;
  const outDir = flags.out ? path.resolve(flags.out) : path.join(cache.root, 'lr-find', pipeline.name, spec.id);
  const scratch = await cache.makeTemp(`lr-find-${spec.id}`);
  const output = new Output({ stream: process.stderr, live: Boolean(process.stderr.isTTY) });
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  try {
    const result = await tool.call(
      {
        params: spec.with as never,
        inputs,
        stageId: spec.id,
        pipelineName: pipeline.name,
        pipelineDir: pipeline.dir,
        outDir: path.join(scratch, 'out'),
        workDir: path.join(scratch, 'work'),
        log: output.stageLogger(spec.id),
        progress: (label: string, total?: number, resumed?: number): Progress => output.progress(spec.id, label, total, resumed),
        signal: controller.signal,
        derived: (name, key, build) => cache.derived(name, key, build, controller.signal),
        lineage: [],
        runId: 'lr-find',
      },
      { ...(flags.steps ? { steps: flags.steps } : {}), ...(flags.start ? { start: flags.start } : {}), ...(flags.end ? { end: flags.end } : {}) },
    );
    await mkdir(outDir, { recursive: true });
    for (const [name, text] of Object.entries(result.files)) await writeFile(path.join(outDir, name), text);
    process.stdout.write(`${result.lines.join('\n')}\n`);
    const shown = path.relative(process.cwd(), outDir) || '.';
    process.stdout.write(`plot: ${path.join(shown, 'lr-find.svg')} (numbers: ${path.join(shown, 'lr-find.json')})\n`);
    return EXIT.ok;
  } catch (e) {
    if (controller.signal.aborted) return EXIT.interrupted;
    if (e instanceof StageError) throw new ExitError(EXIT.usage, `pipe lr-find: ${spec.id}: ${describeError(e)}`);
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    await rm(scratch, { recursive: true, force: true });
  }
}
