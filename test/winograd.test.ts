// Winograd F(2x2, 3x3) graphs (stages/vision/onnx/winograd.ts) against plain loops (the correlation,
// and the kernel gradient):
// odd and even sizes (odd ones crop a half tile), same / valid / full padding, uneven pads, and
// the flipped, channel-swapped kernel the input gradient uses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { GraphBuilder, encodeModel } from '../stages/vision/onnx/graph.js';
import { winogradConv3x3, winogradKernel, winogradKernelGrad } from '../stages/vision/onnx/winograd.js';
import { mulberry32 } from '../stages/random.js';

function randoms(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}

/** max |got - want| <= 1e-5 x max |want|, on a non-trivial `want`. */
function assertClose(got: Float32Array, want: Float32Array): void {
  assert.equal(got.length, want.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i]! - want[i]!));
    scale = Math.max(scale, Math.abs(want[i]!));
  }
  assert.ok(scale > 0.5, 'the check is not vacuous');
  assert.ok(diff <= 1e-5 * scale, `max difference ${diff} (largest ${scale})`);
}

interface Case {
  n: number;
  h: number;
  w: number;
  /** Of the stored kernel [co, 9*ci]. */
  ci: number;
  co: number;
  pads: [number, number, number, number];
  flip: boolean;
}

/** y[n, i, j, o] = sum over (a, b, c) of xpad[n, i + a, j + b, c] * K(o, a, b, c). */
function reference(x: Float32Array, W: Float32Array, k: Case): { y: Float32Array; ho: number; wo: number } {
  const [pt, pb, pl, pr] = k.pads;
  const cin = k.flip ? k.co : k.ci;
  const cout = k.flip ? k.ci : k.co;
  const ho = k.h + pt + pb - 2;
  const wo = k.w + pl + pr - 2;
  const y = new Float32Array(k.n * ho * wo * cout);
  // The kernel as stored: W[o, (a*3 + b)*ci + c]; flipped: taps reversed, in and out swapped.
  const K = (o: number, a: number, b: number, c: number) =>
    k.flip ? W[c * 9 * k.ci + (8 - (a * 3 + b)) * k.ci + o]! : W[o * 9 * k.ci + (a * 3 + b) * k.ci + c]!;
  for (let n = 0; n < k.n; n++)
    for (let i = 0; i < ho; i++)
      for (let j = 0; j < wo; j++)
        for (let o = 0; o < cout; o++) {
          let s = 0;
          for (let a = 0; a < 3; a++)
            for (let b = 0; b < 3; b++) {
              const r = i + a - pt;
              const q = j + b - pl;
              if (r < 0 || r >= k.h || q < 0 || q >= k.w) continue;
              for (let c = 0; c < cin; c++) s += x[((n * k.h + r) * k.w + q) * cin + c]! * K(o, a, b, c);
            }
          y[((n * ho + i) * wo + j) * cout + o] = s;
        }
  return { y, ho, wo };
}

const cases: Case[] = [
  { n: 2, h: 6, w: 8, ci: 3, co: 4, pads: [1, 1, 1, 1], flip: false },
  { n: 1, h: 7, w: 5, ci: 5, co: 2, pads: [1, 1, 1, 1], flip: false },
  { n: 2, h: 7, w: 9, ci: 3, co: 4, pads: [0, 0, 0, 0], flip: false },
  { n: 1, h: 5, w: 6, ci: 2, co: 3, pads: [0, 1, 1, 0], flip: false },
  { n: 2, h: 5, w: 7, ci: 3, co: 4, pads: [2, 2, 2, 2], flip: true },
  { n: 1, h: 6, w: 6, ci: 4, co: 3, pads: [1, 1, 1, 1], flip: true },
];

