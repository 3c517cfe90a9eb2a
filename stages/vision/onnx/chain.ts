// What the converter (convert.ts) converts, and the cache key of its output: the linear chain
// of layers from a tf.layers model's input to a cut layer, and a fingerprint of that chain.
import { createHash } from 'node:crypto';
import type * as tf from '@tensorflow/tfjs';
import { UnsupportedLayerError, type Layer } from './values.js';

/** Bump when the graphs convert.ts emits change for the same layers and weights (cache key). */
export const CONVERTER_VERSION = 2;

export interface ConvertOptions {
  /** 3x3 convolutions as Winograd where winogradPays (default; tuned for the CPU provider). */
  readonly winograd?: boolean;
}

/**
 * The layers from the model's input to `cutLayer`, input first. Throws on branching graphs.
 * Walked back through the model's own symbolic tensors (each names the node that made it): a
 * head made by headModel() shares its layers with the full network, so those layers have two
 * inbound nodes and only the tensors say which one is this model's.
 */
export function chainTo(model: tf.LayersModel, cutLayer: string): Layer[] {
  let target: Layer;
  try {
    target = model.getLayer(cutLayer);
  } catch {
    throw new Error(`layer '${cutLayer}' not found in model '${model.name}'`);
  }
  type Sym = tf.SymbolicTensor & { nodeIndex: number };
  const at = model.outputLayers.indexOf(target);
  if (at < 0 && target.inboundNodes.length !== 1) {
    throw new UnsupportedLayerError(target.name, target.getClassName(), `used at ${target.inboundNodes.length} places in the graph (shared layer)`);
  }
  let t = (at >= 0 ? model.outputs[at] : target.output) as Sym;
  const chain: Layer[] = [];
  for (;;) {
    const layer = t.sourceLayer as Layer;
    chain.push(layer);
    const cls = layer.getClassName();
    if (cls === 'InputLayer') break;
    if ('layers' in layer) throw new UnsupportedLayerError(layer.name, cls, 'nested models are not converted');
    const node = layer.inboundNodes[t.nodeIndex] as { inputTensors: Sym[] } | undefined;
    const inputs = node?.inputTensors ?? [];
    if (inputs.length !== 1) {
      throw new UnsupportedLayerError(layer.name, cls, `has ${inputs.length} inputs: only a linear chain is converted`);
    }
    t = inputs[0]!;
  }
  return chain.reverse();
}

/** sha256 over the converter version, the chain's layer configs and its weights: the .onnx cache key. */
export function chainFingerprint(model: tf.LayersModel, cutLayer: string, opts: ConvertOptions = {}): string {
  const hash = createHash('sha256');
  // The same graph options give the same key as before they existed (Winograd on).
  hash.update(`pipe-onnx-converter:${CONVERTER_VERSION}${opts.winograd === false ? ':no-winograd' : ''}\n`);
  for (const layer of chainTo(model, cutLayer)) {
    const config = { ...layer.getConfig() };
    delete config['name']; // names do not change numbers
    hash.update(JSON.stringify({ class: layer.getClassName(), config, out: layer.outputShape }));
    for (const w of layer.weights) {
      const data = w.read().dataSync();
      hash.update(`${weightSuffix(w.originalName)}:${w.shape.join('x')}\n`);
      hash.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
  }
  return hash.digest('hex');
}

export function weightSuffix(weightName: string): string {
  return weightName.slice(weightName.lastIndexOf('/') + 1).replace(/:\d+$/, '');
}
