// The run history: `.pipe/runs/<run-id>.jsonl` records read back as typed summaries, for
// `pipe runs`, `pipe diff`, sweeps and the report's "earlier runs". Pure reading: it never
// writes, and it depends only on node:fs and canonical JSON so the report stage can use it.
// A record may be cut short (a crash, or a run still in progress): what is there is used.
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Metrics, RunStatus, RunSummary, StageRecord } from './history-types.js';

// Comparing and displaying runs lives in history-compare.ts; re-exported for one import site.
export * from './history-compare.js';

// The summary types live in history-types.ts, which history-compare.ts reads too.
export type { GitInfo, Metrics, RunStatus, RunSummary, StageRecord, StageStatus } from './history-types.js';

/** The raw events of one record, as written by runner/events.ts (typed loosely: old records may differ). */
export interface RunRecord {
  readonly id: string;
  readonly events: readonly Record<string, unknown>[];
}

// ---------------------------------------------------------------------------------------------
// Parsing

/** Parse a jsonl record; lines that are not JSON objects (a line cut by a crash) are dropped. */
export function parseRecord(id: string, text: string): RunRecord {
  const events: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const e = JSON.parse(line) as unknown;
      if (isObject(e) && typeof e['type'] === 'string') events.push(e);
    } catch {
      // a partial last line
    }
  }
  return { id, events };
}

/** Reads the artifact side of metrics; injected so summaries are testable on plain data. */
export interface ArtifactReader {
  /** StageResult metrics recorded in cache/<key>/meta.json. */
  metaMetrics(key: string): Promise<Metrics | undefined>;
  /** Flat numbers of cache/<key>/data/metrics.json. */
  fileMetrics(key: string): Promise<Metrics | undefined>;
}

export const noArtifacts: ArtifactReader = {
  metaMetrics: async () => undefined,
  fileMetrics: async () => undefined,
};

/** Reads artifacts of the cache at `root`, each key at most once. */
export function cacheArtifactReader(root: string): ArtifactReader {
  const metas = new Map<string, Promise<Metrics | undefined>>();
  const files = new Map<string, Promise<Metrics | undefined>>();
  const entry = (key: string): string => path.join(root, 'cache', path.basename(key));
  return {
    metaMetrics(key) {
      let p = metas.get(key);
      if (!p) {
        p = readJson(path.join(entry(key), 'meta.json')).then((m) => (isObject(m) ? flatNumbers(m['metrics']) : undefined));
        metas.set(key, p);
      }
      return p;
    },
    fileMetrics(key) {
      let p = files.get(key);
      if (!p) {
        p = readJson(path.join(entry(key), 'data', 'metrics.json')).then(flatNumbers);
        files.set(key, p);
      }
      return p;
    },
  };
}

