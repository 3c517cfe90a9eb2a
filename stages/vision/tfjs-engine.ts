// The frozen part run by TensorFlow.js (whatever backend is active), and the choice between
// it and the ONNX Runtime engine (./onnx/engine.ts, imported only when wanted).
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import type { Tf } from './backend.js';
import { checkRunArgs, type EngineName, type FrozenEngine } from './frozen.js';

export type EnginePref = 'auto' | EngineName;
export const ENGINE_PREFS: readonly EnginePref[] = ['auto', 'onnx', 'tfjs'];

export interface TfjsEngineOptions {
  /** Images per forward pass; default: about 8 at 224x224, more for smaller inputs (wasm memory). */
  readonly maxBatch?: number;
  /** Merged into `detail` (the backend choice). */
  readonly detail?: Readonly<Record<string, unknown>>;
}

function dims(shape: readonly (number | null)[], what: string): number[] {
  const out = shape.slice(1).map((d) => {
    if (d === null || d < 0) throw new Error(`${what} has a dynamic dimension: [${shape.join(', ')}]`);
    return d;
  });
  return out;
}

/** The output shape (without batch) of `cutLayer` in `model`. */
export function cutOutputShape(model: TF.LayersModel, cutLayer: string): number[] {
  const shape = model.getLayer(cutLayer).outputShape;
  if (Array.isArray(shape[0])) throw new Error(`layer '${cutLayer}' has several outputs`);
  return dims(shape as (number | null)[], `layer '${cutLayer}' output`);
}

export function createTfjsEngine(tf: Tf, model: TF.LayersModel, cutLayer: string, options: TfjsEngineOptions = {}): FrozenEngine {
  const layer = model.getLayer(cutLayer);
  // A model's own output, when the cut is its last layer: a head made by headModel() shares its
  // layers with the full network, so `layer.output` is ambiguous there.
  const at = model.outputLayers.indexOf(layer);
  const output = at >= 0 ? model.outputs[at]! : (layer.output as TF.SymbolicTensor);
  const sub = tf.model({ inputs: model.inputs, outputs: output, name: `frozen_${cutLayer}` });
  const inputShape = dims(model.inputs[0]!.shape, 'model input');
  const outputShape = cutOutputShape(model, cutLayer);
  const inSize = inputShape.reduce((a, b) => a * b, 1);
  const outSize = outputShape.reduce((a, b) => a * b, 1);
  const pixels = (inputShape[0] ?? 1) * (inputShape[1] ?? 1);
  const maxBatch = Math.max(1, Math.floor(options.maxBatch ?? Math.min(256, (8 * 224 * 224) / pixels)));
  const detail = { engine: 'tfjs', backend: tf.getBackend(), maxBatch, cut: cutLayer, ...(options.detail ?? {}) };
  let disposed = false;
  return {
    name: 'tfjs',
    detail,
    inputShape,
    outputShape,
    async run(batch: Float32Array, count: number): Promise<Float32Array> {
      checkRunArgs('tfjs', disposed, batch, count, inputShape);
      const out = new Float32Array(count * outSize);
      for (let s = 0; s < count; s += maxBatch) {
        const n = Math.min(maxBatch, count - s);
        const y = tf.tidy(() => {
          const x = tf.tensor(batch.subarray(s * inSize, (s + n) * inSize), [n, ...inputShape], 'float32');
          return sub.predict(x) as TF.Tensor;
        });
        try {
          out.set((await y.data()) as Float32Array, s * outSize);
        } finally {
          y.dispose();
        }
      }
      return out;
    },
    async dispose() {
      disposed = true; // the sub-model shares the caller's layers: nothing of its own to free
    },
  };
}

/** A place to keep converted ONNX graphs (the runner's derived store, in a stage). */
export type DerivedFn = (name: string, key: unknown, build: (dir: string) => Promise<void>) => Promise<string>;

export interface OpenEngineOptions {
  readonly engine: EnginePref;
  readonly log: (message: string) => void;
  readonly warn: (message: string) => void;
  readonly derived?: DerivedFn;
  readonly backendDetail?: Readonly<Record<string, unknown>>;
  readonly maxBatch?: number;
}

/**
 * The frozen part of `model` up to `cutLayer`: ONNX Runtime for 'auto' and 'onnx' when its module
 * and the conversion work, tfjs otherwise, with the reason logged and kept in `detail`.
 */
export async function openFrozenEngine(tf: Tf, model: TF.LayersModel, cutLayer: string, options: OpenEngineOptions): Promise<FrozenEngine> {
  let fallback: string | undefined;
  if (options.engine !== 'tfjs') {
    try {
      const onnx = await import('./onnx/engine.js');
      const derived = options.derived;
      const store = derived
        ? {
            // Conversion runs inside the derived build, so a graph is converted once per key.
            async get(key: string): Promise<Uint8Array | null> {
              const dir = await derived('onnx-graph', { key }, async (d) => {
                const { convertToOnnx } = await import('./onnx/convert.js');
                await writeFile(path.join(d, 'model.onnx'), convertToOnnx(model, cutLayer).bytes);
              });
              return new Uint8Array(await readFile(path.join(dir, 'model.onnx')));
            },
            async put(): Promise<void> {},
          }
        : undefined;
      const engine = await onnx.createOnnxEngine(model, cutLayer, { log: options.log, ...(store ? { store } : {}) });
      return engine;
    } catch (e) {
      fallback = `onnx engine unavailable (${((e as Error).message ?? String(e)).split('\n')[0]})`;
      (options.engine === 'onnx' ? options.warn : options.log)(`${fallback}; using the tfjs engine`);
    }
  }
  const engine = createTfjsEngine(tf, model, cutLayer, {
    detail: { ...(options.backendDetail ?? {}), ...(fallback ? { fallback } : {}) },
    ...(options.maxBatch ? { maxBatch: options.maxBatch } : {}),
  });
  options.log(`frozen part up to '${cutLayer}' on tfjs (${tf.getBackend()}, ${engine.detail['maxBatch'] as number} images per pass)`);
  return engine;
}
