// The run view of a report: the cached report (only what its inputs determine, the same bytes
// whichever run makes it) with one run's facts put in: its id, date and pipe version, each
// stage's duration, origin (made by this run, reused from an earlier one, pulled from a remote),
// host and engine, and the earlier runs of the pipeline. `pipe run` writes it outside the cache
// at the end of every run that made or reused a report (the stage's `runView`), so a report
// served from the cache never shows the run that first made it as if it were this one.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Artifact, RunViewFacts } from '../../runner/types.js';
import type { RecentRuns } from '../../runner/stage-api.js';
import { isStub, pulledInfo, stubRemote } from '../../runner/stage-api.js';
import * as fmt from './format.js';
import { mdText, table } from './markdown.js';
import { html, type Markup } from './markup.js';
import type { RemoteOrigin } from './model.js';
import { RUN_MARK } from './run-marks.js';
import { engineText } from './training-engine.js';

/** One stage of the report's lineage as this run had it. */
export interface RunStageRow {
  readonly stage: string;
  readonly uses: string;
  readonly durationMs: number;
  readonly createdAt: string;
  /** The run that made the artifact. */
  readonly runId: string;
  /** Made by this run (else reused from the cache of an earlier one). */
  readonly thisRun: boolean;
  readonly host?: string;
  /** What the stage said of how it computed (backend, engine, device, warnings...), from meta.json. */
  readonly info: Readonly<Record<string, unknown>>;
  /** The artifact came from a remote cache (`pipe run --pull`), as its meta.json records it. */
  readonly remote?: RemoteOrigin;
}

export interface RunFacts {
  readonly runId: string;
  /** ISO time the run started. */
  readonly startedAt: string;
  readonly pipeVersion: string;
  /** The report's upstream stages in dependency order, the report last. */
  readonly stages: readonly RunStageRow[];
  /** The last runs of this pipeline (params that differ, headline metrics), when there are several. */
  readonly earlierRuns?: RecentRuns;
}

/** A lineage artifact as run `runId` had it. */
export function runStageRow(stage: string, a: Artifact, runId: string): RunStageRow {
  const remote = remoteOrigin(a);
  return {
    stage,
    uses: a.meta.uses,
    durationMs: a.meta.durationMs,
    createdAt: a.meta.createdAt,
    runId: a.meta.runId,
    thisRun: a.meta.runId === runId,
    ...(a.meta.host ? { host: a.meta.host } : {}),
    info: a.meta.info ?? {},
    ...(remote ? { remote } : {}),
  };
}

/**
 * Where an artifact came from when a remote cache supplied it: meta.json of a pulled artifact
 * records `pulled: { remote, at, ... }` (so a later run that reuses it still knows); a stub (only
 * its remote meta.json was read: nothing here read its files) has no local copy.
 */
export function remoteOrigin(a: Artifact): RemoteOrigin | undefined {
  const pulled = pulledInfo(a);
  if (pulled && typeof pulled.remote === 'string') {
    return {
      url: pulled.remote,
      ...(typeof pulled.at === 'string' ? { at: pulled.at } : {}),
      downloaded: true,
      ...(pulled.partial ? { partial: { files: pulled.files, of: pulled.partial.of } } : {}),
    };
  }
  const stub = isStub(a) ? stubRemote(a) : undefined;
  return stub ? { url: stub, downloaded: false } : undefined;
}

/** `text` with each marker replaced; undefined when one is not there exactly once (not a report this version made). */
function fill(text: string, parts: Readonly<Record<string, string>>): string | undefined {
  let out = text;
  for (const [mark, value] of Object.entries(parts)) {
    const pieces = out.split(mark);
    if (pieces.length !== 2) return undefined;
    out = pieces.join(value);
  }
  return out;
}

