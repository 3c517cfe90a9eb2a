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
