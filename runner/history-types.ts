// The run history's summary types: what history.ts reads a run record into, and what
// history-compare.ts compares and displays (its own module, so neither imports the other back).
export interface GitInfo {
  readonly commit: string;
  readonly dirty: boolean;
}

export type RunStatus = 'ok' | 'failed' | 'interrupted' | 'incomplete';
export type StageStatus = 'ran' | 'cached' | 'failed' | 'skipped' | 'started';

/** What one stage did in one run. */
export interface StageRecord {
  readonly status: StageStatus;
  readonly uses?: string;
  readonly key?: string;
  readonly contentHash?: string;
  readonly durationMs?: number;
  /** Why it ran (stage-start), or why it was skipped. */
  readonly reason?: string;
  readonly error?: string;
  /** It re-ran and produced the same bytes as its previous artifact (early cut-off). */
  readonly reused?: boolean;
}

export type Metrics = Record<string, number>;

export interface RunSummary {
  readonly id: string;
  /** ISO time of run-start. */
  readonly date: string;
  readonly pipeline: string;
  /** The pipeline file, relative to the cache root, as recorded. */
  readonly file: string;
  readonly git?: GitInfo;
  /** Pipeline params (`params.seed`) and each stage's `with` (`stages.finetune.with.learning_rate`), flattened. */
  readonly params: Record<string, unknown>;
  /** Per stage: its StageResult metrics merged over the flat numbers of its artifact's metrics.json. */
  readonly metrics: Record<string, Metrics>;
  /** Per stage: the StageResult metrics when it reported any, else its metrics.json numbers. */
  readonly headline: Record<string, Metrics>;
  readonly durationMs: number;
  readonly counts: { readonly ran: number; readonly cached: number; readonly failed: number; readonly skipped: number };
  readonly status: RunStatus;
  /** stage -> why it ran (from stage-start). */
  readonly reasons: Record<string, string>;
  readonly stages: Record<string, StageRecord>;
  /** Stage ids in pipeline order. */
  readonly stageOrder: readonly string[];
  readonly selected: readonly string[];
  readonly argv: readonly string[];
}
