// The training graph of a Conv2D layer (stride 1): forward, weight and bias gradients, and the
// input gradient when a layer below trains.
// 3x3 kernels (all of VGG's): forward, dx and dW are Winograd F(2x2, 3x3) (./winograd.ts, 2.25x
// fewer multiplies): block5 at batch 32 trains at ~55 img/s, where the Gemm path below gave
// ~33 (forward ~75 ms per conv, transforms included, where the direct Gemm took ~115).
// Other kernels: im2col (one Gather of whole channel vectors) + one Gemm over the whole batch.
// The weights are [co, kh*kw*ci] (the transpose of tfjs' kernel read as a matrix), so the
// forward and weight-gradient products are the two Gemm shapes MLAS runs fastest here (about 105
// and 112 ms at batch 32 on block5, vs 125-137 for the other orientations; it is several times
// slower with a transposed A). dx is the same im2col of the padded dz and a Gemm with the flipped
// kernel in the forward's orientation: ~100 ms at batch 32 on block5, where ORT's Conv with a
// weight that changes every step (MLAS' per-image im2col path) took ~130.
import type * as tf from '@tensorflow/tfjs';
import { checkActivation, config, pair, type TrainBuild, type Val } from './train-context.js';
import { UnsupportedLayerError } from './values.js';
import { winogradConv3x3, winogradKernel, winogradKernelGrad } from './winograd.js';

/**
 * im2col of the NHWC `x` ([N, h, w, c], padded by `pads` = [top, bottom, left, right]) for a
 * kh x kw window at stride 1: [N*ho*wo, kh*kw*c], row (n, i, j) holding xpad[n, i + a, j + b, :]
 * for every tap (a, b) in order.
 */
function im2col(b: TrainBuild, tag: string, x: string, [h, w, c]: readonly number[], [kh, kw]: readonly number[], [pt, pb, pl, pr]: readonly number[]): string {
  const { g, ints } = b;
  const hp = h! + pt! + pb!;
  const wp = w! + pl! + pr!;
  const [ho, wo] = [hp - kh! + 1, wp - kw! + 1];
  const padded = pt || pb || pl || pr ? g.node('Pad', [x, ints(`${tag}/pads`, [0, pt!, pl!, 0, 0, pb!, pr!, 0])], `${tag}/pad`) : x;
  const taps: number[] = [];
  for (let i = 0; i < ho; i++) for (let j = 0; j < wo; j++) for (let a = 0; a < kh!; a++) for (let t = 0; t < kw!; t++) taps.push((i + a) * wp + (j + t));
  const pixels = g.node('Reshape', [padded, ints(`${tag}/pixels`, [-1, hp * wp, c!])], `${tag}/pix`);
  const tapIdx = g.node('Reshape', [ints(`${tag}/taps`, taps), ints(`${tag}/tapShape`, [ho * wo, kh! * kw!])], `${tag}/tapIdx`);
  const gathered = g.node('Gather', [pixels, tapIdx], `${tag}/gathered`, { axis: { i: 1 } });
  return g.node('Reshape', [gathered, ints(`${tag}/colsShape`, [-1, kh! * kw! * c!])], `${tag}/cols`);
}

