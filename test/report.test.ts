import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { StageError } from '../runner/types.js';
import { reportStage, type ReportParams } from '../stages/report.js';
import { niceTicks } from '../stages/report/charts.js';
import { mdText } from '../stages/report/markdown.js';
import { escapeHtml, html } from '../stages/report/markup.js';
import { parseCsv } from '../stages/report/csv.js';
import { parseHistory, parseMetrics } from '../stages/report/model.js';
import { resolveInside } from '../stages/report/thumbnails.js';
import { fixtureArtifacts, makeReportFixture, NASTY_FILE, type FixtureOptions, type ReportFixture } from './helpers/report-fixtures.js';
import { makeTestContext, type TestContext } from './helpers/stage-context.js';
import { makeStub } from '../runner/remote/stub.js';
import type { StoredMeta } from '../runner/cache.js';
import type { LineageEntry } from '../runner/types.js';
import { renderRunHtml, renderRunMarkdown, runStageRow, type RunFacts } from '../stages/report/run-view.js';

const DEFAULTS: ReportParams = { thumbnails: 160, max_per_view: 8 };
const PKG = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** The run view `pipe run` writes: the cached page and report.md with run test-run's facts. */
function runView(cached: { html: string; md: string }, lineage: readonly LineageEntry[], extra: Partial<RunFacts> = {}): { html: string; md: string } {
  const facts: RunFacts = {
    runId: 'test-run',
    startedAt: '2026-11-28T14:02:00.000Z',
    pipeVersion: PKG.version,
    stages: lineage.map((l) => runStageRow(l.stage, l.artifact, 'test-run')),
    ...extra,
  };
  const html = renderRunHtml(cached.html, facts);
  const md = renderRunMarkdown(cached.md, facts);
  assert.ok(html !== undefined && md !== undefined, 'the cached report has the places for the run view');
  return { html, md };
}

interface Ran {
  readonly fixture: ReportFixture;
  readonly ctx: TestContext<ReportParams>;
  readonly html: string;
  readonly md: string;
  readonly result: Awaited<ReturnType<typeof reportStage.run>>;
}

/** Run the stage the way the runner wires it in dogscats.yaml: evaluation + model, dataset via lineage. */
async function runReport(t: { after(fn: () => Promise<void>): void }, options: FixtureOptions = {}, params: Partial<ReportParams> = {}): Promise<Ran> {
  const fixture = await makeReportFixture(options);
  const a = fixtureArtifacts(fixture);
  const ctx = await makeTestContext<ReportParams>(
    { ...DEFAULTS, ...params },
    {
      inputs: { evaluation: a.evaluation, model: a.model },
      lineage: a.lineage,
      stageId: 'report',
    },
  );
  t.after(async () => {
    await ctx.cleanup();
    await fixture.cleanup();
  });
  const result = await reportStage.run(ctx);
  const html = await readFile(path.join(ctx.outDir, 'index.html'), 'utf8');
  const md = await readFile(path.join(ctx.outDir, 'report.md'), 'utf8');
  return { fixture, ctx, html, md, result };
}

function count(haystack: string, needle: RegExp): number {
  return [...haystack.matchAll(needle)].length;
}

function shownItems(f: ReportFixture, max: number): number {
  return f.analysis.views.reduce((s, v) => s + Math.min(v.items.length, max), 0);
}

