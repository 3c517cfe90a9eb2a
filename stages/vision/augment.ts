// Data augmentation that keeps the frozen-output cache: each training image gets `copies` seeded
// variants (a flip, a crop, a small rotation, a brightness change), each variant's frozen output
// is computed once and cached like the plain ones, and every epoch draws one of them per image
// (./variants.ts). This file holds the params, the per-variant plan (pure arithmetic, seeded by
// the augmentation seed, the file and the copy number, so the same variant comes back on every
// run and machine) and the decode that applies a plan with sharp.
import { createHash } from 'node:crypto';
import { decodeImage, loadSharp, type DecodeOptions } from './images.js';
import { makeRng } from '../random.js';

export interface AugmentParams {
  /** Mirror left-right with probability 1/2. */
  readonly flip: boolean;
  /** Up to this fraction of each side is cut away (0: no crop). */
  readonly crop: number;
  /** Rotate by up to this many degrees either way (0: none). */
  readonly rotate: number;
  /** Scale the pixel values by 1 +- up to this (0: none). */
  readonly brightness: number;
  /** Augmented variants per training image. */
  readonly copies: number;
  /** Seeds the variants (not the training seed: runs with other seeds share the cached variants). */
  readonly seed: number;
}

export const AUGMENT_DEFAULTS: AugmentParams = { flip: true, crop: 0.1, rotate: 10, brightness: 0.1, copies: 4, seed: 1 };

const AUGMENT_PROPERTIES = {
  flip: { type: 'boolean', default: AUGMENT_DEFAULTS.flip, description: 'Mirror left-right (half of the variants).' },
  crop: {
    type: 'number',
    minimum: 0,
    maximum: 0.5,
    default: AUGMENT_DEFAULTS.crop,
    description: 'Cut away up to this fraction of each side, then resize back.',
  },
  rotate: { type: 'number', minimum: 0, maximum: 45, default: AUGMENT_DEFAULTS.rotate, description: 'Rotate by up to this many degrees either way.' },
  brightness: {
    type: 'number',
    minimum: 0,
    maximum: 0.9,
    default: AUGMENT_DEFAULTS.brightness,
    description: 'Scale pixel values by 1 plus or minus up to this.',
  },
  copies: {
    type: 'integer',
    minimum: 1,
    maximum: 64,
    default: AUGMENT_DEFAULTS.copies,
    description: 'Augmented variants per training image, computed through the frozen layers once and cached.',
  },
  seed: {
    type: 'integer',
    default: AUGMENT_DEFAULTS.seed,
    description: "Seeds the variants. Separate from the stage's `seed`, so runs with other seeds reuse the cached variants.",
  },
} as const;

/** The `augment` param of the finetune stages. */
export const AUGMENT_PARAM_SCHEMA = {
  augment: {
    type: 'object',
    additionalProperties: false,
    properties: AUGMENT_PROPERTIES,
    description:
      'Augment the training images: `copies` seeded variants of each (flip, crop, rotate, brightness) go through the frozen layers once and are cached; ' +
      'each epoch trains on one of them, or the original, per image (seeded by `seed`). Validation images are never augmented. Absent: no augmentation.',
  },
} as const;

/** What `augment` resolves to with the defaults filled in (the schema fills them for a pipeline; tests may pass part). */
export function resolveAugment(a: Partial<AugmentParams> | undefined): AugmentParams | null {
  return a ? { ...AUGMENT_DEFAULTS, ...a } : null;
}

/** One variant: what is done to the image decoded at the network's input size. */
export interface VariantPlan {
  readonly flip: boolean;
  /** Degrees, clockwise (sharp's rotate). */
  readonly angle: number;
  /** Kept window as fractions of the image: left, top, width, height. */
  readonly window: readonly [number, number, number, number];
  /** Pixel scale factor. */
  readonly brightness: number;
}

export const IDENTITY_PLAN: VariantPlan = { flip: false, angle: 0, window: [0, 0, 1, 1], brightness: 1 };
/** Test-time `tta: flip`: the mirror image and nothing else. */
export const FLIP_PLAN: VariantPlan = { ...IDENTITY_PLAN, flip: true };

/** A 32-bit seed from strings: the same on every machine. */
function seedOf(...parts: readonly (string | number)[]): number {
  return createHash('sha256').update(parts.join('\u0000')).digest().readUInt32LE(0);
}

/** The plan of variant `copy` (0-based) of `file`: a pure function of its arguments. */
export function variantPlan(a: AugmentParams, file: string, copy: number): VariantPlan {
  const rng = makeRng(seedOf('pipe-augment', a.seed, file, copy));
  const u = () => rng() * 2 - 1; // uniform in [-1, 1)
  const flip = a.flip && rng() < 0.5;
  const angle = a.rotate > 0 ? u() * a.rotate : 0;
  const scale = 1 - rng() * a.crop; // the kept side, as a fraction
  const left = rng() * (1 - scale);
  const top = rng() * (1 - scale);
  const brightness = a.brightness > 0 ? 1 + u() * a.brightness : 1;
  return { flip, angle, window: [left, top, scale, scale], brightness };
}

/** The canonical form of the params that decide the variants' pixels (for cache keys). */
export function augmentKey(a: AugmentParams): Record<string, unknown> {
  return { v: 1, flip: a.flip, crop: a.crop, rotate: a.rotate, brightness: a.brightness, copies: a.copies, seed: a.seed };
}

/**
 * Decode `file` at the input size (as the plain features are), then apply `plan` with sharp:
 * rotate about the centre (the corners filled with mid grey) keeping the original frame, cut
 * the window, resize it back to the input size, mirror, scale the brightness. HWC RGB uint8.
 */
export async function decodeVariant(file: string | Buffer, options: DecodeOptions, plan: VariantPlan): Promise<Uint8Array> {
  const rgb = await decodeImage(file, options);
  if (plan === IDENTITY_PLAN) return rgb;
  const sharp = await loadSharp();
  const [h, w] = options.size;
  const raw = { raw: { width: w, height: h, channels: 3 as const } };
  let img = Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength);
  let [iw, ih] = [w, h];
  if (plan.angle !== 0) {
    const rotated = await sharp(img, raw)
      .rotate(plan.angle, { background: { r: 128, g: 128, b: 128 } })
      .raw()
      .toBuffer({ resolveWithObject: true });
    img = rotated.data;
    [iw, ih] = [rotated.info.width, rotated.info.height];
  }
  // The window, in the rotated canvas: the original frame is its centre.
  const [fx, fy, fw, fh] = plan.window;
  const ox = (iw - w) / 2;
  const oy = (ih - h) / 2;
  const width = Math.max(1, Math.round(fw * w));
  const height = Math.max(1, Math.round(fh * h));
  const left = Math.min(iw - width, Math.max(0, Math.round(ox + fx * w)));
  const top = Math.min(ih - height, Math.max(0, Math.round(oy + fy * h)));
  let pipeline = sharp(img, { raw: { width: iw, height: ih, channels: 3 } })
    .extract({ left, top, width, height })
    .resize(w, h, { fit: 'fill' });
  if (plan.flip) pipeline = pipeline.flop();
  if (plan.brightness !== 1) pipeline = pipeline.linear(plan.brightness, 0);
  const out = await pipeline.raw().toBuffer({ resolveWithObject: true });
  if (out.info.width !== w || out.info.height !== h || out.info.channels !== 3) {
    throw new Error(`augmented image is ${out.info.width}x${out.info.height}x${out.info.channels}, expected ${w}x${h}x3`);
  }
  return out.data;
}
