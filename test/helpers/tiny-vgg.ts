// Writes a VGG-shaped Keras weights file with h5wasm, in either dataset naming style
// (Keras 1: `block1_conv1/block1_conv1_W_1:0`, as the official VGG16 file; Keras 2:
// `block1_conv1/block1_conv1/kernel:0`) and either string encoding (fixed / variable length).
// Layers without weights are listed with an empty float64 `weight_names`, as Keras does.
import { vggLayerSpecs, type VggArchitecture } from '../../stages/vision/vgg16.js';
import { mulberry32 as prng } from '../../stages/random.js';

export interface TinyVggH5Options {
  readonly architecture?: VggArchitecture; // default tiny-vgg
  readonly inputSize?: number; // default 32
  readonly classes?: number; // default 1000 (ImageNet's top)
  readonly style?: 'keras1' | 'keras2';
  readonly strings?: 'fixed' | 'vlen';
  readonly seed?: number;
  /** Layers to leave out of the file. */
  readonly omit?: readonly string[];
  /** Replace the shape of a layer's kernel (to provoke a mismatch). */
  readonly kernelShape?: Readonly<Record<string, readonly number[]>>;
  /** Put the weights under model_weights/ as a whole-model file does. */
  readonly wholeModel?: boolean;
}

export interface TinyVggH5 {
  /** Per layer, its arrays in Keras order ([kernel, bias]). */
  readonly weights: Map<string, { shape: number[]; data: Float32Array }[]>;
  readonly layers: string[];
}

/** Glorot-uniform-like values, so activations stay in a sane range through the stack. */
export function tinyVggWeights(o: TinyVggH5Options = {}): TinyVggH5 {
  const specs = vggLayerSpecs({ architecture: o.architecture ?? 'tiny-vgg', inputSize: [o.inputSize ?? 32, o.inputSize ?? 32], classes: o.classes ?? 1000 });
  const rand = prng(o.seed ?? 1);
  const weights = new Map<string, { shape: number[]; data: Float32Array }[]>();
  for (const s of specs) {
    if (s.kind === 'input') continue;
    const arrays = s.weightShapes.map((shape0, i) => {
      const shape = i === 0 && o.kernelShape?.[s.name] ? [...o.kernelShape[s.name]!] : [...shape0];
      const n = shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      if (i === 0) {
        const fanOut = shape[shape.length - 1]!;
        const fanIn = n / fanOut;
        const limit = Math.sqrt(6 / (fanIn + fanOut));
        for (let k = 0; k < n; k++) data[k] = (rand() * 2 - 1) * limit;
      } else {
        for (let k = 0; k < n; k++) data[k] = (rand() - 0.5) * 0.1;
      }
      return { shape, data };
    });
    weights.set(s.name, arrays);
  }
  return { weights, layers: [...weights.keys()] };
}

export async function writeTinyVggH5(file: string, o: TinyVggH5Options = {}): Promise<TinyVggH5> {
  const mod = (await import('h5wasm/node')) as unknown as { default?: unknown; ready: Promise<unknown> };
  const h5 = (mod.default ?? mod) as typeof import('h5wasm');
  await h5.ready;
  const made = tinyVggWeights(o);
  const style = o.style ?? 'keras1';
  const strAttr = (group: { create_attribute: (n: string, d: string[], s?: number[] | null, t?: string | null) => void }, name: string, values: string[]) => {
    if (o.strings === 'vlen') group.create_attribute(name, values);
    else group.create_attribute(name, values, null, `S${Math.max(1, ...values.map((v) => v.length))}`);
  };
  const f = new h5.File(file, 'w');
  try {
    const root = o.wholeModel ? f.create_group('model_weights') : f;
    const layers = made.layers.filter((l) => !o.omit?.includes(l));
    strAttr(root, 'layer_names', layers);
    if (style === 'keras2') {
      strAttr(root, 'backend', ['tensorflow']);
      strAttr(root, 'keras_version', ['2.2.4']);
    }
    for (const layer of layers) {
      const arrays = made.weights.get(layer)!;
      const g = root.create_group(layer);
      if (arrays.length === 0) {
        g.create_attribute('weight_names', new Float64Array(0), [0], '<d');
        continue;
      }
      const names =
        style === 'keras1' ? arrays.map((_, i) => `${layer}_${i === 0 ? 'W' : 'b'}_1:0`) : arrays.map((_, i) => `${layer}/${i === 0 ? 'kernel' : 'bias'}:0`);
      strAttr(g, 'weight_names', names);
      const parent = style === 'keras2' ? g.create_group(layer) : g;
      arrays.forEach((a, i) => {
        const leaf = names[i]!.slice(names[i]!.lastIndexOf('/') + 1);
        parent.create_dataset({ name: leaf, data: a.data, shape: a.shape, dtype: '<f' });
      });
    }
  } finally {
    f.close();
  }
  return made;
}

