// ONNX graphs that *train* the trainable part of a network: ONNX Runtime has no training API in
// its Node package, so the backward pass is built by hand from ordinary inference operators and
// the weights are graph inputs (they change every step). Two graphs from one description:
//   train:   x, y (one-hot), weights, dropout masks -> loss, probs, one gradient per weight
//   predict: x, weights -> probs
// Activations stay NHWC (as tfjs and the feature cache have them); convolutions: ./train-conv.ts.
// Supported: Conv2D (stride 1), MaxPooling2D (valid), GlobalAveragePooling2D, Flatten, Dropout,
// Dense, with relu or linear activations and a softmax Dense at the end; anything else throws
// UnsupportedLayerError (the caller trains in tfjs).
import type * as tf from '@tensorflow/tfjs';
import { GraphBuilder, encodeModel, type Dim } from './graph.js';
import { addConv2D } from './train-conv.js';
import { activationOf, checkActivation, config, pair, type Backward, type TrainBuild, type TrainParam, type Val } from './train-context.js';
import { UnsupportedLayerError } from './values.js';

export type { TrainParam } from './train-context.js';

export interface TrainDropout {
  /** Graph input name of the mask (keep / (1 - rate), or 0). */
  readonly name: string;
  readonly layer: string;
  readonly rate: number;
  /** Mask dims with the batch as 'N' (the layout inside the graph). */
  readonly dims: readonly Dim[];
  /** Elements per example. */
  readonly perExample: number;
}

export interface TrainGraphs {
  readonly train: Uint8Array;
  readonly predict: Uint8Array;
  readonly params: readonly TrainParam[];
  readonly dropouts: readonly TrainDropout[];
  /** Per example, tfjs layout (what the data source yields). */
  readonly inputShape: readonly number[];
  readonly classes: number;
  /** Multiply-adds per example of the forward pass (for img/s -> GFLOP/s). */
  readonly forwardMacs: number;
  /**
   * Rough bytes the train graph holds per example (im2col columns, activations and their
   * gradients): the trainer splits a batch that would not fit its memory budget.
   */
  readonly bytesPerExample: number;
}

/**
 * The head's layers after its input, checked to form a chain. Walked back from the model's output
 * through its own symbolic tensors: a head made by headModel() shares layers with the full model,
 * so a layer's first inbound node belongs to the full model, not to the head.
 */
function chain(head: tf.LayersModel): tf.layers.Layer[] {
  const out: tf.layers.Layer[] = [];
  if (head.outputs.length !== 1 || head.inputs.length !== 1) throw new UnsupportedLayerError(head.name, 'Model', 'one input and one output are needed');
  let t = head.outputs[0] as tf.SymbolicTensor & { inputs?: tf.SymbolicTensor[] };
  while (t !== head.inputs[0]) {
    const layer = t.sourceLayer as tf.layers.Layer;
    if (layer.getClassName() === 'InputLayer') break;
    const inputs = t.inputs ?? [];
    if (inputs.length !== 1) throw new UnsupportedLayerError(layer.name, layer.getClassName(), 'the trainable layers must form a chain');
    out.unshift(layer);
    t = inputs[0] as typeof t;
  }
  return out;
}

/** Builds both graphs for `head` (a chain of layers ending in a softmax Dense). */
export function buildTrainGraphs(head: tf.LayersModel): TrainGraphs {
  const layers = chain(head);
  const last = layers[layers.length - 1];
  if (!last || last.getClassName() !== 'Dense' || activationOf(last) !== 'softmax') {
    throw new UnsupportedLayerError(last?.name ?? '?', last?.getClassName() ?? '?', 'the trainable part must end in a softmax Dense layer');
  }
  const inputShape = (head.inputs[0]?.shape ?? []).slice(1);
  if (inputShape.some((d) => d === null)) throw new UnsupportedLayerError(head.name, 'Model', 'the input needs a fixed shape');
  const classes = Number(config(last)['units']);
  const train = build(head, layers, inputShape as number[], classes, true);
  const predict = build(head, layers, inputShape as number[], classes, false);
  return {
    train: train.bytes,
    predict: predict.bytes,
    params: train.params,
    dropouts: train.dropouts,
    inputShape: inputShape as number[],
    classes,
    forwardMacs: train.macs,
    bytesPerExample: train.floats * 4,
  };
}

