// At the end of `pipe run`: each report the run made or reused from the cache, shown with this
// run's facts (run id, date, each upstream stage's duration, origin, host and engine, earlier
// runs) in .pipe/runs/<run-id>/<stage>/ (index.html, report.md). The cached report holds only
// what its inputs determine, so a resumed run and a straight one make the same artifact; this
// view, written outside the cache, is where the run itself is recorded.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Cache } from './cache.js';
import { upstreamOf, type Graph } from './graph.js';
import type { StageOutcome } from './outcome.js';
import { recentRuns } from './report-history.js';
import { pipeVersion } from './version.js';
import { renderRunHtml, renderRunMarkdown, runStageRow, type RunFacts, type RunStageRow } from '../stages/report/run-view.js';

export interface RunViewContext {
  readonly cache: Cache;
  readonly graph: Graph;
  readonly pipeline: string;
  readonly runId: string;
  /** When the run started (ms since the epoch). */
  readonly startedAt: number;
  readonly outcomes: ReadonlyMap<string, StageOutcome>;
}

/** The folder of a report stage's run view. */
export function runViewDir(cache: Cache, runId: string, stage: string): string {
  return path.join(cache.runsDir, runId, stage);
}

/**
 * Writes the run view of every `uses: report` stage that ran or came from the cache; returns
 * stage -> its index.html. A report without the run view's places (not made by `uses: report`)
 * or unreadable here (only looked up on a remote) gets none: the caller shows the artifact.
 */
export async function writeRunViews(ctx: RunViewContext, warn: (message: string) => void): Promise<Map<string, string>> {
  const written = new Map<string, string>();
  for (const [id, o] of ctx.outcomes) {
    if ((o.status !== 'ran' && o.status !== 'cached') || o.artifact.meta.uses !== 'report') continue;
    try {
      const cachedHtml = await readFile(path.join(o.artifact.dir, 'index.html'), 'utf8').catch(() => undefined);
      const cachedMd = await readFile(path.join(o.artifact.dir, 'report.md'), 'utf8').catch(() => undefined);
      if (cachedHtml === undefined || cachedMd === undefined) continue;
      const facts = await runFacts(ctx, id);
      const page = renderRunHtml(cachedHtml, facts);
      const md = renderRunMarkdown(cachedMd, facts);
      if (page === undefined || md === undefined) continue;
      const dir = runViewDir(ctx.cache, ctx.runId, id);
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, 'report.md'), md);
      await writeFile(path.join(dir, 'index.html'), page);
      written.set(id, path.join(dir, 'index.html'));
    } catch (e) {
      warn(`${id}: the run's view of the report was not written (${(e as Error).message}); the cached report is in latest/`);
    }
  }
  return written;
}

async function runFacts(ctx: RunViewContext, report: string): Promise<RunFacts> {
  const stages: RunStageRow[] = [];
  for (const id of [...upstreamOf(ctx.graph, report), report]) {
    const o = ctx.outcomes.get(id);
    if (o && (o.status === 'ran' || o.status === 'cached')) stages.push(runStageRow(id, o.artifact, ctx.runId));
  }
  const earlier = await recentRuns(ctx.cache.root, ctx.pipeline, 6, ctx.runId).catch(() => undefined);
  return {
    runId: ctx.runId,
    startedAt: new Date(ctx.startedAt).toISOString(),
    pipeVersion: pipeVersion(),
    stages,
    ...(earlier && earlier.runs.length > 1 ? { earlierRuns: earlier } : {}),
  };
}
