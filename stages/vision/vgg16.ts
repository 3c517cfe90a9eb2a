// VGG16 in tf.layers under Keras' layer names (block1_conv1 ... block5_conv3, flatten, fc1, fc2,
// predictions), so Keras' ImageNet weight files load by name. `tiny-vgg` is the same graph with
// 1/16 of the channels and units: the offline demo and the tests use it at small input sizes.
import type * as TF from '@tensorflow/tfjs';
import type { Tf } from './backend.js';

export type VggArchitecture = 'vgg16' | 'tiny-vgg';
export const VGG_ARCHITECTURES: readonly VggArchitecture[] = ['vgg16', 'tiny-vgg'];

/** What `trainable` names: the layers trained; everything below is frozen. */
export type VggTrainable = 'predictions' | 'dense' | 'block5' | 'all';
export const VGG_TRAINABLE: readonly VggTrainable[] = ['predictions', 'dense', 'block5', 'all'];

export interface VggOptions {
  readonly architecture: VggArchitecture;
  /** [height, width]; at least 32 each (five 2x2 poolings). */
  readonly inputSize: readonly [number, number];
  /** Units of `predictions`: 1000 for ImageNet, the class count when fine-tuning. */
  readonly classes: number;
  /** Seeds the initialisers, so `weights: none` is reproducible. */
  readonly seed?: number;
  /** false: the conv base only, up to block5_pool (Keras' include_top=False). Default true. */
  readonly includeTop?: boolean;
}

export interface VggLayerSpec {
  readonly name: string;
  readonly kind: 'input' | 'conv' | 'pool' | 'flatten' | 'dense';
  /** Output shape without the batch dimension. */
  readonly outputShape: readonly number[];
  /** Shapes of [kernel, bias] for conv and dense layers; [] otherwise. */
  readonly weightShapes: readonly (readonly number[])[];
  readonly units?: number;
  readonly activation?: 'relu' | 'softmax';
}

const BLOCKS: readonly (readonly [filters: number, convs: number])[] = [
  [64, 2],
  [128, 2],
  [256, 3],
  [512, 3],
  [512, 3],
];

export function widthOf(architecture: VggArchitecture): number {
  switch (architecture) {
    case 'vgg16':
      return 1;
    case 'tiny-vgg':
      return 1 / 16;
    default: {
      const never: never = architecture;
      throw new Error(`unknown architecture ${String(never)}`);
    }
  }
}

/** The layers, their output and weight shapes: pure arithmetic, no tfjs. */
export function vggLayerSpecs(options: VggOptions): VggLayerSpec[] {
  const width = widthOf(options.architecture);
  let [h, w] = options.inputSize;
  if (h < 32 || w < 32) throw new Error(`VGG input must be at least 32x32, got ${h}x${w}`);
  const out: VggLayerSpec[] = [{ name: 'input_1', kind: 'input', outputShape: [h, w, 3], weightShapes: [] }];
  let channels = 3;
  BLOCKS.forEach(([filters, convs], b) => {
    const f = Math.max(1, Math.round(filters * width));
    for (let c = 1; c <= convs; c++) {
      out.push({
        name: `block${b + 1}_conv${c}`,
        kind: 'conv',
        outputShape: [h, w, f],
        weightShapes: [[3, 3, channels, f], [f]],
        units: f,
        activation: 'relu',
      });
      channels = f;
    }
    h = Math.floor(h / 2);
    w = Math.floor(w / 2);
    out.push({ name: `block${b + 1}_pool`, kind: 'pool', outputShape: [h, w, channels], weightShapes: [] });
  });
  if (options.includeTop === false) return out;
  const flat = h * w * channels;
  out.push({ name: 'flatten', kind: 'flatten', outputShape: [flat], weightShapes: [] });
  const units = Math.max(1, Math.round(4096 * width));
  out.push({ name: 'fc1', kind: 'dense', outputShape: [units], weightShapes: [[flat, units], [units]], units, activation: 'relu' });
  out.push({ name: 'fc2', kind: 'dense', outputShape: [units], weightShapes: [[units, units], [units]], units, activation: 'relu' });
  out.push({
    name: 'predictions',
    kind: 'dense',
    outputShape: [options.classes],
    weightShapes: [[units, options.classes], [options.classes]],
    units: options.classes,
    activation: 'softmax',
  });
  return out;
}

export function parameterCount(specs: readonly VggLayerSpec[], includeTop = true): number {
  let n = 0;
  for (const s of specs) {
    if (!includeTop && s.kind === 'dense') continue;
    for (const shape of s.weightShapes) n += shape.reduce((a, b) => a * b, 1);
  }
  return n;
}

/** The last frozen layer for a `trainable` setting; null when everything trains. */
export function vggCutLayer(trainable: VggTrainable): string | null {
  switch (trainable) {
    case 'predictions':
      return 'fc2';
    case 'dense':
      return 'block5_pool';
    case 'block5':
      return 'block4_pool';
    case 'all':
      return null;
    default: {
      const never: never = trainable;
      throw new Error(`unknown trainable ${String(never)}`);
    }
  }
}

/** Build the network (random, seeded weights). */
export function buildVgg(tf: Tf, options: VggOptions): TF.LayersModel {
  const specs = vggLayerSpecs(options);
  const seed = options.seed ?? 0;
  const input = tf.input({ shape: [...specs[0]!.outputShape], name: 'input_1' });
  let x: TF.SymbolicTensor = input;
  specs.slice(1).forEach((s, i) => {
    // Keras' defaults (Glorot uniform, zero bias), seeded.
    const init = () => ({
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed * 1000 + i }),
      biasInitializer: tf.initializers.zeros(),
    });
    switch (s.kind) {
      case 'conv':
        x = tf.layers.conv2d({ name: s.name, filters: s.units!, kernelSize: 3, padding: 'same', activation: 'relu', ...init() }).apply(x) as TF.SymbolicTensor;
        break;
      case 'pool':
        x = tf.layers.maxPooling2d({ name: s.name, poolSize: 2, strides: 2 }).apply(x) as TF.SymbolicTensor;
        break;
      case 'flatten':
        x = tf.layers.flatten({ name: s.name }).apply(x) as TF.SymbolicTensor;
        break;
      case 'dense':
        x = tf.layers.dense({ name: s.name, units: s.units!, activation: s.activation!, ...init() }).apply(x) as TF.SymbolicTensor;
        break;
      case 'input':
        break;
      default: {
        const never: never = s.kind;
        throw new Error(`unknown layer kind ${String(never)}`);
      }
    }
  });
  return tf.model({ inputs: input, outputs: x, name: options.architecture === 'vgg16' ? 'vgg16' : 'tiny_vgg' });
}
