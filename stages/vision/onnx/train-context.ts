// What the layer builders of the training graphs (./train-graph.ts, ./train-conv.ts) share: the
// values flowing up the graph, the backward tape, and the hooks that declare weights and their
// gradients.
import type * as tf from '@tensorflow/tfjs';
import type { GraphBuilder } from './graph.js';
import type { KernelShape } from './kernel-layout.js';
import { UnsupportedLayerError } from './values.js';

/** One trainable weight as the graphs see it. */
export interface TrainParam {
  /** Graph input name; its gradient is the output `grad/<name>`. */
  readonly name: string;
  readonly layer: string;
  /** The tf.layers variable it mirrors (head.trainableWeights). */
  readonly variable: tf.LayerVariable;
  readonly tfShape: readonly number[];
  readonly onnxShape: readonly number[];
  /** Conv kernels are stored [co, kh*kw*ci] (tfjs' kernel as a matrix, transposed); everything else has tfjs' element order. */
  readonly conv?: KernelShape;
}

export type Layout = 'nhwc' | 'flat';

/** A value of the forward pass. */
export interface Val {
  readonly name: string;
  readonly layout: Layout;
  /** Per example, channels-last: [h, w, c] or [f]. */
  readonly shape: readonly number[];
}

/** A layer's backward step: the gradient of its output in, of its input out ('' when none is needed). */
export type Backward = (dy: string) => string;

/** The build state a layer builder adds to. */
export interface TrainBuild {
  readonly g: GraphBuilder;
  ints(base: string, values: readonly number[]): string;
  /** Declares a trainable weight of `layer` as a graph input; returns its name. */
  param(layer: tf.layers.Layer, which: 'kernel' | 'bias', onnxShape: readonly number[], conv?: TrainParam['conv']): string;
  /** The value holding the gradient of the param named `pname`. */
  setGrad(pname: string, value: string): void;
  /** relu' of the relu output `a`, as a float mask. */
  reluMask(a: string): string;
  /** Pushes the layer's backward step (run in reverse order). */
  backward(step: Backward): void;
  /** Adds forward multiply-adds and floats held per example (for bytesPerExample). */
  cost(macs: number, floats: number): void;
}

export function config(layer: tf.layers.Layer): Record<string, unknown> {
  return layer.getConfig() as Record<string, unknown>;
}

export function pair(v: unknown, dflt: number): [number, number] {
  if (Array.isArray(v)) return [Number(v[0] ?? dflt), Number(v[1] ?? v[0] ?? dflt)];
  if (typeof v === 'number') return [v, v];
  return [dflt, dflt];
}

export function activationOf(layer: tf.layers.Layer): string {
  const a = config(layer)['activation'];
  return typeof a === 'string' ? a : 'linear';
}

/** The layer's activation when it is one of `allowed`; else UnsupportedLayerError. */
export function checkActivation(layer: tf.layers.Layer, allowed: readonly string[]): string {
  const act = activationOf(layer);
  if (!allowed.includes(act)) throw new UnsupportedLayerError(layer.name, layer.getClassName(), `activation '${act}' is not supported for training`);
  return act;
}
