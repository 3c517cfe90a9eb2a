// `uses: evaluate`: run a fine-tuned model on the split's validation and/or test images and write
// what the report reads: predictions.csv, metrics.json, analysis.json and, for the test set,
// Kaggle's submission.csv. The frozen part's outputs come from the same derived cache entries as
// finetune's (same key scheme), so evaluating on `valid` after training recomputes nothing.
// A gate is a verdict on the evaluation, not a failure of it: the artifact (gate.json included) is
// committed and reported, and the runner fails the run (exit 1), the CI use. Heavy modules are
// imported inside run.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Stage } from '../runner/types.js';
import { StageError } from '../runner/types.js';
import { asStageError, frozenBatchSize } from './finetune-flow.js';
import type { Gate, Prediction } from './evaluate-metrics.js';
import type { BackendPref } from './vision/backend.js';
import type { Fit, PreprocessMode } from './vision/images.js';
import type { EnginePref } from './vision/tfjs-engine.js';

export interface EvaluateParams {
  on: 'valid' | 'test' | 'both';
  gate: Gate;
  clip: [number, number];
  top_n: number;
  batch_size: number;
  backend: BackendPref;
  engine: EnginePref;
}

interface ModelFiles {
  classes: string[];
  preprocess: { mode: PreprocessMode; size: [number, number]; fit: Fit };
  finetune: { architecture: string; cut: string | null };
}

