// tf.layers model (a chain from its input to a cut layer) -> ONNX ModelProto bytes, so that ONNX
// Runtime computes exactly what tfjs computes for the frozen part of the network.
//
// Layouts: tfjs is channels-last (NHWC), ONNX's Conv/Pool/BatchNormalization are channels-first.
// The graph takes NHWC, transposes once before the first spatial op, stays NCHW while it can,
// and transposes back where channels-last order matters: before Flatten (Keras flattens
// (h, w, c)), before a Dense applied to a 4-D tensor, and at the output. Wrong layouts run
// silently with wrong numbers, which is why every layer type has its own test against tfjs.
import type * as tf from '@tensorflow/tfjs';
import { GraphBuilder, encodeModel, type AttrValue, type Dim } from './graph.js';
import { UnsupportedLayerError, axisIn, type Layer, type Shape, type Value } from './values.js';
import { applyActivation } from './activations.js';
import { convKernelToOnnx } from './kernel-layout.js';
import { winogradConv3x3, winogradKernel, winogradPays } from './winograd.js';
import { chainTo, weightSuffix, type ConvertOptions } from './chain.js';

export { UnsupportedLayerError };

export interface ConvertResult {
  /** The serialised ModelProto: one input `input` [N, ...inputShape], one output `output`. */
  readonly bytes: Uint8Array;
  /** Per image, without the batch dimension, as tfjs sees it (NHWC); -1 where dynamic. */
  readonly inputShape: readonly number[];
  /** Per image, in tfjs' layout (channels-last), e.g. [14, 14, 512] for block4_pool. */
  readonly outputShape: readonly number[];
  /** The converted layers, input first. */
  readonly layers: readonly string[];
  /** The convolutions computed as Winograd F(2x2, 3x3) (see winogradPays). */
  readonly winograd: readonly string[];
}

type Config = Record<string, unknown>;

const IDENTITY_LAYERS = new Set(['Dropout', 'SpatialDropout1D', 'SpatialDropout2D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout']);

function weight(layer: Layer, name: string): { data: Float32Array; shape: number[] } {
  const w = layer.weights.find((v) => weightSuffix(v.originalName) === name);
  if (!w) throw new UnsupportedLayerError(layer.name, layer.getClassName(), `no '${name}' weight`);
  return { data: w.read().dataSync() as Float32Array, shape: w.shape.map((d) => d ?? 0) };
}

function outputShapeOf(layer: Layer): Shape {
  const s = layer.outputShape;
  if (s.length > 0 && Array.isArray(s[0])) {
    throw new UnsupportedLayerError(layer.name, layer.getClassName(), 'has several outputs');
  }
  return s as Shape;
}

function pair(v: unknown, fallback: number): [number, number] {
  if (Array.isArray(v)) return [Number(v[0] ?? fallback), Number(v[1] ?? v[0] ?? fallback)];
  if (typeof v === 'number') return [v, v];
  return [fallback, fallback];
}

