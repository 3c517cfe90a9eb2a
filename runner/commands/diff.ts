// `pipe diff [RUN_A] [RUN_B]`: what changed between two runs (params, code), what it did to the
// metrics, and which stages re-ran and why. Default: the last two runs of the pipeline.
import { stat } from 'node:fs/promises';
import pc from 'picocolors';
import { ExitError, EXIT } from '../errors.js';
import { formatDuration, wantColor } from '../output.js';
import {
  findRun,
  formatDelta,
  formatNumber,
  formatValue,
  loadHistory,
  pipelinesIn,
  sameValue,
  shortParam,
  stageOrderOf,
  type GitInfo,
  type RunStatus,
  type RunSummary,
  type StageRecord,
} from '../history.js';
import { formatDate, historyScope, paintStatus, renderTable, type HistoryFlags } from './runs.js';

export interface DiffFlags extends HistoryFlags {
  file?: string;
}

export interface RunRef {
  readonly id: string;
  readonly date: string;
  readonly pipeline: string;
  readonly status: RunStatus;
  readonly durationMs: number;
  readonly git?: GitInfo;
}

export interface ParamChange {
  readonly path: string;
  /** undefined: not set in that run. */
  readonly a?: unknown;
  readonly b?: unknown;
}

export interface MetricChange {
  readonly stage: string;
  readonly name: string;
  readonly a?: number;
  readonly b?: number;
  /** b - a, when both exist. */
  readonly delta?: number;
}

export type ArtifactChange = 'same' | 'changed' | 'same-output' | 'unknown';

export interface StageChange {
  readonly stage: string;
  readonly a?: StageRecord;
  readonly b?: StageRecord;
  /** B's artifact against A's: same key, a different key with the same bytes, different bytes. */
  readonly artifact: ArtifactChange;
  /** Why B ran, failed or was skipped; empty when it was cached. */
  readonly why: string;
}

export interface RunDiff {
  readonly a: RunRef;
  readonly b: RunRef;
  readonly codeChanged: boolean;
  readonly params: readonly ParamChange[];
  readonly metrics: readonly MetricChange[];
  readonly stages: readonly StageChange[];
}

/** The diff of two run summaries (A the older or reference run, B the one compared with it). */
export function diffRuns(a: RunSummary, b: RunSummary): RunDiff {
  const keys: string[] = [];
  for (const r of [b, a]) for (const k of Object.keys(r.params)) if (!keys.includes(k)) keys.push(k);
  const params = keys
    .filter((k) => !sameValue(a.params[k], b.params[k]))
    .map((k) => ({ path: k, ...(k in a.params ? { a: a.params[k] } : {}), ...(k in b.params ? { b: b.params[k] } : {}) }));

  const order = stageOrderOf([b, a]);
  const metrics: MetricChange[] = [];
  for (const stage of order) {
    const names: string[] = [];
    for (const r of [b, a]) for (const n of Object.keys(r.metrics[stage] ?? {})) if (!names.includes(n)) names.push(n);
    for (const name of names) {
      const va = a.metrics[stage]?.[name];
      const vb = b.metrics[stage]?.[name];
      metrics.push({
        stage,
        name,
        ...(va !== undefined ? { a: va } : {}),
        ...(vb !== undefined ? { b: vb } : {}),
        ...(va !== undefined && vb !== undefined ? { delta: vb - va } : {}),
      });
    }
  }

  const stages = order.map((stage): StageChange => {
    const sa = a.stages[stage];
    const sb = b.stages[stage];
    return { stage, ...(sa ? { a: sa } : {}), ...(sb ? { b: sb } : {}), artifact: artifactChange(sa, sb), why: whyOf(sb) };
  });

  return {
    a: ref(a),
    b: ref(b),
    codeChanged: (a.git?.commit ?? '') !== (b.git?.commit ?? '') || a.git?.dirty !== b.git?.dirty,
    params,
    metrics,
    stages,
  };
}

