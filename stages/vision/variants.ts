// Training on augmented variants: every epoch draws, per training image, the original or one of
// its `copies` cached variants (./augment.ts), seeded by the training seed and the epoch only, so
// a run resumed at epoch e trains on exactly the rows a straight run would.
import { makeRng } from '../random.js';
import { IDENTITY_PLAN, augmentKey, decodeVariant, variantPlan, type AugmentParams, type VariantPlan } from './augment.js';
import type { VariantRequest } from './features.js';
import type { Fit } from './images.js';
import type { DataSource } from './train.js';

/** Row reader of a feature set (FeatureReader) or anything that yields rows by index. */
export interface Rows {
  rows(indices: readonly number[]): Promise<Float32Array>;
}

/**
 * For each of `count` images, what `epoch` trains on: 0 the original, v in 1..copies variant v-1.
 * Uniform over the copies + 1 choices; a pure function of (seed, epoch, count, copies).
 */
export function epochDraw(seed: number, epoch: number, count: number, copies: number): Uint8Array {
  const rng = makeRng(((seed >>> 0) * 2654435761 + epoch * 40503 + 0x5eed) >>> 0);
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) out[i] = Math.floor(rng() * (copies + 1));
  return out;
}

/**
 * `plain` (one row per image) whose `forEpoch(e)` serves each image as drawn by epochDraw: from
 * `plain`, or from `variants`, which holds `copies` rows per image, copy-major (row c * count + i).
 */
export function augmentedSource(plain: DataSource, variants: Rows, copies: number, seed: number): DataSource {
  const count = plain.count;
  const rowFloats = plain.shape.reduce((a, b) => a * b, 1);
  return {
    ...plain,
    forEpoch(epoch: number): DataSource {
      const draw = epochDraw(seed, epoch, count, copies);
      return {
        ...plain,
        async rows(indices) {
          // Read the originals and the variants with one call each, then put them in order.
          const fromPlain: number[] = [];
          const fromVariant: number[] = [];
          const slot: [boolean, number][] = indices.map((r) => {
            const v = draw[r]!;
            if (v === 0) return [false, fromPlain.push(r) - 1];
            return [true, fromVariant.push((v - 1) * count + r) - 1];
          });
          const [a, b] = await Promise.all([
            fromPlain.length ? plain.rows(fromPlain) : new Float32Array(0),
            fromVariant.length ? variants.rows(fromVariant) : new Float32Array(0),
          ]);
          const out = new Float32Array(indices.length * rowFloats);
          slot.forEach(([isVariant, k], i) => out.set((isVariant ? b : a).subarray(k * rowFloats, (k + 1) * rowFloats), i * rowFloats));
          return out;
        },
      };
    },
  };
}

/** The variants `a` asks for, at the network's input size, for cachedFeatures. */
export function variantRequest(a: AugmentParams, pre: { readonly size: readonly [number, number]; readonly fit: Fit }): VariantRequest {
  return {
    key: augmentKey(a),
    copies: a.copies,
    decode: (file, rel, copy) => decodeVariant(file, { size: pre.size, fit: pre.fit }, variantPlan(a, rel, copy)),
  };
}

/**
 * With nothing frozen there is nothing to cache: `plain` (images decoded as they train) whose
 * forEpoch(e) is `make(plan)`, `plan` giving each row the variant epochDraw drew for it.
 */
export function drawnImageSource(
  plain: DataSource,
  files: readonly string[],
  a: AugmentParams,
  seed: number,
  make: (plan: (row: number) => VariantPlan) => DataSource,
): DataSource {
  return {
    ...plain,
    forEpoch(epoch) {
      const draw = epochDraw(seed, epoch, files.length, a.copies);
      return make((r) => (draw[r] ? variantPlan(a, files[r]!, draw[r]! - 1) : IDENTITY_PLAN));
    },
  };
}
