// Comparing runs of the history (which params differ, which metrics head the table) and the
// display helpers the runs/diff/sweep commands and the report share.
import { canonicalJson } from './canonical.js';
import type { RunSummary } from './history-types.js';

/** Param paths whose values are not the same in every run (absent counts as a value), in stable order. */
export function differingParams(runs: readonly RunSummary[]): string[] {
  if (runs.length < 2) return [];
  const keys: string[] = [];
  for (const r of runs) for (const k of Object.keys(r.params)) if (!keys.includes(k)) keys.push(k);
  return keys.filter((k) => new Set(runs.map((r) => valueKey(r.params[k]))).size > 1);
}

export function sameValue(a: unknown, b: unknown): boolean {
  return valueKey(a) === valueKey(b);
}

export interface MetricColumn {
  readonly stage: string;
  readonly name: string;
  /** The metric's name, or `stage.name` where two shown columns share the name. */
  readonly label: string;
}

/**
 * The headline metric columns for a set of runs: downstream stages first (the evaluation
 * matters more than the training loss); of columns with the same name and equal values in every
 * run (a report re-exporting the evaluation's numbers) only the downstream one is kept.
 */
export function headlineColumns(runs: readonly RunSummary[], max = 6): MetricColumn[] {
  const order = stageOrderOf(runs);
  const cols: { stage: string; name: string }[] = [];
  for (const stage of order) {
    for (const r of runs) {
      for (const name of Object.keys(r.headline[stage] ?? {})) {
        if (!cols.some((c) => c.stage === stage && c.name === name)) cols.push({ stage, name });
      }
    }
  }
  const valueOf = (r: RunSummary, stage: string, name: string): number | undefined => r.headline[stage]?.[name] ?? r.metrics[stage]?.[name];
  // Equal in every run: showing one loses nothing; keep the downstream one.
  const kept = cols.filter(
    (c, i) => !cols.slice(i + 1).some((u) => u.name === c.name && runs.every((r) => valueOf(r, u.stage, u.name) === valueOf(r, c.stage, c.name))),
  );
  const rank = (s: string): number => order.indexOf(s);
  const chosen = kept
    .map((c, i) => ({ c, i }))
    .sort((a, b) => rank(b.c.stage) - rank(a.c.stage) || a.i - b.i)
    .slice(0, max)
    .map(({ c }) => c);
  return chosen.map((c) => ({ ...c, label: chosen.filter((o) => o.name === c.name).length > 1 ? `${c.stage}.${c.name}` : c.name }));
}

export function metricValue(run: RunSummary, col: { stage: string; name: string }): number | undefined {
  return run.metrics[col.stage]?.[col.name];
}

/** Stage order across runs: the newest run's order, then stages only older runs had. */
export function stageOrderOf(runs: readonly RunSummary[]): string[] {
  const order: string[] = [];
  for (const r of runs) {
    for (const s of [...r.stageOrder, ...Object.keys(r.metrics), ...Object.keys(r.stages)]) if (!order.includes(s)) order.push(s);
  }
  return order;
}

// ---------------------------------------------------------------------------------------------
// Display helpers shared by the commands and the report

/** `stages.finetune.with.learning_rate` -> `finetune.learning_rate`; `params.seed` -> `seed`. */
export function shortParam(p: string): string {
  const m = /^stages\.([^.]+)\.with\.(.+)$/.exec(p);
  if (m) return `${m[1]}.${m[2]}`;
  return p.startsWith('params.') ? p.slice('params.'.length) : p;
}

export function formatValue(v: unknown, width = 24): string {
  const text = v === undefined ? '-' : typeof v === 'string' ? v : JSON.stringify(v);
  const oneLine = text.replace(/\s+/g, ' ');
  return oneLine.length > width ? `${oneLine.slice(0, width - 1)}…` : oneLine;
}

export function formatNumber(v: number | undefined): string {
  if (v === undefined || Number.isNaN(v)) return '-';
  if (Number.isInteger(v)) return String(v);
  if (Math.abs(v) >= 1000) return v.toFixed(1);
  return String(Number(v.toPrecision(4)));
}

export function formatDelta(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined) return '';
  const d = b - a;
  if (d === 0) return '=';
  const text = formatNumber(Math.abs(d));
  const rel = a !== 0 ? ` (${d > 0 ? '+' : '-'}${Math.abs((d / a) * 100).toFixed(1)}%)` : '';
  return `${d > 0 ? '+' : '-'}${text}${rel}`;
}

function valueKey(v: unknown): string {
  return v === undefined ? '\u0000absent' : canonicalJson(v);
}
