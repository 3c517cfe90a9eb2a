// ONNX conversion checked against tfjs on the same input: every layer type on its own (wrong
// layouts run silently), VGG16- and darknet-shaped nets, the real darknet-tiny, the fallback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { convertToOnnx, UnsupportedLayerError } from '../stages/vision/onnx/convert.js';
import { chainFingerprint } from '../stages/vision/onnx/chain.js';
import { createOnnxEngine, cudaProviderInstalled, tryCreateOnnxEngine } from '../stages/vision/onnx/engine.js';
import { fileHandler } from '../stages/vision/onnx/fs-handler.js';
import { buildVgg } from '../stages/vision/vgg16.js';
import { mulberry32 } from '../stages/random.js';
import { withDeviceScope } from '../runner/device.js';

await tf.setBackend('wasm');
await tf.ready();

const DARKNET = '/work/shared/models/darknet-tiny/model.json';

/** Deterministic pseudo-random floats (tests must not depend on Math.random). */
const rng = mulberry32;

function randomArray(n: number, r: () => number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * r();
  return a;
}

/** Non-trivial weights everywhere: biases and BN statistics too (defaults are zeros and ones). */
function randomizeWeights(model: tf.LayersModel, seed = 1): void {
  const r = rng(seed);
  for (const layer of model.layers) {
    const ws = layer.weights.map((w) => {
      const shape = w.shape.map((d) => d ?? 1);
      const n = shape.reduce((a, b) => a * b, 1);
      const kind = w.originalName.slice(w.originalName.lastIndexOf('/') + 1);
      if (kind === 'moving_variance' || kind === 'gamma') return tf.tensor(randomArray(n, r, 0.5, 1.5), shape);
      if (kind.endsWith('kernel')) {
        const fanIn = shape.slice(0, -1).reduce((a, b) => a * b, 1);
        return tf.tensor(
          randomArray(n, r, -1, 1).map((v) => v * Math.sqrt(6 / fanIn)),
          shape,
        );
      }
      return tf.tensor(randomArray(n, r, -0.5, 0.5), shape);
    });
    if (ws.length) layer.setWeights(ws);
    tf.dispose(ws);
  }
}

interface Comparison {
  maxDiff: number;
  maxMag: number;
  rel: number;
}

/** tfjs vs ONNX Runtime on the same random input; asserts max|diff| <= 1e-4 x max|output|. */
async function compare(model: tf.LayersModel, cut: string, batch = 2, seed = 7): Promise<Comparison> {
  const inShape = model.inputs[0]!.shape.slice(1).map((d) => d ?? 1);
  const n = inShape.reduce((a, b) => a * b, 1);
  const x = randomArray(batch * n, rng(seed), -1, 1);
  const sub = tf.model({ inputs: model.inputs, outputs: model.getLayer(cut).output as tf.SymbolicTensor });
  const yt = sub.predict(tf.tensor(x, [batch, ...inShape])) as tf.Tensor;
  const expected = (await yt.data()) as Float32Array;
  const expectedShape = yt.shape.slice(1);
  yt.dispose();
  const engine = await createOnnxEngine(model, cut, { provider: 'cpu', threads: 1 });
  try {
    assert.deepEqual([...engine.outputShape], expectedShape, `output shape of ${cut}`);
    assert.deepEqual([...engine.inputShape], inShape);
    const got = await engine.run(x, batch);
    assert.equal(got.length, expected.length);
    let maxDiff = 0;
    let maxMag = 0;
    for (let i = 0; i < got.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(got[i]! - expected[i]!));
      maxMag = Math.max(maxMag, Math.abs(expected[i]!));
    }
    assert.ok(maxMag > 0, `${cut}: all-zero output proves nothing`);
    const rel = maxDiff / maxMag;
    assert.ok(rel <= 1e-4, `${cut}: max |diff| ${maxDiff} > 1e-4 x max |y| ${maxMag}`);
    return { maxDiff, maxMag, rel };
  } finally {
    await engine.dispose();
  }
}

