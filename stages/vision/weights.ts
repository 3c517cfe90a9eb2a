// Pretrained weights: Keras HDF5 files (read with h5wasm, matched to layers by name) and tfjs
// layers models (copied layer by layer). Fetching a weights file is fetch-weights.ts's job.
// Keras files come in two layouts: Keras 1 style datasets
// `block1_conv1/block1_conv1_W_1:0` (the official VGG16 file) and Keras 2 style
// `block1_conv1/block1_conv1/kernel:0`; names are fixed- or variable-length strings; a layer
// without weights may carry an empty float64 `weight_names`. Both weight orders are Keras' own
// ([kernel, bias], BatchNorm [gamma, beta, mean, variance]), which is also tfjs' order.
import { existsSync } from 'node:fs';
import path from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import type { Tf } from './backend.js';
import { hdf5Problem } from './hdf5-check.js';

/** A problem with a weights file the user can act on (the stage maps it to StageError). */
export class WeightsError extends Error {
  override readonly name = 'WeightsError';
}

export interface H5Weight {
  /** The dataset's name as stored (`block1_conv1_W_1:0`, `block1_conv1/kernel:0`). */
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export type H5Style = 'keras1' | 'keras2';

interface H5Group {
  attrs: Record<string, unknown>;
  get_attribute(name: string, json: true): unknown;
  get(name: string): unknown;
}

type H5Module = typeof import('h5wasm');
let h5Module: Promise<H5Module> | undefined;

export async function loadH5wasm(): Promise<H5Module> {
  h5Module ??= (async () => {
    const m = (await import('h5wasm/node')) as unknown as H5Module & { default?: H5Module };
    const h5 = (m.default ?? m) as H5Module;
    await h5.ready;
    return h5;
  })();
  return h5Module;
}

/** Strings from an HDF5 attribute, whatever its encoding (fixed/vlen, scalar/array, bytes). */
export function attrStrings(value: unknown): string[] {
  if (value === null || value === undefined) return [];
  if (typeof value === 'string') return [clean(value)];
  if (value instanceof Uint8Array) return [clean(new TextDecoder().decode(value))];
  if (ArrayBuffer.isView(value)) return []; // an empty float64 array stands for "no weights"
  if (Array.isArray(value)) return value.flatMap((v) => attrStrings(v));
  return [clean(String(value))];
}

function clean(s: string): string {
  // Fixed-length strings come back NUL- or space-padded.
  return s.replace(/[\0\s]+$/u, '');
}

function readAttr(group: H5Group, name: string): string[] {
  if (!(name in group.attrs)) return [];
  return attrStrings(group.get_attribute(name, true));
}

/**
 * Visit each layer's weights of a Keras HDF5 file in file order, one layer at a time (so the
 * 553 MB VGG16 file is never all in JS memory at once).
 */
export async function readKerasH5(file: string, visit: (layer: string, weights: readonly H5Weight[]) => void): Promise<{ style: H5Style; layers: string[] }> {
  // h5wasm does not throw on a missing file (file_id -1): check first.
  if (!existsSync(file)) throw new WeightsError(`weights file not found: ${file}`);
  // Checked before h5wasm sees the file: a truncated one makes it print pages of HDF5-DIAG.
  const problem = await hdf5Problem(file);
  if (problem) throw new WeightsError(`${file}: ${problem}`);
  const h5 = await loadH5wasm();
  const f = new h5.File(file, 'r');
  try {
    if (f.file_id < 0n) throw new WeightsError(`${file}: cannot open as HDF5`);
    // Whole-model files (model.save) keep the weights under model_weights/.
    const rootEntity = f.get('model_weights');
    const root = (rootEntity instanceof h5.Group ? rootEntity : f) as unknown as H5Group;
    const layers = readAttr(root, 'layer_names');
    if (layers.length === 0) throw new WeightsError(`${file}: no 'layer_names' attribute: not a Keras weights file`);
    let style: H5Style = 'keras1';
    for (const layer of layers) {
      const group = root.get(layer) as H5Group | null;
      if (!group) throw new WeightsError(`${file}: layer '${layer}' is listed in layer_names but has no group`);
      const names = readAttr(group, 'weight_names');
      const weights: H5Weight[] = names.map((wn) => {
        if (wn.includes('/')) style = 'keras2';
        const ds = group.get(wn) as { shape: number[] | null; value: unknown } | null;
        if (!ds) throw new WeightsError(`${file}: dataset '${layer}/${wn}' is missing`);
        const v = ds.value;
        const data = v instanceof Float32Array ? v : ArrayBuffer.isView(v) ? Float32Array.from(v as unknown as ArrayLike<number>) : null;
        if (!data) throw new WeightsError(`${file}: dataset '${layer}/${wn}' is not numeric`);
        return { name: wn, shape: ds.shape ?? [], data };
      });
      visit(layer, weights);
    }
    return { style, layers };
  } finally {
    f.close();
  }
}

export interface LoadReport {
  /** Model layers whose weights were set. */
  readonly loaded: string[];
  /** Layers in the source that the model does not have, or that were excluded. */
  readonly ignored: string[];
  readonly style?: H5Style;
}

function shapeStr(s: readonly (number | null)[]): string {
  return `[${s.join(', ')}]`;
}

function weightLabel(originalName: string): string {
  return originalName.slice(originalName.lastIndexOf('/') + 1).replace(/_\d+$/, '');
}

function setLayerWeights(tf: Tf, layer: TF.layers.Layer, source: string, values: readonly { shape: readonly number[]; data: Float32Array }[]): void {
  const targets = layer.weights;
  if (targets.length !== values.length) {
    throw new WeightsError(`${source}: layer '${layer.name}' has ${values.length} weight arrays, the model's layer has ${targets.length}`);
  }
  targets.forEach((t, i) => {
    const v = values[i]!;
    if (t.shape.length !== v.shape.length || t.shape.some((d, j) => d !== v.shape[j])) {
      throw new WeightsError(
        `${source}: shape mismatch in layer '${layer.name}' (${weightLabel(t.originalName)}): the file has ${shapeStr(v.shape)}, the model expects ${shapeStr(t.shape)}`,
      );
    }
  });
  const tensors = values.map((v) => tf.tensor(v.data, [...v.shape], 'float32'));
  try {
    layer.setWeights(tensors);
  } finally {
    tf.dispose(tensors);
  }
}

/**
 * Set `model`'s weights from a Keras HDF5 file by layer name. Every model layer with weights
 * must be in the file unless `exclude`d (e.g. a new `predictions` top); file layers the model
 * lacks are ignored and reported.
 */
export async function loadKerasWeights(tf: Tf, model: TF.LayersModel, file: string, exclude: readonly string[] = []): Promise<LoadReport> {
  const wanted = new Map(model.layers.filter((l) => l.weights.length > 0 && !exclude.includes(l.name)).map((l) => [l.name, l]));
  const loaded: string[] = [];
  const ignored: string[] = [];
  const { style, layers } = await readKerasH5(file, (name, weights) => {
    const layer = wanted.get(name);
    if (!layer) {
      if (weights.length > 0) ignored.push(name);
      return;
    }
    setLayerWeights(tf, layer, path.basename(file), weights);
    loaded.push(name);
    wanted.delete(name);
  });
  if (wanted.size > 0) {
    const missing = [...wanted.keys()];
    throw new WeightsError(
      `${path.basename(file)}: no weights for layer${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m}'`).join(', ')} (the file has: ${layers.join(', ')})`,
    );
  }
  return { loaded, ignored, style };
}

/** Copy weights by layer name from `source` (e.g. a tfjs model.json) into `model`. */
export function copyWeights(tf: Tf, source: TF.LayersModel, model: TF.LayersModel, label: string, exclude: readonly string[] = []): LoadReport {
  const byName = new Map(source.layers.map((l) => [l.name, l]));
  const loaded: string[] = [];
  const missing: string[] = [];
  for (const layer of model.layers) {
    if (layer.weights.length === 0 || exclude.includes(layer.name)) continue;
    const src = byName.get(layer.name);
    if (!src || src.weights.length === 0) {
      missing.push(layer.name);
      continue;
    }
    const values = src.weights.map((w) => ({ shape: w.shape as number[], data: w.read().dataSync() as Float32Array }));
    setLayerWeights(tf, layer, label, values);
    loaded.push(layer.name);
  }
  if (missing.length > 0) throw new WeightsError(`${label}: no weights for layer${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m}'`).join(', ')}`);
  const mine = new Set(model.layers.map((l) => l.name));
  return { loaded, ignored: source.layers.filter((l) => l.weights.length > 0 && !mine.has(l.name)).map((l) => l.name) };
}
