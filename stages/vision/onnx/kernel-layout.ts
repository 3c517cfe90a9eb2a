// The convolution kernel layout the training graphs and Winograd use: [co, kh*kw*ci], tfjs'
// [kh, kw, ci, co] read as a matrix and transposed (MLAS' fast Gemm orientations: train-conv.ts).
// Its own module so the inference converter takes it without loading the training graphs.

export interface KernelShape {
  readonly kh: number;
  readonly kw: number;
  readonly ci: number;
  readonly co: number;
}

/** tfjs kernel [kh, kw, ci, co] -> [co, kh*kw*ci]. */
export function convKernelToOnnx(k: Float32Array, s: KernelShape): Float32Array {
  const rows = s.kh * s.kw * s.ci;
  const out = new Float32Array(k.length);
  for (let r = 0; r < rows; r++) for (let o = 0; o < s.co; o++) out[o * rows + r] = k[r * s.co + o]!;
  return out;
}

/** The inverse of convKernelToOnnx. */
export function convKernelToTf(w: Float32Array, s: KernelShape): Float32Array {
  const rows = s.kh * s.kw * s.ci;
  const out = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let o = 0; o < s.co; o++) out[r * s.co + o] = w[o * rows + r]!;
  return out;
}