/** input [7, 9, 3] (odd, non-square: catches H/W swaps) -> conv -> `layer`, cut at `layer`. */
function afterConv(layer: tf.layers.Layer, opts: { flatten?: boolean } = {}): tf.LayersModel {
  const input = tf.input({ shape: [7, 9, 3], name: 'img' });
  let y = tf.layers.conv2d({ filters: 5, kernelSize: 3, padding: 'same', name: 'pre' }).apply(input) as tf.SymbolicTensor;
  if (opts.flatten) y = tf.layers.flatten({ name: 'pre_flat' }).apply(y) as tf.SymbolicTensor;
  y = layer.apply(y) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: y });
  randomizeWeights(model, 3);
  return model;
}

const worst: Record<string, number> = {};
function record(name: string, c: Comparison): void {
  worst[name] = c.rel;
}

const singleLayerCases: [string, () => tf.layers.Layer, { flatten?: boolean }?][] = [
  ['conv same s1', () => tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'L' })],
  ['conv same s2', () => tf.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', name: 'L' })],
  ['conv valid s2', () => tf.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'valid', name: 'L' })],
  ['conv kernel 3x2 valid', () => tf.layers.conv2d({ filters: 4, kernelSize: [3, 2], padding: 'valid', name: 'L' })],
  ['conv same s2 kernel 4 (uneven pad)', () => tf.layers.conv2d({ filters: 4, kernelSize: 4, strides: 2, padding: 'same', name: 'L' })],
  ['conv dilation 2 same', () => tf.layers.conv2d({ filters: 4, kernelSize: 3, dilationRate: 2, padding: 'same', name: 'L' })],
  ['conv no bias', () => tf.layers.conv2d({ filters: 4, kernelSize: 3, useBias: false, padding: 'same', name: 'L' })],
  ['conv 1x1 relu', () => tf.layers.conv2d({ filters: 6, kernelSize: 1, activation: 'relu', name: 'L' })],
  ['depthwise x2 same s2', () => tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, strides: 2, padding: 'same', name: 'L' })],
  ['dense on 4-D', () => tf.layers.dense({ units: 3, name: 'L' })],
  ['dense on flat, tanh', () => tf.layers.dense({ units: 3, activation: 'tanh', name: 'L' }), { flatten: true }],
  ['maxpool 2 valid', () => tf.layers.maxPooling2d({ poolSize: 2, name: 'L' })],
  ['maxpool 3 s2 same', () => tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same', name: 'L' })],
  ['avgpool 2 same', () => tf.layers.averagePooling2d({ poolSize: 2, padding: 'same', name: 'L' })],
  ['avgpool 3 s1 valid', () => tf.layers.averagePooling2d({ poolSize: 3, strides: 1, name: 'L' })],
  ['global average pool', () => tf.layers.globalAveragePooling2d({ name: 'L' })],
  ['global max pool', () => tf.layers.globalMaxPooling2d({ name: 'L' })],
  ['batchnorm 4-D eps 0.01', () => tf.layers.batchNormalization({ epsilon: 0.01, name: 'L' })],
  ['batchnorm no scale/center', () => tf.layers.batchNormalization({ scale: false, center: false, name: 'L' })],
  ['batchnorm on flat', () => tf.layers.batchNormalization({ name: 'L' }), { flatten: true }],
  ['relu layer', () => tf.layers.reLU({ name: 'L' })],
  ['relu maxValue 0.5', () => tf.layers.reLU({ maxValue: 0.5, name: 'L' })],
  ['leaky relu 0.1', () => tf.layers.leakyReLU({ alpha: 0.1, name: 'L' })],
  ['elu layer (tfjs supports alpha 1 only)', () => tf.layers.elu({ name: 'L' })],
  // tfjs' Softmax layer defaults to axis 1 and only supports the last axis: on flat input they agree.
  ['softmax layer (tfjs default axis 1) on flat', () => tf.layers.softmax({ name: 'L' }), { flatten: true }],
  ['softmax layer axis -1', () => tf.layers.softmax({ axis: -1, name: 'L' })],
  ['flatten (channels-last order)', () => tf.layers.flatten({ name: 'L' })],
  [
    'zero padding [[1,2],[0,3]]',
    () =>
      tf.layers.zeroPadding2d({
        padding: [
          [1, 2],
          [0, 3],
        ],
        name: 'L',
      }),
  ],
  ['dropout', () => tf.layers.dropout({ rate: 0.5, name: 'L' })],
];

