// Test-time augmentation for evaluate and predict: the probabilities of each image are the mean
// over the image and its mirror (`tta: flip`) or its K augmented variants (`tta: K`, the
// model's training `augment` settings, or the defaults when it trained without). The variants'
// frozen outputs are cached like the training ones (./variants.ts, ./features.ts).
import { AUGMENT_DEFAULTS, FLIP_PLAN, decodeVariant, type AugmentParams } from './augment.js';
import type { VariantRequest } from './features.js';
import type { Fit } from './images.js';
import { variantRequest } from './variants.js';

export type Tta = 'none' | 'flip' | number;

/** The variants `tta` averages over, or null for `none`. */
export function ttaVariants(
  tta: Tta,
  trainedWith: Partial<AugmentParams> | undefined,
  pre: { readonly size: readonly [number, number]; readonly fit: Fit },
): VariantRequest | null {
  if (tta === 'none') return null;
  if (tta === 'flip') {
    return { key: { tta: 'flip' }, copies: 1, decode: (file) => decodeVariant(file, { size: pre.size, fit: pre.fit }, FLIP_PLAN) };
  }
  if (!Number.isInteger(tta) || tta < 1) throw new Error(`tta must be none, flip or a positive integer, got ${String(tta)}`);
  const { flip, crop, rotate, brightness, seed } = { ...AUGMENT_DEFAULTS, ...(trainedWith ?? {}) };
  return variantRequest({ flip, crop, rotate, brightness, seed, copies: tta }, pre);
}

/** Row i: the mean of `plain[i]` and its `copies` variants (copy-major: variant c at c * n + i). */
export function averageTta(plain: readonly Float32Array[], variants: readonly Float32Array[], copies: number): Float32Array[] {
  const n = plain.length;
  if (variants.length !== n * copies) throw new Error(`${variants.length} variant rows for ${n} images x ${copies}`);
  return plain.map((row, i) => {
    const sum = Float32Array.from(row);
    for (let c = 0; c < copies; c++) {
      const v = variants[c * n + i]!;
      for (let k = 0; k < sum.length; k++) sum[k]! += v[k]!;
    }
    return sum.map((x) => x / (copies + 1));
  });
}

/** How metrics and summaries name it: 'flip', '4 variants'. */
export function ttaLabel(tta: Tta): string {
  return tta === 'flip' ? 'flip' : `${String(tta)} variants`;
}
