// "Earlier runs" for the run view of a report: the last runs of a pipeline with the params that differ
// between them and their headline metrics, ready to put in a small table. Light on purpose: it
// reads only the run records and meta/metrics files under the cache root.
import { differingParams, headlineColumns, loadHistory, metricValue, shortParam, type GitInfo, type RunStatus } from './history.js';

export interface RecentRun {
  readonly id: string;
  /** ISO time the run started. */
  readonly date: string;
  readonly status: RunStatus;
  readonly git?: GitInfo;
  /** Only the params that differ between the listed runs: full path -> value (absent: not set in that run). */
  readonly params: Readonly<Record<string, unknown>>;
  /** Column label (see `metrics` below) -> value. */
  readonly metrics: Readonly<Record<string, number>>;
  readonly durationMs: number;
  /** True for the run whose id was passed as `currentRunId`. */
  readonly current: boolean;
}

export interface RecentRuns {
  /** Newest first. */
  readonly runs: readonly RecentRun[];
  /** The differing params, in column order: full path and a short label (`finetune.learning_rate`). */
  readonly params: readonly { readonly path: string; readonly label: string }[];
  /** Headline metric columns: label (`accuracy`, or `evaluate.accuracy` when ambiguous), stage, name. */
  readonly metrics: readonly { readonly label: string; readonly stage: string; readonly name: string }[];
}

/**
 * The last `limit` runs of `pipeline` recorded in the cache at `cacheRoot`, newest first. When
 * `currentRunId` is given the run in progress is included (it has no run-end yet: its status is
 * 'incomplete') and marked `current`, even if it would fall outside the limit.
 */
export async function recentRuns(cacheRoot: string, pipeline: string, limit = 5, currentRunId?: string): Promise<RecentRuns> {
  let runs = await loadHistory(cacheRoot, { pipeline, limit: Math.max(0, limit) });
  const current =
    currentRunId && !runs.some((r) => r.id === currentRunId) ? (await loadHistory(cacheRoot, { pipeline })).find((r) => r.id === currentRunId) : undefined;
  if (current) runs = [current, ...runs.slice(0, Math.max(0, limit - 1))];
  const params = differingParams(runs);
  const columns = headlineColumns(runs);
  return {
    runs: runs.map((r) => {
      const metrics: Record<string, number> = {};
      for (const c of columns) {
        const v = metricValue(r, c);
        if (v !== undefined) metrics[c.label] = v;
      }
      return {
        id: r.id,
        date: r.date,
        status: r.status,
        ...(r.git ? { git: r.git } : {}),
        params: Object.fromEntries(params.filter((p) => r.params[p] !== undefined).map((p) => [p, r.params[p]])),
        metrics,
        durationMs: r.durationMs,
        current: r.id === currentRunId,
      };
    }),
    params: params.map((p) => ({ path: p, label: shortParam(p) })),
    metrics: columns.map((c) => ({ label: c.label, stage: c.stage, name: c.name })),
  };
}