/** The cached index.html with the run's facts; undefined when it has no place for them. */
export function renderRunHtml(cached: string, run: RunFacts): string | undefined {
  const start = cached.indexOf(RUN_MARK.footerStart);
  const end = cached.indexOf(RUN_MARK.footerEnd);
  if (start < 0 || end < start) return undefined;
  const page = cached.slice(0, start) + RUN_MARK.footerStart + cached.slice(end);
  const runs = run.earlierRuns && run.earlierRuns.runs.length > 1 ? run.earlierRuns : undefined;
  const body = html`<section id="run">
<h2>This run</h2>
${runTable(run)}
</section>
${
  runs
    ? html`<section id="runs">
<h2>Earlier runs</h2>
${runsSection(runs)}
</section>`
    : ''
}`;
  return fill(page, {
    [RUN_MARK.header]: html` · run <code>${run.runId}</code> · ${fmt.date(run.startedAt)} · pipe ${run.pipeVersion}`.value,
    [RUN_MARK.nav]: html`<a href="#run">This run</a>${runs ? html`<a href="#runs">Earlier runs</a>` : ''}`.value,
    [RUN_MARK.body]: body.value,
    [RUN_MARK.footerStart]:
      html`Run <code>${run.runId}</code> of ${fmt.date(run.startedAt)}, pipe ${run.pipeVersion}. The results come from the cached report (they depend only on its inputs); "This run" and "Earlier runs" are this run's.`
        .value,
  });
}

/** The cached report.md with the run's facts; undefined when it has no place for them. */
export function renderRunMarkdown(cached: string, run: RunFacts): string | undefined {
  const rows = run.stages.map((s) => [
    mdText(s.stage),
    mdText(s.uses),
    fmt.duration(s.durationMs),
    `${fmt.date(s.createdAt)}, ${s.thisRun ? 'this run' : `cached from run ${mdText(s.runId)}`}${remoteText(s)}`,
  ]);
  const shown = (s: RunStageRow, k: string): unknown => (k === 'engine' ? engineText(s.info) : s.info[k]);
  const details = run.stages.flatMap((s) =>
    ['backend', 'engine', 'device', 'slurm', 'warnings'].flatMap((k) =>
      shown(s, k) === undefined ? [] : [`${mdText(s.stage)} ${k}: ${mdText(fmt.value(shown(s, k), 80))}`],
    ),
  );
  const body = ['### Stages', '', table(['stage', 'uses', 'duration', 'computed'], rows, ['l', 'l', 'r', 'l']), ''];
  if (details.length > 0) body.push(details.join(' · '), '');
  return fill(cached, {
    [RUN_MARK.header]: ` · run \`${run.runId.replace(/`/g, "'")}\` · ${fmt.date(run.startedAt)} · pipe ${mdText(run.pipeVersion)}`,
    [RUN_MARK.body]: body.join('\n'),
  });
}

/** Where a stage's artifact came from when a remote cache supplied it (Markdown). */
function remoteText(s: RunStageRow): string {
  const r = s.remote;
  if (!r) return '';
  if (!r.downloaded) return `; on remote ${mdText(r.url)} (only its meta.json was read)`;
  const partial = r.partial ? ` (partly: ${fmt.integer(r.partial.files)} of ${fmt.integer(r.partial.of)} files)` : '';
  return `; **pulled** from ${mdText(r.url)}${r.at ? ` ${fmt.date(r.at)}` : ''}${partial}`;
}

function runTable(run: RunFacts): Markup {
  return html`<div class="table-scroll"><table class="data stages"><thead><tr><th>stage</th><th>uses</th><th>duration</th><th>computed</th><th>host</th><th>details</th></tr></thead>
<tbody>${run.stages.map(stageRow)}</tbody></table></div>
<p class="note">"this run": made by run <code>${run.runId}</code>; "cached": made by an earlier run and reused by this one (the run id says which); durations are the ones recorded then. "pulled": taken from a remote cache (<code>pipe run --pull</code>) instead of being computed here, as recorded in the artifact's meta.json; "partly": only the files the stages that read it declare.</p>`;
}

