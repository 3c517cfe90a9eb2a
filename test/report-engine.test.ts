// The report's model card names the engine that trained the model: after ONNX training of a whole
// net (nothing frozen) the model's meta.json says engine 'none' (the frozen part's) and
// train_engine 'onnx'; finetune.json holds neither (what computed a model is not its content).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { reportStage, type ReportParams } from '../stages/report.js';
import { fixtureArtifacts, makeReportFixture } from './helpers/report-fixtures.js';
import { makeTestContext } from './helpers/stage-context.js';
import { renderRunHtml, renderRunMarkdown, runStageRow, type RunFacts } from '../stages/report/run-view.js';

test('the model card and report.md name the engine that trained, not the frozen part\'s "none"', async (t) => {
  const fixture = await makeReportFixture();
  // As finetune-flow writes them after `trainable: all` trained on ONNX Runtime.
  await writeFile(path.join(fixture.modelDir, 'finetune.json'), JSON.stringify({ architecture: 'tiny-vgg', cut: null, trainable: 'all' }));
  const a = fixtureArtifacts(fixture);
  const model = {
    ...a.model,
    meta: { ...a.model.meta, info: { backend: 'wasm', engine: 'none', train_engine: { engine: 'onnx', provider: 'cpu', threads: 2 } } },
  };
  const lineage = a.lineage.map((l) => (l.stage === 'finetune' ? { ...l, artifact: model } : l));
  const ctx = await makeTestContext<ReportParams>(
    { thumbnails: 160, max_per_view: 8 },
    { inputs: { evaluation: a.evaluation, model }, lineage, stageId: 'report' },
  );
  t.after(async () => {
    await ctx.cleanup();
    await fixture.cleanup();
  });
  await reportStage.run(ctx);
  const cached = await readFile(path.join(ctx.outDir, 'index.html'), 'utf8');
  // The stage table's engine chip and report.md's engine line are the run view's (what computed).
  const facts: RunFacts = {
    runId: 'r',
    startedAt: '2026-11-28T14:02:00.000Z',
    pipeVersion: '1',
    stages: lineage.map((l) => runStageRow(l.stage, l.artifact, 'r')),
  };
  const html = renderRunHtml(cached, facts) ?? '';
  const md = renderRunMarkdown(await readFile(path.join(ctx.outDir, 'report.md'), 'utf8'), facts) ?? '';
  const card = html.slice(html.indexOf('<section id="model">'));
  assert.match(card, /<th scope="row">engine<\/th><td><code>onnx<\/code><\/td>/);
  assert.match(card, /<th scope="row">frozen_engine<\/th><td><code>none<\/code><\/td>/);
  assert.doesNotMatch(card, /train_engine/);
  assert.match(card, /<span class="chip">engine: onnx \(frozen part: none\)<\/span>/);
  assert.match(md, /finetune engine: onnx \(frozen part: none\)/);
  assert.doesNotMatch(md, /finetune engine: none/);
});