test('report: headline metrics, charts, pictures, parameters and timings in index.html', async (t) => {
  const { fixture, ctx, html, result } = await runReport(t);
  const accuracy = fixture.metrics.accuracy as number;
  assert.deepEqual(result && result.metrics, { accuracy, log_loss: 0.3127 });
  assert.match(result?.summary ?? '', /^index\.html, report\.md and metrics\.json \(\d+ pictures\)$/);

  assert.match(html, /^<!doctype html>/);
  assert.ok(html.includes(`${(accuracy * 100).toFixed(2)}%`), 'accuracy shown as a percentage');
  assert.ok(html.includes('0.3127'), 'log loss shown');
  assert.ok(html.includes('>40<'), 'count shown');
  for (const c of ['cat', 'dog']) assert.ok(html.includes(`<th scope="row">${c}</th>`), `per-class row for ${c}`);
  const pc = (fixture.metrics.per_class as Record<string, { precision: number; recall: number; f1: number }>).cat!;
  assert.ok(html.includes(pc.precision.toFixed(3)) && html.includes(pc.recall.toFixed(3)) && html.includes(pc.f1.toFixed(3)));

  // Two learning-curve charts with a path per series, and the heat map with one cell per pair.
  assert.equal(count(html, /<svg class="chart"/g), 2);
  assert.equal(count(html, /<path d="M[\d.]+ [\d.]+L/g), 4, 'train and valid lines in both charts');
  assert.ok(html.includes('>Epoch<') && html.includes('>train<') && html.includes('>valid<'), 'axis label and legend');
  assert.equal(count(html, /<svg class="heatmap"/g), 1);
  assert.equal(count(html, /<rect [^>]*><title>true /g), 4);

  // One embedded thumbnail per analysis item, each a small JPEG data: URI.
  const imgs = [...html.matchAll(/<img src="([^"]*)" width="(\d+)" height="(\d+)"/g)];
  assert.equal(imgs.length, shownItems(fixture, 8));
  for (const [, src, w, h] of imgs) {
    assert.match(src!, /^data:image\/jpeg;base64,/);
    assert.ok(Math.max(Number(w), Number(h)) <= 160);
    const meta = await sharp(Buffer.from(src!.slice(src!.indexOf(',') + 1), 'base64')).metadata();
    assert.equal(meta.format, 'jpeg');
    assert.equal(Math.max(meta.width ?? 0, meta.height ?? 0), 160);
  }
  assert.ok(html.length < 1_000_000, `index.html is ${html.length} bytes`);
  assert.ok(count(html, /<figure class="wrong">/g) >= 4, 'wrong pictures are marked');

  // The nasty file name is text, never markup; the page has no script at all.
  assert.ok(!/<script/i.test(html), 'no <script> in the page');
  assert.ok(html.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;\\script&gt; &amp; &#39;pic&#39;.jpg'));
  assert.match(html, /Content-Security-Policy" content="default-src &#39;none&#39;; img-src data:;/);
  assert.ok(!/(src|href)="(https?:)?\/\//.test(html), 'nothing fetched from the network');

  // Parameters and stage metrics; nothing of the run that made it (that is the run view's). The
  // model card names the engine that trained (it made the weights): that one stays.
  for (const s of ['learning_rate', '0.001', 'label_from', 'block5_pool', 'caffe', 'val_accuracy 0.8800']) assert.ok(html.includes(s), `shows ${s}`);
  for (const s of ['1 h 02 min', '12.4 s', '20261127-0912-a1b2', 'test-run', 'gpu-box', 'ci-runner', '2026-11-2', PKG.version]) {
    assert.ok(!html.includes(s), `the cached page holds no run fact: ${s}`);
  }
  assert.ok(ctx.logs.some((l) => l.includes('thumbnails done')));
});

test('report: the run view adds durations, runs, hosts, engines and the pipe version to the cached page', async (t) => {
  const { fixture, html: cached, md } = await runReport(t);
  const { html } = runView({ html: cached, md }, fixtureArtifacts(fixture).lineage);
  assert.ok(html.includes('1 h 02 min'), 'finetune duration');
  assert.ok(html.includes('12.4 s'), 'evaluate duration');
  assert.ok(html.includes('20261127-0912-a1b2') && html.includes('class="badge cached"'), 'cached stages name their run');
  assert.ok(html.includes('class="badge run">this run'), 'this run marked');
  assert.ok(html.includes('gpu-box') && html.includes('ci-runner'), 'hosts');
  assert.ok(html.includes('onnxruntime-node (frozen) + tfjs (head)'), 'engine from meta.info');
  assert.ok(html.includes('2026-11-27 09:12:44 UTC'), 'createdAt');
  assert.ok(html.includes(`pipe ${PKG.version}`), 'pipe version');
  assert.match(html, /<p class="sub">pipeline <b>test<\/b> · run <code>test-run<\/code> · 2026-11-28 14:02:00 UTC · pipe /);
  assert.ok(html.includes('<a href="#run">This run</a>') && html.includes('<section id="run">'));
  assert.ok(html.indexOf('<section id="run">') > html.indexOf('<section id="pipeline">'), 'after the cached sections');
  assert.doesNotMatch(html, /This page holds only what its inputs determine/, "the cached page's footer is replaced");
  assert.equal(html.replace(/<!--[^>]*-->/g, '').length > cached.replace(/<!--[^>]*-->/g, '').length, true);
  // Everything of the cached page is still there, in order.
  const strip = (s: string): string => s.replace(/<!--[^>]*-->/g, '');
  assert.ok(strip(html).includes(strip(cached).slice(0, strip(cached).indexOf('<p class="sub">'))));
  assert.ok(html.includes(cached.slice(cached.indexOf('<section id="results">'), cached.indexOf('<!--pipe:run-->'))));
});

test('report: the run view of a page without its places is not made (a report-kind artifact written by another stage)', () => {
  const facts: RunFacts = { runId: 'r', startedAt: '2026-11-28T14:02:00.000Z', pipeVersion: '1', stages: [] };
  assert.equal(renderRunHtml('<html>lr 0.1</html>', facts), undefined);
  assert.equal(renderRunMarkdown('## x', facts), undefined);
});

test('report: report.md has the tables, escapes file names, lists the most wrong files', async (t) => {
  const { fixture, md: cachedMd, html: cachedHtml } = await runReport(t);
  assert.doesNotMatch(cachedMd, /test-run|20261127|### Stages|backend/, 'the cached report.md holds no run fact');
  const { md } = runView({ html: cachedHtml, md: cachedMd }, fixtureArtifacts(fixture).lineage);
  assert.match(md.split('\n')[2] ?? '', /^Pipeline `test` · run `test-run` · 2026-11-28 14:02:00 UTC · pipe /);
  assert.ok(!md.includes('data:image'), 'no images in report.md');
  assert.match(md, /^## test report$/m);
  assert.match(md, /^\| metric \| value \|$/m);
  assert.match(md, /^\| accuracy \| \*\*87\.50%\*\* \(0\.8750\) \|$/m);
  assert.match(md, /^\| log loss \| 0\.3127 \|$/m);
  assert.match(md, /^\| class \| precision \| recall \| F1 \| support \|$/m);
  const pc = (fixture.metrics.per_class as Record<string, { precision: number; recall: number; f1: number }>).dog!;
  assert.ok(md.includes(`| dog | ${pc.precision.toFixed(3)} | ${pc.recall.toFixed(3)} | ${pc.f1.toFixed(3)} | 20 |`));
  const [c0, c1] = fixture.metrics.confusion as number[][];
  assert.match(md, new RegExp(`^\\| \\*\\*cat\\*\\* \\| ${c0![0]} \\| ${c0![1]} \\|$`, 'm'));
  assert.match(md, new RegExp(`^\\| \\*\\*dog\\*\\* \\| ${c1![0]} \\| ${c1![1]} \\|$`, 'm'));
  // Most wrong first: the nasty cat had P(cat) = 0.04, escaped so no HTML survives.
  const wrongSection = md.slice(md.indexOf('### Most confidently wrong'), md.indexOf('### Stages'));
  const rows = wrongSection.split('\n').filter((l) => /^\| \d+ \|/.test(l));
  assert.equal(rows.length, 5, 'every wrong prediction of the fixture (fewer than 10)');
  assert.ok(rows[0]!.includes('&lt;script&gt;alert("x")&lt;\\\\script&gt; &amp; \'pic\'.jpg'), rows[0]);
  assert.ok(rows[0]!.includes('0.040'));
  assert.ok(!/<script/i.test(md));
  assert.match(md, /^\| finetune \| finetune-vgg16 \| 1 h 02 min \| 2026-11-27 09:12:44 UTC, cached from run 20261127-0912-a1b2 \|$/m);
  assert.ok(md.includes('finetune backend: wasm'));
});

test('report: metrics.json holds the normalised headline metrics', async (t) => {
  const { fixture, ctx } = await runReport(t);
  const written = JSON.parse(await readFile(path.join(ctx.outDir, 'metrics.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(written, fixture.metrics);
});

test('report: missing history and training details say "not available" instead of failing', async (t) => {
  const { html, result } = await runReport(t, { history: false, modelInfo: false });
  assert.ok(result?.metrics);
  assert.match(html, /Learning curves not available: history\.json is not in the model artifact\./);
  assert.match(html, /Training details not available: finetune\.json is not in the model artifact\./);
  assert.equal(count(html, /<svg class="chart"/g), 0);
  assert.equal(count(html, /<svg class="heatmap"/g), 1, 'the rest of the report is still there');
});

test('report: without predictions.csv the most wrong list comes from analysis.json', async (t) => {
  const { md } = await runReport(t, { predictionsCsv: false });
  assert.match(md, /^\| 1 \| valid\/cat\/&lt;script&gt;/m);
});

test('report: no model anywhere upstream still makes a report', async (t) => {
  const fixture = await makeReportFixture();
  const a = fixtureArtifacts(fixture);
  const ctx = await makeTestContext<ReportParams>(DEFAULTS, { inputs: { evaluation: a.evaluation, dataset: a.dataset } });
  t.after(async () => {
    await ctx.cleanup();
    await fixture.cleanup();
  });
  await reportStage.run(ctx);
  const html = await readFile(path.join(ctx.outDir, 'index.html'), 'utf8');
  assert.match(html, /Learning curves not available: no model artifact among the inputs or upstream stages\./);
  assert.equal(count(html, /<img src="data:image\/jpeg;base64,/g), shownItems(fixture, 8), 'pictures from the dataset port');
});

test('report: an extra input outside the lineage is listed with its parameters', async (t) => {
  const fixture = await makeReportFixture();
  const a = fixtureArtifacts(fixture);
  const extra = { ...a.data, meta: { ...a.data.meta, stage: 'notes', uses: 'command', params: { run: 'echo <b>hi</b>' } } };
  const ctx = await makeTestContext<ReportParams>(DEFAULTS, { inputs: { evaluation: a.evaluation, notes: extra }, lineage: a.lineage });
  t.after(async () => {
    await ctx.cleanup();
    await fixture.cleanup();
  });
  await reportStage.run(ctx);
  const html = await readFile(path.join(ctx.outDir, 'index.html'), 'utf8');
  assert.ok(html.includes('<th scope="row">notes</th>'));
  assert.ok(html.includes('echo &lt;b&gt;hi&lt;/b&gt;'));
  assert.equal(count(html, /<th scope="row">evaluate<\/th>/g), 1, 'inputs already in the lineage are not listed twice');
});

test('report: artifacts that came from a remote cache say so (pulled, when, partly; or only looked up)', async (t) => {
  const fixture = await makeReportFixture();
  const a = fixtureArtifacts(fixture);
  const url = 's3://team-cache/pipe_ci';
  const pulled = (art: typeof a.dataset, extra: Record<string, unknown>) => ({
    ...art,
    meta: { ...art.meta, pulled: { remote: url, at: '2026-11-29T08:00:05.000Z', files: 2001, bytes: 9e7, downloadedBytes: 9e7, durationMs: 4000, ...extra } },
  });
  const dataset = pulled(a.dataset, { partial: { of: 25_003, ofBytes: 6e8, reads: ['split.json', 'valid/**'], readers: ['evaluate'] } });
  const model = pulled(a.model, { files: 4 });
  const data = makeStub(a.data.meta as StoredMeta, path.join(fixture.root, 'nowhere'), url);
  const lineage = [data, dataset, model, a.evaluation].map((art) => ({ stage: art.meta.stage, uses: art.meta.uses, artifact: art }));
  const ctx = await makeTestContext<ReportParams>(DEFAULTS, { inputs: { evaluation: a.evaluation, model }, lineage, stageId: 'report' });
  t.after(async () => {
    await ctx.cleanup();
    await fixture.cleanup();
  });
  await reportStage.run(ctx);
  const { html, md } = runView(
    { html: await readFile(path.join(ctx.outDir, 'index.html'), 'utf8'), md: await readFile(path.join(ctx.outDir, 'report.md'), 'utf8') },
    lineage,
  );
  // The run view's stage table is the last one listing the stages.
  const row = (stage: string) =>
    html.slice(html.lastIndexOf(`<th scope="row">${stage}</th>`), html.indexOf('</tr>', html.lastIndexOf(`<th scope="row">${stage}</th>`)));
  assert.match(
    row('split'),
    /<span class="badge remote">pulled<\/span> from <code>s3:\/\/team-cache\/pipe_ci<\/code>, 2026-11-29 08:00:05 UTC <span class="muted">\(partly: 2,001 of 25,003 files\)<\/span>/,
  );
  assert.match(row('finetune'), /badge remote">pulled<\/span> from <code>s3:\/\/team-cache\/pipe_ci<\/code>, 2026-11-29 08:00:05 UTC<\/td>/);
  assert.match(row('data'), /badge remote">on remote<\/span> <code>s3:\/\/team-cache\/pipe_ci<\/code> <span class="muted">\(only its meta\.json was read\)/);
  assert.doesNotMatch(row('evaluate'), /badge remote/);
  assert.match(html, /"pulled": taken from a remote cache/);
  const mdRow = (stage: string) => md.split('\n').find((l) => l.startsWith(`| ${stage} |`)) ?? '';
  assert.match(
    mdRow('split'),
    /cached from run 20261127-0912-a1b2; \*\*pulled\*\* from s3:\/\/team-cache\/pipe\\_ci 2026-11-29 08:00:05 UTC \(partly: 2,001 of 25,003 files\) \|$/,
  );
  assert.match(mdRow('finetune'), /\*\*pulled\*\* from s3:\/\/team-cache\/pipe\\_ci 2026-11-29 08:00:05 UTC \|$/);
  assert.match(mdRow('data'), /; on remote s3:\/\/team-cache\/pipe\\_ci \(only its meta\.json was read\) \|$/);
  assert.doesNotMatch(mdRow('evaluate'), /pulled|remote/);
});

test('report: malformed metrics.json is a StageError naming the file', async (t) => {
  const cases: [string, RegExp][] = [
    ['{"accuracy": 0.9,', /^metrics\.json: not valid JSON/],
    [JSON.stringify({ accuracy: 0.9, log_loss: 0.2, classes: ['cat', 'dog'], confusion: [[1, 2]] }), /^metrics\.json: confusion must have 2 rows/],
    [
      JSON.stringify({ accuracy: '90%', log_loss: 0.2, classes: ['a'], confusion: [[1]] }),
      /^metrics\.json: accuracy must be a finite number, got the string "90%"/,
    ],
    [
      JSON.stringify({
        accuracy: 0.5,
        log_loss: 0.2,
        classes: ['a', 'b'],
        confusion: [
          [1, 1],
          [1, -1],
        ],
      }),
      /^metrics\.json: confusion\[1\]\[1\] must be a non-negative integer/,
    ],
    ['[]', /^metrics\.json: must be an object/],
  ];
  for (const [body, message] of cases) {
    const fixture = await makeReportFixture({ metricsBody: body });
    const a = fixtureArtifacts(fixture);
    const ctx = await makeTestContext<ReportParams>(DEFAULTS, { inputs: { evaluation: a.evaluation, model: a.model }, lineage: a.lineage });
    t.after(async () => {
      await ctx.cleanup();
      await fixture.cleanup();
    });
    await assert.rejects(reportStage.run(ctx), (e: unknown) => {
      assert.ok(e instanceof StageError, String(e));
      assert.match(e.message, message);
      return true;
    });
  }
});

test('report: an optional file that exists but is malformed is a StageError too', async (t) => {
  const fixture = await makeReportFixture();
  await writeFile(path.join(fixture.modelDir, 'history.json'), JSON.stringify({ epochs: [{ epoch: 1, loss: 'NaN' }] }));
  const a = fixtureArtifacts(fixture);
  const ctx = await makeTestContext<ReportParams>(DEFAULTS, { inputs: { evaluation: a.evaluation, model: a.model }, lineage: a.lineage });
  t.after(async () => {
    await ctx.cleanup();
    await fixture.cleanup();
  });
  await assert.rejects(
    reportStage.run(ctx),
    (e: unknown) => e instanceof StageError && /^history\.json: epochs\[0\]\.loss must be a finite number/.test(e.message),
  );
});

test('report: missing metrics.json is a StageError', async (t) => {
  const fixture = await makeReportFixture();
  const a = fixtureArtifacts(fixture);
  const ctx = await makeTestContext<ReportParams>(DEFAULTS, { inputs: { evaluation: { ...a.evaluation, dir: a.data.dir } } });
  t.after(async () => {
    await ctx.cleanup();
    await fixture.cleanup();
  });
  await assert.rejects(reportStage.run(ctx), (e: unknown) => e instanceof StageError && /^metrics\.json: not found/.test(e.message));
});

test('report: a missing picture or a path leaving the dataset shows a placeholder, not a broken image', async (t) => {
  const missing = 'valid/dog/dog.1000.jpg';
  const { fixture, html, ctx } = await runReport(t, {
    omitImages: [missing],
    extraItems: [{ file: '../../../../etc/passwd', label: 'cat', predicted: 'cat', probability: 0.9 }],
  });
  assert.ok(html.includes('<div class="missing">image not found</div>'));
  assert.ok(html.includes('<div class="missing">path is outside the dataset</div>'));
  const shown = shownItems(fixture, 8);
  assert.equal(count(html, /<figure /g), shown);
  assert.equal(count(html, /<img /g), shown - 2);
  assert.ok(
    ctx.logs.some((l) => /^warn: 2 of \d+ pictures could not be shown/.test(l)),
    ctx.logs.join('\n'),
  );
});

test('report: max_per_view limits the pictures and says how many there were', async (t) => {
  const { fixture, html } = await runReport(t, {}, { max_per_view: 2, thumbnails: 64, title: 'Dogs <&> cats' });
  assert.equal(count(html, /<img /g), shownItems(fixture, 2));
  assert.match(html, /showing 2 of 4/);
  assert.ok(html.includes('<title>Dogs &lt;&amp;&gt; cats</title>'));
  for (const [, w, h] of html.matchAll(/<img src="[^"]*" width="(\d+)" height="(\d+)"/g)) assert.equal(Math.max(Number(w), Number(h)), 64);
});

test('report: params schema has defaults, descriptions and no extra keys', () => {
  const schema = reportStage.params as { additionalProperties: boolean; properties: Record<string, { description?: string; default?: unknown }> };
  assert.equal(schema.additionalProperties, false);
  for (const [k, p] of Object.entries(schema.properties)) assert.ok(p.description, `${k} has a description`);
  assert.equal(schema.properties.thumbnails?.default, 160);
  assert.equal(schema.properties.max_per_view?.default, 8);
  assert.equal(reportStage.output, 'report');
  assert.equal(reportStage.inputs.evaluation?.kind, 'evaluation');
  assert.equal(reportStage.inputs.model?.required, false);
  assert.equal(reportStage.inputs.dataset?.required, false);
  assert.equal(reportStage.extraInputs?.kind, 'any');
});

test('report helpers: escaping, CSV, ticks, validation', () => {
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  assert.equal(html`<b>${'<i>'}</b>${['<', html`<br>`]}`.value, '<b>&lt;i&gt;</b>&lt;<br>');
  assert.equal(mdText('a|b <c> *d* [e](f)\nx'), 'a\\|b &lt;c&gt; \\*d\\* \\[e\\](f) x');
  assert.deepEqual(parseCsv('file,label\n"a,""b""\nc",cat\r\nx,dog', 't.csv'), [
    ['file', 'label'],
    ['a,"b"\nc', 'cat'],
    ['x', 'dog'],
  ]);
  assert.throws(() => parseCsv('"open', 't.csv'), /t\.csv: ends inside a quoted field/);
  assert.deepEqual(niceTicks(0, 0.62), { lo: 0, hi: 0.8, ticks: [0, 0.2, 0.4, 0.6, 0.8] });
  assert.deepEqual(niceTicks(0.66, 1).ticks, [0.6, 0.7, 0.8, 0.9, 1]);
  const flat = niceTicks(0.5, 0.5);
  assert.ok(flat.lo < 0.5 && flat.hi > 0.5 && flat.ticks.length <= 7, 'a flat series gets a range around it');
  assert.equal(resolveInside('/data/set', 'valid/cat/1.jpg'), path.resolve('/data/set/valid/cat/1.jpg'));
  assert.equal(resolveInside('/data/set', '../other/1.jpg'), undefined);
  assert.equal(resolveInside('/data/set', '/etc/passwd'), undefined);
  assert.equal(resolveInside('/data/set', '..'), undefined);
  assert.equal(parseHistory({ epochs: [{ loss: null, accuracy: 0.5 }] }).epochs[0]?.epoch, 1);
  assert.throws(() => parseHistory({ epochs: [{ epoch: 1, loss: 'x' }] }), /^StageError: history\.json: epochs\[0\]\.loss must be a finite number/);
  // per_class absent: derived from the confusion matrix.
  const m = parseMetrics({
    accuracy: 0.75,
    log_loss: 0.5,
    classes: ['a', 'b'],
    confusion: [
      [3, 1],
      [0, 0],
    ],
  });
  assert.deepEqual(m.perClass.a, { precision: 1, recall: 0.75, f1: (2 * 0.75) / 1.75, support: 4 });
  assert.equal(m.count, 4);
  assert.ok(NASTY_FILE.includes('<script>'));
});