function ref(r: RunSummary): RunRef {
  return { id: r.id, date: r.date, pipeline: r.pipeline, status: r.status, durationMs: r.durationMs, ...(r.git ? { git: r.git } : {}) };
}

function artifactChange(a: StageRecord | undefined, b: StageRecord | undefined): ArtifactChange {
  if (!a?.key || !b?.key || !a.contentHash || !b.contentHash) return 'unknown';
  if (a.key === b.key) return 'same';
  return a.contentHash === b.contentHash ? 'same-output' : 'changed';
}

function whyOf(s: StageRecord | undefined): string {
  if (!s) return 'not in this run';
  switch (s.status) {
    case 'ran':
      return `${s.reason ?? 'ran'}${s.reused ? ' (same output as before)' : ''}`;
    case 'cached':
      return '';
    case 'failed':
      return s.error ?? 'failed';
    case 'skipped':
      return s.reason ?? 'skipped';
    case 'started':
      return `${s.reason ?? 'started'} (did not finish)`;
    default: {
      const never: never = s.status;
      return never;
    }
  }
}

/** A and B from the refs given (ids or unique prefixes); see the CLI help for the defaults. */
export function pickRuns(
  runs: readonly RunSummary[],
  refA: string | undefined,
  refB: string | undefined,
  pipeline: string | undefined,
): [RunSummary, RunSummary] {
  const find = (r: string): RunSummary => {
    try {
      return findRun(runs, r);
    } catch (e) {
      throw new ExitError(EXIT.usage, (e as Error).message);
    }
  };
  if (refA && refB) return [find(refA), find(refB)];
  if (refA) {
    // One run: against the newest run of its pipeline; the newest itself: against the one before.
    const a = find(refA);
    const same = runs.filter((r) => r.pipeline === a.pipeline);
    const newest = same[0]!;
    if (newest.id !== a.id) return [a, newest];
    const before = same[1];
    if (!before) throw new ExitError(EXIT.usage, `run ${a.id} is the only run of ${a.pipeline}: nothing to compare it with`);
    return [before, a];
  }
  const same = pipeline ? runs.filter((r) => r.pipeline === pipeline) : runs;
  if (same.length < 2) {
    throw new ExitError(EXIT.usage, `pipe diff needs two runs${pipeline ? ` of ${pipeline}` : ''}; ${same.length === 0 ? 'there are none' : 'there is one'}`);
  }
  return [same[1]!, same[0]!];
}

/**
 * `refs`: up to two run ids, after an optional pipeline file (`pipe diff pipelines/demo.yaml`,
 * as `pipe runs FILE`; the same as --file FILE).
 */
