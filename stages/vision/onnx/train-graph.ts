// ONNX graphs that *train* the trainable part of a network: ONNX Runtime has no training API in
// its Node package, so the backward pass is built by hand from ordinary inference operators and
// the weights are graph inputs (they change every step). Two graphs from one description:
//   train:   x, y (one-hot), weights, dropout masks -> loss, probs, one gradient per weight
//   predict: x, weights -> probs
// Activations stay NHWC (as tfjs and the feature cache have them). A convolution is im2col (one
// Gather of whole channel vectors) + one Gemm over the whole batch; the forward and the
// weight-gradient Gemm share the columns and run in the orientations MLAS is fastest at (it is
// several times slower with a transposed A); dx is an ORT Conv with the flipped kernel.
// Supported: Conv2D (stride 1), MaxPooling2D (valid), GlobalAveragePooling2D, Flatten, Dropout,
// Dense, with relu or linear activations and a softmax Dense at the end; anything else throws
// UnsupportedLayerError (the caller trains in tfjs).
import type * as tf from '@tensorflow/tfjs';
import { GraphBuilder, encodeModel, type Dim } from './graph.js';
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
  readonly conv?: { readonly kh: number; readonly kw: number; readonly ci: number; readonly co: number };
}

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

type Layout = 'nhwc' | 'flat';
interface Val {
  readonly name: string;
  readonly layout: Layout;
  /** Per example, channels-last: [h, w, c] or [f]. */
  readonly shape: readonly number[];
}

type Backward = (dy: string) => string;

function config(layer: tf.layers.Layer): Record<string, unknown> {
  return layer.getConfig() as Record<string, unknown>;
}

function pair(v: unknown, dflt: number): [number, number] {
  if (Array.isArray(v)) return [Number(v[0] ?? dflt), Number(v[1] ?? v[0] ?? dflt)];
  if (typeof v === 'number') return [v, v];
  return [dflt, dflt];
}

