// At the end of `pipe run`: each report the run made or reused from the cache, shown with this
// run's facts (run id, date, each upstream stage's duration, origin, host and engine, earlier
// runs) in .pipe/runs/<run-id>/<stage>/ (index.html, report.md). The cached report holds only
// what its inputs determine, so a resumed run and a straight one make the same artifact; this
// view, written outside the cache, is where the run itself is recorded.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Cache } from './cache.js';
import { upstreamOf, type Graph } from './graph.js';
import type { StageOutcome } from './outcome.js';
import { recentRuns } from './report-history.js';
import { pipeVersion } from './version.js';
import type { Artifact, RunViewFacts, Stage } from './types.js';

export interface RunViewContext {
  readonly cache: Cache;
  readonly graph: Graph;
  readonly pipeline: string;
  readonly runId: string;
  /** When the run started (ms since the epoch). */
  readonly startedAt: number;
  readonly outcomes: ReadonlyMap<string, StageOutcome>;
  /** The pipeline's stages (Pipeline.stageImpls): a stage with `runView` gets a run view. */
  readonly stageImpls: ReadonlyMap<string, Stage<any>>;
}

/** The folder of a report stage's run view. */
export function runViewDir(cache: Cache, runId: string, stage: string): string {
  return path.join(cache.runsDir, runId, stage);
}

/**
 * Writes the run view of every stage that ran or came from the cache and has one (its Stage's
 * `runView`: the report); returns stage -> its index.html. A stage whose view is undefined (a
 * report without the view's places, unreadable here) gets none: the caller shows the artifact.
 */
export async function writeRunViews(ctx: RunViewContext, warn: (message: string) => void): Promise<Map<string, string>> {
  const written = new Map<string, string>();
  for (const [id, o] of ctx.outcomes) {
    const impl = ctx.stageImpls.get(id);
    if ((o.status !== 'ran' && o.status !== 'cached') || !impl?.runView) continue;
    try {
      const files = await impl.runView(o.artifact, await runFacts(ctx, id));
      if (!files) continue;
      const dir = runViewDir(ctx.cache, ctx.runId, id);
      await mkdir(dir, { recursive: true });
      for (const [name, content] of Object.entries(files)) await writeFile(path.join(dir, path.basename(name)), content);
      if (files['index.html'] !== undefined) written.set(id, path.join(dir, 'index.html'));
    } catch (e) {
      warn(`${id}: the run's view of ${id} was not written (${(e as Error).message}); its artifact is in latest/`);
    }
  }
  return written;
}

async function runFacts(ctx: RunViewContext, stage: string): Promise<RunViewFacts> {
  const lineage: { stage: string; artifact: Artifact }[] = [];
  for (const id of [...upstreamOf(ctx.graph, stage), stage]) {
    const o = ctx.outcomes.get(id);
    if (o && (o.status === 'ran' || o.status === 'cached')) lineage.push({ stage: id, artifact: o.artifact });
  }
  const earlier = await recentRuns(ctx.cache.root, ctx.pipeline, 6, ctx.runId).catch(() => undefined);
  return {
    runId: ctx.runId,
    startedAt: new Date(ctx.startedAt).toISOString(),
    pipeVersion: pipeVersion(),
    lineage,
    ...(earlier && earlier.runs.length > 1 ? { earlierRuns: earlier } : {}),
  };
}
