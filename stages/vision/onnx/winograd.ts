// 3x3 convolutions (stride 1) as Winograd F(2x2, 3x3) in ONNX operators, for the training graphs:
// each 2x2 block of outputs is computed from a 4x4 input patch with 16 multiplies per channel
// pair instead of 36, so the one large product of a layer shrinks 2.25x (block5 at batch 32:
// ~105 ms of direct Gemm -> ~51 ms of batched MatMul; the transforms are thin products and a
// gather). Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (2015):
//   Y = A^T [ (G g G^T) . (B^T d B) ] A      (correlation, as convnets define it)
// Layouts keep channels innermost (NHWC), so every reshuffle moves whole channel vectors.
import type { GraphBuilder } from './graph.js';

const BT = [
  [1, 0, -1, 0],
  [0, 1, 1, 0],
  [0, -1, 1, 0],
  [0, 1, 0, -1],
];
const G = [
  [1, 0, 0],
  [0.5, 0.5, 0.5],
  [0.5, -0.5, 0.5],
  [0, 0, 1],
];
const AT = [
  [1, 1, 1, 0],
  [0, 1, -1, -1],
];

function transposed(m: readonly (readonly number[])[]): number[][] {
  return m[0]!.map((_, j) => m.map((row) => row[j]!));
}

/** kron(m, m) as a flat row-major [rows^2, cols^2] matrix: m applied on both axes of a tile. */
function kron(m: readonly (readonly number[])[]): Float32Array {
  const r = m.length;
  const c = m[0]!.length;
  const out = new Float32Array(r * r * c * c);
  for (let i1 = 0; i1 < r; i1++)
    for (let i2 = 0; i2 < r; i2++)
      for (let j1 = 0; j1 < c; j1++) for (let j2 = 0; j2 < c; j2++) out[(i1 * r + i2) * c * c + j1 * c + j2] = m[i1]![j1]! * m[i2]![j2]!;
  return out;
}

/**
 * The transformed kernel U [16, cin, cout] of a 3x3 kernel stored [co, 9*ci] (taps row-major,
 * then input channels, as train-conv.ts keeps it). `flip`: the kernel of the input gradient,
 * taps reversed and channels swapped (cin = co, cout = ci).
 */
export function winogradKernel(g: GraphBuilder, tag: string, W: string, ci: number, co: number, flip: boolean): string {
  const gk = kron(G); // [16, 9]
  // The flipped kernel reverses the tap axis: reverse Gk's columns instead of the weights.
  const gm = flip ? Float32Array.from({ length: 16 * 9 }, (_, i) => gk[Math.floor(i / 9) * 9 + (8 - (i % 9))]!) : gk;
  const gConst = g.floats(`${tag}/Gk`, gm, [16, 9]);
  // [co, 9, ci] -> [9, ci, co] (a 2D transpose) or [9, co, ci] (whole ci rows move).
  const taps = flip
    ? g.node('Transpose', [g.node('Reshape', [W, g.int64s(`${tag}/w3`, [co, 9, ci])], `${tag}/W3`)], `${tag}/Wtap`, { perm: { ints: [1, 0, 2] } })
    : g.node('Transpose', [W], `${tag}/Wtap`, { perm: { ints: [1, 0] } });
  const flat = g.node('Reshape', [taps, g.int64s(`${tag}/w9`, [9, -1])], `${tag}/W9`);
  const u = g.node('MatMul', [gConst, flat], `${tag}/U16`);
  return g.node('Reshape', [u, g.int64s(`${tag}/ushape`, flip ? [16, co, ci] : [16, ci, co])], `${tag}/U`);
}

/**
 * Element (a, b) of every s x s tile (stride 2) of NHWC `x` laid out as `pixels` [N*hp*wp, c]:
 * [s*s, N, th*tw, c] (a gather of whole channel vectors; the image offsets come from x's batch).
 */