async function readJson<T>(dir: string, name: string): Promise<T> {
  try {
    return JSON.parse(await readFile(path.join(dir, name), 'utf8')) as T;
  } catch (e) {
    throw new StageError(`the model artifact lacks a readable ${name}: ${(e as Error).message}`);
  }
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
      on: { enum: ['valid', 'test', 'both'], default: 'both', description: 'Which split to predict: `valid` (metrics), `test` (submission), or both (test only when the split has one).' },
      gate: {
        type: 'object',
        additionalProperties: false,
        default: {},
        description: 'Fail the run (exit 1, after the evaluation and its report are made) when validation accuracy is below `accuracy` or log loss above `log_loss`.',
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
      backend: { enum: ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'], default: 'auto', description: 'TensorFlow.js backend (see finetune-vgg16). Not part of the cache key.' },
      engine: { enum: ['auto', 'onnx', 'tfjs'], default: 'auto', description: 'What computes the frozen layers and the trained head: ONNX Runtime where it loads and converts them (`auto`), or tfjs. Not part of the cache key.' },
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
    const { readSplit, labelOf, splitFiles, frozenFingerprint, cachedFeatures, FeatureReader } = await import('./vision/features.js');
    const { selectBackend } = await import('./vision/backend.js');
    const { openFrozenEngine } = await import('./vision/tfjs-engine.js');
    const { headModel } = await import('./vision/train.js');
    const { loadModel } = await import('./vision/model-io.js');
    const { loadBatches } = await import('./vision/images.js');

    const files: ModelFiles = {
      classes: await readJson<string[]>(modelArt.dir, 'classes.json'),
      preprocess: await readJson<ModelFiles['preprocess']>(modelArt.dir, 'preprocess.json'),
      finetune: await readJson<ModelFiles['finetune']>(modelArt.dir, 'finetune.json'),
    };
    const split = await readSplit(dataset.dir).catch((e: Error) => {
      throw new StageError(e.message);
    });
    const classes = files.classes;
    if (split.classes.join('\n') !== classes.join('\n')) {
      throw new StageError(`the model's classes [${classes.join(', ')}] differ from the dataset's [${split.classes.join(', ')}]`);
    }
    const validFiles = p.on === 'test' ? [] : splitFiles(split, 'valid');
    const testFiles = p.on === 'valid' ? [] : splitFiles(split, 'test');
    if (p.on !== 'test' && validFiles.length === 0) throw new StageError("the dataset has no 'valid' files");
    if (p.on === 'test' && testFiles.length === 0) throw new StageError("the dataset has no 'test' files");

    const choice = await selectBackend(p.backend, (m) => ctx.log.info(m)).catch((e: Error) => {
      throw new StageError(e.message);
    });
    const { tf } = choice;
    let model;
    try {
      model = await loadModel(tf, path.join(modelArt.dir, 'model.json'));
    } catch (e) {
      throw new StageError(`cannot load the model: ${(e as Error).message}`);
    }
    const cut = files.finetune.cut;
    const pre = files.preprocess;
    const size: [number, number] = [pre.size[0], pre.size[1]];
    let engineName = 'none';
    let engine: Awaited<ReturnType<typeof openFrozenEngine>> | undefined;
    // The trained part (or the whole model when nothing is frozen) runs through the same engine
    // choice: ONNX where it converts (a block5 head is 2.8 GFLOP per image), else tfjs.
    const openPredictor = (net: typeof model) =>
      openFrozenEngine(tf, net, net.layers[net.layers.length - 1]!.name, {
        engine: p.engine,
        log: (m) => ctx.log.info(m),
        warn: (m) => ctx.log.warn(m),
        derived: (n, k, b) => ctx.derived(n, k, b),
      });
    const predictSplit = async (name: string, list: readonly string[]): Promise<Prediction[]> => {
      const labels = list.map((f) => labelOf(f, classes));
      const probsOf = (probs: Float32Array, offset: number, count: number): Prediction[] =>
        Array.from({ length: count }, (_, i) => ({
          file: list[offset + i]!,
          label: labels[offset + i]!,
          probs: Array.from(probs.subarray(i * classes.length, (i + 1) * classes.length)),
        }));
      const out: Prediction[] = [];
      if (list.length === 0) return out;
      if (cut) {
        const set = await cachedFeatures({
          derived: (n, k, b) => ctx.derived(n, k, b),
          frozen: frozenFingerprint(model, cut),
          cut,
          architecture: files.finetune.architecture,
          datasetHash: dataset.contentHash,
          datasetDir: dataset.dir,
          split: name,
          files: list,
          preprocess: { mode: pre.mode, size, fit: pre.fit },
          engine: async () =>
            (engine ??= await openFrozenEngine(tf, model, cut, {
              engine: p.engine,
              log: (m) => ctx.log.info(m),
              warn: (m) => ctx.log.warn(m),
              derived: (n, k, b) => ctx.derived(n, k, b),
              backendDetail: { backend: choice.backend },
            })),
          batchSize: frozenBatchSize(size),
          progress: (l, t, r) => ctx.progress(l, t, r),
          log: (m) => ctx.log.info(m),
          signal: ctx.signal,
          resumeDir: path.join(ctx.workDir, 'features'),
        }).catch(asStageError);
        engineName = String(set.index.engine['name'] ?? engineName);
        const head = headModel(tf, model, cut);
        const reader = await FeatureReader.open(set);
        const predictor = await openPredictor(head);
        try {
          for (let s = 0; s < list.length; s += p.batch_size) {
            const idx = Array.from({ length: Math.min(p.batch_size, list.length - s) }, (_, i) => s + i);
            const probs = await predictor.run(await reader.rows(idx), idx.length);
            out.push(...probsOf(probs, s, idx.length));
          }
        } finally {
          await predictor.dispose();
          await reader.close();
        }
      } else {
        const bar = ctx.progress(`predict: ${name}`, list.length);
        const predictor = await openPredictor(model);
        const batches = loadBatches(
          list.map((f) => path.join(dataset.dir, f)),
          { size, fit: pre.fit, preprocess: pre.mode, batchSize: frozenBatchSize(size), signal: ctx.signal, reuseBuffers: true },
        );
        try {
          for await (const b of batches) {
            const probs = await predictor.run(b.data, b.count);
            out.push(...probsOf(probs, b.start, b.count));
            bar.update(b.start + b.count);
          }
        } catch (e) {
          asStageError(e);
        } finally {
          await predictor.dispose();
        }
        bar.done();
        engineName = predictor.name;
      }
      return out;
    };

    let valid: Prediction[] = [];
    let test: Prediction[] = [];
    try {
      valid = await predictSplit('valid', validFiles);
      test = await predictSplit('test', testFiles);
    } finally {
      await engine?.dispose();
      model.dispose();
    }

    const metrics = metricsLib.computeMetrics(valid, classes, p.on === 'test' ? 'test' : 'valid', test.length);
    const write = (name: string, text: string) => writeFile(path.join(ctx.outDir, name), text);
    await write('predictions.csv', metricsLib.predictionsCsv([...valid, ...test], classes));
    await write('metrics.json', `${JSON.stringify(metrics, null, 2)}\n`);
    await write('analysis.json', `${JSON.stringify(metricsLib.analysisViews(valid, classes, p.top_n), null, 2)}\n`);
    if (test.length > 0) await write('submission.csv', metricsLib.submissionCsv(test, classes, [lo, hi]));

    const headline = valid.length ? `accuracy ${metrics.accuracy.toFixed(4)}, log_loss ${metrics.log_loss.toFixed(4)} on ${valid.length} valid images` : 'no labelled images';
    // In the files too, not only in meta.json: a report made from them must differ when it does.
    const verdict = gated && valid.length ? metricsLib.gateVerdict(metrics, p.gate) : undefined;
    if (verdict) await write('gate.json', `${JSON.stringify({ gate: p.gate, ...verdict }, null, 2)}\n`);
    const headlineMetrics: Record<string, number> = valid.length ? { accuracy: metrics.accuracy, log_loss: metrics.log_loss } : {};
    return {
      metrics: headlineMetrics,
      meta: { backend: choice.backend, engine: engineName, cut, valid_count: valid.length, test_count: test.length },
      summary: `${headline}${test.length ? `; submission.csv with ${test.length} rows` : ''}`,
      ...(verdict ? { verdict: { passed: verdict.passed, message: verdict.message } } : {}),
    };
  },
};
