// The training flow shared by `finetune` and `finetune-vgg16` (runFinetune): read the split,
// freeze everything up to the cut, compute the frozen outputs once per image (cached), train
// the rest (ONNX Runtime or tfjs: vision/learner.ts), save the model and its JSON files.
// Heavy modules (tfjs, sharp, h5wasm, onnxruntime) are imported inside run only.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import type { StageContext, StageResult } from '../runner/types.js';
import { StageError } from '../runner/types.js';
import type { Tf } from './vision/backend.js';
import type { FrozenEngine } from './vision/frozen.js';
import type { Fit, PreprocessMode } from './vision/images.js';
import type { DataSource } from './vision/train.js';
import { lrFindRequest } from './lr-find-tool.js';
import type { VariantRequest } from './vision/features.js';
import type { TrainParams } from './finetune-params.js';
import { imageSource } from './vision/image-source.js';

/** The network to fine-tune, as a stage prepared it. */
export interface PreparedModel {
  /** The full network: frozen part + trainable part, ending in the new softmax. */
  readonly model: TF.LayersModel;
  /** Last frozen layer; null when everything trains. */
  readonly cut: string | null;
  readonly architecture: string;
  readonly trainable: string;
  /** How the weights came about, for finetune.json and the report. */
  readonly weights: string;
  readonly preprocess: { readonly mode: PreprocessMode; readonly size: readonly [number, number]; readonly fit: Fit };
  readonly extra?: Record<string, unknown>;
}

export interface PrepareEnv {
  readonly tf: Tf;
  readonly classes: readonly string[];
}

/** Frozen-pass batch: enough to keep an engine busy, small enough for wasm memory at 224x224. */
export function frozenBatchSize(size: readonly [number, number]): number {
  return Math.max(1, Math.min(64, Math.floor((16 * 224 * 224) / (size[0] * size[1]))));
}

/** Map library errors the user can act on to StageError; rethrow the rest. */
export function asStageError(e: unknown): never {
  const name = (e as Error)?.name;
  if (name === 'WeightsError' || name === 'ImageDecodeError') throw new StageError((e as Error).message);
  const kernel = /Kernel '(\w+)' not registered for backend '(\w+)'/.exec(String((e as Error)?.message));
  if (kernel) {
    throw new StageError(
      `the ${kernel[2]} backend cannot run ${kernel[1]}, which training these layers needs`,
      'train fewer layers (trainable: predictions or dense), or pick another backend (backend: cpu is slow but complete)',
    );
  }
  throw e;
}