function gatherTiles(g: GraphBuilder, tag: string, x: string, pixels: string, size: number, th: number, tw: number, hp: number, wp: number): string {
  const base: number[] = [];
  for (let a = 0; a < size; a++)
    for (let bb = 0; bb < size; bb++) for (let i = 0; i < th; i++) for (let j = 0; j < tw; j++) base.push((2 * i + a) * wp + 2 * j + bb);
  const baseIdx = g.node('Reshape', [g.int64s(`${tag}/base`, base), g.int64s(`${tag}/baseShape`, [size * size, 1, th * tw])], `${tag}/baseIdx`);
  // Range wants scalars; Squeeze turns the 1-element tensors into them.
  const scalar = (v: string, name: string) => g.node('Squeeze', [v], `${tag}/${name}`);
  const n = scalar(g.node('Gather', [g.node('Shape', [x], `${tag}/xshape`), g.int64s(`${tag}/zero`, [0])], `${tag}/n1`), 'n');
  const range = g.node('Range', [scalar(g.int64s(`${tag}/r0`, [0]), 'start'), n, scalar(g.int64s(`${tag}/r1`, [1]), 'step')], `${tag}/range`);
  const offsets = g.node(
    'Reshape',
    [g.node('Mul', [range, g.int64s(`${tag}/img`, [hp * wp])], `${tag}/imgOff`), g.int64s(`${tag}/offShape`, [1, -1, 1])],
    `${tag}/off`,
  );
  const idx = g.node('Add', [baseIdx, offsets], `${tag}/idx`);
  return g.node('Gather', [pixels, idx], `${tag}/tiles`, { axis: { i: 0 } });
}

/**
 * The gradient of the kernel [co, 9*ci] (train-conv.ts' layout) of a winogradConv3x3 (not
 * flipped) from its output gradient `dz` (NHWC [N, ho, wo, co]) and the forward's V:
 *   dU[xi] = sum over tiles of (A dY A^T)[xi] V[xi]^T,   dW = G^T dU G,
 * one batched product with the forward's 2.25x saving (block5 at batch 32: ~60 ms, transforms
 * included, where the Gemm over im2col columns took ~115).
 */
export function winogradKernelGrad(g: GraphBuilder, tag: string, dz: string, conv: WinogradConv, ci: number, co: number): string {
  const { ho, wo, th, tw, V } = conv;
  const [hp, wp] = [2 * th, 2 * tw];
  // Outputs cropped from a half tile have no gradient: zeros there.
  const padded = hp !== ho || wp !== wo ? g.node('Pad', [dz, g.int64s(`${tag}/pads`, [0, 0, 0, 0, 0, hp - ho, wp - wo, 0])], `${tag}/pad`) : dz;
  const pixels = g.node('Reshape', [padded, g.int64s(`${tag}/pixels`, [-1, co])], `${tag}/pix`);
  const tiles = g.node('Reshape', [gatherTiles(g, tag, dz, pixels, 2, th, tw, hp, wp), g.int64s(`${tag}/t4`, [4, -1, co])], `${tag}/dY`); // [4, NT, co]
  // [4, co, NT]: the transform and the product then run in MLAS' fast orientations.
  const tilesT = g.node('Transpose', [tiles], `${tag}/dYt`, { perm: { ints: [0, 2, 1] } });
  // The adjoints of the forward's transforms: kron(m)^T = kron(m^T).
  const dM = g.node(
    'MatMul',
    [g.floats(`${tag}/AkT`, kron(transposed(AT)), [16, 4]), g.node('Reshape', [tilesT, g.int64s(`${tag}/d4`, [4, -1])], `${tag}/dY4`)],
    `${tag}/dM16`,
  );
  const dU = g.node('MatMul', [g.node('Reshape', [dM, g.int64s(`${tag}/dmshape`, [16, co, -1])], `${tag}/dM`), V], `${tag}/dU`); // [16, co, ci]
  const dTaps = g.node(
    'MatMul',
    [g.floats(`${tag}/GkT`, kron(transposed(G)), [9, 16]), g.node('Reshape', [dU, g.int64s(`${tag}/du16`, [16, -1])], `${tag}/dU16`)],
    `${tag}/dW9`,
  ); // [9, co*ci]
  const dW = g.node('Transpose', [g.node('Reshape', [dTaps, g.int64s(`${tag}/dw3`, [9, co, ci])], `${tag}/dW3`)], `${tag}/dWt`, { perm: { ints: [1, 0, 2] } });
  return g.node('Reshape', [dW, g.int64s(`${tag}/dwshape`, [co, 9 * ci])], `${tag}/dW`);
}