export async function diffCommand(refs: readonly string[], flags: DiffFlags): Promise<number> {
  const first = refs[0];
  const fileFirst =
    first !== undefined &&
    /\.ya?ml$/i.test(first) &&
    (await stat(first)
      .then((s) => s.isFile())
      .catch(() => false));
  if (fileFirst && flags.file) throw new ExitError(EXIT.usage, `diff: a pipeline file twice (${first} and --file ${flags.file})`);
  const file = fileFirst ? first : flags.file;
  const [refA, refB, ...rest] = fileFirst ? refs.slice(1) : refs;
  if (rest.length > 0) throw new ExitError(EXIT.usage, `diff: at most two runs to compare, got ${refs.length - (fileFirst ? 1 : 0)} (${refs.join(' ')})`);
  const scope = await historyScope(file, flags, 'diff');
  let pipeline = scope.pipeline;
  if (!pipeline && !refA) {
    const names = await pipelinesIn(scope.root);
    if (names.length > 1) {
      throw new ExitError(
        EXIT.usage,
        `runs of several pipelines are recorded in ${scope.root} (${names.join(', ')}): name one with --file FILE or --pipeline NAME`,
      );
    }
    pipeline = names[0];
  }
  const runs = await loadHistory(scope.root, refA ? {} : pipeline ? { pipeline } : {});
  const [a, b] = pickRuns(runs, refA, refB, pipeline);
  const diff = diffRuns(a, b);
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(diff, null, 2)}\n`);
    return EXIT.ok;
  }
  const colors = pc.createColors(wantColor(process.stdout));
  for (const line of formatDiff(diff, colors)) process.stdout.write(`${line}\n`);
  return EXIT.ok;
}

type Colors = ReturnType<typeof pc.createColors>;

export function formatDiff(d: RunDiff, colors: Colors): string[] {
  const lines: string[] = [];
  const commit = (r: RunRef): string => (r.git ? `${r.git.commit.slice(0, 7)}${r.git.dirty ? '*' : ''}` : '-');
  lines.push(
    ...renderTable(
      [
        { header: '', cell: (x: [string, RunRef]) => x[0] },
        { header: 'run', cell: (x) => x[1].id },
        { header: 'date', cell: (x) => formatDate(x[1].date) },
        { header: 'pipeline', cell: (x) => x[1].pipeline },
        { header: 'commit', cell: (x) => commit(x[1]) },
        { header: 'status', cell: (x) => x[1].status, paint: (x, t) => paintStatus(x[1].status, t, colors) },
        { header: 'time', cell: (x) => formatDuration(x[1].durationMs), right: true },
      ],
      [
        ['A', d.a],
        ['B', d.b],
      ],
      colors,
    ),
  );
  if (d.codeChanged) lines.push('', `code: ${commit(d.a)} -> ${commit(d.b)}`);

  lines.push('', colors.bold(d.params.length === 0 ? 'params: none changed' : `params (${d.params.length} changed)`));
  if (d.params.length > 0) {
    lines.push(
      ...indent(
        renderTable(
          [
            { header: 'param', cell: (p: ParamChange) => shortParam(p.path) },
            { header: 'A', cell: (p) => formatValue(p.a, 40) },
            { header: 'B', cell: (p) => formatValue(p.b, 40) },
          ],
          d.params,
          colors,
        ),
      ),
    );
  }

  lines.push('', colors.bold(d.metrics.length === 0 ? 'metrics: none recorded' : 'metrics'));
  if (d.metrics.length > 0) {
    lines.push(
      ...indent(
        renderTable(
          [
            { header: 'metric', cell: (m: MetricChange) => `${m.stage}.${m.name}` },
            { header: 'A', cell: (m) => formatNumber(m.a), right: true },
            { header: 'B', cell: (m) => formatNumber(m.b), right: true },
            { header: 'delta', cell: (m) => formatDelta(m.a, m.b), paint: (m, t) => (m.delta ? colors.cyan(t) : t) },
          ],
          d.metrics,
          colors,
        ),
      ),
    );
  }

  const ran = d.stages.filter((s) => s.b?.status === 'ran').length;
  lines.push('', colors.bold(`stages (${ran} re-ran in B)`));
  const artifactText: Record<ArtifactChange, string> = { same: 'same', changed: 'changed', 'same-output': 'same output', unknown: '' };
  lines.push(
    ...indent(
      renderTable(
        [
          { header: 'stage', cell: (s: StageChange) => s.stage },
          { header: 'A', cell: (s) => s.a?.status ?? '-' },
          { header: 'B', cell: (s) => s.b?.status ?? '-', paint: (s, t) => (s.b ? paintStage(s.b.status, t, colors) : t) },
          { header: 'artifact', cell: (s) => artifactText[s.artifact] },
          { header: 'why', cell: (s) => s.why },
        ],
        d.stages,
        colors,
      ),
    ),
  );
  return lines;
}

function paintStage(status: StageRecord['status'], text: string, colors: Colors): string {
  if (status === 'ran') return colors.cyan(text);
  if (status === 'failed') return colors.red(text);
  if (status === 'skipped' || status === 'started') return colors.yellow(text);
  return text;
}

function indent(lines: string[]): string[] {
  return lines.map((l) => `  ${l}`);
}
