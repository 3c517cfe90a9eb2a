// `uses: evaluate`: run a fine-tuned model on the split's validation and/or test images and write
// what the report reads: predictions.csv, metrics.json, analysis.json and, for the test set,
// Kaggle's submission.csv. The frozen part's outputs come from the same derived cache entries as
// finetune's (same key scheme), so evaluating on `valid` after training recomputes nothing.
// A gate is a verdict on the evaluation, not a failure of it: the artifact (gate.json included) is
// committed and reported, and the runner fails the run (exit 1), the CI use. Heavy modules are
// imported inside run.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Stage } from '../runner/types.js';
import { PREDICTION_ENGINE_PARAMS, TTA_PARAM_SCHEMA } from './vision/prediction-params.js';
import type { Tta } from './vision/tta.js';
import { StageError } from '../runner/types.js';
import type { Gate, Prediction } from './evaluate-metrics.js';
import type { BackendPref } from './vision/backend.js';
import type { EnginePref } from './vision/tfjs-engine.js';

export interface EvaluateParams {
  on: 'valid' | 'test' | 'both';
  gate: Gate;
  clip: [number, number];
  top_n: number;
  batch_size: number;
  backend: BackendPref;
  engine: EnginePref;
  tta?: Tta;
}

export const evaluateStage: Stage<EvaluateParams> = {
  name: 'evaluate',
  version: 1,
  description:
    "Evaluates a fine-tuned model on the split's valid and/or test images: predictions.csv, metrics.json (accuracy, log loss, confusion matrix, " +
    'per-class precision/recall/F1), analysis.json (per class the most confident correct, most confident wrong and most uncertain images) ' +
    "and Kaggle's submission.csv for the test set. A `gate` is a verdict on the metrics (gate.json): below it the evaluation and its report are still made, and the run exits 1: the CI use.",
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      on: {
        enum: ['valid', 'test', 'both'],
        default: 'both',
        description: 'Which split to predict: `valid` (metrics), `test` (submission), or both (test only when the split has one).',
      },
      gate: {
        type: 'object',
        additionalProperties: false,
        default: {},
        description:
          'Fail the run (exit 1, after the evaluation and its report are made) when validation accuracy is below `accuracy` or log loss above `log_loss`.',
        properties: {
          accuracy: { type: 'number', minimum: 0, maximum: 1, description: 'Minimum validation accuracy.' },
          log_loss: { type: 'number', minimum: 0, description: 'Maximum validation log loss.' },
        },
      },
      clip: {
        type: 'array',
        items: { type: 'number', minimum: 0, maximum: 1 },
        minItems: 2,
        maxItems: 2,
        default: [0.05, 0.95],
        description: 'Clip the submitted probabilities to [low, high]: log loss punishes confident mistakes.',
      },
      top_n: { type: 'integer', minimum: 1, default: 4, description: 'Images per view in analysis.json.' },
      batch_size: { type: 'integer', minimum: 1, default: 64, description: 'Rows per prediction batch.' },
      ...PREDICTION_ENGINE_PARAMS,
      ...TTA_PARAM_SCHEMA,
    },
  },
  inputs: {
    model: { kind: 'model', description: 'a fine-tuned model (finetune or finetune-vgg16)' },
    dataset: { kind: 'dataset', description: 'the split it was trained on' },
  },
  output: 'evaluation',
  keyExclude: ['backend', 'engine'],
  // From the dataset: split.json and the images of the sets it predicts (the dataset layout puts
  // split.json's valid files under valid/, its test files under test/). The model: all of it.
  reads(params, port) {
    if (port !== 'dataset') return undefined;
    const sets = params.on === 'valid' ? ['valid/**'] : params.on === 'test' ? ['test/**'] : ['valid/**', 'test/**'];
    return ['split.json', ...sets];
  },
  async run(ctx) {
    const p = ctx.params;
    const modelArt = ctx.inputs['model'];
    const dataset = ctx.inputs['dataset'];
    if (!modelArt || !dataset) throw new StageError("inputs 'model' and 'dataset' are required");
    const [lo, hi] = p.clip;
    if (!(lo < hi)) throw new StageError(`clip must be [low, high] with low < high, got [${p.clip.join(', ')}]`);
    const gated = p.gate.accuracy !== undefined || p.gate.log_loss !== undefined;
    if (gated && p.on === 'test') throw new StageError('a gate needs labelled data: use on: valid or both');

    const metricsLib = await import('./evaluate-metrics.js');
    const { readSplit, labelOf, splitFiles } = await import('./vision/features.js');
    const { readModelArtifact } = await import('./vision/model-artifact.js');
    const { stagePredictor } = await import('./vision/predictor.js');

    const artifact = await readModelArtifact(modelArt.dir);
    const split = await readSplit(dataset.dir).catch((e: Error) => {
      throw new StageError(e.message);
    });
    const classes = artifact.classes;
    if (split.classes.join('\n') !== classes.join('\n')) {
      throw new StageError(`the model's classes [${classes.join(', ')}] differ from the dataset's [${split.classes.join(', ')}]`);
    }
    const validFiles = p.on === 'test' ? [] : splitFiles(split, 'valid');
    const testFiles = p.on === 'valid' ? [] : splitFiles(split, 'test');
    if (p.on !== 'test' && validFiles.length === 0) {
      throw new StageError(
        "the dataset has no 'valid' images (made with valid: 0?): nothing labelled to evaluate on",
        testFiles.length
          ? 'use on: test to predict its test set'
          : 'evaluate on a dataset with valid images (split layout: folders takes a labelled folder as it is)',
      );
    }
    if (p.on === 'test' && testFiles.length === 0) throw new StageError("the dataset has no 'test' files");

    const cut = artifact.finetune.cut;
    const { predictor, backend, dispose } = await stagePredictor(ctx, artifact, p);
    const predictSplit = async (name: string, list: readonly string[]): Promise<Prediction[]> => {
      const probs = await predictor.predict({ name, dir: dataset.dir, contentHash: dataset.contentHash, files: list }, p.batch_size, p.tta ?? 'none');
      return probs.map((row, i) => ({ file: list[i]!, label: labelOf(list[i]!, classes), probs: Array.from(row) }));
    };

    let valid: Prediction[] = [];
    let test: Prediction[] = [];
    try {
      valid = await predictSplit('valid', validFiles);
      test = await predictSplit('test', testFiles);
    } finally {
      await dispose();
    }
    const engineName = predictor.engineName;

    const { ttaLabel } = await import('./vision/tta.js');
    const tta = !p.tta || p.tta === 'none' ? undefined : ttaLabel(p.tta);
    // With TTA, metrics.json says so: the numbers are of the averaged probabilities.
    const metrics = { ...metricsLib.computeMetrics(valid, classes, p.on === 'test' ? 'test' : 'valid', test.length), ...(tta ? { tta } : {}) };
    const write = (name: string, text: string) => writeFile(path.join(ctx.outDir, name), text);
    await write('predictions.csv', metricsLib.predictionsCsv([...valid, ...test], classes));
    await write('metrics.json', `${JSON.stringify(metrics, null, 2)}\n`);
    await write('analysis.json', `${JSON.stringify(metricsLib.analysisViews(valid, classes, p.top_n), null, 2)}\n`);
    if (test.length > 0) await write('submission.csv', metricsLib.submissionCsv(test, classes, [lo, hi]));

    const headline =
      (valid.length
        ? `accuracy ${metrics.accuracy.toFixed(4)}, log_loss ${metrics.log_loss.toFixed(4)} on ${valid.length} valid images`
        : 'no labelled images') + (tta ? ` (TTA: ${tta})` : '');
    // In the files too, not only in meta.json: a report made from them must differ when it does.
    const verdict = gated && valid.length ? metricsLib.gateVerdict(metrics, p.gate) : undefined;
    if (verdict) await write('gate.json', `${JSON.stringify({ gate: p.gate, ...verdict }, null, 2)}\n`);
    const headlineMetrics: Record<string, number> = valid.length ? { accuracy: metrics.accuracy, log_loss: metrics.log_loss } : {};
    return {
      metrics: headlineMetrics,
      meta: { backend, engine: engineName, cut, valid_count: valid.length, test_count: test.length, tta: p.tta ?? 'none' },
      summary: `${headline}${test.length ? `; submission.csv with ${test.length} rows` : ''}`,
      ...(verdict ? { verdict: { passed: verdict.passed, message: verdict.message } } : {}),
    };
  },
};
