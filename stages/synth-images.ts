// `uses: synth-images`: an offline, seeded stand-in for the Kaggle photos (the demo pipeline and
// tests). Files are named as in the Kaggle archive (train/<class>.<n>.jpg, test/<n>.jpg). Each
// class has its own kind of structure (0: round blobs, 1: stripes, 2: rectangles, 3: triangles,
// then again with other colours), drawn at random positions, scales, angles and colours over a
// noisy gradient, with a distractor of another class's kind in some images and slightly
// different colour statistics per class: chance is 1/classes and a small convnet needs a few
// epochs. Pixels come from a seeded PRNG per image (so image n is the same whatever the
// counts), and sharp's JPEG encoder is deterministic: the same seed gives identical bytes.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Stage } from '../runner/types.js';
import { StageError } from '../runner/types.js';
import { mapLimit } from '../runner/stage-api.js';
import { makeRng } from './random.js';

export interface SynthImagesParams {
  classes: string[];
  train_per_class: number;
  test: number;
  width: number;
  height: number;
  seed: number;
  quality: number;
}

type Rng = () => number;
type Rgb = [number, number, number];

/** A stable 32-bit seed for one image from the stage seed and the image's identity. */
export function imageSeed(seed: number, key: string): number {
  let h = 0x811c9dc5 ^ (seed >>> 0) ^ Math.floor(seed / 2 ** 32);
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

class Canvas {
  readonly data: Float32Array;
  constructor(
    readonly w: number,
    readonly h: number,
  ) {
    this.data = new Float32Array(w * h * 3);
  }

  /** Paint every pixel of the box whose centre `inside` accepts, blending `colour` at `alpha`. */
  fill(x0: number, y0: number, x1: number, y1: number, colour: Rgb, alpha: number, inside: (x: number, y: number) => boolean): void {
    const xa = Math.max(0, Math.floor(x0));
    const xb = Math.min(this.w - 1, Math.ceil(x1));
    const ya = Math.max(0, Math.floor(y0));
    const yb = Math.min(this.h - 1, Math.ceil(y1));
    for (let y = ya; y <= yb; y++) {
      for (let x = xa; x <= xb; x++) {
        if (!inside(x + 0.5, y + 0.5)) continue;
        const i = (y * this.w + x) * 3;
        for (let c = 0; c < 3; c++) this.data[i + c] = this.data[i + c]! * (1 - alpha) + colour[c]! * alpha;
      }
    }
  }
}

const between = (rng: Rng, lo: number, hi: number): number => lo + (hi - lo) * rng();
const intBetween = (rng: Rng, lo: number, hi: number): number => Math.floor(between(rng, lo, hi + 1));
const randomColour = (rng: Rng): Rgb => [between(rng, 0, 255), between(rng, 0, 255), between(rng, 0, 255)];

type Family = 'blobs' | 'stripes' | 'rectangles' | 'triangles';
const FAMILIES: readonly Family[] = ['blobs', 'stripes', 'rectangles', 'triangles'];

/** One shape of a family; `scale` 1 = a main shape, smaller for distractors. */
function drawShape(cv: Canvas, family: Family, rng: Rng, scale: number): void {
  const m = Math.min(cv.w, cv.h);
  const colour = randomColour(rng);
  const alpha = between(rng, 0.65, 1);
  const cx = between(rng, 0.1, 0.9) * cv.w;
  const cy = between(rng, 0.1, 0.9) * cv.h;
  switch (family) {
    case 'blobs': {
      const r = between(rng, 0.07, 0.2) * m * scale;
      const ry = r * between(rng, 0.8, 1.25);
      cv.fill(cx - r, cy - ry, cx + r, cy + ry, colour, alpha, (x, y) => ((x - cx) / r) ** 2 + ((y - cy) / ry) ** 2 <= 1);
      return;
    }
    case 'stripes': {
      // A patch of parallel bars at a random angle.
      const half = between(rng, 0.2, 0.4) * m * scale;
      const angle = rng() * Math.PI;
      const period = between(rng, 0.05, 0.1) * m * Math.max(0.6, scale);
      const duty = between(rng, 0.35, 0.6);
      const cos = Math.cos(angle);
      const sin = Math.sin(angle);
      cv.fill(cx - half, cy - half, cx + half, cy + half, colour, alpha, (x, y) => {
        const u = (x - cx) * cos + (y - cy) * sin;
        const v = -(x - cx) * sin + (y - cy) * cos;
        if (Math.abs(u) > half || Math.abs(v) > half * 0.7) return false;
        const phase = (((u + half) % period) + period) % period;
        return phase < period * duty;
      });
      return;
    }
    case 'rectangles': {
      const hw = between(rng, 0.08, 0.22) * m * scale;
      const hh = between(rng, 0.05, 0.15) * m * scale;
      const angle = between(rng, -0.5, 0.5);
      const cos = Math.cos(angle);
      const sin = Math.sin(angle);
      const ext = Math.hypot(hw, hh);
      cv.fill(cx - ext, cy - ext, cx + ext, cy + ext, colour, alpha, (x, y) => {
        const u = (x - cx) * cos + (y - cy) * sin;
        const v = -(x - cx) * sin + (y - cy) * cos;
        return Math.abs(u) <= hw && Math.abs(v) <= hh;
      });
      return;
    }
    case 'triangles': {
      const r = between(rng, 0.1, 0.25) * m * scale;
      const a0 = rng() * 2 * Math.PI;
      const pts = [0, 1, 2].map((k) => [cx + r * Math.cos(a0 + (k * 2 * Math.PI) / 3), cy + r * Math.sin(a0 + (k * 2 * Math.PI) / 3)] as const);
      const [p0, p1, p2] = pts as [readonly [number, number], readonly [number, number], readonly [number, number]];
      const sign = (ax: number, ay: number, bx: number, by: number, x: number, y: number): number => (x - bx) * (ay - by) - (ax - bx) * (y - by);
      cv.fill(cx - r, cy - r, cx + r, cy + r, colour, alpha, (x, y) => {
        const d1 = sign(x, y, p0[0], p0[1], p1[0], p1[1]);
        const d2 = sign(x, y, p1[0], p1[1], p2[0], p2[1]);
        const d3 = sign(x, y, p2[0], p2[1], p0[0], p0[1]);
        return !((d1 < 0 || d2 < 0 || d3 < 0) && (d1 > 0 || d2 > 0 || d3 > 0));
      });
      return;
    }
    default: {
      const never: never = family;
      throw new Error(`unknown family ${String(never)}`);
    }
  }
}

/** HWC RGB uint8 pixels of one image of class `cls` (of `nClasses`). */
export function synthesise(width: number, height: number, cls: number, nClasses: number, rng: Rng): Buffer {
  const cv = new Canvas(width, height);
  // Background: a gradient between two colours; each class leans a little towards its own hue.
  const tint: Rgb = [0, 0, 0];
  tint[cls % 3] = 14;
  tint[(cls + 1) % 3] = -8;
  const a = randomColour(rng).map((v, c) => Math.min(230, Math.max(25, v * 0.7 + 40 + tint[c]!))) as Rgb;
  const b = randomColour(rng).map((v, c) => Math.min(230, Math.max(25, v * 0.7 + 40 + tint[c]!))) as Rgb;
  const gAngle = rng() * 2 * Math.PI;
  const gx = Math.cos(gAngle) / width;
  const gy = Math.sin(gAngle) / height;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const t = Math.min(1, Math.max(0, 0.5 + (x - width / 2) * gx + (y - height / 2) * gy));
      const i = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) cv.data[i + c] = a[c]! * (1 - t) + b[c]! * t;
    }
  }
  const family = FAMILIES[cls % FAMILIES.length]!;
  // Sometimes a small shape of another class's kind, so that "is there any X" is not the answer.
  if (nClasses > 1 && rng() < 0.6) {
    const other = (cls + 1 + Math.floor(rng() * (nClasses - 1))) % nClasses;
    drawShape(cv, FAMILIES[other % FAMILIES.length]!, rng, 0.45);
  }
  const count = intBetween(rng, 1, 3);
  for (let k = 0; k < count; k++) drawShape(cv, family, rng, between(rng, 0.7, 1.2));
  // Sensor-like noise.
  const sigma = between(rng, 6, 18);
  const out = Buffer.alloc(width * height * 3);
  for (let i = 0; i < out.length; i++) {
    const noise = (rng() + rng() + rng() - 1.5) * sigma;
    out[i] = Math.max(0, Math.min(255, Math.round(cv.data[i]! + noise)));
  }
  return out;
}

