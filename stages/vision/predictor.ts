// A trained model's class probabilities for a list of images: the frozen part's outputs from
// the same derived cache entries as finetune's (same key: images the model was trained or
// evaluated on cost nothing), then the trained head; with nothing frozen, the whole network
// straight from the images. The engine choice (ONNX where it loads and converts, else tfjs)
// is made once, by openFrozenEngine. Used by `evaluate` and `predict`.
import path from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import type { Progress, StageContext } from '../../runner/types.js';
import { StageError } from '../../runner/types.js';
import { asStageError, frozenBatchSize } from '../finetune-flow.js';
import type { BackendPref, Tf } from './backend.js';
import type { FeatureRequest, VariantRequest } from './features.js';
import type { FrozenEngine } from './frozen.js';
import type { ModelArtifact } from './model-artifact.js';
import type { DerivedFn, EnginePref } from './tfjs-engine.js';
import type { Tta } from './tta.js';

export interface PredictorOptions {
  readonly tf: Tf;
  readonly model: TF.LayersModel;
  readonly artifact: ModelArtifact;
  readonly engine: EnginePref;
  /** The tfjs backend that loaded, for the engine's detail. */
  readonly backend: string;
  readonly derived: DerivedFn;
  readonly progress: (label: string, total?: number, resumed?: number) => Progress;
  readonly log: (message: string) => void;
  readonly warn: (message: string) => void;
  readonly signal: AbortSignal;
  /** The stage's workDir: an interrupted frozen pass resumes from there. */
  readonly workDir: string;
}

/** Images to predict: files relative to `dir`, an artifact with content hash `contentHash`. */
export interface ImageSet {
  /** The set's name in the feature cache key ('valid', 'test', a folder). */
  readonly name: string;
  readonly dir: string;
  readonly contentHash: string;
  readonly files: readonly string[];
}

export class Predictor {
  /** What computed the frozen part (or the whole model): 'onnx', 'tfjs', or 'none' before any run. */
  engineName = 'none';
  /** Images run through the frozen part so far (rows found in the feature cache cost nothing). */
  frozenComputed = 0;
  private frozen: FrozenEngine | undefined;
  /** The trained part (or the whole network), opened once for every set this predictor runs. */
  private runner: FrozenEngine | undefined;

  constructor(private readonly o: PredictorOptions) {}

  /**
   * Probabilities per file, in file order: `files.length` rows of `classes.length`; with `tta`,
   * each row is the mean over the image and its test-time variants (./tta.ts).
   */
  async predict(set: ImageSet, batchSize: number, tta: Tta = 'none'): Promise<Float32Array[]> {
    const plain = await this.predictRows(set, batchSize);
    if (tta === 'none' || plain.length === 0) return plain;
    const { ttaVariants, averageTta } = await import('./tta.js');
    const trainedWith = this.o.artifact.finetune['augment'] as Parameters<typeof ttaVariants>[1];
    const variants = ttaVariants(tta, trainedWith, this.o.artifact.preprocess)!;
    return averageTta(plain, await this.predictRows(set, batchSize, variants), variants.copies);
  }

  /**
   * `predict` on files nobody has checked (a folder of new photos): the frozen pass is the decode
   * check, so each photo is decoded once, and photos whose frozen outputs are cached are not
   * decoded at all. The files that decode with their probabilities, and the others with the
   * reason. Needs a frozen part (a model with a cut): without one, check the files first.
   */
  async predictUnchecked(
    set: ImageSet,
    batchSize: number,
    tta: Tta = 'none',
  ): Promise<{ files: string[]; probs: Float32Array[]; undecodable: Map<string, string> }> {
    if (!this.o.artifact.finetune.cut) throw new Error('predictUnchecked needs a model with a frozen part');
    const undecodable = new Map<string, string>();
    const plain = await this.predictRows(set, batchSize, undefined, undecodable);
    const files = set.files.filter((f) => !undecodable.has(f));
    if (tta === 'none' || files.length === 0) return { files, probs: plain, undecodable };
    const { ttaVariants, averageTta } = await import('./tta.js');
    const trainedWith = this.o.artifact.finetune['augment'] as Parameters<typeof ttaVariants>[1];
    const variants = ttaVariants(tta, trainedWith, this.o.artifact.preprocess)!;
    const probs = averageTta(plain, await this.predictRows({ ...set, files }, batchSize, variants), variants.copies);
    return { files, probs, undecodable };
  }

