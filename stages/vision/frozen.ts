// The frozen part of a network (every layer below the first trainable one) behind one small
// interface, so the engine that computes it can change: tfjs here, ONNX Runtime where it loads.
// Its outputs are what the frozen-output cache stores, so engines must agree numerically
// (within 1e-4 of the largest output magnitude).

export type EngineName = 'onnx' | 'tfjs';

export interface FrozenEngine {
  readonly name: EngineName;
  /** What ran it, for logs and meta.json: backend, provider, threads, fallback reason. */
  readonly detail: Readonly<Record<string, unknown>>;
  /** Input per image, NHWC without the batch dimension: [height, width, 3]. */
  readonly inputShape: readonly number[];
  /** Output per image, without the batch dimension: [4096] for fc2, [14, 14, 512] for block4_pool. */
  readonly outputShape: readonly number[];
  /** `batch` holds `count` preprocessed images, NHWC; returns `count` outputs, flat, row-major. */
  run(batch: Float32Array, count: number): Promise<Float32Array>;
  dispose(): Promise<void>;
}

/** The argument checks every engine's run() makes, with one wording. */
export function checkRunArgs(engine: EngineName, disposed: boolean, batch: Float32Array, count: number, inputShape: readonly number[]): void {
  if (disposed) throw new Error(`${engine} engine used after dispose()`);
  if (!Number.isInteger(count) || count < 1) throw new Error(`count must be a positive integer, got ${count}`);
  const need = count * inputShape.reduce((a, b) => a * b, 1);
  if (batch.length < need) throw new Error(`batch holds ${batch.length} floats, ${count} images of [${inputShape.join(', ')}] need ${need}`);
}
