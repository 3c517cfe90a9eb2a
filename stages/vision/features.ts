// The frozen-output cache. The frozen part's output for an image (or for one of its seeded
// augmented variants: ./augment.ts) never changes, so it is computed once per image through a FrozenEngine and streamed to disk as a
// raw float32 file (rows in file-list order) plus index.json, in a runner-owned derived entry
// keyed by what determines it: the frozen layers' configs and weights, the cut, the images
// (the dataset artifact's content hash and the split's file list) and the preprocessing.
// Epochs, re-runs with other head parameters, and evaluate all read the same entry; another set
// with some of the same photos (predict on a new folder) copies their rows (feature-reuse.ts).
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import { readSplitFile, type DatasetSplit } from '../dataset-contract.js';
import { featureFamily, imageHashes, knownRows } from './feature-reuse.js';
import { assembleRows, computeRows } from './feature-compute.js';
import type { FeatureIndex, FeatureRequest, FeatureSet } from './feature-types.js';

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
    // Files with the bytes of one that did not decode did not decode either.
    const badHash = new Map([...(fresh?.undecodable ?? [])].map(([f, reason]) => [hashes[r.files.indexOf(f)]!, reason]));
    const undecodable = Object.fromEntries(r.files.flatMap((f, i) => (badHash.has(hashes[i]!) ? [[f, badHash.get(hashes[i]!)!]] : [])));
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
      sha256: hashes.map((h) => (badHash.has(h) ? null : h)), // never reused as a photo's row
      computed: toCompute.length,
      ...(badHash.size > 0 ? { undecodable } : {}),
    };
    await writeFile(path.join(out, 'index.json'), JSON.stringify(index));
  });
  const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8')) as FeatureIndex;
  if (index.undecodable && !r.skipUndecodable) throw new Error(`${dir}: the frozen outputs list undecodable images, which this set cannot have`);
  if (!built) r.log(`${label}: ${index.count} images from the cache`);
  return { dir, index, built, computed };
}

export { FeatureReader } from './feature-reader.js';
export type { FeatureIndex, FeatureRequest, FeatureSet, PreprocessSpec, VariantRequest } from './feature-types.js';