/** Adds `layer` (a Conv2D) on `v`; returns its output. */
export function addConv2D(b: TrainBuild, layer: tf.layers.Layer, v: Val, needsInputGrad: boolean): Val {
  const { g, ints } = b;
  const c = config(layer);
  const unsupported = (why: string) => new UnsupportedLayerError(layer.name, 'Conv2D', why);
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
  // Floats held per example. 3x3 kernels (Winograd): per output pixel the patches and their
  // transform (4 + 4 per input channel), the products (4 per output channel), the result and
  // its relu/gradient; for dW the output gradient's tiles and their transform (6 per output
  // channel); dx the same as the forward. Others: the columns twice (gathered, reshaped), z,
  // relu and their gradients in two layouts; for dx the columns of dz and dx itself.
  const wino = kh === 3 && kw === 3;
  const fwd = wino ? hp * wp * ci + ho * wo * (8 * ci + 8 * co) + 6 * ho * wo * co : 2 * ho * wo * k * ci + hp * wp * ci + 6 * ho * wo * co;
  const dx = wino ? h * w * (8 * co + 5 * ci) : h * w * (k * co + 2 * ci);
  b.cost(ho * wo * co * ci * k, fwd + (needsInputGrad ? dx : 0));

  const W = b.param(layer, 'kernel', [co, k * ci], { kh, kw, ci, co });
  const B = c['useBias'] !== false ? b.param(layer, 'bias', [co, 1]) : null;
  if (wino) return addWinogradConv(b, layer, v, { act, co, pads: [pt, pb, pl, pr], ho, wo, W, B }, needsInputGrad);
  const cols = im2col(b, layer.name, v.name, v.shape, [kh, kw], [pt, pb, pl, pr]);
  // Output channel-major [co, N*ho*wo]; relu there; NHWC for the next layer.
  const zc = g.node('Gemm', B ? [W, cols, B] : [W, cols], `${layer.name}/zc`, { transB: { i: 1 } });
  const ac = act === 'relu' ? g.node('Relu', [zc], `${layer.name}/ac`) : zc;
  const out = g.node('Transpose', [g.node('Reshape', [ac, ints(`${layer.name}/cnhw`, [co, -1, ho, wo])], `${layer.name}/ac4`)], layer.name, {
    perm: { ints: [1, 2, 3, 0] },
  });

  b.backward((dy) => {
    const dyc = g.node(
      'Reshape',
      [g.node('Transpose', [dy], `${layer.name}/dyc4`, { perm: { ints: [3, 0, 1, 2] } }), ints(`${layer.name}/dycShape`, [co, -1])],
      `${layer.name}/dyc`,
    );
    const dzc = act === 'relu' ? g.node('Mul', [dyc, b.reluMask(ac)], `${layer.name}/dzc`) : dyc;
    b.setGrad(W, g.node('Gemm', [dzc, cols], `${layer.name}/dW`));
    if (B) b.setGrad(B, g.node('ReduceSum', [dzc, ints(`${layer.name}/ax1b`, [1])], `${layer.name}/dB`, { keepdims: { i: 1 } }));
    if (!needsInputGrad) return '';
    // dx is the 'full' correlation of dz with the flipped kernel:
    // dx[n, i, j, ci] = sum over (a, b, co) of dzpad[n, i + a, j + b, co] * W[co, k-1-(a*kw+b), ci].
    const dzN = g.node('Transpose', [g.node('Reshape', [dzc, ints(`${layer.name}/dz4`, [co, -1, ho, wo])], `${layer.name}/dzc4`)], `${layer.name}/dzN`, {
      perm: { ints: [1, 2, 3, 0] },
    });
    const dcols = im2col(b, `${layer.name}/dz`, dzN, [ho, wo, co], [kh, kw], [kh - 1 - pt, kh - 1 - pb, kw - 1 - pl, kw - 1 - pr]);
    // Wt[ci, t, co] = W[co, k-1-t, ci]: a 2D transpose to [k, ci, co], the tap reversal as a
    // Gather of whole [ci, co] planes, then [ci, k, co] (moves blocks of co floats). The Gather
    // also keeps ORT's transpose optimizer from merging the two Transposes into one that takes
    // its generic path, ~15x slower.
    const wkc = g.node(
      'Reshape',
      [g.node('Transpose', [W], `${layer.name}/WT`, { perm: { ints: [1, 0] } }), ints(`${layer.name}/wkc`, [k, ci, co])],
      `${layer.name}/Wkc`,
    );
    const wr = g.node(
      'Gather',
      [
        wkc,
        ints(
          `${layer.name}/rev`,
          Array.from({ length: k }, (_, t) => k - 1 - t),
        ),
      ],
      `${layer.name}/Wrev`,
      { axis: { i: 0 } },
    );
    const wt = g.node(
      'Reshape',
      [g.node('Transpose', [wr], `${layer.name}/Wflip`, { perm: { ints: [1, 0, 2] } }), ints(`${layer.name}/wt`, [ci, k * co])],
      `${layer.name}/Wt`,
    );
    const dxc = g.node('Gemm', [wt, dcols], `${layer.name}/dxc`, { transB: { i: 1 } });
    return g.node('Transpose', [g.node('Reshape', [dxc, ints(`${layer.name}/dx4`, [ci, -1, h, w])], `${layer.name}/dxc4`)], `${layer.name}/dx`, {
      perm: { ints: [1, 2, 3, 0] },
    });
  });
  return { name: out, layout: 'nhwc', shape: [ho, wo, co] };
}

interface ConvShape {
  readonly act: string;
  readonly co: number;
  /** [top, bottom, left, right] */
  readonly pads: readonly [number, number, number, number];
  readonly ho: number;
  readonly wo: number;
  /** Weights [co, 9*ci] and bias [co, 1] (graph inputs). */
  readonly W: string;
  readonly B: string | null;
}

/**
 * A 3x3 Conv2D as Winograd F(2x2, 3x3) (./winograd.ts), in NHWC: the forward, the kernel
 * gradient (from the forward's transformed patches) and the input gradient (flipped kernel).
 */
function addWinogradConv(b: TrainBuild, layer: tf.layers.Layer, v: Val, s: ConvShape, needsInputGrad: boolean): Val {
  const { g, ints } = b;
  const { act, co, pads, ho, wo, W, B } = s;
  const [h, w, ci] = v.shape as [number, number, number];
  const name = layer.name;
  const conv = winogradConv3x3(g, `${name}/wino`, v.name, v.shape, pads, winogradKernel(g, `${name}/U`, W, ci, co, false), co);
  const z = B ? g.node('Add', [conv.value, g.node('Reshape', [B, ints(`${name}/bshape`, [co])], `${name}/b`)], `${name}/z`) : conv.value;
  const out = act === 'relu' ? g.node('Relu', [z], name) : z;
  b.backward((dy) => {
    const dz = act === 'relu' ? g.node('Mul', [dy, b.reluMask(out)], `${name}/dz`) : dy;
    b.setGrad(W, winogradKernelGrad(g, `${name}/dW`, dz, conv, ci, co));
    if (B) {
      const rows = g.node('Reshape', [dz, ints(`${name}/dzRows`, [-1, co])], `${name}/dzr`);
      b.setGrad(
        B,
        g.node(
          'Reshape',
          [g.node('ReduceSum', [rows, ints(`${name}/ax0`, [0])], `${name}/dB1`, { keepdims: { i: 0 } }), ints(`${name}/dbshape`, [co, 1])],
          `${name}/dB`,
        ),
      );
    }
    if (!needsInputGrad) return '';
    // dx: the 'full' correlation of dz with the flipped kernel, Winograd again.
    const [pt, pb, pl, pr] = pads;
    const Uf = winogradKernel(g, `${name}/Uf`, W, ci, co, true);
    const dx = winogradConv3x3(g, `${name}/dx`, dz, [ho, wo, co], [2 - pt, 2 - pb, 2 - pl, 2 - pr], Uf, ci);
    if (dx.ho !== h || dx.wo !== w) throw new Error(`internal: dx of ${name} is ${dx.ho}x${dx.wo}, not ${h}x${w}`);
    return dx.value;
  });
  return { name: out, layout: 'nhwc', shape: [ho, wo, co] };
}
