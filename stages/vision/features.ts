// The frozen-output cache. The frozen part's output for an image (or for one of its seeded
// augmented variants: ./augment.ts) never changes, so it is computed once per image through a FrozenEngine and streamed to disk as a
// raw float32 file (rows in file-list order) plus index.json, in a runner-owned derived entry
// keyed by what determines it: the frozen layers' configs and weights, the cut, the images
// (the dataset artifact's content hash and the split's file list) and the preprocessing.
// Epochs, re-runs with other head parameters, and evaluate all read the same entry; another set
// with some of the same photos (predict on a new folder) copies their rows (feature-reuse.ts).
import { createHash } from 'node:crypto';
import { copyFile, mkdir, open, readFile, rename, rm, stat, truncate, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import type { Progress } from '../../runner/types.js';
import type { FrozenEngine } from './frozen.js';
import { loadBatches, type Fit, type PreprocessMode } from './images.js';
import type { DerivedFn } from './tfjs-engine.js';
import { readSplitFile, type DatasetSplit } from '../dataset-contract.js';
import { featureFamily, imageHashes, knownRows, RowCopier, type RowSource } from './feature-reuse.js';

/** Bump when the feature file layout or its computation changes. */
const FEATURES_VERSION = 1;

/** The dataset artifact's split.json (the dataset contract: ../dataset-contract.ts). */
export type SplitJson = DatasetSplit;

/** The dataset artifact's split.json, checked against the dataset contract. */
export async function readSplit(datasetDir: string): Promise<SplitJson> {
  return readSplitFile(datasetDir);
}

/** The class index of a dataset-relative file (its folder), or -1 (e.g. test/unknown). */
export function labelOf(rel: string, classes: readonly string[]): number {
  const parts = rel.split('/');
  const folder = parts.length >= 2 ? parts[parts.length - 2]! : '';
  return classes.indexOf(folder);
}

export function splitFiles(split: SplitJson, name: string): readonly string[] {
  return (split.files as Readonly<Record<string, readonly string[] | undefined>>)[name] ?? [];
}

export interface PreprocessSpec {
  readonly mode: PreprocessMode;
  /** [height, width] */
  readonly size: readonly [number, number];
  readonly fit: Fit;
}

function numericsConfig(config: Record<string, unknown>): Record<string, unknown> {
  // Names, trainability and initialisers do not change what a layer computes from its weights.
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) {
    if (k === 'name' || k === 'trainable' || /initializer|regularizer|constraint/i.test(k)) continue;
    out[k] = v;
  }
  return out;
}

/** The layers `cutLayer`'s output depends on, in model order. */
export function frozenLayers(model: TF.LayersModel, cutLayer: string): TF.layers.Layer[] {
  const seen = new Set<TF.layers.Layer>();
  const stack = [model.getLayer(cutLayer)];
  while (stack.length) {
    const layer = stack.pop()!;
    if (seen.has(layer)) continue;
    seen.add(layer);
    for (const node of layer.inboundNodes) for (const l of node.inboundLayers) stack.push(l);
  }
  return model.layers.filter((l) => seen.has(l));
}