/** Training flow shared by `finetune` and `finetune-vgg16`. */
export async function runFinetune<P extends TrainParams>(ctx: StageContext<P>, prepare: (env: PrepareEnv) => Promise<PreparedModel>): Promise<StageResult> {
  const p = ctx.params;
  const dataset = ctx.inputs['dataset'];
  if (!dataset) throw new StageError("input 'dataset' is missing");
  const { readSplit, labelOf, splitFiles, frozenFingerprint, frozenLayers, cachedFeatures, FeatureReader } = await import('./vision/features.js');
  const { selectBackend } = await import('./vision/backend.js');
  const { openFrozenEngine } = await import('./vision/tfjs-engine.js');
  const { trainHead, headModel } = await import('./vision/train.js');
  const { saveModel } = await import('./vision/model-io.js');
  const { resolveAugment, augmentKey } = await import('./vision/augment.js');
  const augment = resolveAugment(p.augment);

  const split = await readSplit(dataset.dir).catch((e: Error) => {
    throw new StageError(e.message);
  });
  const classes = split.classes;
  const trainName = p.use_sample ? 'sample/train' : 'train';
  const validName = p.use_sample ? 'sample/valid' : 'valid';
  const trainFiles = splitFiles(split, trainName);
  const validFiles = splitFiles(split, validName);
  if (trainFiles.length === 0)
    throw new StageError(`the dataset has no '${trainName}' files`, 'a dataset with only valid images can evaluate a model, not train one');
  if (validFiles.length === 0)
    ctx.log.warn(`the dataset has no '${validName}' images (valid: 0): training on all ${trainFiles.length} images, with no validation metrics`);
  const labelsFor = (files: readonly string[]) => {
    const labels = Int32Array.from(files, (f) => labelOf(f, classes));
    const bad = files.find((_, i) => labels[i]! < 0);
    if (bad) throw new StageError(`cannot tell the class of '${bad}': its folder is not one of ${classes.join(', ')}`);
    return labels;
  };
  const trainLabels = labelsFor(trainFiles);
  const validLabels = labelsFor(validFiles);

  const choice = await selectBackend(p.backend, (m) => ctx.log.info(m)).catch((e: Error) => {
    throw new StageError(e.message);
  });
  const { tf } = choice;
  const t0 = performance.now();
  const prepared = await prepare({ tf, classes }).catch(asStageError);
  const { model } = prepared;
  const { unfreezeCut, trainedLayerNames, layerMultipliers, describeMultipliers } = await import('./vision/unfreeze.js');
  let cut = prepared.cut;
  let trainable = prepared.trainable;
  if (p.unfreeze) {
    try {
      cut = unfreezeCut(model, p.unfreeze);
    } catch (e) {
      model.dispose();
      throw e;
    }
    trainable = p.unfreeze === 'all' ? 'all' : `from ${p.unfreeze}`;
  }
  let engine: FrozenEngine | undefined;
  let engineDetail: Record<string, unknown> = { name: 'none', reason: 'nothing frozen' };
  const readers: { close(): Promise<void> }[] = [];
  try {
    // Freeze everything the cut depends on; the rest trains.
    const frozen = new Set(cut ? frozenLayers(model, cut) : []);
    for (const layer of model.layers) layer.trainable = !frozen.has(layer);

    let trainSource: DataSource;
    let validSource: DataSource | null;
    let head: TF.LayersModel;
    let featureInfo: Record<string, unknown> = {};
    const f0 = performance.now();
    let frozenKey: string | null = null;
    if (cut) {
      frozenKey = frozenFingerprint(model, cut);
      const openEngine = async () => {
        engine ??= await openFrozenEngine(tf, model, cut, {
          engine: p.engine,
          log: (m) => ctx.log.info(m),
          warn: (m) => ctx.log.warn(m),
          derived: (n, k, b) => ctx.derived(n, k, b),
          backendDetail: { backend: choice.backend },
        });
        return engine;
      };
      const request = (name: string, files: readonly string[], variants?: VariantRequest) =>
        cachedFeatures({
          ...(variants ? { variants } : {}),
          derived: (n, k, b) => ctx.derived(n, k, b),
          frozen: frozenKey!,
          cut,
          architecture: prepared.architecture,
          datasetHash: dataset.contentHash,
          datasetDir: dataset.dir,
          split: name,
          files,
          preprocess: prepared.preprocess,
          engine: openEngine,
          batchSize: frozenBatchSize(prepared.preprocess.size),
          progress: (l, t, r) => ctx.progress(l, t, r),
          log: (m) => ctx.log.info(m),
          signal: ctx.signal,
          resumeDir: path.join(ctx.workDir, 'features'),
        }).catch(asStageError);
      const trainSet = await request(trainName, trainFiles);
      const validSet = validFiles.length ? await request(validName, validFiles) : null;
      const source = async (set: NonNullable<typeof validSet>, labels: Int32Array): Promise<DataSource> => {
        const reader = await FeatureReader.open(set);
        readers.push(reader);
        return { count: reader.count, shape: set.index.shape, labels, rows: (idx) => reader.rows(idx) };
      };
      trainSource = await source(trainSet, trainLabels);
      validSource = validSet ? await source(validSet, validLabels) : null; // never augmented
      let variantsBuilt: boolean | undefined;
      if (augment) {
        const { augmentedSource, variantRequest } = await import('./vision/variants.js');
        const variantSet = await request(trainName, trainFiles, variantRequest(augment, prepared.preprocess));
        const reader = await FeatureReader.open(variantSet);
        readers.push(reader);
        trainSource = augmentedSource(trainSource, reader, augment.copies, p.seed);
        variantsBuilt = variantSet.built;
      }
      head = headModel(tf, model, cut);
      // With every frozen output from the cache, no engine ran: report the one that made them.
      engineDetail = engine ? { ...engine.detail, name: engine.name } : { ...trainSet.index.engine, cached: true };
      featureInfo = {
        [trainName]: trainSet.built ? 'computed' : 'cached',
        ...(validSet ? { [validName]: validSet.built ? 'computed' : 'cached' } : {}),
        ...(variantsBuilt === undefined ? {} : { [`${trainName} augmented`]: variantsBuilt ? 'computed' : 'cached' }),
        shape: trainSet.index.shape,
      };
    } else {
      trainSource = imageSource(dataset.dir, trainFiles, trainLabels, prepared.preprocess);
      if (augment) {
        const { drawnImageSource } = await import('./vision/variants.js');
        trainSource = drawnImageSource(trainSource, trainFiles, augment, p.seed, (plan) =>
          imageSource(dataset.dir, trainFiles, trainLabels, prepared.preprocess, plan),
        );
      }
      validSource = validFiles.length ? imageSource(dataset.dir, validFiles, validLabels, prepared.preprocess) : null;
      head = model;
    }
    const featuresSeconds = (performance.now() - f0) / 1000;

    const lrFind = lrFindRequest(ctx);
    if (lrFind) {
      const { rangeTest } = await import('./vision/lr-range.js');
      const log = { log: (m: string) => ctx.log.info(m), warn: (m: string) => ctx.log.warn(m) };
      const common = { tf, head, train: trainSource, classes: classes.length, batchSize: p.batch_size, optimizer: p.optimizer, engine: p.engine, seed: p.seed };
      lrFind.done(await rangeTest({ ...common, ...log, signal: ctx.signal, progress: (l, t) => ctx.progress(l, t) }, lrFind.options).catch(asStageError));
      return { summary: 'learning-rate range test' };
    }

    let lrMult: Map<string, number> | undefined;
    if (p.lr_mult) {
      lrMult = layerMultipliers(trainedLayerNames(head), p.lr_mult);
      ctx.log.info(`learning rates: ${describeMultipliers(lrMult)} (times learning_rate ${p.learning_rate})`);
    }
    const result = await trainHead({
      ...(lrMult ? { lrMult } : {}),
      tf,
      head,
      train: trainSource,
      valid: validSource,
      classes: classes.length,
      epochs: p.epochs,
      batchSize: p.batch_size,
      learningRate: p.learning_rate,
      lrSchedule: p.lr_schedule,
      optimizer: p.optimizer,
      seed: p.seed,
      validateEveryEpoch: p.validate_every_epoch,
      keep: { keep: p.keep ?? 'best', monitor: p.monitor ?? 'val_loss', patience: p.patience ?? 0 },
      engine: p.engine,
      checkpointDir: path.join(ctx.workDir, 'checkpoint'),
      checkpointKey: JSON.stringify({
        frozenKey,
        cut,
        arch: prepared.architecture,
        trainable,
        trainName,
        n: trainFiles.length,
        p: [p.epochs, p.batch_size, p.learning_rate, p.lr_schedule, p.optimizer, p.seed],
        augment: augment ? augmentKey(augment) : null,
        lr_mult: p.lr_mult ?? null,
      }),
      signal: ctx.signal,
      progress: (l, t) => ctx.progress(l, t),
      log: (m) => ctx.log.info(m),
      warn: (m) => ctx.log.warn(m),
    }).catch(asStageError);

    const s0 = performance.now();
    await mkdir(ctx.outDir, { recursive: true });
    await saveModel(model, ctx.outDir);
    // The numbers of the epoch whose weights the model holds (keep: best or last).
    const { kept, early_stop: earlyStop } = result.history;
    const last = result.history.epochs.find((e) => e.epoch === kept?.epoch) ?? result.history.epochs[result.history.epochs.length - 1];
    const finetune = {
      architecture: prepared.architecture,
      cut,
      trainable,
      weights: prepared.weights,
      // What computed it (backend, engines) is not here: it is not part of the key, so it goes to meta.json only.
      frozen_fingerprint: frozenKey,
      input: { dataset: dataset.contentHash, train: trainName, valid: validName, train_count: trainFiles.length, valid_count: validFiles.length },
      kept: { ...kept, of_epochs: result.history.epochs.length, ...(earlyStop ? { stopped_early: earlyStop.reason } : {}) },
      ...(augment ? { augment: augmentKey(augment) } : {}),
      ...(lrMult ? { lr_mult: Object.fromEntries(lrMult) } : {}),
      ...(prepared.extra ?? {}),
    };
    const writeJson = (name: string, value: unknown) => writeFile(path.join(ctx.outDir, name), `${JSON.stringify(value, null, 2)}\n`);
    await writeJson('classes.json', classes);
    await writeJson('history.json', result.history);
    await writeJson('preprocess.json', { mode: prepared.preprocess.mode, size: [...prepared.preprocess.size], fit: prepared.preprocess.fit });
    await writeJson('finetune.json', finetune);
    const saveSeconds = (performance.now() - s0) / 1000;

    const metrics: Record<string, number> = {};
    if (last?.val_accuracy !== undefined) metrics['val_accuracy'] = last.val_accuracy;
    if (last?.val_loss !== undefined) metrics['val_loss'] = last.val_loss;
    if (last) {
      metrics['accuracy'] = last.accuracy;
      metrics['loss'] = last.loss;
    }
    return {
      metrics,
      meta: {
        backend: choice.backend,
        backend_detail: choice.detail,
        engine: engineDetail['name'] ?? 'none',
        engine_detail: engineDetail,
        train_engine: result.engine,
        architecture: prepared.architecture,
        cut,
        trainable,
        weights: prepared.weights,
        features: featureInfo,
        resumed_from_epoch: result.resumedFrom,
        timings: {
          prepare_s: (f0 - t0) / 1000,
          frozen_outputs_s: featuresSeconds,
          train_s: result.trainSeconds,
          validate_s: result.validSeconds,
          save_s: saveSeconds,
          // Per epoch trained in this run: history.json holds only what the weights determine.
          epochs: result.epochTimings,
        },
      },
      summary:
        last?.val_accuracy !== undefined
          ? `val_accuracy ${last.val_accuracy.toFixed(4)}, val_loss ${last.val_loss!.toFixed(4)} at epoch ${last.epoch} of ${result.history.epochs.length}${keptNote(result.history)} (trained on ${trainedOn(result.engine)}, frozen part: ${String(engineDetail['name'] ?? 'none')})`
          : `trained ${result.history.epochs.length} epochs (${trainedOn(result.engine)}; no '${validName}' images, so no validation metrics)`,
    };
  } finally {
    for (const r of readers) await r.close();
    await engine?.dispose();
    model.dispose();
  }
}