function stageRow(s: RunStageRow): Markup {
  // The engine that trained (train_engine) is named in the engine chip.
  const chips = Object.entries(s.info)
    .filter(([k]) => k !== 'train_engine')
    .map(([k, v]) => html`<span class="chip">${k}: ${fmt.value(k === 'engine' ? engineText(s.info) : v, 60)}</span>`);
  const when = html`${fmt.date(s.createdAt)}<br>${s.thisRun ? html`<span class="badge run">this run</span>` : html`<span class="badge cached">cached</span> <code>${s.runId}</code>`}${remoteNote(s)}`;
  return html`<tr><th scope="row">${s.stage}</th><td class="nw"><code>${s.uses}</code></td><td class="nw">${fmt.duration(s.durationMs)}</td><td class="nw">${when}</td><td class="nw">${s.host ?? '–'}</td><td class="chips-cell"><div class="chips">${chips}</div></td></tr>`;
}

/** Where a stage's artifact came from when a remote cache supplied it (HTML). */
function remoteNote(s: RunStageRow): Markup | string {
  const r = s.remote;
  if (!r) return '';
  if (!r.downloaded)
    return html`<br><span class="badge remote">on remote</span> <code>${r.url}</code> <span class="muted">(only its meta.json was read)</span>`;
  const partial = r.partial ? html` <span class="muted">(partly: ${fmt.integer(r.partial.files)} of ${fmt.integer(r.partial.of)} files)</span>` : '';
  return html`<br><span class="badge remote">pulled</span> from <code>${r.url}</code>${r.at ? html`, ${fmt.date(r.at)}` : ''}${partial}`;
}

function runsSection(r: RecentRuns): Markup {
  const head = html`<tr><th>run</th><th>date</th><th>status</th>${r.params.map((p) => html`<th>${p.label}</th>`)}${r.metrics.map((m) => html`<th>${m.label}</th>`)}</tr>`;
  const rows = r.runs.map(
    (run) =>
      html`<tr class="${run.current ? 'current' : ''}"><td><code>${run.id}</code>${run.current ? html` <span class="chip metric">this run</span>` : ''}</td><td>${fmt.date(run.date)}</td><td>${run.status}</td>${r.params.map(
        (p) => html`<td>${p.path in run.params ? fmt.value(run.params[p.path], 40) : '–'}</td>`,
      )}${r.metrics.map((m) => html`<td>${m.label in run.metrics ? fmt.value(run.metrics[m.label], 12) : '–'}</td>`)}</tr>`,
  );
  return html`<div class="table-scroll"><table class="data runs"><thead>${head}</thead><tbody>${rows}</tbody></table></div>
<p class="note">The last runs of this pipeline, newest first, with the parameters that differ between them (<code>pipe runs</code>, <code>pipe diff</code>).</p>`;
}

/**
 * The report stage's `runView`: its cached index.html and report.md with the run's facts put in;
 * undefined when they cannot be read here or lack the places (then the artifact is shown as it is).
 */
export async function reportRunView(a: Artifact, run: RunViewFacts): Promise<Record<string, string> | undefined> {
  const cachedHtml = await readFile(path.join(a.dir, 'index.html'), 'utf8').catch(() => undefined);
  const cachedMd = await readFile(path.join(a.dir, 'report.md'), 'utf8').catch(() => undefined);
  if (cachedHtml === undefined || cachedMd === undefined) return undefined;
  const facts: RunFacts = {
    runId: run.runId,
    startedAt: run.startedAt,
    pipeVersion: run.pipeVersion,
    stages: run.lineage.map((l) => runStageRow(l.stage, l.artifact, run.runId)),
    ...(run.earlierRuns ? { earlierRuns: run.earlierRuns } : {}),
  };
  const page = renderRunHtml(cachedHtml, facts);
  const md = renderRunMarkdown(cachedMd, facts);
  return page === undefined || md === undefined ? undefined : { 'index.html': page, 'report.md': md };
}