/** A summary of a record, or undefined when it has no run-start (not a run record). */
export async function summarize(record: RunRecord, artifacts: ArtifactReader = noArtifacts): Promise<RunSummary | undefined> {
  const start = record.events.find((e) => e['type'] === 'run-start');
  if (!start) return undefined;
  const stagesDecl = isObject(start['stages']) ? start['stages'] : {};
  const stageOrder = Object.keys(stagesDecl);
  const stages: Record<string, StageRecord> = {};
  const reasons: Record<string, string> = {};
  const metrics: Record<string, Metrics> = {};
  const headline: Record<string, Metrics> = {};
  const counts = { ran: 0, cached: 0, failed: 0, skipped: 0 };
  let end: Record<string, unknown> | undefined;
  let lastTime: string | undefined;

  for (const e of record.events) {
    if (typeof e['time'] === 'string') lastTime = e['time'];
    const stage = typeof e['stage'] === 'string' ? e['stage'] : undefined;
    const decl = stage ? stagesDecl[stage] : undefined;
    const uses = isObject(decl) && typeof decl['uses'] === 'string' ? { uses: decl['uses'] } : {};
    switch (e['type']) {
      case 'stage-start':
        if (!stage) break;
        stages[stage] = { status: 'started', ...uses, ...str(e, 'key'), ...str(e, 'reason') };
        if (typeof e['reason'] === 'string') reasons[stage] = e['reason'];
        break;
      case 'stage-finish':
        if (!stage) break;
        counts.ran++;
        stages[stage] = {
          ...stages[stage],
          status: 'ran',
          ...uses,
          ...str(e, 'key'),
          ...str(e, 'contentHash'),
          ...num(e, 'durationMs'),
          ...(typeof e['reused'] === 'boolean' ? { reused: e['reused'] } : {}),
        };
        break;
      case 'stage-cached':
        if (!stage) break;
        counts.cached++;
        stages[stage] = { status: 'cached', ...uses, ...str(e, 'key'), ...str(e, 'contentHash'), ...num(e, 'durationMs') };
        break;
      case 'stage-failed':
        if (!stage) break;
        counts.failed++;
        stages[stage] = { ...stages[stage], status: 'failed', ...uses, ...str(e, 'error'), ...num(e, 'durationMs') };
        break;
      case 'stage-skipped':
        if (!stage) break;
        counts.skipped++;
        stages[stage] = { status: 'skipped', ...uses, ...str(e, 'reason') };
        break;
      case 'run-end':
        end = e;
        break;
      default:
        break;
    }
  }

  // Metrics: a cached stage's numbers belong to this run as much as a stage that ran.
  for (const e of record.events) {
    const stage = typeof e['stage'] === 'string' ? e['stage'] : undefined;
    const key = typeof e['key'] === 'string' ? e['key'] : undefined;
    if (!stage) continue;
    let result: Metrics | undefined;
    if (e['type'] === 'stage-finish') result = flatNumbers(e['metrics']);
    else if (e['type'] === 'stage-cached') result = key ? await artifacts.metaMetrics(key) : undefined;
    else continue;
    const file = key ? await artifacts.fileMetrics(key) : undefined;
    const merged = { ...(file ?? {}), ...(result ?? {}) };
    if (Object.keys(merged).length === 0) continue;
    metrics[stage] = merged;
    headline[stage] = result && Object.keys(result).length > 0 ? result : (file ?? {});
  }

  const date = typeof start['time'] === 'string' ? start['time'] : dateFromId(record.id);
  const endStatus = end?.['status'];
  const status: RunStatus = endStatus === 'ok' || endStatus === 'failed' || endStatus === 'interrupted' ? endStatus : 'incomplete';
  const durationMs =
    typeof end?.['durationMs'] === 'number' ? end['durationMs'] : lastTime && date ? Math.max(0, Date.parse(lastTime) - Date.parse(date)) || 0 : 0;
  const git =
    isObject(start['git']) && typeof start['git']['commit'] === 'string'
      ? { commit: start['git']['commit'], dirty: start['git']['dirty'] === true }
      : undefined;

  return {
    id: typeof start['runId'] === 'string' ? start['runId'] : record.id,
    date,
    pipeline: typeof start['pipeline'] === 'string' ? start['pipeline'] : '',
    file: typeof start['file'] === 'string' ? start['file'] : '',
    ...(git ? { git } : {}),
    params: flattenParams(isObject(start['params']) ? start['params'] : {}, stagesDecl),
    metrics,
    headline,
    durationMs,
    counts,
    status,
    reasons,
    stages,
    stageOrder,
    selected: Array.isArray(start['selected']) ? start['selected'].filter((s): s is string => typeof s === 'string') : [],
    argv: Array.isArray(start['argv']) ? start['argv'].filter((s): s is string => typeof s === 'string') : [],
  };
}

/**
 * `params.x` for pipeline params, `stages.<id>.with.x` for stage params; objects are flattened,
 * arrays are leaves. A stage param that holds a `${params.x}` (the stage's `from_params`) is left
 * out: its changes are params.x's.
 */