/** `; kept: lowest val_loss (0.2100); stopped early: ...` for the summary line. */
function keptNote(h: { kept?: { policy: string; reason: string }; early_stop?: { reason: string } }): string {
  return `${h.kept?.policy === 'best' ? `; kept: ${h.kept.reason}` : ''}${h.early_stop ? `; stopped early: ${h.early_stop.reason}` : ''}`;
}

/** `onnx (cpu, 2 threads)` or `tfjs (wasm)`: what the summary line says trained. */
function trainedOn(d: Record<string, unknown>): string {
  return d['engine'] === 'onnx' ? `onnx (${String(d['provider'])}, ${String(d['threads'])} threads)` : `tfjs (${String(d['backend'])})`;
}

/** Hash of a local tfjs model (model.json + its weight files), for the cache key. */
export async function modelFilesHash(modelJson: string): Promise<unknown> {
  const { readFile } = await import('node:fs/promises');
  const { cachedFileHash } = await import('../runner/stage-api.js');
  const json = JSON.parse(await readFile(modelJson, 'utf8')) as { weightsManifest?: { paths: string[] }[] };
  const files = [modelJson, ...(json.weightsManifest ?? []).flatMap((g) => g.paths.map((q) => path.join(path.dirname(modelJson), decodeURIComponent(q))))];
  return Promise.all(files.map(async (f) => (await cachedFileHash(f)).sha256));
}
