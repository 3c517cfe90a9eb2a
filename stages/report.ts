// `uses: report`: the pay-off of a run, something a person looks at. Reads the evaluation (and the
// model and dataset it came from) and writes a self-contained index.html, report.md for CI
// summaries, and metrics.json. Rendering lives in stages/report/; this file wires inputs to it.
// The artifact holds only what its inputs determine (so a resumed run makes the same bytes as a
// straight one); the run's facts are added by the run view `pipe run` writes (report/run-view.ts).
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Artifact, ArtifactKind, Stage, StageContext } from '../runner/types.js';
import { StageError } from '../runner/types.js';
import { renderHtml } from './report/html.js';
import { renderMarkdown } from './report/markdown.js';
import {
  available,
  mostWrong,
  readAnalysis,
  readHistory,
  readMetrics,
  readObjectFile,
  readPredictions,
  unavailable,
  type Analysis,
  type Available,
  type EvalMetrics,
  type Prediction,
  type ReportData,
  type StageRow,
  type StageVerdict,
} from './report/model.js';
import { reportRunView } from './report/run-view.js';
import { makeThumbnails, resolveInside, type ThumbnailResult } from './report/thumbnails.js';
import { engineFields, trainingCard } from './report/training-engine.js';

export interface ReportParams {
  title?: string;
  thumbnails: number;
  max_per_view: number;
}

/** How many of the most confidently wrong files report.md lists. */
const MOST_WRONG = 10;

export const reportStage: Stage<ReportParams> = {
  name: 'report',
  // 2: run facts (run id, dates, timings, hosts, earlier runs) moved out to the run view.
  version: 2,
  description:
    'Writes a self-contained index.html (headline metrics, learning curves, confusion matrix, picture grids of the ' +
    "evaluation's views, model card, parameters of every upstream stage), report.md for CI summaries, and metrics.json: " +
    "only what its inputs determine. `pipe run` shows it with the run's id, timings, hosts and earlier runs in .pipe/runs/<run-id>/<stage>/.",
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      title: {
        description: 'Page title. Default: "<pipeline name> report".',
        type: 'string',
        minLength: 1,
      },
      thumbnails: {
        description: 'Longest side of the embedded thumbnails, in pixels (JPEG, quality 70).',
        type: 'integer',
        minimum: 32,
        maximum: 512,
        default: 160,
      },
      max_per_view: {
        description: 'Most pictures shown for each view of analysis.json (most confident correct, wrong, uncertain...).',
        type: 'integer',
        minimum: 0,
        maximum: 100,
        default: 8,
      },
    },
  },
  inputs: {
    evaluation: { kind: 'evaluation', description: 'An evaluate stage: metrics.json, analysis.json, predictions.csv.' },
    model: {
      kind: 'model',
      required: false,
      description: 'The finetune stage, for learning curves and training details. Default: the one the evaluation used.',
    },
    dataset: { kind: 'dataset', required: false, description: 'Where the pictures are. Default: the dataset the evaluation used.' },
  },
  // Any other stage may be wired in: it and its upstream stages are listed with their parameters and timings.
  extraInputs: { kind: 'any', required: false, description: 'Another stage to list in the pipeline section (parameters, timings).' },
  output: 'report',
  // What it reads of its inputs: the model's history.json, finetune.json and preprocess.json (not
  // the weights), the dataset's valid images that analysis.json names (the dataset layout puts
  // them under valid/), all of the evaluation; of extra inputs only their meta (no files).
  reads(_params, port) {
    if (port === 'model') return ['history.json', 'finetune.json', 'preprocess.json'];
    if (port === 'dataset') return ['valid/**'];
    if (port === 'evaluation') return undefined;
    return [];
  },
  runView: reportRunView,
  async run(ctx) {
    const evaluation = ctx.inputs.evaluation;
    if (!evaluation) throw new StageError('report: the `evaluation` input is required');
    const model = upstream(ctx, 'model', 'model');
    const dataset = upstream(ctx, 'dataset', 'dataset');
    const { maxPerView, size } = { maxPerView: ctx.params.max_per_view ?? 8, size: ctx.params.thumbnails ?? 160 };

    const metrics = await readMetrics(evaluation.dir);
    const analysis = await readAnalysis(evaluation.dir);
    const predictions = await readPredictions(evaluation.dir);
    const noModel = 'no model artifact among the inputs or upstream stages';
    const history = model ? await readHistory(model.dir) : unavailable<never>(noModel);
    const finetuneFile = model ? await readObjectFile(model.dir, 'finetune.json') : unavailable<never>(noModel);
    const finetune = finetuneFile.ok ? available(trainingCard({ ...finetuneFile.value, ...engineFields(model?.meta.info) })) : finetuneFile;
    const preprocess = model ? await readObjectFile(model.dir, 'preprocess.json') : unavailable<never>(noModel);

    const data: ReportData = {
      title: ctx.params.title ?? `${ctx.pipelineName} report`,
      pipelineName: ctx.pipelineName,
      metrics,
      analysis,
      history,
      finetune,
      preprocess,
      mostWrong: wrongest(predictions, analysis),
      stages: stageRows(ctx),
      verdicts: verdictsOf(ctx),
      maxPerView,
    };

    const thumbs = await thumbnails(ctx, analysis, dataset, maxPerView, size);
    const html = renderHtml(data, (file) => thumbs.get(file) ?? { ok: false, reason: 'image not available' });
    await writeFile(path.join(ctx.outDir, 'index.html'), html);
    await writeFile(path.join(ctx.outDir, 'report.md'), renderMarkdown(data));
    await writeFile(path.join(ctx.outDir, 'metrics.json'), `${JSON.stringify(metricsJson(metrics), null, 2)}\n`);

    const missing = [...thumbs.values()].filter((t) => !t.ok).length;
    if (missing > 0) ctx.log.warn(`${missing} of ${thumbs.size} pictures could not be shown (missing or unreadable)`);
    return {
      metrics: { accuracy: metrics.accuracy, log_loss: metrics.logLoss },
      meta: { pictures: thumbs.size - missing, pictures_missing: missing, html_bytes: Buffer.byteLength(html) },
      summary: `index.html, report.md and metrics.json (${thumbs.size - missing} pictures)`,
    };
  },
};

