// index.html: one self-contained page (inline CSS and SVG, images as data: URIs, no script). A
// Content-Security-Policy forbids scripts and every network fetch, so even a file name that
// slipped past escaping could not run or phone home.
import { confusionHeatmap, lineChart } from './charts.js';
import * as fmt from './format.js';
import { html, join, raw, type Interpolation, type Markup } from './markup.js';
import type { AnalysisItem, AnalysisView, Available, History, ReportData, StageRow } from './model.js';
import type { ThumbnailResult } from './thumbnails.js';
import { STYLE } from './style.js';
import { RUN_MARK } from './run-marks.js';

export type ThumbnailLookup = (file: string) => ThumbnailResult;

export const CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

export function renderHtml(data: ReportData, thumb: ThumbnailLookup): string {
  const m = data.metrics;
  const wrong = m.confusion.reduce((s, row, i) => s + row.reduce((a, v, j) => a + (i === j ? 0 : v), 0), 0);
  const page = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="color-scheme" content="light">
<title>${data.title}</title>
<style>${raw(STYLE)}</style>
</head>
<body>
<header class="top">
<div class="wrap">
<h1>${data.title}</h1>
<p class="sub">pipeline <b>${data.pipelineName}</b>${raw(RUN_MARK.header)}</p>
<nav><a href="#results">Results</a><a href="#curves">Learning curves</a><a href="#pictures">Pictures</a><a href="#model">Model</a><a href="#pipeline">Pipeline</a>${raw(RUN_MARK.nav)}</nav>
</div>
</header>
<main class="wrap">
${data.verdicts.map((v) => html`<p class="verdict ${v.passed ? 'passed' : 'failed'}"><b>${v.passed ? 'Passed' : 'FAILED'}</b> ${v.stage}: ${v.message}</p>`)}
<section id="results">
<h2>Results on the ${m.on} set</h2>
<div class="cards">
${card('Accuracy', fmt.percent(m.accuracy, 2), html`<span class="meter"><span style="width:${fmt.percent(m.accuracy, 2)}"></span></span>`, 'accent')}
${card('Log loss', fmt.fixed(m.logLoss, 4), 'lower is better')}
${card('Images evaluated', fmt.integer(m.count), `${m.on} set, ${m.classes.length} classes${m.tta ? `, TTA: ${m.tta}` : ''}`)}
${card('Mistakes', fmt.integer(wrong), m.count > 0 ? `${fmt.percent(wrong / m.count)} of ${m.on}` : '', wrong > 0 ? 'warn' : '')}
${m.testCount !== undefined ? card('Test predictions', fmt.integer(m.testCount), 'in submission.csv') : ''}
</div>
<div class="split">
<div class="panel">
<h3>Per class</h3>
${perClassTable(data)}
</div>
<div class="panel">
<h3>Confusion matrix</h3>
<div class="heatmap-box">${confusionHeatmap(m.classes, m.confusion)}</div>
<p class="note">Rows: true class; columns: predicted. Colour is the share of the true class; blue on the diagonal is right, red off it is wrong.</p>
</div>
</div>
</section>
<section id="curves">
<h2>Learning curves</h2>
${curves(data.history)}
</section>
<section id="pictures">
<h2>Pictures</h2>
${pictures(data, thumb)}
</section>
<section id="model">
<h2>Model</h2>
${modelSection(data)}
</section>
<section id="pipeline">
<h2>Pipeline</h2>
${pipelineSection(data)}
</section>
${raw(RUN_MARK.body)}
</main>
<footer class="wrap">
${raw(RUN_MARK.footerStart)}This page holds only what its inputs determine (the cached artifact). The run that shows it (run id, date, timings, hosts, engines, earlier runs) is in the page <code>pipe run</code> prints, under <code>.pipe/runs/</code>.${raw(RUN_MARK.footerEnd)}
</footer>
</body>
</html>
`;
  return page.value;
}

function card(label: string, big: string, sub: Interpolation, tone = ''): Markup {
  return html`<div class="card${tone ? ` ${tone}` : ''}"><div class="label">${label}</div><div class="big">${big}</div><div class="small">${sub}</div></div>`;
}

function notAvailable(what: string, reason: string): Markup {
  return html`<p class="na">${what} not available: ${reason}.</p>`;
}

function perClassTable(data: ReportData): Markup {
  const m = data.metrics;
  const rows = m.classes.map((c) => {
    const pc = m.perClass[c];
    return pc
      ? html`<tr><th scope="row">${c}</th><td>${fmt.fixed(pc.precision, 3)}</td><td>${fmt.fixed(pc.recall, 3)}</td><td>${fmt.fixed(pc.f1, 3)}</td><td>${fmt.integer(pc.support)}</td></tr>`
      : html`<tr><th scope="row">${c}</th><td colspan="4">–</td></tr>`;
  });
  return html`<div class="scroll-x"><table class="data num"><thead><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

export function curves(history: Available<History>): Markup {
  if (!history.ok) return notAvailable('Learning curves', history.reason);
  const epochs = history.value.epochs;
  if (epochs.length === 0) return notAvailable('Learning curves', 'history.json lists no epochs');
  const hasValid = epochs.some((e) => e.valLoss !== null || e.valAccuracy !== null);
  const series = (pick: (e: (typeof epochs)[number]) => number | null): [number, number | null][] => epochs.map((e) => [e.epoch, pick(e)]);
  const TRAIN = '#1f6fd1';
  const VALID = '#e07a10';
  const loss = lineChart({
    title: 'Loss',
    xLabel: 'Epoch',
    yLabel: 'loss',
    yInclude: [0],
    series: [
      { name: 'train', points: series((e) => e.loss), color: TRAIN },
      ...(hasValid ? [{ name: 'valid', points: series((e) => e.valLoss), color: VALID, dashed: true }] : []),
    ],
  });
  const accuracy = lineChart({
    title: 'Accuracy',
    xLabel: 'Epoch',
    yLabel: 'accuracy',
    yInclude: [1],
    format: (y) => fmt.percent(y, 0),
    series: [
      { name: 'train', points: series((e) => e.accuracy), color: TRAIN },
      ...(hasValid ? [{ name: 'valid', points: series((e) => e.valAccuracy), color: VALID, dashed: true }] : []),
    ],
  });
  const kept = history.value.kept;
  const rows = epochs.map(
    (e) =>
      html`<tr${e.epoch === kept?.epoch ? html` class="kept"` : ''}><td>${e.epoch}${e.epoch === kept?.epoch ? ' (kept)' : ''}</td><td>${fmt.fixed(e.loss)}</td><td>${fmt.fixed(e.accuracy)}</td><td>${fmt.fixed(e.valLoss)}</td><td>${fmt.fixed(e.valAccuracy)}</td><td>${e.seconds === null ? '–' : fmt.duration(e.seconds * 1000)}</td></tr>`,
  );
  return html`<div class="charts"><div class="panel">${loss}</div><div class="panel">${accuracy}</div></div>
${hasValid ? '' : html`<p class="note">No validation numbers in history.json: training curves only.</p>`}
${kept ? html`<p class="note">The model holds the weights of epoch ${kept.epoch} of ${epochs.length}: ${kept.reason}.${history.value.earlyStop ? ` Stopped early: ${history.value.earlyStop}.` : ''}</p>` : ''}
<details><summary>Per-epoch numbers</summary>
<div class="scroll-x"><table class="data num"><thead><tr><th>epoch</th><th>loss</th><th>accuracy</th><th>val loss</th><th>val accuracy</th><th>time</th></tr></thead><tbody>${rows}</tbody></table></div>
</details>`;
}

const KIND_LABEL: Readonly<Record<string, string>> = { correct: 'correct', wrong: 'wrong', uncertain: 'uncertain' };

function pictures(data: ReportData, thumb: ThumbnailLookup): Markup {
  if (!data.analysis.ok) return notAvailable('Pictures', data.analysis.reason);
  const views = data.analysis.value.views;
  if (views.length === 0) return notAvailable('Pictures', 'analysis.json has no views');
  return join(
    views.map((v) => view(v, data.maxPerView, thumb)),
    '\n',
  );
}

function view(v: AnalysisView, max: number, thumb: ThumbnailLookup): Markup {
  const shown = v.items.slice(0, max);
  const kind = KIND_LABEL[v.kind] ?? 'other';
  const more = v.items.length > shown.length ? html` <span class="count">showing ${shown.length} of ${v.items.length}</span>` : '';
  const body = shown.length === 0 ? html`<p class="na">No images in this view.</p>` : html`<div class="grid">${shown.map((it) => figure(it, thumb))}</div>`;
  return html`<div class="view" id="view-${v.id}">
<h3><span class="badge ${kind}">${v.kind}</span> ${v.title}${more}</h3>
${body}
</div>`;
}

function figure(item: AnalysisItem, thumb: ThumbnailLookup): Markup {
  const right = item.label === item.predicted;
  const t = thumb(item.file);
  const p = item.probs[item.predicted] ?? item.probability;
  const probLabel = item.probs[item.predicted] !== undefined ? `P(${item.predicted})` : 'p';
  const picture = t.ok
    ? html`<img src="${t.thumb.dataUri}" width="${t.thumb.width}" height="${t.thumb.height}" alt="${item.file}">`
    : html`<div class="missing">${t.reason}</div>`;
  const others =
    Object.entries(item.probs).length > 1 && Object.entries(item.probs).length <= 4
      ? html`<div class="probs">${join(
          Object.entries(item.probs).map(([c, q]) => html`${c} ${q.toFixed(3)}`),
          ' · ',
        )}</div>`
      : '';
  return html`<figure class="${right ? 'right' : 'wrong'}">
<div class="frame">${picture}<span class="mark" title="${right ? 'correct' : 'wrong'}">${right ? '✓' : '✗'}</span></div>
<figcaption>
<div class="fname" title="${item.file}">${fmt.basename(item.file)}</div>
<div class="labels">true <b>${item.label}</b> · predicted <b class="${right ? '' : 'bad'}">${item.predicted}</b></div>
<div class="prob"><span class="meter"><span style="width:${fmt.percent(p, 1)}"></span></span><span>${probLabel} ${p.toFixed(3)}</span></div>
${others}
</figcaption>
</figure>`;
}

function keyValues(entries: Readonly<Record<string, unknown>>): Markup {
  const rows = Object.entries(entries).map(([k, v]) => html`<tr><th scope="row">${k}</th><td><code>${fmt.value(v)}</code></td></tr>`);
  return rows.length === 0 ? html`<p class="na">none</p>` : html`<table class="kv">${rows}</table>`;
}

function modelSection(data: ReportData): Markup {
  const parts: Markup[] = [];
  parts.push(
    html`<div class="panel"><h3>Training</h3>${data.finetune.ok ? keyValues(data.finetune.value) : notAvailable('Training details', data.finetune.reason)}</div>`,
  );
  parts.push(
    html`<div class="panel"><h3>Preprocessing</h3>${data.preprocess.ok ? keyValues(data.preprocess.value) : notAvailable('Preprocessing', data.preprocess.reason)}</div>`,
  );
  return html`<div class="split">${parts}</div>`;
}

function stageRow(s: StageRow): Markup {
  const chips = Object.entries(s.metrics).map(([k, v]) => html`<span class="chip metric">${k} ${Number.isInteger(v) ? v : v.toFixed(4)}</span>`);
  return html`<tr><th scope="row">${s.stage}</th><td class="nw"><code>${s.uses}</code></td><td class="chips-cell"><div class="chips">${chips}</div></td></tr>`;
}

function pipelineSection(data: ReportData): Markup {
  const params = data.stages.map((s) => html`<div class="panel params"><h4>${s.stage} <span class="uses">${s.uses}</span></h4>${keyValues(s.params)}</div>`);
  return html`<div class="table-scroll"><table class="data stages"><thead><tr><th>stage</th><th>uses</th><th>metrics</th></tr></thead>
<tbody>${data.stages.map(stageRow)}</tbody></table></div>
<h3>Effective parameters</h3>
<div class="param-grid">${params}</div>`;
}