for (const k of cases) {
  test(`winograd 3x3 matches the plain correlation: ${k.n}x${k.h}x${k.w}, ci ${k.ci} co ${k.co}, pads ${k.pads.join(',')}${k.flip ? ', flipped kernel' : ''}`, async () => {
    const cin = k.flip ? k.co : k.ci;
    const cout = k.flip ? k.ci : k.co;
    const g = new GraphBuilder();
    const x = g.input('x');
    const W = g.input('W');
    const U = winogradKernel(g, 'U', W, k.ci, k.co, k.flip);
    const conv = winogradConv3x3(g, 'conv', x, [k.h, k.w, cin], k.pads, U, cout);
    const model = g.buildGraph(
      't',
      [
        { name: x, dims: ['N', k.h, k.w, cin] },
        { name: W, dims: [k.co, 9 * k.ci] },
      ],
      [{ value: conv.value, name: 'y', dims: ['N', conv.ho, conv.wo, cout] }],
    );
    const session = await ort.InferenceSession.create(encodeModel(model), { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
    try {
      const xs = randoms(k.n * k.h * k.w * cin, 1);
      const ws = randoms(k.co * 9 * k.ci, 2);
      const out = await session.run({ x: new ort.Tensor('float32', xs, [k.n, k.h, k.w, cin]), W: new ort.Tensor('float32', ws, [k.co, 9 * k.ci]) });
      const want = reference(xs, ws, k);
      const got = out['y']!;
      assert.deepEqual(got.dims, [k.n, want.ho, want.wo, cout]);
      const data = got.data as Float32Array;
      assertClose(data, want.y);
    } finally {
      await session.release();
    }
  });
}

/** dW[o, (a*3 + b)*ci + c] = sum over (n, i, j) of dz[n, i, j, o] * xpad[n, i + a, j + b, c]. */
function referenceKernelGrad(x: Float32Array, dz: Float32Array, k: Case, ho: number, wo: number): Float32Array {
  const [pt, , pl] = k.pads;
  const dW = new Float32Array(k.co * 9 * k.ci);
  for (let o = 0; o < k.co; o++)
    for (let a = 0; a < 3; a++)
      for (let b = 0; b < 3; b++)
        for (let c = 0; c < k.ci; c++) {
          let s = 0;
          for (let n = 0; n < k.n; n++)
            for (let i = 0; i < ho; i++)
              for (let j = 0; j < wo; j++) {
                const r = i + a - pt;
                const q = j + b - pl;
                if (r < 0 || r >= k.h || q < 0 || q >= k.w) continue;
                s += dz[((n * ho + i) * wo + j) * k.co + o]! * x[((n * k.h + r) * k.w + q) * k.ci + c]!;
              }
          dW[o * 9 * k.ci + (a * 3 + b) * k.ci + c] = s;
        }
  return dW;
}

for (const k of cases.filter((c) => !c.flip)) {
  test(`winograd kernel gradient matches the plain sum: ${k.n}x${k.h}x${k.w}, ci ${k.ci} co ${k.co}, pads ${k.pads.join(',')}`, async () => {
    const g = new GraphBuilder();
    const [x, W, dz] = [g.input('x'), g.input('W'), g.input('dz')];
    const conv = winogradConv3x3(g, 'conv', x, [k.h, k.w, k.ci], k.pads, winogradKernel(g, 'U', W, k.ci, k.co, false), k.co);
    const dW = winogradKernelGrad(g, 'dW', dz, conv, k.ci, k.co);
    const model = g.buildGraph(
      't',
      [
        { name: x, dims: ['N', k.h, k.w, k.ci] },
        { name: W, dims: [k.co, 9 * k.ci] },
        { name: dz, dims: ['N', conv.ho, conv.wo, k.co] },
      ],
      [{ value: dW, name: 'dW', dims: [k.co, 9 * k.ci] }],
    );
    const session = await ort.InferenceSession.create(encodeModel(model), { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
    try {
      const xs = randoms(k.n * k.h * k.w * k.ci, 3);
      const dzs = randoms(k.n * conv.ho * conv.wo * k.co, 4);
      const out = await session.run({
        x: new ort.Tensor('float32', xs, [k.n, k.h, k.w, k.ci]),
        W: new ort.Tensor('float32', randoms(k.co * 9 * k.ci, 5), [k.co, 9 * k.ci]),
        dz: new ort.Tensor('float32', dzs, [k.n, conv.ho, conv.wo, k.co]),
      });
      const want = referenceKernelGrad(xs, dzs, k, conv.ho, conv.wo);
      const got = out['dW']!.data as Float32Array;
      assertClose(got, want);
    } finally {
      await session.release();
    }
  });
}