const ACTIVATIONS = ['linear', 'relu', 'relu6', 'sigmoid', 'tanh', 'softmax', 'elu', 'selu', 'softplus', 'softsign', 'hardSigmoid', 'swish', 'mish'] as const;

test('every converted layer type matches tfjs on its own', async (t) => {
  for (const [name, make, opts] of singleLayerCases) {
    await t.test(name, async () => record(name, await compare(afterConv(make(), opts), 'L')));
  }
  for (const act of ACTIVATIONS) {
    await t.test(`activation ${act}`, async () => {
      record(`activation ${act}`, await compare(afterConv(tf.layers.activation({ activation: act, name: 'L' })), 'L'));
      record(`conv activation ${act}`, await compare(afterConv(tf.layers.conv2d({ filters: 3, kernelSize: 2, activation: act, name: 'L' })), 'L'));
    });
  }
  t.diagnostic(`worst relative difference per case: ${JSON.stringify(worst)}`);
});

/** VGG16's layer names and structure, 1/16 of the channels, 32x32 input (the project's builder). */
function tinyVgg(): tf.LayersModel {
  const m = buildVgg(tf, { architecture: 'tiny-vgg', inputSize: [32, 32], classes: 10 });
  randomizeWeights(m, 11);
  return m;
}

/** Darknet's pattern: conv without bias, BN, LeakyReLU(0.1), max pool 'same', global average pool. */
function tinyDarknet(): tf.LayersModel {
  const m = tf.sequential({ name: 'tiny_darknet' });
  const convBn = (filters: number, k: number, first = false) => {
    m.add(tf.layers.conv2d({ filters, kernelSize: k, padding: 'same', useBias: false, ...(first ? { inputShape: [32, 32, 3] } : {}) }));
    m.add(tf.layers.batchNormalization({ epsilon: 0.001 }));
    m.add(tf.layers.leakyReLU({ alpha: 0.1 }));
  };
  convBn(8, 3, true);
  m.add(tf.layers.maxPooling2d({ poolSize: 2, strides: 2, padding: 'same' }));
  convBn(16, 3);
  m.add(tf.layers.maxPooling2d({ poolSize: 2, strides: 2, padding: 'same' }));
  convBn(8, 1);
  convBn(16, 3);
  m.add(tf.layers.conv2d({ filters: 10, kernelSize: 1, padding: 'same', useBias: true }));
  m.add(tf.layers.globalAveragePooling2d({ name: 'gap' }));
  randomizeWeights(m, 5);
  return m;
}

test('VGG16-shaped net: cut at fc2 and at block4_pool', async (t) => {
  const m = tinyVgg();
  const fc2 = await compare(m, 'fc2', 3);
  const b4 = await compare(m, 'block4_pool', 3);
  const pred = await compare(m, 'predictions', 3);
  t.diagnostic(`fc2 ${JSON.stringify(fc2)} block4_pool ${JSON.stringify(b4)} predictions ${JSON.stringify(pred)}`);
  const e = await createOnnxEngine(m, 'block4_pool', { provider: 'cpu' });
  assert.deepEqual([...e.outputShape], [2, 2, 32]); // channels-last, as tfjs
  assert.deepEqual([...e.outputShape], (m.getLayer('block4_pool').outputShape as number[]).slice(1));
  assert.equal(e.name, 'onnx');
  assert.equal(e.detail['engine'], 'onnx');
  assert.equal(e.detail['provider'], 'cpu');
  assert.equal(e.detail['threads'], os.availableParallelism());
  assert.match(String(e.detail['ortVersion']), /^\d+\.\d+/);
  await e.dispose();
});