export interface WinogradConv {
  /** NHWC [N, ho, wo, co]. */
  readonly value: string;
  readonly ho: number;
  readonly wo: number;
  /** The transformed input patches [16, N*th*tw, c], for the weight gradient. */
  readonly V: string;
  /** Tiles down and across (2x2 outputs each). */
  readonly th: number;
  readonly tw: number;
}

/**
 * The valid 3x3 correlation of NHWC `x` ([N, h, w, c], padded by `pads` = [top, bottom, left,
 * right]) with the transformed kernel `U` [16, c, co]: NHWC [N, ho, wo, co].
 */
export function winogradConv3x3(
  g: GraphBuilder,
  tag: string,
  x: string,
  [h, w, c]: readonly number[],
  pads: readonly number[],
  U: string,
  co: number,
): WinogradConv {
  const [pt, pb, pl, pr] = pads as [number, number, number, number];
  const ho = h! + pt + pb - 2;
  const wo = w! + pl + pr - 2;
  const th = Math.ceil(ho / 2);
  const tw = Math.ceil(wo / 2);
  // Odd output sizes: one more zero row/column so every tile is whole; cropped at the end.
  const hp = 2 * th + 2;
  const wp = 2 * tw + 2;
  const padded = g.node('Pad', [x, g.int64s(`${tag}/pads`, [0, pt, pl, 0, 0, hp - h! - pt, wp - w! - pl, 0])], `${tag}/pad`);
  const pixels = g.node('Reshape', [padded, g.int64s(`${tag}/pixels`, [-1, c!])], `${tag}/pix`);
  // Patch element (a, b) of tile (i, j) in image n: pixel n*hp*wp + (2i + a)*wp + 2j + b. The
  // indices are [16, N, T] so the gather lands tile-element-major: [16, N*T, c].
  const patches = gatherTiles(g, tag, x, pixels, 4, th, tw, hp, wp);
  // V = B^T d B for every tile and channel: one [16, 16] product over the patch axis.
  const v = g.node(
    'MatMul',
    [g.floats(`${tag}/Bk`, kron(BT), [16, 16]), g.node('Reshape', [patches, g.int64s(`${tag}/p16`, [16, -1])], `${tag}/P`)],
    `${tag}/V16`,
  );
  const V = g.node('Reshape', [v, g.int64s(`${tag}/vshape`, [16, -1, c!])], `${tag}/V`);
  // The product: 16 [N*T, c] x [c, co] matrices.
  const M = g.node('MatMul', [V, U], `${tag}/M`);
  // Y = A^T M A: [4, N*T*co] as [2, 2, N, th, tw, co] -> [N, th, 2, tw, 2, co].
  const y = g.node('MatMul', [g.floats(`${tag}/Ak`, kron(AT), [4, 16]), g.node('Reshape', [M, g.int64s(`${tag}/m16`, [16, -1])], `${tag}/M16`)], `${tag}/Y4`);
  const y6 = g.node('Reshape', [y, g.int64s(`${tag}/y6`, [2, 2, -1, th, tw, co])], `${tag}/Y6`);
  const tiles = g.node('Transpose', [y6], `${tag}/Yt`, { perm: { ints: [2, 3, 0, 4, 1, 5] } });
  let out = g.node('Reshape', [tiles, g.int64s(`${tag}/yshape`, [-1, 2 * th, 2 * tw, co])], `${tag}/Y`);
  if (2 * th !== ho || 2 * tw !== wo) {
    out = g.node('Slice', [out, g.int64s(`${tag}/cs`, [0, 0]), g.int64s(`${tag}/ce`, [ho, wo]), g.int64s(`${tag}/ca`, [1, 2])], `${tag}/crop`);
  }
  return { value: out, ho, wo, V, th, tw };
}

/**
 * Whether a 3x3 stride-1 convolution runs faster as Winograd F(2x2, 3x3) than as ORT's Conv
 * (which gets MLAS' NCHWc kernels for constant weights). Measured per VGG16 layer at batch 8 on
 * the 2-core dev machine: 224x224x64 270 vs 166 ms, 112x112x128 152 vs 127, 56x56x256 97 vs 99,
 * 28x28x512 75 vs 95, 14x14x512 16 vs 24: the transforms are memory-bound, so it pays where
 * the channels are many and the images small.
 */
export function winogradPays(ci: number, h: number, w: number): boolean {
  return ci >= 128 && h * w <= 32 * 32;
}