export const synthImagesStage: Stage<SynthImagesParams> = {
  name: 'synth-images',
  version: 1,
  description:
    'Writes a seeded, labelled set of photo-like JPEGs named as the Kaggle archive (train/<class>.<n>.jpg, test/<n>.jpg) where the classes ' +
    'differ by learnable structure (blobs, stripes, rectangles, triangles) with random colours, noise, positions and scales: an offline data source.',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      classes: {
        description: "Class names (lowercase letters, so split's default label_pattern reads them from the file names).",
        type: 'array',
        items: { type: 'string', pattern: '^[a-z]+$' },
        minItems: 2,
        uniqueItems: true,
        default: ['cat', 'dog'],
      },
      train_per_class: {
        description: 'Labelled images per class, in train/.',
        type: 'integer',
        minimum: 1,
        maximum: 100000,
        default: 100,
      },
      test: {
        description: 'Unlabelled images in test/ (random classes).',
        type: 'integer',
        minimum: 0,
        maximum: 100000,
        default: 20,
      },
      width: { description: 'Image width in pixels.', type: 'integer', minimum: 16, maximum: 4096, default: 160 },
      height: { description: 'Image height in pixels.', type: 'integer', minimum: 16, maximum: 4096, default: 120 },
      seed: { description: 'Seed: the same seed gives byte-identical files.', type: 'integer', default: 42 },
      quality: { description: 'JPEG quality (1-100).', type: 'integer', minimum: 1, maximum: 100, default: 85 },
    },
  },
  inputs: {},
  output: 'files',
  async run(ctx) {
    const p = ctx.params;
    if (new Set(p.classes).size !== p.classes.length) throw new StageError('synth-images: class names must differ');
    const { loadSharp } = await import('./vision/images.js');
    const sharp = await loadSharp();
    const jobs: { rel: string; cls: number; key: string }[] = [];
    p.classes.forEach((c, k) => {
      for (let n = 0; n < p.train_per_class; n++) jobs.push({ rel: `train/${c}.${n}.jpg`, cls: k, key: `train/${c}/${n}` });
    });
    for (let n = 1; n <= p.test; n++) {
      const cls = Math.floor(makeRng(imageSeed(p.seed, `test-class/${n}`))() * p.classes.length);
      jobs.push({ rel: `test/${n}.jpg`, cls, key: `test/${n}` });
    }
    await mkdir(path.join(ctx.outDir, 'train'), { recursive: true });
    if (p.test > 0) await mkdir(path.join(ctx.outDir, 'test'), { recursive: true });
    const bar = ctx.progress('synthesise images', jobs.length);
    await mapLimit(jobs, 4, async (job) => {
      if (ctx.signal.aborted) throw new StageError('interrupted');
      const pixels = synthesise(p.width, p.height, job.cls, p.classes.length, makeRng(imageSeed(p.seed, job.key)));
      const jpeg = await sharp(pixels, { raw: { width: p.width, height: p.height, channels: 3 } })
        .jpeg({ quality: p.quality })
        .toBuffer();
      await writeFile(path.join(ctx.outDir, job.rel), jpeg);
      bar.tick();
    });
    bar.done();
    return {
      meta: { classes: p.classes, train: p.train_per_class * p.classes.length, test: p.test, size: [p.width, p.height] },
      summary: `${jobs.length} images (${p.classes.length} classes x ${p.train_per_class} + ${p.test} test), ${p.width}x${p.height}`,
    };
  },
};