test('3x3 convolutions with many channels on small images go Winograd, and match tfjs across layout changes', async (t) => {
  const input = tf.input({ shape: [6, 7, 128], name: 'img' });
  let y = tf.layers.conv2d({ filters: 128, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv1' }).apply(input) as tf.SymbolicTensor;
  y = tf.layers.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(y) as tf.SymbolicTensor; // NCHW in ONNX
  y = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'valid', name: 'conv2' }).apply(y) as tf.SymbolicTensor;
  y = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'conv3' }).apply(y) as tf.SymbolicTensor; // 8 channels: ORT's Conv
  y = tf.layers.flatten({ name: 'flat' }).apply(y) as tf.SymbolicTensor;
  y = tf.layers.dense({ units: 3, name: 'dense' }).apply(y) as tf.SymbolicTensor;
  const m = tf.model({ inputs: input, outputs: y });
  randomizeWeights(m, 9);
  assert.deepEqual(convertToOnnx(m, 'dense').winograd, ['conv1', 'conv2']);
  assert.deepEqual(convertToOnnx(m, 'dense', { winograd: false }).winograd, []);
  // The two graphs are cached apart (the CUDA provider gets the one without Winograd).
  assert.notEqual(chainFingerprint(m, 'dense', { winograd: false }), chainFingerprint(m, 'dense'));
  assert.equal(chainFingerprint(m, 'dense', { winograd: true }), chainFingerprint(m, 'dense'));
  const figures: Record<string, Comparison> = {};
  for (const cut of ['conv1', 'pool', 'conv2', 'conv3', 'dense']) figures[cut] = await compare(m, cut, 3);
  t.diagnostic(JSON.stringify(figures));
});

test('darknet-tiny-shaped net (conv without bias + BN + LeakyReLU + max pool + GAP)', async (t) => {
  const c = await compare(tinyDarknet(), 'gap', 3);
  t.diagnostic(JSON.stringify(c));
});

test('the real darknet-tiny (tfjs layers model from ../shared)', async (t) => {
  if (!existsSync(DARKNET)) {
    t.skip(`${DARKNET} is absent (the shared models folder is not mounted)`);
    return;
  }
  const m = await tf.loadLayersModel(fileHandler(DARKNET));
  assert.equal(m.layers.length, 52);
  const last = m.layers[m.layers.length - 1]!.name;
  // Real weights: inputs in [0, 1] as the model expects (x / 255).
  const inShape = [224, 224, 3];
  const n = 224 * 224 * 3;
  const x = randomArray(2 * n, rng(99), 0, 1);
  const yt = m.predict(tf.tensor(x, [2, ...inShape])) as tf.Tensor;
  const expected = (await yt.data()) as Float32Array;
  yt.dispose();
  const engine = await createOnnxEngine(m, last, { provider: 'cpu' });
  const got = await engine.run(x, 2);
  await engine.dispose();
  let maxDiff = 0;
  let maxMag = 0;
  for (let i = 0; i < got.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(got[i]! - expected[i]!));
    maxMag = Math.max(maxMag, Math.abs(expected[i]!));
  }
  t.diagnostic(`darknet-tiny ${last}: max |diff| ${maxDiff}, max |y| ${maxMag}, relative ${maxDiff / maxMag}`);
  assert.equal(got.length, 2 * 1000);
  assert.ok(maxDiff <= 1e-4 * maxMag, `max |diff| ${maxDiff} > 1e-4 x ${maxMag}`);
  // And a cut in the middle (channels-last 4-D output).
  const mid = m.layers.find((l) => l.name === 'max_pooling2d_3') ? 'max_pooling2d_3' : m.layers[20]!.name;
  const c = await compare(m, mid, 1);
  t.diagnostic(`darknet-tiny ${mid}: ${JSON.stringify(c)}`);
});