function activationOf(layer: tf.layers.Layer): string {
  const a = config(layer)['activation'];
  return typeof a === 'string' ? a : 'linear';
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
  const reluBack = (act: string, a: string): ((dy: string) => string) =>
    act === 'relu' ? (dy) => g.node('Mul', [dy, g.node('Sign', [a], `${a}_on`)], `${a}_dz`) : (dy) => dy;
  const checkActivation = (layer: tf.layers.Layer, allowed: readonly string[]) => {
    const act = activationOf(layer);
    if (!allowed.includes(act)) throw new UnsupportedLayerError(layer.name, layer.getClassName(), `activation '${act}' is not supported for training`);
    return act;
  };

  let logits: string | undefined;
  for (const layer of layers) {
    const cls = layer.getClassName();
    const c = config(layer);
    const unsupported = (why: string) => new UnsupportedLayerError(layer.name, cls, why);
    if (c['dataFormat'] !== undefined && c['dataFormat'] !== 'channelsLast') throw unsupported('channels-first data');
    const needsInputGrad = belowTrains;
    switch (cls) {
      case 'Conv2D': {
        if (v.layout !== 'nhwc') throw unsupported('a convolution needs a spatial input');
        const act = checkActivation(layer, ['relu', 'linear']);
        const strides = pair(c['strides'], 1);
        const dil = pair(c['dilationRate'], 1);
        if (strides.some((s) => s !== 1) || dil.some((d) => d !== 1)) throw unsupported('strides or dilation other than 1');
        const [kh, kw] = pair(c['kernelSize'], 1);
        const [h, w, ci] = v.shape as [number, number, number];
        const co = Number(c['filters']);
        const k = kh * kw;
        let [pt, pb, pl, pr] = [0, 0, 0, 0];
        if (c['padding'] === 'same') {
          pt = Math.floor((kh - 1) / 2);
          pb = kh - 1 - pt;
          pl = Math.floor((kw - 1) / 2);
          pr = kw - 1 - pl;
        } else if (c['padding'] !== 'valid') throw unsupported(`padding '${String(c['padding'])}'`);
        const hp = h + pt + pb;
        const wp = w + pl + pr;
        const ho = hp - kh + 1;
        const wo = wp - kw + 1;
        macs += ho * wo * co * ci * k;
        // columns twice (gathered, reshaped), the padded input, z/relu/its gradient (x2 layouts)
        floats += 2 * ho * wo * k * ci + hp * wp * ci + 6 * ho * wo * co;
        const padded = pt || pb || pl || pr ? g.node('Pad', [v.name, ints(`${layer.name}/pads`, [0, pt, pl, 0, 0, pb, pr, 0])], `${layer.name}/xpad`) : v.name;
        // im2col as one Gather of whole channel vectors: row (n, i, j) of the columns holds
        // xpad[n, i + a, j + b, :] for every tap (a, b), so the columns are [N*ho*wo, kh*kw*ci]
        // and the kernel is tfjs' own [kh, kw, ci, co] read as a [kh*kw*ci, co] matrix.
        const taps: number[] = [];
        for (let i = 0; i < ho; i++) for (let jj = 0; jj < wo; jj++) for (let a = 0; a < kh; a++) for (let b = 0; b < kw; b++) taps.push((i + a) * wp + (jj + b));
        const flatPixels = g.node('Reshape', [padded, ints(`${layer.name}/pixels`, [-1, hp * wp, ci])], `${layer.name}/xpix`);
        const tapIdx = g.node('Reshape', [ints(`${layer.name}/taps`, taps), ints(`${layer.name}/tapShape`, [ho * wo, k])], `${layer.name}/tapIdx`);
        const gathered = g.node('Gather', [flatPixels, tapIdx], `${layer.name}/gathered`, { axis: { i: 1 } });
        const cols = g.node('Reshape', [gathered, ints(`${layer.name}/colsShape`, [-1, k * ci])], `${layer.name}/cols`);
        // Weights [co, kh*kw*ci] (the transpose of tfjs' kernel read as a matrix): the forward
        // and weight-gradient products are then the two Gemm shapes MLAS runs fastest here
        // (about 105 and 112 ms at batch 32 on block5, vs 125-137 for the other orientations).
        const W = param(layer, 'kernel', [co, k * ci], { kh, kw, ci, co });
        const useBias = c['useBias'] !== false;
        const B = useBias ? param(layer, 'bias', [co, 1]) : null;
        // Output channel-major [co, N*ho*wo]; relu there; NHWC for the next layer.
        const zc = g.node('Gemm', B ? [W, cols, B] : [W, cols], `${layer.name}/zc`, { transB: { i: 1 } });
        const ac = act === 'relu' ? g.node('Relu', [zc], `${layer.name}/ac`) : zc;
        const out = g.node('Transpose', [g.node('Reshape', [ac, ints(`${layer.name}/cnhw`, [co, -1, ho, wo])], `${layer.name}/ac4`)], layer.name, { perm: { ints: [1, 2, 3, 0] } });
        tape.push((dy) => {
          const dyc = g.node('Reshape', [g.node('Transpose', [dy], `${layer.name}/dyc4`, { perm: { ints: [3, 0, 1, 2] } }), ints(`${layer.name}/dycShape`, [co, -1])], `${layer.name}/dyc`);
          const dzc = act === 'relu' ? g.node('Mul', [dyc, g.node('Sign', [ac], `${layer.name}/on`)], `${layer.name}/dzc`) : dyc;
          setGrad(W, g.node('Gemm', [dzc, cols], `${layer.name}/dW`));
          if (B) setGrad(B, g.node('ReduceSum', [dzc, ints(`${layer.name}/ax1b`, [1])], `${layer.name}/dB`, { keepdims: { i: 1 } }));
          if (!needsInputGrad) return '';
          // dx is the 'full' correlation of dz with the flipped, io-swapped kernel: an ORT Conv
          // (NCHW), faster than a Gemm with W and a col2im.
          const dzN = g.node('Transpose', [g.node('Reshape', [dzc, ints(`${layer.name}/dz4`, [co, -1, ho, wo])], `${layer.name}/dzc4`)], `${layer.name}/dzN`, { perm: { ints: [1, 0, 2, 3] } });
          // Flipping both kernel axes reverses the tap index a*kw + b: one Slice over [co, taps,
          // ci] that moves whole ci-rows (a flip of the 3x3 axes moves 3 floats at a time).
          const wk = g.node('Reshape', [W, ints(`${layer.name}/wk`, [co, k, ci])], `${layer.name}/Wk`);
          const wr = g.node('Slice', [wk, ints(`${layer.name}/fs`, [-1]), ints(`${layer.name}/fe`, [-(k + 1)]), ints(`${layer.name}/fax`, [1]), ints(`${layer.name}/fst`, [-1])], `${layer.name}/Wrev`);
          const w4 = g.node('Reshape', [wr, ints(`${layer.name}/w4`, [co, kh, kw, ci])], `${layer.name}/W4`);
          const wf = g.node('Transpose', [w4], `${layer.name}/Wflip`, { perm: { ints: [3, 0, 1, 2] } });
          const dxN = g.node('Conv', [dzN, wf], `${layer.name}/dxN`, {
            kernel_shape: { ints: [kh, kw] },
            pads: { ints: [kh - 1 - pt, kw - 1 - pl, kh - 1 - pb, kw - 1 - pr] },
          });
          return g.node('Transpose', [dxN], `${layer.name}/dx`, { perm: { ints: [0, 2, 3, 1] } });
        });
        v = { name: out, layout: 'nhwc', shape: [ho, wo, co] };
        belowTrains = true;
        break;
      }

      case 'MaxPooling2D': {
        if (v.layout !== 'nhwc') throw unsupported('pooling needs a spatial input');
        if (c['padding'] !== 'valid') throw unsupported(`padding '${String(c['padding'])}'`);
        const pool = pair(c['poolSize'], 2);
        const strides = pair(c['strides'] ?? c['poolSize'], pool[0]);
        const [h, w, ch] = v.shape as [number, number, number];
        const ho = Math.floor((h - pool[0]) / strides[0]) + 1;
        const wo = Math.floor((w - pool[1]) / strides[1]) + 1;
        const input = g.node('Transpose', [v.name], `${layer.name}/nchw`, { perm: { ints: [0, 3, 1, 2] } });
        const [yN, idx] = g.nodeN('MaxPool', [input], [`${layer.name}/yN`, `${layer.name}/argmax`], { kernel_shape: { ints: pool }, strides: { ints: strides } }) as [string, string];
        const y = g.node('Transpose', [yN], layer.name, { perm: { ints: [0, 2, 3, 1] } });
        tape.push((dy) => {
          if (!needsInputGrad) return '';
          // Each output's gradient goes to the input element it took (indices over the whole tensor).
          const shape = g.node('Shape', [input], `${layer.name}/inShape`);
          const zeros = g.node('Reshape', [g.node('ConstantOfShape', [shape], `${layer.name}/zeros`), ints(`${layer.name}/flat`, [-1])], `${layer.name}/zerosFlat`);
          const flatIdx = g.node('Reshape', [idx, ints(`${layer.name}/flat`, [-1])], `${layer.name}/idxFlat`);
          const dyN = g.node('Transpose', [dy], `${layer.name}/dyN`, { perm: { ints: [0, 3, 1, 2] } });
          const flatDy = g.node('Reshape', [dyN, ints(`${layer.name}/flat`, [-1])], `${layer.name}/dyFlat`);
          const scattered = g.node('ScatterElements', [zeros, flatIdx, flatDy], `${layer.name}/dxFlat`, { axis: { i: 0 }, reduction: { s: 'add' } });
          const dxN = g.node('Reshape', [scattered, shape], `${layer.name}/dxN`);
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
    const model = g.buildGraph('predict', [{ name: x, dims: ['N', ...inputShape] }, ...params.map((p) => ({ name: p.name, dims: p.onnxShape }))], [{ value: probs, name: 'probs', dims: ['N', classes] }]);
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

/** tfjs kernel [kh, kw, ci, co] -> [co, kh*kw*ci] (the Gemm layout above). */
export function convKernelToOnnx(k: Float32Array, s: NonNullable<TrainParam['conv']>): Float32Array {
  const rows = s.kh * s.kw * s.ci;
  const out = new Float32Array(k.length);
  for (let r = 0; r < rows; r++) for (let o = 0; o < s.co; o++) out[o * rows + r] = k[r * s.co + o]!;
  return out;
}

/** The inverse of convKernelToOnnx. */
export function convKernelToTf(w: Float32Array, s: NonNullable<TrainParam['conv']>): Float32Array {
  const rows = s.kh * s.kw * s.ci;
  const out = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let o = 0; o < s.co; o++) out[r * s.co + o] = w[o * rows + r]!;
  return out;
}
