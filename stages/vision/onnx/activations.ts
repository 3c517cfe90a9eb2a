// Keras activations (by their serialised names) as ONNX ops.
import type { GraphBuilder, AttrValue } from './graph.js';
import { UnsupportedLayerError, axisIn, type Layer, type Value } from './values.js';

/** A Keras activation applied to `x` (shape unchanged); unknown ones are UnsupportedLayerError. */
export function applyActivation(g: GraphBuilder, layer: Layer, x: Value, name: unknown): Value {
  const base = `${layer.name}/act`;
  const op = (type: string, attrs: Record<string, AttrValue> = {}): Value => ({ ...x, name: g.node(type, [x.name], base, attrs) });
  switch (name) {
    case undefined:
    case null:
    case 'linear':
      return x;
    case 'relu':
      return op('Relu');
    case 'relu6':
      return { ...x, name: g.node('Clip', [x.name, g.scalar('zero', 0), g.scalar('six', 6)], base) };
    case 'sigmoid':
      return op('Sigmoid');
    case 'tanh':
      return op('Tanh');
    case 'softmax': // tfjs' softmax activation works on the last axis
      return op('Softmax', { axis: { i: axisIn(x.layout, x.shape.length, -1) } });
    case 'elu':
      return op('Elu', { alpha: { f: 1 } });
    case 'selu':
      return op('Selu', { alpha: { f: 1.6732632423543772 }, gamma: { f: 1.0507009873554805 } });
    case 'softplus':
      return op('Softplus');
    case 'softsign':
      return op('Softsign');
    case 'hardSigmoid':
    case 'hard_sigmoid':
      return op('HardSigmoid', { alpha: { f: 0.2 }, beta: { f: 0.5 } });
    case 'swish': {
      const s = g.node('Sigmoid', [x.name], base);
      return { ...x, name: g.node('Mul', [x.name, s], base) };
    }
    case 'mish': {
      const sp = g.node('Softplus', [x.name], base);
      const t = g.node('Tanh', [sp], base);
      return { ...x, name: g.node('Mul', [x.name, t], base) };
    }
    default:
      throw new UnsupportedLayerError(layer.name, layer.getClassName(), `activation '${String(name)}'`);
  }
}