/** TF's padding for one spatial dim; null when the input size is not known. */
function tfPads(padding: string, inSize: number | null, k: number, s: number, d: number): [number, number] | null {
  if (padding === 'valid') return [0, 0];
  if (inSize == null) return null;
  const out = Math.ceil(inSize / s);
  const total = Math.max((out - 1) * s + (k - 1) * d + 1 - inSize, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

/** Conv/Pool padding attributes: explicit pads from TF's formula, or SAME_UPPER (= TF 'same'). */
function padAttrs(layer: Layer, padding: unknown, x: Value, k: [number, number], s: [number, number], d: [number, number]): Record<string, AttrValue> {
  if (padding !== 'same' && padding !== 'valid') {
    throw new UnsupportedLayerError(layer.name, layer.getClassName(), `padding '${String(padding)}'`);
  }
  const ph = tfPads(padding, x.shape[1] ?? null, k[0], s[0], d[0]);
  const pw = tfPads(padding, x.shape[2] ?? null, k[1], s[1], d[1]);
  if (!ph || !pw) return { auto_pad: { s: 'SAME_UPPER' } };
  return { pads: { ints: [ph[0], pw[0], ph[1], pw[1]] } };
}

class Converter {
  readonly g = new GraphBuilder();
  /** The layers converted as Winograd (ConvertResult.winograd). */
  readonly winograd: string[] = [];

  /** `winograd`: 3x3 convolutions where winogradPays (CPU provider); else ORT's Conv everywhere. */
  constructor(private readonly useWinograd: boolean) {}

  toNchw(x: Value): Value {
    if (x.shape.length !== 4 || x.layout === 'nchw') return x;
    return { ...x, layout: 'nchw', name: this.g.node('Transpose', [x.name], 'to_nchw', { perm: { ints: [0, 3, 1, 2] } }) };
  }

  toNhwc(x: Value): Value {
    if (x.shape.length !== 4 || x.layout === 'nhwc') return x;
    return { ...x, layout: 'nhwc', name: this.g.node('Transpose', [x.name], 'to_nhwc', { perm: { ints: [0, 2, 3, 1] } }) };
  }

  /** A 3x3 stride-1 Conv2D as Winograd F(2x2, 3x3) in NHWC (kernel HWIO [3, 3, ci, co]). */
  winogradConv(layer: Layer, x: Value, kernel: Float32Array, [h, w, ci, co]: [number, number, number, number], c: Config): Value {
    const g = this.g;
    const xin = this.toNhwc(x);
    // The training graphs' [co, 9*ci] layout; ORT folds the kernel transform (a constant) when
    // the session loads.
    const W = convKernelToOnnx(kernel, { kh: 3, kw: 3, ci, co });
    const pads = c['padding'] === 'same' ? [1, 1, 1, 1] : [0, 0, 0, 0];
    const U = winogradKernel(g, `${layer.name}/U`, g.floats(`${layer.name}/W`, W, [co, 9 * ci]), ci, co, false);
    let y = winogradConv3x3(g, layer.name, xin.name, [h, w, ci], pads, U, co).value;
    if (c['useBias'] !== false) y = g.node('Add', [y, g.floats(`${layer.name}/B`, weight(layer, 'bias').data, [co])], layer.name);
    this.winograd.push(layer.name);
    return this.activation(layer, { name: y, layout: 'nhwc', shape: outputShapeOf(layer) }, c['activation']);
  }

  /** A Keras activation by its serialised name, applied to `x` (shape unchanged). */
  activation(layer: Layer, x: Value, name: unknown): Value {
    return applyActivation(this.g, layer, x, name);
  }

  layer(layer: Layer, x: Value): Value {
    const cls = layer.getClassName();
    const c = layer.getConfig() as Config;
    const out = outputShapeOf(layer);
    const g = this.g;
    const unsupported = (reason: string) => new UnsupportedLayerError(layer.name, cls, reason);
    const channelsLast = () => {
      if (c['dataFormat'] !== undefined && c['dataFormat'] !== 'channelsLast') throw unsupported(`dataFormat '${String(c['dataFormat'])}'`);
    };
    const need4d = () => {
      if (x.shape.length !== 4) throw unsupported(`input of rank ${x.shape.length}, expected 4`);
    };

    if (IDENTITY_LAYERS.has(cls)) return { ...x, shape: out }; // inference: dropout and noise are identities
    switch (cls) {
      case 'InputLayer':
        return x;

      case 'Conv2D':
      case 'DepthwiseConv2D': {
        channelsLast();
        need4d();
        const depthwise = cls === 'DepthwiseConv2D';
        const k = weight(layer, depthwise ? 'depthwise_kernel' : 'kernel');
        const [kh, kw, ci, co] = k.shape as [number, number, number, number];
        const strides = pair(c['strides'], 1);
        const dil = pair(c['dilationRate'], 1);
        if ((strides[0] > 1 || strides[1] > 1) && (dil[0] > 1 || dil[1] > 1)) throw unsupported('strides and dilation both > 1');
        const [ih, iw] = [x.shape[1] ?? null, x.shape[2] ?? null];
        const unit = strides.every((v) => v === 1) && dil.every((v) => v === 1);
        if (
          this.useWinograd &&
          !depthwise &&
          kh === 3 &&
          kw === 3 &&
          unit &&
          ih !== null &&
          iw !== null &&
          (c['padding'] === 'same' || c['padding'] === 'valid') &&
          winogradPays(ci, ih, iw)
        ) {
          return this.winogradConv(layer, x, k.data, [ih, iw, ci, co], c);
        }
        // HWIO -> OIHW (transpose [3,2,0,1]); depthwise [kh,kw,C,M] -> [C*M,1,kh,kw], channel c*M+m.
        const outC = depthwise ? ci * co : co;
        const inPerGroup = depthwise ? 1 : ci;
        const w = new Float32Array(outC * inPerGroup * kh * kw);
        for (let h = 0; h < kh; h++)
          for (let v = 0; v < kw; v++)
            for (let i = 0; i < ci; i++)
              for (let o = 0; o < co; o++) {
                const src = k.data[((h * kw + v) * ci + i) * co + o]!;
                const dst = depthwise ? ((i * co + o) * kh + h) * kw + v : ((o * ci + i) * kh + h) * kw + v;
                w[dst] = src;
              }
        const xin = this.toNchw(x);
        const inputs = [xin.name, g.floats(`${layer.name}/W`, w, [outC, inPerGroup, kh, kw])];
        if (c['useBias'] !== false) {
          const b = weight(layer, 'bias');
          inputs.push(g.floats(`${layer.name}/B`, b.data, [outC]));
        }
        const y = g.node('Conv', inputs, layer.name, {
          kernel_shape: { ints: [kh, kw] },
          strides: { ints: strides },
          dilations: { ints: dil },
          group: { i: depthwise ? ci : 1 },
          ...padAttrs(layer, c['padding'], x, [kh, kw], strides, dil),
        });
        return this.activation(layer, { name: y, layout: 'nchw', shape: out }, c['activation']);
      }

      case 'Dense': {
        const k = weight(layer, 'kernel');
        const [, units] = k.shape as [number, number];
        const bias = c['useBias'] !== false ? weight(layer, 'bias') : null;
        let y: string;
        if (x.shape.length === 2) {
          const inputs = [x.name, g.floats(`${layer.name}/W`, k.data, k.shape)];
          if (bias) inputs.push(g.floats(`${layer.name}/B`, bias.data, [units]));
          y = g.node('Gemm', inputs, layer.name, { transB: { i: 0 } });
          return this.activation(layer, { name: y, layout: 'flat', shape: out }, c['activation']);
        }
        // Keras applies Dense to the last axis of a higher-rank input: channels-last MatMul.
        const xl = this.toNhwc(x);
        y = g.node('MatMul', [xl.name, g.floats(`${layer.name}/W`, k.data, k.shape)], layer.name);
        if (bias) y = g.node('Add', [y, g.floats(`${layer.name}/B`, bias.data, [units])], layer.name);
        return this.activation(layer, { name: y, layout: xl.layout, shape: out }, c['activation']);
      }

      case 'MaxPooling2D':
      case 'AveragePooling2D': {
        channelsLast();
        need4d();
        const xin = this.toNchw(x);
        const pool = pair(c['poolSize'], 2);
        const strides = c['strides'] == null ? pool : pair(c['strides'], 1);
        // AveragePool's count_include_pad defaults to 0: padding is left out of the mean, as in TF.
        const y = g.node(cls === 'MaxPooling2D' ? 'MaxPool' : 'AveragePool', [xin.name], layer.name, {
          kernel_shape: { ints: pool },
          strides: { ints: strides },
          ...padAttrs(layer, c['padding'], x, pool, strides, [1, 1]),
        });
        return { name: y, layout: 'nchw', shape: out };
      }

      case 'GlobalAveragePooling2D':
      case 'GlobalMaxPooling2D': {
        channelsLast();
        need4d();
        const xin = this.toNchw(x);
        const y = g.node(cls === 'GlobalAveragePooling2D' ? 'GlobalAveragePool' : 'GlobalMaxPool', [xin.name], layer.name);
        if (out.length === 4) return { name: y, layout: 'nchw', shape: out }; // keepDims
        return { name: g.node('Flatten', [y], layer.name, { axis: { i: 1 } }), layout: 'flat', shape: out };
      }

      case 'BatchNormalization': {
        const rank = x.shape.length;
        const axis = Number(c['axis'] ?? -1);
        if (axis !== -1 && axis !== rank - 1) throw unsupported(`axis ${axis}: only the channel (last) axis is converted`);
        if (rank !== 2 && rank !== 4) throw unsupported(`input of rank ${rank}`);
        const xin = this.toNchw(x);
        const mean = weight(layer, 'moving_mean');
        const variance = weight(layer, 'moving_variance');
        const n = mean.data.length;
        const gamma = c['scale'] !== false ? weight(layer, 'gamma').data : new Float32Array(n).fill(1);
        const beta = c['center'] !== false ? weight(layer, 'beta').data : new Float32Array(n);
        // Always set epsilon: tfjs/Keras default 1e-3, ONNX default 1e-5.
        const y = g.node(
          'BatchNormalization',
          [
            xin.name,
            g.floats(`${layer.name}/gamma`, gamma, [n]),
            g.floats(`${layer.name}/beta`, beta, [n]),
            g.floats(`${layer.name}/mean`, mean.data, [n]),
            g.floats(`${layer.name}/var`, variance.data, [n]),
          ],
          layer.name,
          { epsilon: { f: Number(c['epsilon'] ?? 1e-3) } },
        );
        return { name: y, layout: xin.layout, shape: out };
      }

      case 'ReLU': {
        const max = c['maxValue'];
        if (max == null) return { ...x, shape: out, name: g.node('Relu', [x.name], layer.name) };
        const y = g.node('Clip', [x.name, g.scalar('zero', 0), g.scalar(`${layer.name}/max`, Number(max))], layer.name);
        return { ...x, shape: out, name: y };
      }

      case 'LeakyReLU':
        return { ...x, shape: out, name: g.node('LeakyRelu', [x.name], layer.name, { alpha: { f: Number(c['alpha'] ?? 0.3) } }) };

      case 'ELU':
        return { ...x, shape: out, name: g.node('Elu', [x.name], layer.name, { alpha: { f: Number(c['alpha'] ?? 1) } }) };

      case 'Softmax': {
        const axes = c['axis'];
        const axis = Array.isArray(axes) ? Number(axes[0]) : Number(axes ?? -1);
        if (Array.isArray(axes) && axes.length !== 1) throw unsupported('softmax over several axes');
        return { ...x, shape: out, name: g.node('Softmax', [x.name], layer.name, { axis: { i: axisIn(x.layout, x.shape.length, axis) } }) };
      }

      case 'Activation':
        return { ...this.activation(layer, x, c['activation']), shape: out };

      case 'Flatten': {
        if (x.shape.length === 2) return { ...x, shape: out };
        const xl = this.toNhwc(x); // Keras flattens (h, w, c): transpose back before flattening
        return { name: g.node('Flatten', [xl.name], layer.name, { axis: { i: 1 } }), layout: 'flat', shape: out };
      }

      case 'ZeroPadding2D': {
        channelsLast();
        need4d();
        const p = c['padding'];
        const [top, bottom] = Array.isArray(p) && Array.isArray(p[0]) ? pair(p[0], 0) : pair(Array.isArray(p) ? p[0] : p, 0);
        const [left, right] = Array.isArray(p) && Array.isArray(p[1]) ? pair(p[1], 0) : pair(Array.isArray(p) ? p[1] : p, 0);
        const xin = this.toNchw(x);
        const pads = g.int64s(`${layer.name}/pads`, [0, 0, top, left, 0, 0, bottom, right]);
        return { name: g.node('Pad', [xin.name, pads], layer.name, { mode: { s: 'constant' } }), layout: 'nchw', shape: out };
      }

      default:
        throw unsupported('no ONNX conversion for this layer type');
    }
  }
}

/**
 * Converts the layers from the model's input up to and including `cutLayer`.
 * Throws UnsupportedLayerError for a layer type or configuration it cannot express.
 */
export function convertToOnnx(model: tf.LayersModel, cutLayer: string, opts: ConvertOptions = {}): ConvertResult {
  const chain = chainTo(model, cutLayer);
  const first = chain[0]!;
  if (first.getClassName() !== 'InputLayer') {
    throw new UnsupportedLayerError(first.name, first.getClassName(), 'the chain does not start at an InputLayer');
  }
  const inShape = outputShapeOf(first);
  if (inShape.length !== 4 && inShape.length !== 2) {
    throw new UnsupportedLayerError(first.name, 'InputLayer', `input of rank ${inShape.length}: expected NHWC images or flat vectors`);
  }
  const conv = new Converter(opts.winograd ?? true);
  const inputName = conv.g.fresh('input');
  const outputName = conv.g.fresh('output'); // reserved: a layer may be called 'output'
  let x: Value = { name: inputName, layout: inShape.length === 4 ? 'nhwc' : 'flat', shape: inShape };
  for (const layer of chain) x = conv.layer(layer, x);
  x = conv.toNhwc(x);

  const dims = (s: Shape, names: string[]): Dim[] => s.map((d, i) => (i === 0 ? 'N' : (d ?? names[i] ?? `d${i}`)));
  const model_ = conv.g.build(
    `${model.name}_to_${cutLayer}`,
    { name: inputName, dims: dims(inShape, ['N', 'H', 'W', 'C']) },
    { value: x.name, name: outputName, dims: dims(x.shape, ['N', 'OH', 'OW', 'OC']) },
  );
  return {
    bytes: encodeModel(model_),
    inputShape: inShape.slice(1).map((d) => d ?? -1),
    outputShape: x.shape.slice(1).map((d) => d ?? -1),
    layers: chain.map((l) => l.name),
    winograd: [...conv.winograd],
  };
}