/** sha256 over the frozen layers' classes, configs and weights: what the features depend on. */
export function frozenFingerprint(model: TF.LayersModel, cutLayer: string): string {
  const hash = createHash('sha256');
  hash.update(`pipe-frozen:${FEATURES_VERSION}\n`);
  for (const layer of frozenLayers(model, cutLayer)) {
    hash.update(JSON.stringify({ class: layer.getClassName(), config: numericsConfig(layer.getConfig() as Record<string, unknown>) }));
    for (const w of layer.weights) {
      const data = w.read().dataSync() as Float32Array;
      hash.update(`\n${w.shape.join('x')}\n`);
      hash.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
  }
  return hash.digest('hex');
}

export interface FeatureIndex {
  readonly version: number;
  readonly count: number;
  /** Per image, without the batch dimension. */
  readonly shape: readonly number[];
  readonly dtype: 'float32';
  readonly files: readonly string[];
  readonly engine: Readonly<Record<string, unknown>>;
  readonly seconds: number;
  /** What a row depends on besides the image (feature-reuse.ts), and each row's image sha256. */
  readonly family?: string;
  readonly sha256?: readonly string[];
  /** How many rows the build computed (the others were copied from earlier sets). */
  readonly computed?: number;
  /** Augmented sets: rows per file; row `copy * files.length + i` is variant `copy` of file i. */
  readonly copies?: number;
}

/** Augmented variants of every file instead of the files themselves (./augment.ts). */
export interface VariantRequest {
  /** What decides the variants' pixels: part of the cache key. */
  readonly key: unknown;
  readonly copies: number;
  /** Variant `copy` of the image at absolute path `file` (`rel` in the dataset), HWC RGB uint8 at the input size. */
  decode(file: string, rel: string, copy: number): Promise<Uint8Array>;
}

export interface FeatureRequest {
  readonly derived: DerivedFn;
  /** What the outputs depend on besides the images (see featureKey). */
  readonly frozen: string;
  readonly cut: string;
  readonly architecture: string;
  /** The dataset artifact's content hash. */
  readonly datasetHash: string;
  readonly datasetDir: string;
  /** Name of the split in split.json ('train', 'valid', 'sample/train', 'test'...). */
  readonly split: string;
  /** Dataset-relative files, in row order. */
  readonly files: readonly string[];
  readonly preprocess: PreprocessSpec;
  /** Opened only when the outputs must be computed; the caller disposes it. */
  readonly engine: () => Promise<FrozenEngine>;
  readonly batchSize: number;
  readonly concurrency?: number;
  readonly progress: (label: string, total?: number, resumed?: number) => Progress;
  readonly log: (message: string) => void;
  readonly signal: AbortSignal;
  /** Keep partial outputs here (ctx.workDir) so an interrupted computation resumes. */
  readonly resumeDir?: string;
  /** Compute augmented variants of the files (copy-major rows) instead of the files. */
  readonly variants?: VariantRequest;
}

export function featureKey(
  r: Pick<FeatureRequest, 'frozen' | 'cut' | 'architecture' | 'datasetHash' | 'split' | 'files' | 'preprocess' | 'variants'>,
): unknown {
  const files = createHash('sha256').update(r.files.join('\n')).digest('hex');
  return {
    version: FEATURES_VERSION,
    frozen: r.frozen,
    cut: r.cut,
    architecture: r.architecture,
    dataset: r.datasetHash,
    split: r.split,
    files,
    preprocess: { mode: r.preprocess.mode, size: [...r.preprocess.size], fit: r.preprocess.fit },
    ...(r.variants ? { variants: r.variants.key } : {}),
  };
}

export interface FeatureSet {
  readonly dir: string;
  readonly index: FeatureIndex;
  /** Whether this call built the entry (false: reused). */
  readonly built: boolean;
  /** Images this call ran through the frozen part (0 when every row was cached or copied). */
  readonly computed: number;
}

/**
 * The frozen outputs of `files`, from the derived cache or computed and streamed into it. Rows of
 * photos an earlier set of the same family computed are copied from its entry (feature-reuse.ts):
 * only the others are computed. With `resumeDir` (the stage's workDir, which survives an
 * interrupted attempt) the computed rows are written there first, so an interrupted computation
 * continues where it stopped on the next run.
 */
export async function cachedFeatures(r: FeatureRequest): Promise<FeatureSet> {
  let built = false;
  let computed = 0;
  const key = featureKey(r);
  const copies = r.variants?.copies ?? 1;
  const rows = r.files.length * copies;
  const label = r.variants ? `augmented outputs: ${r.split} (${copies} per image)` : `frozen outputs: ${r.split}`;
  const dir = await r.derived('features', key, async (out) => {
    built = true;
    const t0 = performance.now();
    if (r.variants) {
      // Augmented variants are new pixels every time: nothing to reuse from other sets.
      const fresh = await computeRows(r, r.files, key, path.join(out, 'features.f32'));
      computed = rows;
      const index: FeatureIndex = {
        version: FEATURES_VERSION,
        count: rows,
        shape: fresh.shape,
        dtype: 'float32',
        files: r.files,
        engine: fresh.engine,
        seconds: (performance.now() - t0) / 1000,
        copies,
      };
      await writeFile(path.join(out, 'index.json'), JSON.stringify(index));
      return;
    }
    const family = featureFamily({ version: FEATURES_VERSION, ...r });
    const hashes = await imageHashes(r.datasetDir, r.files);
    // Where the other feature entries are: beside the family's own small entry.
    const familyDir = await r.derived('features-family', { family }, (o) =>
      writeFile(path.join(o, 'family.json'), JSON.stringify({ family, cut: r.cut, architecture: r.architecture })),
    );
    const known = await knownRows(path.dirname(familyDir), family, new Set(hashes));
    // Each image not found is computed once, however often it appears in the set.
    const slot = new Map<string, number>();
    const toCompute: number[] = [];
    hashes.forEach((h, i) => {
      if (!known.rows.has(h) && !slot.has(h)) {
        slot.set(h, toCompute.length);
        toCompute.push(i);
      }
    });
    computed = toCompute.length;
    if (toCompute.length < r.files.length)
      r.log(
        `frozen outputs: ${r.split}: ${r.files.length - toCompute.length} of ${r.files.length} images already computed (same photos in an earlier set), ${toCompute.length} to compute`,
      );
    const target = path.join(out, 'features.f32');
    const fresh =
      toCompute.length > 0
        ? await computeRows(
            r,
            toCompute.map((i) => r.files[i]!),
            key,
            toCompute.length === r.files.length ? target : path.join(out, 'computed.f32'),
          )
        : undefined;
    const shape = fresh?.shape ?? known.shape ?? (await r.engine()).outputShape; // the last: an empty set
    if (fresh?.file !== target) await assembleRows(target, hashes, known.rows, slot, fresh?.file, shape.reduce((a, b) => a * b, 1) * 4);
    const seconds = (performance.now() - t0) / 1000;
    const index: FeatureIndex = {
      version: FEATURES_VERSION,
      count: r.files.length,
      shape,
      dtype: 'float32',
      files: r.files,
      engine: fresh?.engine ?? known.engine ?? {},
      seconds,
      family,
      sha256: hashes,
      computed: toCompute.length,
    };
    await writeFile(path.join(out, 'index.json'), JSON.stringify(index));
  });
  const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8')) as FeatureIndex;
  if (!built) r.log(`${label}: ${index.count} images from the cache`);
  return { dir, index, built, computed };
}

/**
 * The frozen outputs of `files` (dataset-relative) into `target`, through the engine; resumable.
 * With `r.variants`: `copies` rows per file, row `copy * files.length + i` variant `copy` of file i.
 */
async function computeRows(
  r: FeatureRequest,
  files: readonly string[],
  key: unknown,
  target: string,
): Promise<{ file: string; shape: readonly number[]; engine: Record<string, unknown> }> {
  const t0 = performance.now();
  const engine = await r.engine();
  const rowBytes = engine.outputShape.reduce((a, b) => a * b, 1) * 4;
  const variants = r.variants;
  const n = files.length;
  const rows = n * (variants?.copies ?? 1);
  const label = variants ? `augmented outputs: ${r.split} (${variants.copies} per image)` : `frozen outputs: ${r.split}`;
  // Named by what it holds: the key and the list computed (which depends on what was found).
  const tag = createHash('sha256').update(JSON.stringify(key)).update(files.join('\n')).digest('hex').slice(0, 24);
  const file = r.resumeDir ? path.join(r.resumeDir, `features-${tag}.f32`) : target;
  let done = 0;
  if (r.resumeDir) {
    await mkdir(r.resumeDir, { recursive: true });
    const size = await stat(file).then(
      (st) => st.size,
      () => 0,
    );
    done = Math.min(rows, Math.floor(size / rowBytes));
    await writeFile(file, '', { flag: 'a' });
    await truncate(file, done * rowBytes); // drop a half-written row
    if (done > 0) r.log(`${label}: resuming after ${done} of ${rows} images`);
  }
  const bar = r.progress(label, rows, done);
  const fh = await open(file, r.resumeDir ? 'a' : 'w');
  const first = done;
  try {
    const from = done;
    const abs = Array.from({ length: rows - done }, (_, k) => path.join(r.datasetDir, files[(from + k) % n]!));
    for await (const batch of loadBatches(abs, {
      ...(variants ? { decode: (file: string, k: number) => variants.decode(file, files[(from + k) % n]!, Math.floor((from + k) / n)) } : {}),
      size: r.preprocess.size,
      fit: r.preprocess.fit,
      preprocess: r.preprocess.mode,
      batchSize: r.batchSize,
      concurrency: r.concurrency ?? 4,
      signal: r.signal,
      reuseBuffers: true, // each batch is run through the engine before the next is taken
    })) {
      const y = await engine.run(batch.data, batch.count);
      await fh.write(new Uint8Array(y.buffer, y.byteOffset, y.byteLength));
      done += batch.count;
      const secs = (performance.now() - t0) / 1000;
      bar.update(done, `${((done - first) / secs).toFixed(1)} img/s`);
    }
  } finally {
    await fh.close();
  }
  if (file !== target) {
    await rename(file, target).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EXDEV') throw e;
      await copyFile(file, target);
      await rm(file, { force: true });
    });
  }
  bar.done(`${rows} images, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return { file: target, shape: engine.outputShape, engine: { name: engine.name, ...engine.detail } };
}

/** The set's rows in file order into `target`: each from an earlier entry or from the computed file (then removed). */
async function assembleRows(
  target: string,
  hashes: readonly string[],
  known: ReadonlyMap<string, RowSource>,
  slot: ReadonlyMap<string, number>,
  computed: string | undefined,
  rowBytes: number,
): Promise<void> {
  const copier = new RowCopier(rowBytes);
  const out = await open(target, 'w');
  const row = new Uint8Array(rowBytes);
  try {
    for (const h of hashes) {
      const src = known.get(h) ?? { file: computed!, row: slot.get(h)! };
      await copier.read(src, row);
      await out.write(row);
    }
  } finally {
    await out.close();
    await copier.close();
  }
  if (computed) await rm(computed, { force: true });
}

/** Above this the rows are read from disk per batch instead of held in memory. */
const IN_MEMORY_BYTES = 256 * 1024 * 1024;

/** Random access to the rows of a feature file. */
export class FeatureReader {
  private constructor(
    readonly index: FeatureIndex,
    readonly rowFloats: number,
    private readonly memory: Float32Array | null,
    private readonly fh: FileHandle | null,
  ) {}

  static async open(set: FeatureSet, inMemoryBytes = IN_MEMORY_BYTES): Promise<FeatureReader> {
    const file = path.join(set.dir, 'features.f32');
    const rowFloats = set.index.shape.reduce((a, b) => a * b, 1);
    const expected = set.index.count * rowFloats * 4;
    const size = (await stat(file)).size;
    if (size !== expected) throw new Error(`${file}: ${size} bytes, index.json says ${expected}`);
    if (size <= inMemoryBytes) {
      const buf = await readFile(file);
      const floats = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
      return new FeatureReader(set.index, rowFloats, floats, null);
    }
    return new FeatureReader(set.index, rowFloats, null, await open(file, 'r'));
  }

  get count(): number {
    return this.index.count;
  }

  /** The rows at `indices`, in that order, concatenated. */
  async rows(indices: readonly number[]): Promise<Float32Array> {
    const n = this.rowFloats;
    const out = new Float32Array(indices.length * n);
    if (this.memory) {
      indices.forEach((r, i) => out.set(this.memory!.subarray(r * n, (r + 1) * n), i * n));
      return out;
    }
    // Read runs of consecutive rows with one call each.
    const order = indices.map((r, i) => [r, i] as const).sort((a, b) => a[0] - b[0]);
    const bytes = new Uint8Array(out.buffer);
    for (let k = 0; k < order.length;) {
      let end = k + 1;
      while (end < order.length && order[end]![0] === order[end - 1]![0] + 1) end++;
      const first = order[k]![0];
      const runRows = end - k;
      const tmp = new Uint8Array(runRows * n * 4);
      const { bytesRead } = await this.fh!.read(tmp, 0, tmp.byteLength, first * n * 4);
      if (bytesRead !== tmp.byteLength) throw new Error('feature file truncated');
      for (let j = 0; j < runRows; j++) bytes.set(tmp.subarray(j * n * 4, (j + 1) * n * 4), order[k + j]![1] * n * 4);
      k = end;
    }
    return out;
  }

  async close(): Promise<void> {
    await this.fh?.close();
  }
}
