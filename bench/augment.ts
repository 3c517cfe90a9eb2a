// What `augment: { copies: 4 }` costs on 1,000 photos: the frozen pass of Tiny Darknet (up to
// leaky_re_lu_15, ONNX Runtime where it loads) over the plain images and over their 4 augmented
// variants, in the same run, with the disk each feature set takes. The photos are the shared
// oxford-pets-730 set, cycled to 1,000 files (a copy each, under other names).
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cachedFeatures, type FeatureRequest } from '../stages/vision/features.js';
import { resolveAugment } from '../stages/vision/augment.js';
import { variantRequest } from '../stages/vision/variants.js';
import { makeTestContext } from '../test/helpers/stage-context.js';

const PHOTOS = 1000;
const COPIES = 4;
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SHARED = path.resolve(REPO, '../shared');
const PETS = path.join(SHARED, 'datasets/oxford-pets-730');
const DARKNET = path.join(SHARED, 'models/darknet-tiny/model.json');

async function dirBytes(dir: string): Promise<number> {
  let n = 0;
  for (const f of await readdir(dir)) n += (await stat(path.join(dir, f))).size;
  return n;
}

export async function benchAugment(): Promise<Record<string, unknown>> {
  if (!existsSync(PETS) || !existsSync(DARKNET)) return { skipped: `${PETS} or ${DARKNET} is absent` };
  const root = await mkdtemp(path.join(os.tmpdir(), 'pipe-bench-augment-'));
  const ctx = await makeTestContext({}, { pipelineDir: root });
  try {
    const sources = (await Promise.all(['cat', 'dog'].map(async (c) => (await readdir(path.join(PETS, c))).sort().map((f) => path.join(PETS, c, f))))).flat();
    const files: string[] = [];
    await mkdir(path.join(root, 'photos'), { recursive: true });
    for (let i = 0; i < PHOTOS; i++) {
      const rel = `photos/${i}.jpg`;
      await copyFile(sources[i % sources.length]!, path.join(root, rel));
      files.push(rel);
    }
    const { selectBackend } = await import('../stages/vision/backend.js');
    const { loadModel } = await import('../stages/vision/model-io.js');
    const { openFrozenEngine } = await import('../stages/vision/tfjs-engine.js');
    const { frozenFingerprint } = await import('../stages/vision/features.js');
    const { tf } = await selectBackend('auto');
    const model = await loadModel(tf, DARKNET);
    const cut = 'leaky_re_lu_15';
    const engine = await openFrozenEngine(tf, model, cut, { engine: 'auto', log: () => undefined, warn: () => undefined });
    const pre = { mode: 'unit' as const, size: [224, 224] as const, fit: 'fill' as const };
    const request = (variants?: FeatureRequest['variants']): FeatureRequest => ({
      ...(variants ? { variants } : {}),
      derived: (n, k, b) => ctx.derived(n, k, b),
      frozen: frozenFingerprint(model, cut),
      cut,
      architecture: 'darknet-tiny',
      datasetHash: 'bench',
      datasetDir: root,
      split: 'train',
      files,
      preprocess: pre,
      engine: async () => engine,
      batchSize: 16,
      progress: (label) => ctx.progress(label),
      log: () => undefined,
      signal: new AbortController().signal,
    });
    const t0 = performance.now();
    const plain = await cachedFeatures(request());
    const plainS = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    const augmented = await cachedFeatures(request(variantRequest(resolveAugment({ copies: COPIES })!, pre)));
    const augS = (performance.now() - t1) / 1000;
    const t2 = performance.now();
    await cachedFeatures(request(variantRequest(resolveAugment({ copies: COPIES })!, pre)));
    const againS = (performance.now() - t2) / 1000;
    await engine.dispose();
    model.dispose();
    const round = (x: number, d = 2) => Number(x.toFixed(d));
    const plainMb = (await dirBytes(plain.dir)) / 1e6;
    const augMb = (await dirBytes(augmented.dir)) / 1e6;
    return {
      what: `Tiny Darknet frozen up to ${cut} (output [${plain.index.shape.join(', ')}] float32) over ${PHOTOS} photos at 224x224, then over ${COPIES} augmented variants of each (flip, crop 0.1, rotate 10, brightness 0.1)`,
      engine: plain.index.engine['name'],
      cores: os.availableParallelism(),
      plain_s: round(plainS),
      plain_img_per_s: round(PHOTOS / plainS, 1),
      plain_disk_mb: round(plainMb, 1),
      augmented_s: round(augS),
      augmented_img_per_s: round((PHOTOS * COPIES) / augS, 1),
      augmented_disk_mb: round(augMb, 1),
      augmented_vs_plain_time: round(augS / plainS),
      per_variant_vs_plain_image: round(augS / COPIES / plainS),
      second_request_s: round(againS, 3),
    };
  } finally {
    await ctx.cleanup();
    await rm(root, { recursive: true, force: true });
  }
}
