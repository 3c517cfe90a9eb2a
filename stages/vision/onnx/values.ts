// The values the converter passes between layers, and the error for what it cannot convert.
import type * as tf from '@tensorflow/tfjs';

/** A layer this converter cannot express in ONNX: the caller falls back to the tfjs engine. */
export class UnsupportedLayerError extends Error {
  override readonly name = 'UnsupportedLayerError';
  constructor(
    readonly layer: string,
    readonly className: string,
    readonly reason: string,
  ) {
    super(`cannot convert layer '${layer}' (${className}) to ONNX: ${reason}`);
  }
}

export type Layer = tf.layers.Layer;
export type Shape = readonly (number | null)[];
export type Layout = 'nchw' | 'nhwc' | 'flat';

export interface Value {
  readonly name: string;
  /** Layout of the ONNX value; `shape` is always tfjs' (channels-last) shape, batch first. */
  readonly layout: Layout;
  readonly shape: Shape;
}

/** NHWC axis (possibly negative) -> the axis of the same dimension in `layout`. */
export function axisIn(layout: Layout, rank: number, axis: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (layout !== 'nchw') return a;
  return [0, 2, 3, 1][a] ?? a;
}
