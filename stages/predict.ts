// `uses: predict`: a trained model on new photos. Every image under `from` in the input (a
// folder of files, or a dataset) is decoded once (corrupt files are left out and listed, as
// split does), then predicted through the same frozen-output cache and engine choice as
// training (vision/predictor.ts). Writes predictions.csv (file, predicted class, one
// probability per class in the model's class order), predict.json (counts, what was left out)
// and predictions.html (a picture grid per predicted class and the least confident images).
// Changing the folder re-runs predict only: the model is an input, not retrained.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Stage } from '../runner/types.js';
import { PREDICTION_ENGINE_PARAMS, TTA_PARAM_SCHEMA } from './vision/prediction-params.js';
import type { Tta } from './vision/tta.js';
import { StageError } from '../runner/types.js';
import type { BackendPref } from './vision/backend.js';
import type { EnginePref } from './vision/tfjs-engine.js';
import { byCodePoint } from './random.js';
import { listImages, normaliseSub, requireDir } from './split/find.js';

export interface PredictParams {
  from: string;
  batch_size: number;
  top_k: number;
  extensions: string[];
  backend: BackendPref;
  engine: EnginePref;
  tta?: Tta;
}

export const predictStage: Stage<PredictParams> = {
  name: 'predict',
  version: 1,
  description:
    "Runs a trained model on every image of a folder (new photos, a later month's data, a dataset's test set): predictions.csv with the predicted class and one probability " +
    'per class, predict.json, and predictions.html with a picture grid per predicted class and the least confident images. Corrupt files are left out and listed. ' +
    'Frozen outputs come from the same per-image cache as training (photos it has seen cost nothing); changing the folder re-runs predict only.',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      from: {
        type: 'string',
        default: '',
        description: "Folder of the input holding the images (searched recursively; e.g. 'test' of a dataset); '' is the input's root.",
      },
      batch_size: { type: 'integer', minimum: 1, default: 64, description: 'Rows per prediction batch of the trained part.' },
      top_k: {
        type: 'integer',
        minimum: 1,
        default: 12,
        description: 'Pictures per grid in predictions.html: the most confident of each predicted class, and the least confident overall.',
      },
      extensions: {
        description: 'File extensions taken as images (case-insensitive); other files are ignored.',
        type: 'array',
        items: { type: 'string', pattern: '^[A-Za-z0-9]+$' },
        minItems: 1,
        default: ['jpg', 'jpeg', 'png', 'webp'],
      },
      ...PREDICTION_ENGINE_PARAMS,
      ...TTA_PARAM_SCHEMA,
    },
  },
  inputs: {
    model: { kind: 'model', description: 'a fine-tuned model (finetune or finetune-vgg16)' },
    images: { kind: 'any', description: 'the photos: a files artifact (images, fetch-kaggle, command) or a dataset' },
  },
  output: 'files',
  keyExclude: ['backend', 'engine'],
  reads(params, port) {
    if (port !== 'images') return undefined;
    const from = params.from
      .replace(/\\/g, '/')
      .replace(/^\.\/?/, '')
      .replace(/\/+$/, '');
    return from && !from.startsWith('..') ? [`${from}/**`] : undefined;
  },
  async run(ctx) {
    const p = ctx.params;
    const modelArt = ctx.inputs['model'];
    const images = ctx.inputs['images'];
    if (!modelArt || !images) throw new StageError("inputs 'model' and 'images' are required");
    if (images.kind !== 'files' && images.kind !== 'dataset' && images.kind !== 'any') {
      throw new StageError(`predict: input 'images' is a ${images.kind} artifact (from '${images.meta.stage}'): it needs photos (files) or a dataset`);
    }
    const from = normaliseSub(p.from, 'from', 'predict');
    await requireDir(images.dir, from, 'from', '', 'predict');
    const exts = new Set(p.extensions.map((e) => e.toLowerCase()));
    const listed = await listImages(images.dir, from, exts);
    if (listed.length === 0) throw new StageError(`predict: no images under '${from || '.'}' of the input (extensions ${p.extensions.join(', ')})`);

    const { readModelArtifact } = await import('./vision/model-artifact.js');
    const { stagePredictor } = await import('./vision/predictor.js');
    const artifact = await readModelArtifact(modelArt.dir);
    const classes = artifact.classes;
    // With a frozen part, its pass is the decode check (each photo decoded once, cached ones not
    // at all); a model trained whole checks every file first, as split does.
    let bad = new Map<string, string>();
    if (!artifact.finetune.cut) {
      const { decodeCheck } = await import('./split/io.js');
      bad = await decodeCheck(ctx, images.dir, listed);
      if (bad.size === listed.length) noneDecodes(listed.length, from, bad);
    }
    const { predictor, backend, dispose } = await stagePredictor(ctx, artifact, p);
    const t0 = performance.now();
    let files: string[];
    let probs: Float32Array[];
    try {
      // The set is named after the folder: a dataset's `valid` or `test` shares evaluate's cache entries.
      const set = { name: from || '.', dir: images.dir, contentHash: images.contentHash };
      if (artifact.finetune.cut) {
        ({ files, probs, undecodable: bad } = await predictor.predictUnchecked({ ...set, files: listed }, p.batch_size, p.tta ?? 'none'));
        warnLeftOut(ctx.log, bad);
        if (files.length === 0) noneDecodes(listed.length, from, bad);
      } else {
        files = listed.filter((f) => !bad.has(f));
        probs = await predictor.predict({ ...set, files }, p.batch_size, p.tta ?? 'none');
      }
    } finally {
      await dispose();
    }
    const seconds = (performance.now() - t0) / 1000;
    const excluded = [...bad].map(([file, reason]) => ({ file, reason })).sort((a, b) => byCodePoint(a.file, b.file));

    const { argmax } = await import('./vision/train.js');
    const { csvField, formatProb } = await import('./evaluate-metrics.js');
    const prefix = from ? `${from}/` : '';
    const rows = files.map((f, i) => ({ file: f.slice(prefix.length), predicted: argmax(probs[i]!), probs: probs[i]! }));
    const lines = [['file', 'predicted', ...classes.map((c) => `p_${c}`)].map(csvField).join(',')];
    for (const r of rows) lines.push([csvField(r.file), csvField(classes[r.predicted]!), ...Array.from(r.probs, formatProb)].join(','));
    await writeFile(path.join(ctx.outDir, 'predictions.csv'), `${lines.join('\n')}\n`);
    const perClass = Object.fromEntries(classes.map((c, i) => [c, rows.filter((r) => r.predicted === i).length]));
    const { ttaLabel } = await import('./vision/tta.js');
    const tta = !p.tta || p.tta === 'none' ? undefined : ttaLabel(p.tta);
    const summary = { version: 1, classes, from: from || '.', count: rows.length, per_class: perClass, excluded, ...(tta ? { tta } : {}) };
    await writeFile(path.join(ctx.outDir, 'predict.json'), `${JSON.stringify(summary, null, 2)}\n`);

    const { pageViews, renderPredictPage } = await import('./predict-page.js');
    const { makeThumbnails, resolveInside } = await import('./report/thumbnails.js');
    const shown = [...new Set(pageViews(rows, classes, p.top_k).flatMap((v) => v.items.map((x) => x.file)))];
    const base = path.join(images.dir, from);
    const thumbs = await makeThumbnails(
      shown.map((f) => resolveInside(base, f) ?? base),
      { size: 160, signal: ctx.signal },
    );
    const page = renderPredictPage(
      { title: `Predictions: ${from || 'all images'}`, classes, images: rows, perView: p.top_k, corrupt: excluded.length },
      (f) => thumbs.get(resolveInside(base, f) ?? base) ?? { ok: false, reason: 'not shown' },
    );
    await writeFile(path.join(ctx.outDir, 'predictions.html'), page);

    const counts = classes.map((c) => `${c} ${perClass[c]}`).join(', ');
    return {
      metrics: { images: rows.length, images_per_second: rows.length / seconds },
      meta: {
        backend,
        engine: predictor.engineName,
        cut: artifact.finetune.cut,
        count: rows.length,
        frozen_computed: predictor.frozenComputed,
        // Images decoded by this run (TTA variants included): with a frozen part, only those whose frozen outputs were not cached.
        decoded: artifact.finetune.cut ? predictor.frozenComputed : listed.length,
        corrupt: excluded.length,
        per_class: perClass,
        seconds,
        tta: p.tta ?? 'none',
      },
      summary: `${rows.length} images predicted (${counts})${excluded.length ? `; ${excluded.length} corrupt left out` : ''}${tta ? ` (TTA: ${tta})` : ''}`,
    };
  },
};

function noneDecodes(count: number, from: string, bad: ReadonlyMap<string, string>): never {
  const [file, reason] = [...bad].sort((a, b) => byCodePoint(a[0], b[0]))[0]!;
  throw new StageError(`predict: none of the ${count} images under '${from || '.'}' decodes`, `e.g. ${file}: ${reason}`);
}

/** The files left out, as split's decode check says them (the first ten). */
function warnLeftOut(log: { warn(m: string): void }, bad: ReadonlyMap<string, string>): void {
  const sorted = [...bad].sort((a, b) => byCodePoint(a[0], b[0]));
  for (const [file, reason] of sorted.slice(0, 10)) log.warn(`left out ${file}: ${reason}`);
  if (sorted.length > 10) log.warn(`... and ${sorted.length - 10} more corrupt files (listed in predict.json)`);
}