  /**
   * The rows of `set`'s images, or of their `variants` (copy-major). With `undecodable` (frozen
   * part only, no variants): files that do not decode are put there and have no row.
   */
  private async predictRows(set: ImageSet, batchSize: number, variants?: VariantRequest, undecodable?: Map<string, string>): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    if (set.files.length === 0) return out;
    const total = set.files.length * (variants?.copies ?? 1);
    const width = this.o.artifact.classes.length;
    const rows = (probs: Float32Array, count: number): void => {
      for (let i = 0; i < count; i++) out.push(probs.slice(i * width, (i + 1) * width));
    };
    const cut = this.o.artifact.finetune.cut;
    if (cut) {
      const { tf, model } = this.o;
      const { frozenFingerprint, cachedFeatures, FeatureReader } = await import('./features.js');
      const { headModel } = await import('./train.js');
      const pre = this.o.artifact.preprocess;
      const request: FeatureRequest = {
        ...(variants ? { variants } : {}),
        derived: this.o.derived,
        frozen: frozenFingerprint(model, cut),
        cut,
        architecture: this.o.artifact.finetune.architecture,
        datasetHash: set.contentHash,
        datasetDir: set.dir,
        split: set.name,
        files: set.files,
        preprocess: pre,
        engine: async () => (this.frozen ??= await this.open(model, cut, { backend: this.o.backend })),
        batchSize: frozenBatchSize(pre.size),
        progress: this.o.progress,
        log: this.o.log,
        signal: this.o.signal,
        resumeDir: path.join(this.o.workDir, 'features'),
        ...(undecodable && !variants ? { skipUndecodable: true } : {}),
      };
      const features = await cachedFeatures(request).catch(asStageError);
      this.engineName = String(features.index.engine['name'] ?? this.engineName);
      this.frozenComputed += features.computed;
      for (const [f, reason] of Object.entries(features.index.undecodable ?? {})) undecodable?.set(f, reason);
      // The rows of the files that decoded (all of them, without undecodable ones).
      const good = Array.from({ length: total }, (_, i) => i).filter((i) => !undecodable?.has(set.files[i % set.files.length]!));
      const reader = await FeatureReader.open(features);
      try {
        const head = good.length > 0 ? (this.runner ??= await this.openLast(headModel(tf, model, cut))) : undefined;
        for (let s = 0; s < good.length; s += batchSize) {
          const idx = good.slice(s, s + batchSize);
          rows(await head!.run(await reader.rows(idx), idx.length), idx.length);
        }
      } finally {
        await reader.close();
      }
      return out;
    }
    // Nothing frozen: the whole network from the images.
    const { loadBatches } = await import('./images.js');
    const pre = this.o.artifact.preprocess;
    const bar = this.o.progress(variants ? `predict: ${set.name} (${variants.copies} variants per image)` : `predict: ${set.name}`, total);
    const runner = (this.runner ??= await this.openLast(this.o.model));
    const n = set.files.length;
    const batches = loadBatches(
      Array.from({ length: total }, (_, k) => path.join(set.dir, set.files[k % n]!)),
      {
        size: pre.size,
        fit: pre.fit,
        preprocess: pre.mode,
        batchSize: frozenBatchSize(pre.size),
        signal: this.o.signal,
        reuseBuffers: true,
        ...(variants ? { decode: (file: string, k: number) => variants.decode(file, set.files[k % n]!, Math.floor(k / n)) } : {}),
      },
    );
    try {
      for await (const b of batches) {
        rows(await runner.run(b.data, b.count), b.count);
        bar.update(b.start + b.count);
      }
    } catch (e) {
      asStageError(e);
    }
    bar.done();
    this.engineName = runner.name;
    return out;
  }

  async dispose(): Promise<void> {
    await this.frozen?.dispose();
    await this.runner?.dispose();
    this.frozen = undefined;
    this.runner = undefined;
  }

  /** `net` up to its last layer, through the engine choice. */
  private openLast(net: TF.LayersModel): Promise<FrozenEngine> {
    return this.open(net, net.layers[net.layers.length - 1]!.name);
  }

  // The trained part (or the whole model when nothing is frozen) runs through the same engine
  // choice as the frozen part: ONNX where it converts (a block5 head is 2.8 GFLOP per image), else tfjs.
  private async open(net: TF.LayersModel, cut: string, backendDetail?: Record<string, unknown>): Promise<FrozenEngine> {
    const { openFrozenEngine } = await import('./tfjs-engine.js');
    return openFrozenEngine(this.o.tf, net, cut, {
      engine: this.o.engine,
      log: this.o.log,
      warn: this.o.warn,
      derived: this.o.derived,
      ...(backendDetail ? { backendDetail } : {}),
    });
  }
}

/**
 * The predictor a stage (evaluate, predict) runs on `artifact`: the tfjs backend chosen (one that
 * does not load is the stage's error) and the network loaded; `dispose` frees both.
 */
export async function stagePredictor(
  ctx: StageContext<unknown>,
  artifact: ModelArtifact,
  prefs: { readonly backend: BackendPref; readonly engine: EnginePref },
): Promise<{ readonly predictor: Predictor; readonly backend: string; dispose(): Promise<void> }> {
  const { selectBackend } = await import('./backend.js');
  const { loadModelNetwork } = await import('./model-artifact.js');
  const choice = await selectBackend(prefs.backend, (m) => ctx.log.info(m)).catch((e: Error) => {
    throw new StageError(e.message);
  });
  const model = await loadModelNetwork(choice.tf, artifact);
  const predictor = new Predictor({
    tf: choice.tf,
    model,
    artifact,
    engine: prefs.engine,
    backend: choice.backend,
    derived: (n, k, b) => ctx.derived(n, k, b),
    progress: (l, t, r) => ctx.progress(l, t, r),
    log: (m) => ctx.log.info(m),
    warn: (m) => ctx.log.warn(m),
    signal: ctx.signal,
    workDir: ctx.workDir,
  });
  return {
    predictor,
    backend: choice.backend,
    async dispose() {
      await predictor.dispose();
      model.dispose();
    },
  };
}