/**
 * The artifact of `kind` for an optional port: the one wired to it; else the one the evaluation
 * itself consumed (its meta.inputs names it by content hash); else the nearest of that kind
 * upstream (lineage is in dependency order, so the last one).
 */
function upstream(ctx: StageContext<ReportParams>, port: string, kind: ArtifactKind): Artifact | undefined {
  const wired = ctx.inputs[port];
  if (wired) return wired;
  const candidates = ctx.lineage.filter((l) => l.artifact.kind === kind).map((l) => l.artifact);
  const used = ctx.inputs.evaluation?.meta.inputs[port];
  return candidates.find((a) => a.contentHash === used) ?? candidates[candidates.length - 1];
}

function stageRows(ctx: StageContext<ReportParams>): StageRow[] {
  const row = (stage: string, uses: string, a: Artifact): StageRow => ({
    stage,
    uses,
    kind: a.kind,
    params: a.meta.params ?? {},
    metrics: a.meta.metrics ?? {},
  });
  const rows = ctx.lineage.map((l) => row(l.stage, l.uses, l.artifact));
  // Inputs are in the lineage when the runner made it; a bare context (tests, tools) may not say.
  for (const a of Object.values(ctx.inputs)) {
    if (!rows.some((r) => r.stage === a.meta.stage)) rows.push(row(a.meta.stage, a.meta.uses, a));
  }
  rows.push({ stage: ctx.stageId, uses: 'report', kind: 'report', params: { ...ctx.params }, metrics: {} });
  return rows;
}

/** The verdicts (a gate) of the upstream artifacts, in dependency order. */
function verdictsOf(ctx: StageContext<ReportParams>): StageVerdict[] {
  const arts = [...ctx.lineage.map((l) => l.artifact), ...Object.values(ctx.inputs)];
  const seen = new Set<string>();
  const out: StageVerdict[] = [];
  for (const a of arts) {
    const v = a.meta.verdict;
    if (!v || seen.has(a.meta.stage)) continue;
    seen.add(a.meta.stage);
    out.push({ stage: a.meta.stage, passed: v.passed, message: v.message });
  }
  return out;
}

function wrongest(predictions: Available<readonly Prediction[]>, analysis: Available<Analysis>): Available<readonly Prediction[]> {
  if (predictions.ok) return available(mostWrong(predictions.value, MOST_WRONG));
  if (!analysis.ok) return unavailable(`${predictions.reason}, nor analysis.json`);
  // Without predictions.csv, the wrong pictures of analysis.json are the best we know.
  const seen = new Map<string, Prediction>();
  for (const view of analysis.value.views) {
    for (const it of view.items) {
      if (it.label !== it.predicted && !seen.has(it.file)) {
        const probs = Object.keys(it.probs).length > 0 ? it.probs : { [it.predicted]: it.probability };
        seen.set(it.file, { file: it.file, label: it.label, predicted: it.predicted, probs });
      }
    }
  }
  return available(mostWrong([...seen.values()], MOST_WRONG));
}

async function thumbnails(
  ctx: StageContext<ReportParams>,
  analysis: Available<Analysis>,
  dataset: Artifact | undefined,
  maxPerView: number,
  size: number,
): Promise<Map<string, ThumbnailResult>> {
  const out = new Map<string, ThumbnailResult>();
  if (!analysis.ok) return out;
  const files = [...new Set(analysis.value.views.flatMap((v) => v.items.slice(0, maxPerView).map((it) => it.file)))];
  if (files.length === 0) return out;
  if (!dataset) {
    ctx.log.warn('no dataset artifact among the inputs or upstream stages: the report shows no pictures');
    for (const f of files) out.set(f, { ok: false, reason: 'no dataset artifact to read the image from' });
    return out;
  }
  const resolved = new Map<string, string>();
  for (const f of files) {
    const abs = resolveInside(dataset.dir, f);
    if (abs) resolved.set(f, abs);
    else out.set(f, { ok: false, reason: 'path is outside the dataset' });
  }
  const progress = ctx.progress('thumbnails', resolved.size);
  const made = await makeThumbnails([...resolved.values()], { size, signal: ctx.signal, onDone: () => progress.tick() });
  progress.done();
  for (const [f, abs] of resolved) out.set(f, made.get(abs) ?? { ok: false, reason: 'image not available' });
  return out;
}

function metricsJson(m: EvalMetrics): Record<string, unknown> {
  return {
    on: m.on,
    count: m.count,
    accuracy: m.accuracy,
    log_loss: m.logLoss,
    classes: m.classes,
    confusion: m.confusion,
    per_class: m.perClass,
    ...(m.testCount === undefined ? {} : { test_count: m.testCount }),
  };
}