export function flattenParams(params: Record<string, unknown>, stages: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const derived = new Set<string>();
  for (const decl of Object.values(stages)) {
    if (isObject(decl) && Array.isArray(decl['from_params'])) for (const p of decl['from_params']) if (typeof p === 'string') derived.add(p);
  }
  const isDerived = (leaf: string): boolean => derived.has(leaf) || [...derived].some((d) => d.startsWith(`${leaf}[`));
  const walk = (prefix: string, value: unknown): void => {
    if (isObject(value)) {
      for (const [k, v] of Object.entries(value)) walk(`${prefix}.${k}`, v);
    } else if (value !== undefined && !isDerived(prefix)) {
      out[prefix] = value;
    }
  };
  for (const [k, v] of Object.entries(params)) walk(`params.${k}`, v);
  for (const [id, decl] of Object.entries(stages)) {
    if (isObject(decl) && isObject(decl['with'])) walk(`stages.${id}.with`, decl['with']);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Loading

export interface HistoryQuery {
  /** Only runs of this pipeline (its `name`). */
  readonly pipeline?: string;
  /** At most this many, newest first. */
  readonly limit?: number;
}

/** Raw records under <root>/runs, newest first (by run-start time, then id). */
export async function readRecords(root: string): Promise<RunRecord[]> {
  const dir = path.join(root, 'runs');
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.jsonl'));
  } catch {
    return [];
  }
  const records = await Promise.all(
    names.map(async (n) => parseRecord(n.slice(0, -'.jsonl'.length), await readFile(path.join(dir, n), 'utf8').catch(() => ''))),
  );
  return records.sort((a, b) => compareNewestFirst(startTime(a), a.id, startTime(b), b.id));
}

/** Summaries of the runs in the cache at `root`, newest first. */
export async function loadHistory(root: string, query: HistoryQuery = {}): Promise<RunSummary[]> {
  const artifacts = cacheArtifactReader(root);
  const out: RunSummary[] = [];
  for (const record of await readRecords(root)) {
    if (query.limit !== undefined && out.length >= query.limit) break;
    const start = record.events.find((e) => e['type'] === 'run-start');
    if (!start || (query.pipeline !== undefined && start['pipeline'] !== query.pipeline)) continue;
    const s = await summarize(record, artifacts);
    if (s) out.push(s);
  }
  return out;
}

/** The pipelines that have runs in the cache at `root`, most recently run first. */
export async function pipelinesIn(root: string): Promise<string[]> {
  const names: string[] = [];
  for (const r of await readRecords(root)) {
    const p = r.events.find((e) => e['type'] === 'run-start')?.['pipeline'];
    if (typeof p === 'string' && !names.includes(p)) names.push(p);
  }
  return names;
}

/** A run by id or unique id prefix among `runs`; throws a message naming candidates otherwise. */
export function findRun(runs: readonly RunSummary[], ref: string): RunSummary {
  const exact = runs.find((r) => r.id === ref);
  if (exact) return exact;
  const matches = runs.filter((r) => r.id.startsWith(ref));
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0)
    throw new Error(
      `no run ${ref}${
        runs.length
          ? ` (newest: ${runs
              .slice(0, 3)
              .map((r) => r.id)
              .join(', ')})`
          : ' (no runs recorded)'
      }`,
    );
  throw new Error(`run ${ref} is ambiguous: ${matches.map((r) => r.id).join(', ')}`);
}

// ---------------------------------------------------------------------------------------------

function compareNewestFirst(ta: string, ia: string, tb: string, ib: string): number {
  if (ta !== tb) return ta < tb ? 1 : -1;
  return ia < ib ? 1 : ia > ib ? -1 : 0;
}

function startTime(r: RunRecord): string {
  const t = r.events.find((e) => e['type'] === 'run-start')?.['time'];
  return typeof t === 'string' ? t : dateFromId(r.id);
}

/** `20261128-140312-ab12` -> `2026-11-28T14:03:12.000Z` (ids are UTC stamps). */
export function dateFromId(id: string): string {
  const m = /^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})/.exec(id);
  return m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.000Z` : '';
}

function flatNumbers(v: unknown): Metrics | undefined {
  if (!isObject(v)) return undefined;
  const out: Metrics = {};
  for (const [k, x] of Object.entries(v)) if (typeof x === 'number' && Number.isFinite(x)) out[k] = x;
  return out;
}

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function str(e: Record<string, unknown>, k: string): Record<string, string> {
  const v = e[k];
  return typeof v === 'string' ? { [k]: v } : {};
}

function num(e: Record<string, unknown>, k: string): Record<string, number> {
  const v = e[k];
  return typeof v === 'number' ? { [k]: v } : {};
}
