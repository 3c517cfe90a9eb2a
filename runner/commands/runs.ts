// `pipe runs [FILE]`: the run history as a table, newest first: what differed between the runs
// (params, code) and what came out (headline metrics), with how much the cache saved.
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import pc from 'picocolors';
import { parse } from 'yaml';
import { cacheRoot, openPipeline } from '../open.js';
import { ExitError, EXIT } from '../errors.js';
import { defaultCacheRoot } from '../cache-home.js';
import { formatDuration, wantColor } from '../output.js';
import type { Pipeline } from '../pipeline.js';
import { differingParams, formatNumber, formatValue, headlineColumns, loadHistory, metricValue, shortParam, type RunSummary } from '../history.js';

export interface HistoryFlags {
  cacheDir?: string;
  /** Runs of this pipeline name (when no FILE is given). */
  pipeline?: string;
  json?: boolean;
}

export interface RunsFlags extends HistoryFlags {
  limit?: string;
}

export const DEFAULT_LIMIT = 20;

/** Where the history lives and which pipeline's runs to show: from FILE, or ./.pipe (or --cache-dir). */
export async function historyScope(file: string | undefined, flags: HistoryFlags, command = 'runs'): Promise<{ root: string; pipeline?: string }> {
  if (file) {
    const { root, name } = await pipelineHome(file, flags.cacheDir);
    return { root, pipeline: name };
  }
  const { root, note } = await defaultCacheRoot(`pipe ${command}`, flags.cacheDir);
  const isDir = await stat(root)
    .then((s) => s.isDirectory())
    .catch(() => false);
  if (!isDir) throw new ExitError(EXIT.usage, `no pipe cache at ${root}: name the pipeline file, or use --cache-dir`);
  if (note) process.stderr.write(`${note}\n`);
  return { root, ...(flags.pipeline ? { pipeline: flags.pipeline } : {}) };
}

/**
 * The cache root and name of a pipeline. History must stay readable while the pipeline file is
 * being edited into something invalid, so when it does not validate, its `name` and `cache.dir`
 * are read from the YAML directly.
 */
async function pipelineHome(file: string, cacheDir: string | undefined): Promise<{ root: string; name: string }> {
  try {
    const { pipeline, cache } = await openPipeline(file, cacheDir ? { cacheDir } : {});
    return { root: cache.root, name: pipeline.name };
  } catch (e) {
    if (!(e instanceof ExitError)) throw e;
    let doc: unknown;
    try {
      doc = parse(await readFile(file, 'utf8'));
    } catch {
      throw e;
    }
    const d = (doc ?? {}) as { name?: unknown; cache?: { dir?: unknown } };
    const name = typeof d.name === 'string' ? d.name : path.basename(file).replace(/\.ya?ml$/i, '');
    const dir = typeof d.cache?.dir === 'string' ? d.cache.dir : undefined;
    const abs = path.resolve(file);
    const partial = { dir: path.dirname(abs), ...(dir ? { cache: { dir } } : {}) } as Pick<Pipeline, 'dir' | 'cache'>;
    return { root: cacheRoot(partial as Pipeline, cacheDir), name };
  }
}

export function parseLimit(text: string | undefined): number {
  if (text === undefined) return DEFAULT_LIMIT;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new ExitError(EXIT.usage, `--limit: expected a positive integer, got ${text}`);
  return n;
}

export async function runsCommand(file: string | undefined, flags: RunsFlags): Promise<number> {
  const limit = parseLimit(flags.limit);
  const { root, pipeline } = await historyScope(file, flags);
  const runs = await loadHistory(root, { ...(pipeline ? { pipeline } : {}), limit });
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ runs, differing: differingParams(runs), metrics: headlineColumns(runs) }, null, 2)}\n`);
    return EXIT.ok;
  }
  if (runs.length === 0) {
    process.stdout.write(`no runs${pipeline ? ` of ${pipeline}` : ''} recorded in ${path.relative(process.cwd(), root) || root}\n`);
    return EXIT.ok;
  }
  const colors = pc.createColors(wantColor(process.stdout));
  for (const line of runsTable(runs, colors)) process.stdout.write(`${line}\n`);
  return EXIT.ok;
}

type Colors = ReturnType<typeof pc.createColors>;

/** The table of `pipe runs`; also used for a sweep's comparison (with `lead` columns first). */
export function runsTable(
  runs: readonly RunSummary[],
  colors: Colors,
  options: { lead?: { header: string; cell: (r: RunSummary) => string }[]; params?: readonly string[]; compact?: boolean } = {},
): string[] {
  const params = options.params ?? differingParams(runs);
  const metrics = headlineColumns(runs);
  const manyPipelines = new Set(runs.map((r) => r.pipeline)).size > 1;
  const cols: Column<RunSummary>[] = [
    ...(options.lead ?? []).map((l) => ({ header: l.header, cell: l.cell })),
    { header: 'run', cell: (r) => r.id },
    ...(options.compact
      ? []
      : [
          { header: 'date', cell: (r: RunSummary) => formatDate(r.date) },
          ...(manyPipelines ? [{ header: 'pipeline', cell: (r: RunSummary) => r.pipeline }] : []),
          { header: 'commit', cell: (r: RunSummary) => (r.git ? `${r.git.commit.slice(0, 7)}${r.git.dirty ? '*' : ''}` : '-') },
        ]),
    ...params.map((p) => ({ header: shortParam(p), cell: (r: RunSummary) => formatValue(r.params[p]) })),
    ...metrics.map((m) => ({ header: m.label, cell: (r: RunSummary) => formatNumber(metricValue(r, m)), right: true })),
    { header: 'status', cell: (r) => r.status, paint: (r: RunSummary, t: string) => paintStatus(r.status, t, colors) },
    { header: 'time', cell: (r) => formatDuration(r.durationMs), right: true },
    { header: 'ran', cell: (r) => String(r.counts.ran), right: true },
    { header: 'cached', cell: (r) => String(r.counts.cached), right: true },
  ];
  return renderTable(cols, runs, colors);
}

export interface Column<T> {
  header: string;
  cell: (row: T) => string;
  right?: boolean;
  /** Colour a cell after padding (widths are measured on plain text). */
  paint?: (row: T, padded: string) => string;
}

export function renderTable<T>(cols: readonly Column<T>[], rows: readonly T[], colors: Colors): string[] {
  const cells = rows.map((r) => cols.map((c) => c.cell(r)));
  const widths = cols.map((c, i) => Math.max(c.header.length, ...cells.map((row) => row[i]!.length)));
  const pad = (text: string, i: number): string => (cols[i]!.right ? text.padStart(widths[i]!) : text.padEnd(widths[i]!));
  const lines = [
    colors.bold(
      cols
        .map((c, i) => pad(c.header, i))
        .join('  ')
        .trimEnd(),
    ),
  ];
  rows.forEach((row, r) => {
    lines.push(
      cols
        .map((c, i) => {
          const padded = pad(cells[r]![i]!, i);
          return c.paint ? c.paint(row, padded) : padded;
        })
        .join('  ')
        .trimEnd(),
    );
  });
  return lines;
}

export function paintStatus(status: string, text: string, colors: Colors): string {
  if (status === 'ok') return colors.green(text);
  if (status === 'failed') return colors.red(text);
  return colors.yellow(text);
}

/** Local time, to the second: `2026-11-28 14:03:12`. */
export function formatDate(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '-';
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