function build(head: tf.LayersModel, layers: readonly tf.layers.Layer[], inputShape: readonly number[], classes: number, training: boolean) {
  const g = new GraphBuilder();
  const params: TrainParam[] = [];
  const dropouts: TrainDropout[] = [];
  const gradOutputs: { value: string; name: string; dims: readonly Dim[] }[] = [];
  const tape: Backward[] = [];
  const ints = (base: string, v: readonly number[]) => g.int64s(base, v);
  let macs = 0;
  // Floats per example the train graph keeps alive at once (an estimate: see bytesPerExample).
  let floats = inputShape.reduce((a, b) => a * b, 1);

  const x = g.input('x');
  let v: Val;
  if (inputShape.length === 3) {
    v = { name: x, layout: 'nhwc', shape: inputShape };
  } else if (inputShape.length === 1) {
    v = { name: x, layout: 'flat', shape: inputShape };
  } else {
    throw new UnsupportedLayerError(head.name, 'Model', `input rank ${inputShape.length} (want [h, w, c] or [features])`);
  }
  // The first layer's input gradient is never needed: nothing below it trains.
  let belowTrains = false;

  const param = (layer: tf.layers.Layer, which: 'kernel' | 'bias', onnxShape: readonly number[], conv?: TrainParam['conv']): string => {
    const variable = layer.trainableWeights.find((w) => w.originalName.endsWith(`/${which}`) || w.name.endsWith(`/${which}`));
    if (!variable) throw new UnsupportedLayerError(layer.name, layer.getClassName(), `no trainable ${which} (frozen layers cannot sit among trained ones)`);
    const name = g.input(`${layer.name}/${which}`);
    params.push({ name, layer: layer.name, variable, tfShape: variable.shape as number[], onnxShape, ...(conv ? { conv } : {}) });
    gradOutputs.push({ value: '', name: `grad/${name}`, dims: onnxShape });
    return name;
  };
  const setGrad = (pname: string, value: string) => {
    const out = gradOutputs.find((o) => o.name === `grad/${pname}`)!;
    (out as { value: string }).value = value;
  };
  const b: TrainBuild = {
    g,
    ints,
    param,
    setGrad,
    // relu' as a float mask: Cast(a > 0) is a third the time of Sign(a) in ORT (single-threaded).
    reluMask: (a) => g.node('Cast', [g.node('Greater', [a, g.scalar(`${a}_zero`, 0)], `${a}_pos`)], `${a}_on`, { to: { i: 1 } }),
    backward: (step) => tape.push(step),
    cost: (m, f) => {
      macs += m;
      floats += f;
    },
  };
  const reluBack = (act: string, a: string): Backward => (act === 'relu' ? (dy) => g.node('Mul', [dy, b.reluMask(a)], `${a}_dz`) : (dy) => dy);

  let logits: string | undefined;
  for (const layer of layers) {
    const cls = layer.getClassName();
    const c = config(layer);
    const unsupported = (why: string) => new UnsupportedLayerError(layer.name, cls, why);
    if (c['dataFormat'] !== undefined && c['dataFormat'] !== 'channelsLast') throw unsupported('channels-first data');
    const needsInputGrad = belowTrains;
    switch (cls) {
      case 'Conv2D':
        v = addConv2D(b, layer, v, needsInputGrad);
        belowTrains = true;
        break;

      case 'MaxPooling2D': {
        if (v.layout !== 'nhwc') throw unsupported('pooling needs a spatial input');
        if (c['padding'] !== 'valid') throw unsupported(`padding '${String(c['padding'])}'`);
        const pool = pair(c['poolSize'], 2);
        const strides = pair(c['strides'] ?? c['poolSize'], pool[0]);
        const [h, w, ch] = v.shape as [number, number, number];
        const ho = Math.floor((h - pool[0]) / strides[0]) + 1;
        const wo = Math.floor((w - pool[1]) / strides[1]) + 1;
        const input = g.node('Transpose', [v.name], `${layer.name}/nchw`, { perm: { ints: [0, 3, 1, 2] } });
        const [yN, idx] = g.nodeN('MaxPool', [input], [`${layer.name}/yN`, `${layer.name}/argmax`], {
          kernel_shape: { ints: pool },
          strides: { ints: strides },
        }) as [string, string];
        const y = g.node('Transpose', [yN], layer.name, { perm: { ints: [0, 2, 3, 1] } });
        tape.push((dy) => {
          if (!needsInputGrad) return '';
          // Each output's gradient goes to the input element it took (indices over the whole tensor).
          const shape = g.node('Shape', [input], `${layer.name}/inShape`);
          const dyN = g.node('Transpose', [dy], `${layer.name}/dyN`, { perm: { ints: [0, 3, 1, 2] } });
          let dxN: string;
          if (strides[0] >= pool[0] && strides[1] >= pool[1]) {
            // Windows that do not overlap: each input element takes at most one gradient, which
            // is MaxUnpool (a third the time of ScatterElements, and no zeros to fill first).
            dxN = g.node('MaxUnpool', [dyN, idx, shape], `${layer.name}/dxN`, { kernel_shape: { ints: pool }, strides: { ints: strides } });
          } else {
            const zeros = g.node(
              'Reshape',
              [g.node('ConstantOfShape', [shape], `${layer.name}/zeros`), ints(`${layer.name}/flat`, [-1])],
              `${layer.name}/zerosFlat`,
            );
            const flatIdx = g.node('Reshape', [idx, ints(`${layer.name}/flat`, [-1])], `${layer.name}/idxFlat`);
            const flatDy = g.node('Reshape', [dyN, ints(`${layer.name}/flat`, [-1])], `${layer.name}/dyFlat`);
            const scattered = g.node('ScatterElements', [zeros, flatIdx, flatDy], `${layer.name}/dxFlat`, { axis: { i: 0 }, reduction: { s: 'add' } });
            dxN = g.node('Reshape', [scattered, shape], `${layer.name}/dxN`);
          }
          return g.node('Transpose', [dxN], `${layer.name}/dx`, { perm: { ints: [0, 2, 3, 1] } });
        });
        v = { name: y, layout: 'nhwc', shape: [ho, wo, ch] };
        break;
      }

      case 'GlobalAveragePooling2D': {
        if (v.layout !== 'nhwc') throw unsupported('pooling needs a spatial input');
        if (c['keepDims'] === true) throw unsupported('keepDims');
        const [h, w, ch] = v.shape as [number, number, number];
        const input = v.name;
        const y = g.node('ReduceMean', [input], layer.name, { axes: { ints: [1, 2] }, keepdims: { i: 0 } });
        tape.push((dy) => {
          if (!needsInputGrad) return '';
          const t = g.node('Unsqueeze', [dy, ints(`${layer.name}/ax12`, [1, 2])], `${layer.name}/dy4`);
          const e = g.node('Expand', [t, g.node('Shape', [input], `${layer.name}/inShape`)], `${layer.name}/dyE`);
          return g.node('Mul', [e, g.scalar(`${layer.name}/inv`, 1 / (h * w))], `${layer.name}/dx`);
        });
        v = { name: y, layout: 'flat', shape: [ch] };
        break;
      }

      case 'Flatten': {
        if (v.layout === 'flat') break;
        const [h, w, ch] = v.shape as [number, number, number];
        // Keras flattens channels-last, which is this layout's own order.
        const y = g.node('Reshape', [v.name, ints(`${layer.name}/shape`, [-1, h * w * ch])], layer.name);
        tape.push((dy) => (needsInputGrad ? g.node('Reshape', [dy, ints(`${layer.name}/dshape`, [-1, h, w, ch])], `${layer.name}/dx`) : ''));
        v = { name: y, layout: 'flat', shape: [h * w * ch] };
        break;
      }

      case 'Dropout': {
        const rate = Number(c['rate'] ?? 0);
        if (c['noiseShape'] != null) throw unsupported('noiseShape');
        if (!training || rate <= 0) break;
        const dims: Dim[] = ['N', ...v.shape];
        const mask = g.input(`${layer.name}/mask`);
        dropouts.push({ name: mask, layer: layer.name, rate, dims, perExample: v.shape.reduce((a, b) => a * b, 1) });
        const y = g.node('Mul', [v.name, mask], layer.name);
        tape.push((dy) => (needsInputGrad ? g.node('Mul', [dy, mask], `${layer.name}/dx`) : ''));
        v = { ...v, name: y };
        break;
      }

      case 'Dense': {
        if (v.layout !== 'flat' || v.shape.length !== 1) throw unsupported('a Dense layer needs a flat input (add Flatten)');
        const isLast = layer === layers[layers.length - 1];
        const act = checkActivation(layer, isLast ? ['softmax'] : ['relu', 'linear']);
        const units = Number(c['units']);
        macs += v.shape[0]! * units;
        floats += 4 * units + 2 * v.shape[0]!;
        const W = param(layer, 'kernel', [v.shape[0]!, units]);
        const B = c['useBias'] !== false ? param(layer, 'bias', [units]) : null;
        const input = v.name;
        const z = g.node('Gemm', B ? [input, W, B] : [input, W], isLast ? 'logits' : `${layer.name}/z`);
        const out = act === 'relu' ? g.node('Relu', [z], layer.name) : z;
        const back = reluBack(act, out);
        tape.push((dy) => {
          const dz = back(dy);
          setGrad(W, g.node('Gemm', [input, dz], `${layer.name}/dW`, { transA: { i: 1 } }));
          if (B) setGrad(B, g.node('ReduceSum', [dz, ints(`${layer.name}/ax0`, [0])], `${layer.name}/dB`, { keepdims: { i: 0 } }));
          return needsInputGrad ? g.node('Gemm', [dz, W], `${layer.name}/dx`, { transB: { i: 1 } }) : '';
        });
        v = { name: out, layout: 'flat', shape: [units] };
        if (isLast) logits = z;
        belowTrains = true;
        break;
      }

      default:
        throw unsupported('no training graph for this layer type');
    }
  }
  if (!logits) throw new Error('internal: no logits');

  const probs = g.node('Softmax', [logits], 'probs_value', { axis: { i: 1 } });
  if (!training) {
    const model = g.buildGraph(
      'predict',
      [{ name: x, dims: ['N', ...inputShape] }, ...params.map((p) => ({ name: p.name, dims: p.onnxShape }))],
      [{ value: probs, name: 'probs', dims: ['N', classes] }],
    );
    return { bytes: encodeModel(model), params, dropouts, macs, floats };
  }
  // (Opset 17: ReduceSum takes its axes as an input, ReduceMean still as an attribute.)
  // Mean softmax cross-entropy on the logits; its gradient is (probs - y) / N.
  const y = g.input('y');
  const logp = g.node('LogSoftmax', [logits], 'logp', { axis: { i: 1 } });
  const perExample = g.node('ReduceSum', [g.node('Mul', [y, logp], 'ylogp'), ints('ax1', [1])], 'nll_neg', { keepdims: { i: 0 } });
  const loss = g.node('Neg', [g.node('ReduceMean', [perExample], 'mean_neg', { axes: { ints: [0] }, keepdims: { i: 0 } })], 'loss_value');
  const n = g.node('Cast', [g.node('Gather', [g.node('Shape', [logits], 'logits_shape'), ints('zero', [0])], 'n_i64')], 'n_f', { to: { i: 1 } });
  let grad = g.node('Div', [g.node('Sub', [probs, y], 'p_minus_y'), n], 'dlogits');
  // The last Dense's own backward starts from the logits: skip its (softmax) activation.
  // Walk back until a layer needs no input gradient: nothing below it has weights.
  for (let i = tape.length - 1; i >= 0 && grad; i--) grad = tape[i]!(grad);
  const missing = gradOutputs.find((o) => !o.value);
  if (missing) throw new Error(`internal: no gradient for ${missing.name}`);
  const model = g.buildGraph(
    'train',
    [
      { name: x, dims: ['N', ...inputShape] },
      { name: y, dims: ['N', classes] },
      ...params.map((p) => ({ name: p.name, dims: p.onnxShape })),
      ...dropouts.map((d) => ({ name: d.name, dims: d.dims })),
    ],
    [{ value: loss, name: 'loss', dims: [] }, { value: probs, name: 'probs', dims: ['N', classes] }, ...gradOutputs],
  );
  return { bytes: encodeModel(model), params, dropouts, macs, floats };
}
