// Helpers the benchmarks share: rounding, ratios, seeded random fills, the JSON they print.
import { mulberry32 } from '../stages/random.js';

export type Json = Record<string, unknown>;

export function round(v: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** a / b to two decimals, or null when either is missing. */
export function ratio(a: number | undefined, b: number | undefined): number | null {
  return a && b ? round(a / b, 2) : null;
}

/** Fills `a` with seeded values in [-scale, scale). */
export function randomFill(a: Float32Array, scale = 1, seed = 1): Float32Array {
  const rand = mulberry32(seed);
  for (let i = 0; i < a.length; i++) a[i] = (rand() - 0.5) * 2 * scale;
  return a;
}
