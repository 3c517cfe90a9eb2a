// The wasm backend's conv gradients (ours) against the cpu backend's, and a block5-style conv
// block training on wasm on cached block4-shaped inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmGradKernels } from '../stages/vision/wasm-grad-kernels.js';
import { mulberry32 } from '../stages/random.js';

/** Seeded values in [-0.5, 0.5). */
function rng(seed: number): () => number {
  const r = mulberry32(seed);
  return () => r() - 0.5;
}
function randomArray(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r());
}

interface Case {
  name: string;
  x: [number, number, number, number];
  filter: [number, number, number, number];
  strides: [number, number];
  pad: 'same' | 'valid';
}

const CASES: Case[] = [
  { name: 'stride 1 same 3x3', x: [2, 9, 7, 3], filter: [3, 3, 3, 4], strides: [1, 1], pad: 'same' },
  { name: 'stride 1 valid 3x3', x: [2, 9, 7, 3], filter: [3, 3, 3, 4], strides: [1, 1], pad: 'valid' },
  { name: 'stride 1 same 2x3 (uneven pad)', x: [2, 8, 7, 3], filter: [2, 3, 3, 5], strides: [1, 1], pad: 'same' },
  { name: 'stride 1 1x1', x: [3, 5, 5, 6], filter: [1, 1, 6, 2], strides: [1, 1], pad: 'valid' },
  { name: 'stride 2 same 3x3', x: [2, 9, 8, 3], filter: [3, 3, 3, 4], strides: [2, 2], pad: 'same' },
  { name: 'stride 2 valid 3x3 (rows never read)', x: [2, 10, 9, 3], filter: [3, 3, 3, 4], strides: [2, 2], pad: 'valid' },
  { name: 'stride (2,1) valid 2x2', x: [1, 7, 6, 2], filter: [2, 2, 2, 3], strides: [2, 1], pad: 'valid' },
  { name: 'block5-like 14x14x32 -> 32', x: [2, 14, 14, 32], filter: [3, 3, 32, 32], strides: [1, 1], pad: 'same' },
];

/** dL/dx and dL/dW of sum(conv2d(x, W) * g) for a fixed random g, on the current backend. */
async function convGrads(c: Case): Promise<{ dx: Float32Array; dw: Float32Array }> {
  const x = tf.tensor4d(
    randomArray(
      c.x.reduce((a, b) => a * b),
      1,
    ),
    c.x,
  );
  const w = tf.tensor4d(
    randomArray(
      c.filter.reduce((a, b) => a * b),
      2,
    ),
    c.filter,
  );
  const yShape = tf.tidy(() => tf.conv2d(x, w, c.strides, c.pad).shape);
  const g = tf.tensor(
    randomArray(
      yShape.reduce((a, b) => a * b),
      3,
    ),
    yShape,
  );
  const f = (xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, c.strides, c.pad), g));
  const [dx, dw] = tf.grads(f)([x, w]);
  const out = { dx: (await dx!.data()) as Float32Array, dw: (await dw!.data()) as Float32Array };
  tf.dispose([x, w, g, dx!, dw!]);
  return out;
}

function relDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / m;
}

/** Mean ms of dx for a block5-sized layer (batch 4 of [14,14,256], 3x3x256x256) on wasm. */
async function timeBackpropInput(): Promise<number> {
  const dy = tf.randomNormal([4, 14, 14, 256]) as tf.Tensor4D;
  const w = tf.randomNormal([3, 3, 256, 256]) as tf.Tensor4D;
  const once = async () => {
    const y = tf.conv2dTranspose(dy, w, [4, 14, 14, 256], 1, 'same');
    await y.data();
    y.dispose();
  };
  await once();
  const t0 = performance.now();
  for (let i = 0; i < 3; i++) await once();
  tf.dispose([dy, w]);
  return (performance.now() - t0) / 3;
}