export interface SyntheticSplitOptions {
  /** Images per class. */
  readonly train: number;
  readonly valid: number;
  /** Unlabelled test images (test/unknown/<n>.jpg). */
  readonly test?: number;
  /** Per class, under sample/train and sample/valid (hard links would do; copies are simpler). */
  readonly sample?: { readonly train: number; readonly valid: number };
  /** [width, height] of the generated JPEGs. */
  readonly size?: readonly [number, number];
  readonly seed?: number;
}

/**
 * A split dataset as the `split` stage writes it, with generated JPEGs whose class is learnable
 * but not trivial: "cat" images are warm (red over blue), "dog" images cool, each with a random
 * green level and a random rectangle of random colour over part of it.
 */
export async function writeSyntheticSplit(dir: string, o: SyntheticSplitOptions): Promise<{ classes: string[]; files: Record<string, string[]> }> {
  const { mkdir, writeFile } = await import('node:fs/promises');
  const path = await import('node:path');
  const sharp = (await import('sharp')).default;
  const [w, h] = o.size ?? [48, 40];
  const rand = prng(o.seed ?? 7);
  const int = (lo: number, hi: number) => Math.floor(lo + rand() * (hi - lo));
  const classes = ['cat', 'dog'];
  const image = async (cls: number | null): Promise<Buffer> => {
    const c = cls ?? int(0, 2);
    const warm = int(140, 256);
    const cool = int(0, 110);
    const bg = c === 0 ? { r: warm, g: int(40, 180), b: cool } : { r: cool, g: int(40, 180), b: warm };
    const rw = int(Math.floor(w / 6), Math.floor(w / 3));
    const rh = int(Math.floor(h / 6), Math.floor(h / 3));
    const patch = await sharp({ create: { width: rw, height: rh, channels: 3, background: { r: int(0, 256), g: int(0, 256), b: int(0, 256) } } })
      .png()
      .toBuffer();
    return sharp({ create: { width: w, height: h, channels: 3, background: bg } })
      .composite([{ input: patch, left: int(0, w - rw), top: int(0, h - rh) }])
      .jpeg({ quality: 90 })
      .toBuffer();
  };
  const files: Record<string, string[]> = { train: [], valid: [], 'sample/train': [], 'sample/valid': [], test: [] };
  let n = 0;
  const put = async (split: string, cls: number, count: number) => {
    for (let i = 0; i < count; i++) {
      const rel = `${split}/${classes[cls]}/${classes[cls]}.${n++}.jpg`;
      await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
      await writeFile(path.join(dir, rel), await image(cls));
      files[split]!.push(rel);
    }
  };
  for (let c = 0; c < classes.length; c++) {
    await put('train', c, o.train);
    await put('valid', c, o.valid);
    if (o.sample) {
      await put('sample/train', c, o.sample.train);
      await put('sample/valid', c, o.sample.valid);
    }
  }
  for (let i = 1; i <= (o.test ?? 0); i++) {
    const rel = `test/unknown/${i}.jpg`;
    await mkdir(path.join(dir, 'test', 'unknown'), { recursive: true });
    await writeFile(path.join(dir, rel), await image(null));
    files['test']!.push(rel);
  }
  const counts = Object.fromEntries(Object.entries(files).map(([k, v]) => [k, v.length]));
  await writeFile(path.join(dir, 'split.json'), JSON.stringify({ version: 1, classes, seed: o.seed ?? 7, counts, files, excluded: [] }, null, 2));
  return { classes, files };
}