test('an unsupported layer: UnsupportedLayerError, and tryCreateOnnxEngine gives the reason', async () => {
  const input = tf.input({ shape: [4, 4, 2] });
  const up = tf.layers.upSampling2d({ size: [2, 2], name: 'up' }).apply(input) as tf.SymbolicTensor;
  const out = tf.layers.conv2d({ filters: 2, kernelSize: 1, name: 'c' }).apply(up) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  assert.throws(
    () => convertToOnnx(model, 'c'),
    (e: unknown) => e instanceof UnsupportedLayerError && e.layer === 'up' && e.className === 'UpSampling2D',
  );
  const logs: string[] = [];
  const r = await tryCreateOnnxEngine(model, 'c', { log: (m) => logs.push(m) });
  assert.ok('reason' in r);
  assert.match(r.reason, /'up' \(UpSampling2D\)/);
  assert.ok(logs.some((l) => /falling back to tfjs/.test(l)));
  // A branching graph (residual add) falls back too, naming the layer.
  const a = tf.layers.conv2d({ filters: 2, kernelSize: 1, name: 'a' }).apply(input) as tf.SymbolicTensor;
  const sum = tf.layers.add({ name: 'sum' }).apply([a, input]) as tf.SymbolicTensor;
  const res = await tryCreateOnnxEngine(tf.model({ inputs: input, outputs: sum }), 'sum');
  assert.ok('reason' in res && /'sum' \(Add\).*2 inputs/.test(res.reason), JSON.stringify(res));
  // An activation it does not know.
  const g = await tryCreateOnnxEngine(afterConv(tf.layers.activation({ activation: 'gelu', name: 'L' })), 'L');
  assert.ok('reason' in g && /activation 'gelu'/.test(g.reason), JSON.stringify(g));
});

test('the .onnx is cached by weights and cut; partial batches; input checks', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-onnx-'));
  try {
    const m = tinyDarknet();
    // The engine reports the device it computes on to the stage's scope (meta.json's `device`).
    const { value: e1, devices } = await withDeviceScope(() => createOnnxEngine(m, 'gap', { cacheDir: dir, provider: 'cpu', threads: 2 }));
    assert.deepEqual(devices, ['onnx cpu (2 threads)']);
    assert.equal(e1.detail['onnxCache'], 'miss');
    const x = randomArray(4 * 32 * 32 * 3, rng(3));
    const y1 = await e1.run(x, 4);
    await e1.dispose();
    assert.equal((await readdir(dir)).filter((f) => f.endsWith('.onnx')).length, 1);
    const e2 = await createOnnxEngine(m, 'gap', { cacheDir: dir, provider: 'cpu' });
    assert.equal(e2.detail['onnxCache'], 'hit');
    assert.equal(e2.detail['onnxKey'], e1.detail['onnxKey']);
    assert.deepEqual([...e2.outputShape], [10]);
    const y2 = await e2.run(x, 4);
    assert.deepEqual(y2, y1);
    // count smaller than the buffer: only the first images are used.
    const y3 = await e2.run(x, 1);
    assert.deepEqual([...y3], [...y1.subarray(0, 10)]);
    await assert.rejects(e2.run(x.subarray(0, 10), 1), /need/);
    await e2.dispose();
    // Another cut, or changed weights: another key.
    const e3 = await createOnnxEngine(m, m.layers[3]!.name, { cacheDir: dir, provider: 'cpu' });
    assert.notEqual(e3.detail['onnxKey'], e1.detail['onnxKey']);
    await e3.dispose();
    randomizeWeights(m, 77);
    const e4 = await createOnnxEngine(m, 'gap', { cacheDir: dir, provider: 'cpu' });
    assert.equal(e4.detail['onnxCache'], 'miss');
    await e4.dispose();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("provider 'auto' uses CPU where the CUDA provider is not installed; 'cuda' then falls back with a reason", async (t) => {
  if (cudaProviderInstalled()) {
    t.skip('the CUDA provider is installed here: this checks CPU-only hosts');
    return;
  }
  const m = tinyDarknet();
  const e = await createOnnxEngine(m, 'gap');
  assert.equal(e.detail['provider'], 'cpu');
  assert.match(String(e.detail['providerNote']), /CUDA provider not installed/);
  await e.dispose();
  const r = await tryCreateOnnxEngine(m, 'gap', { provider: 'cuda' });
  assert.ok('reason' in r, 'explicit cuda cannot load here');
});