test('conv gradients on wasm match the cpu backend', async (t) => {
  const reference: { dx: Float32Array; dw: Float32Array }[] = [];
  await tf.setBackend('cpu');
  for (const c of CASES) reference.push(await convGrads(c));

  await tf.setBackend('wasm');
  // As shipped, a conv layer's weight gradient cannot be computed on wasm at all.
  await assert.rejects(convGrads(CASES[0]!), /Conv2DBackpropFilter' not registered/);
  const shippedMs = await timeBackpropInput();
  const before = tf.memory().numTensors;
  const registered = registerWasmGradKernels(tf);
  assert.deepEqual(registered.sort(), ['Conv2DBackpropFilter', 'Conv2DBackpropInput', 'MaxPoolGrad']);
  assert.deepEqual(registerWasmGradKernels(tf), [], 'idempotent');
  const diffs: Record<string, { dx: number; dw: number }> = {};
  for (const [i, c] of CASES.entries()) {
    const got = await convGrads(c);
    const d = { dx: relDiff(got.dx, reference[i]!.dx), dw: relDiff(got.dw, reference[i]!.dw) };
    diffs[c.name] = d;
    assert.ok(d.dx <= 1e-4 && d.dw <= 1e-4, `${c.name}: relative max diff dx ${d.dx}, dW ${d.dw}`);
  }
  t.diagnostic(`relative max |wasm - cpu| per case: ${JSON.stringify(diffs)}`);
  assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
  const oursMs = await timeBackpropInput();
  t.diagnostic(
    `Conv2DBackpropInput, batch 4 of [14,14,256], 3x3x256x256: shipped ${shippedMs.toFixed(0)} ms, ours ${oursMs.toFixed(0)} ms (${(shippedMs / oursMs).toFixed(1)}x)`,
  );
});

const POOLS: { name: string; x: [number, number, number, number]; size: number; stride: number; pad: 'same' | 'valid' }[] = [
  { name: '2x2/2 valid', x: [2, 4, 4, 3], size: 2, stride: 2, pad: 'valid' },
  { name: '2x2/2 valid, odd size', x: [2, 7, 5, 4], size: 2, stride: 2, pad: 'valid' },
  { name: '3x3/2 same (overlapping)', x: [1, 9, 8, 2], size: 3, stride: 2, pad: 'same' },
  { name: 'block5_pool-like', x: [2, 14, 14, 16], size: 2, stride: 2, pad: 'valid' },
];

async function poolGrad(c: (typeof POOLS)[number]): Promise<Float32Array> {
  const x = tf.tensor4d(
    randomArray(
      c.x.reduce((a, b) => a * b),
      4,
    ),
    c.x,
  );
  const yShape = tf.tidy(() => tf.maxPool(x, c.size, c.stride, c.pad).shape);
  const g = tf.tensor(
    randomArray(
      yShape.reduce((a, b) => a * b),
      5,
    ),
    yShape,
  );
  const dx = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(xx as tf.Tensor4D, c.size, c.stride, c.pad), g)))(x);
  const out = (await dx.data()) as Float32Array;
  tf.dispose([x, g, dx]);
  return out;
}

test("max pooling's gradient on wasm matches the cpu backend", async () => {
  await tf.setBackend('cpu');
  const reference = [];
  for (const c of POOLS) reference.push(await poolGrad(c));
  await tf.setBackend('wasm');
  registerWasmGradKernels(tf);
  for (const [i, c] of POOLS.entries()) {
    const d = relDiff(await poolGrad(c), reference[i]!);
    assert.ok(d <= 1e-6, `${c.name}: relative max diff ${d}`);
  }
});

test('a block5-style conv block trains on wasm on cached block4-shaped inputs', async (t) => {
  await tf.setBackend('wasm');
  registerWasmGradKernels(tf);
  // Cached "block4_pool" features [N, 14, 14, C]; the label depends on spatial structure, so the
  // convs must learn (a linear top on these inputs alone would not see it as easily).
  const n = 48;
  const c = 8;
  const r = rng(42);
  const feats = new Float32Array(n * 14 * 14 * c);
  const labels = new Float32Array(n * 2);
  for (let i = 0; i < n; i++) {
    const cls = i % 2;
    for (let y = 0; y < 14; y++)
      for (let x = 0; x < 14; x++)
        for (let k = 0; k < c; k++) {
          const signal = cls === 1 ? (y < 7 ? 1 : -1) : x < 7 ? 1 : -1;
          feats[((i * 14 + y) * 14 + x) * c + k] = r() + (k === 0 ? 0.5 * signal : 0);
        }
    labels[i * 2 + cls] = 1;
  }
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', name: 'block5_conv1', inputShape: [14, 14, c] }),
      tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', name: 'block5_conv2' }),
      tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: 'block5_pool' }),
      tf.layers.flatten({ name: 'flatten' }),
      tf.layers.dense({ units: 2, activation: 'softmax', name: 'predictions' }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(0.002), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  const xs = tf.tensor4d(feats, [n, 14, 14, c]);
  const ys = tf.tensor2d(labels, [n, 2]);
  const h = await model.fit(xs, ys, { epochs: 8, batchSize: 8, shuffle: false, verbose: 0 });
  const loss = h.history['loss'] as number[];
  const acc = h.history['acc'] as number[] | undefined;
  t.diagnostic(`loss per epoch: ${loss.map((v) => v.toFixed(4)).join(' ')}; final accuracy ${acc?.[acc.length - 1]}`);
  assert.ok(loss[loss.length - 1]! < 0.5 * loss[0]!, `loss did not decrease enough: ${loss.join(', ')}`);
  tf.dispose([xs, ys]);
  model.dispose();
});
