// Augmentation on the feature cache: seeded variant plans, sharp transforms, the per-epoch draw,
// and finetune-vgg16 with `augment` (variants computed once and cached, validation never
// augmented, a resumed run identical to a straight one).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Artifact } from '../runner/types.js';
import { finetuneVgg16Stage } from '../stages/finetune-vgg16.js';
import { AUGMENT_DEFAULTS, FLIP_PLAN, IDENTITY_PLAN, decodeVariant, resolveAugment, variantPlan } from '../stages/vision/augment.js';
import { decodeImage } from '../stages/vision/images.js';
import { augmentedSource, epochDraw } from '../stages/vision/variants.js';
import type { DataSource } from '../stages/vision/train.js';
import { artifactFromDir, makeTestContext } from './helpers/stage-context.js';
import { tinyFinetuneParams } from './helpers/tiny-finetune.js';
import { writeSyntheticSplit } from './helpers/tiny-vgg.js';

let root: string;
let dataset: Artifact;
let trainFiles: string[];

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'pipe-augment-'));
  const dsDir = path.join(root, 'dataset');
  const made = await writeSyntheticSplit(dsDir, { train: 12, valid: 6 });
  trainFiles = made.files['train']!;
  dataset = artifactFromDir(dsDir, 'dataset', 'split');
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const pre = { size: [32, 32] as const, fit: 'fill' as const };

test('variant plans are a pure function of the augmentation seed, the file and the copy', () => {
  const a = AUGMENT_DEFAULTS;
  assert.deepEqual(variantPlan(a, 'train/cat/cat.1.jpg', 2), variantPlan({ ...a }, 'train/cat/cat.1.jpg', 2));
  assert.notDeepEqual(variantPlan(a, 'train/cat/cat.1.jpg', 2), variantPlan(a, 'train/cat/cat.1.jpg', 3));
  assert.notDeepEqual(variantPlan(a, 'train/cat/cat.1.jpg', 2), variantPlan({ ...a, seed: 9 }, 'train/cat/cat.1.jpg', 2));
  const plans = Array.from({ length: 200 }, (_, c) => variantPlan(a, 'x.jpg', c));
  for (const p of plans) {
    assert.ok(Math.abs(p.angle) <= a.rotate && Math.abs(p.brightness - 1) <= a.brightness);
    assert.ok(p.window[2] >= 1 - a.crop && p.window[0] + p.window[2] <= 1 && p.window[1] + p.window[3] <= 1);
  }
  const flips = plans.filter((p) => p.flip).length;
  assert.ok(flips > 60 && flips < 140, `${flips} of 200 flipped`);
  const none = variantPlan({ ...a, flip: false, crop: 0, rotate: 0, brightness: 0 }, 'x.jpg', 0);
  assert.deepEqual(none, { flip: false, angle: 0, window: [0, 0, 1, 1], brightness: 1 });
});

test('decodeVariant: the flip plan mirrors the plain decode exactly; a variant decodes to the same bytes every time', async () => {
  const file = path.join(dataset.dir, trainFiles[0]!);
  const plain = await decodeImage(file, pre);
  const [h, w] = pre.size;
  const mirrored = await decodeVariant(file, pre, FLIP_PLAN);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) assert.equal(mirrored[(y * w + x) * 3 + c], plain[(y * w + (w - 1 - x)) * 3 + c], `pixel ${x},${y}`);
    }
  }
  assert.deepEqual(Buffer.from(await decodeVariant(file, pre, IDENTITY_PLAN)), Buffer.from(plain));
  const plan = variantPlan(AUGMENT_DEFAULTS, trainFiles[0]!, 1);
  const v1 = await decodeVariant(file, pre, plan);
  assert.equal(v1.length, plain.length);
  assert.ok(Buffer.from(v1).equals(Buffer.from(await decodeVariant(file, pre, plan))));
  assert.ok(!Buffer.from(v1).equals(Buffer.from(plain)), 'a variant differs from the original');
  const brighter = await decodeVariant(file, pre, { ...IDENTITY_PLAN, brightness: 1.2 });
  const mean = (b: Uint8Array) => b.reduce((s, v) => s + v, 0) / b.length;
  assert.ok(mean(brighter) > mean(plain) * 1.1, 'brightness scales the pixels');
});

test('each epoch draws the original or one variant per image, seeded by seed and epoch only', async () => {
  const count = 50;
  const copies = 3;
  const plain: DataSource = { count, shape: [2], labels: new Int32Array(count), rows: async (idx) => Float32Array.from(idx.flatMap((r) => [r, 0])) };
  // Variant c of image i holds [i, c + 1]; rows are copy-major as the cache stores them.
  const variants = { rows: async (idx: readonly number[]) => Float32Array.from(idx.flatMap((r) => [r % count, Math.floor(r / count) + 1])) };
  const source = augmentedSource(plain, variants, copies, 7);
  const seen = new Set<number>();
  const epochs: number[][] = [];
  for (const epoch of [1, 2]) {
    const order = [5, 0, 49, 17, ...Array.from({ length: count }, (_, i) => i)];
    const rows = await source.forEpoch!(epoch).rows(order);
    const draw = epochDraw(7, epoch, count, copies);
    order.forEach((r, i) => {
      assert.equal(rows[2 * i], r, 'each row is a version of the image asked for');
      assert.equal(rows[2 * i + 1], draw[r], 'the version is the one drawn for this epoch');
      seen.add(draw[r]!);
    });
    epochs.push(Array.from(draw));
  }
  assert.deepEqual([...seen].sort(), [0, 1, 2, 3], 'the original and every copy are drawn');
  assert.notDeepEqual(epochs[0], epochs[1], 'another epoch draws other variants');
  assert.deepEqual(Array.from(epochDraw(7, 2, count, copies)), epochs[1], 'the same epoch draws the same variants again');
  assert.notDeepEqual(Array.from(epochDraw(8, 2, count, copies)), epochs[1], 'another seed draws others');
});

test('finetune-vgg16 with augment: variants computed once and cached, validation never augmented, resumed = straight', async () => {
  const derivedRoot = path.join(root, 'derived');
  await mkdir(derivedRoot);
  const augment = { copies: 2 };
  const params = tinyFinetuneParams({ epochs: 3, validate_every_epoch: true, augment });
  const first = await makeTestContext(params, { inputs: { dataset }, derivedRoot });
  const second = await makeTestContext(params, { inputs: { dataset }, derivedRoot });
  const plainRun = await makeTestContext(tinyFinetuneParams({ epochs: 3, validate_every_epoch: true }), { inputs: { dataset }, derivedRoot });
  try {
    const r1 = await finetuneVgg16Stage.run(first);
    assert.equal(first.builds.get('features'), 3, 'train, valid, and the augmented train variants');
    assert.deepEqual((r1!.meta!['features'] as Record<string, unknown>)['train augmented'], 'computed');
    // Feature sets only: the small features-family entries say where they are (feature reuse).
    const entries = (await readdir(derivedRoot)).filter((e) => !e.startsWith('features-family-'));
    const indexes = await Promise.all(
      entries.map(
        async (e) => JSON.parse(await readFile(path.join(derivedRoot, e, 'index.json'), 'utf8')) as { count: number; copies?: number; files: string[] },
      ),
    );
    const augmented = indexes.filter((i) => i.copies !== undefined);
    assert.equal(augmented.length, 1, 'one augmented set');
    assert.equal(augmented[0]!.copies, 2);
    assert.equal(augmented[0]!.count, trainFiles.length * 2);
    assert.deepEqual(augmented[0]!.files, trainFiles, 'only training images are augmented');
    const finetune = JSON.parse(await readFile(path.join(first.outDir, 'finetune.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(finetune['augment'], { v: 1, ...resolveAugment(augment) });

    // Second run: nothing computed, same bytes.
    const r2 = await finetuneVgg16Stage.run(second);
    assert.equal(second.builds.get('features'), undefined, 'the second run computes nothing');
    assert.ok(
      second.logs.some((l) => l === 'augmented outputs: train (2 per image): 48 images from the cache'),
      second.logs.join('\n'),
    );
    assert.deepEqual((r2!.meta!['features'] as Record<string, unknown>)['train augmented'], 'cached');
    for (const f of await readdir(first.outDir)) assert.ok((await readFile(path.join(first.outDir, f))).equals(await readFile(path.join(second.outDir, f))), f);

    // Without augment, train and valid come from the same entries: validation was plain.
    await finetuneVgg16Stage.run(plainRun);
    assert.equal(plainRun.builds.get('features'), undefined);
    const h = (c: typeof first) => readFile(path.join(c.outDir, 'history.json'), 'utf8');
    assert.notEqual(await h(plainRun), await h(first), 'augmentation changed what trained');
  } finally {
    await first.cleanup();
    await second.cleanup();
    await plainRun.cleanup();
  }

  // An interrupted augmented run resumes to the bytes of a straight one.
  const workDir = path.join(root, 'work-resume');
  await mkdir(workDir);
  const controller = new AbortController();
  const ctx1 = await makeTestContext(params, { inputs: { dataset }, derivedRoot, workDir, signal: controller.signal });
  const aborting = { ...ctx1, log: { ...ctx1.log, info: (m: string) => (ctx1.log.info(m), /^epoch 1\/3:/.test(m) && controller.abort()) } };
  await assert.rejects(finetuneVgg16Stage.run(aborting));
  const resumed = await makeTestContext(params, { inputs: { dataset }, derivedRoot, workDir });
  const straight = await makeTestContext(params, { inputs: { dataset }, derivedRoot });
  try {
    await finetuneVgg16Stage.run(resumed);
    await finetuneVgg16Stage.run(straight);
    assert.ok(resumed.logs.some((l) => l.includes('resuming from the checkpoint of epoch 1/3')));
    for (const f of await readdir(straight.outDir))
      assert.ok((await readFile(path.join(resumed.outDir, f))).equals(await readFile(path.join(straight.outDir, f))), f);
  } finally {
    await ctx1.cleanup();
    await resumed.cleanup();
    await straight.cleanup();
  }
});

test('finetune-vgg16 with augment and nothing frozen: variants decoded as they train, still deterministic', async () => {
  const params = tinyFinetuneParams({ epochs: 2, trainable: 'all', engine: 'onnx', augment: { copies: 2 } });
  const a = await makeTestContext(params, { inputs: { dataset } });
  const b = await makeTestContext(params, { inputs: { dataset } });
  const plain = await makeTestContext({ ...params, augment: undefined }, { inputs: { dataset } });
  try {
    await finetuneVgg16Stage.run(a);
    await finetuneVgg16Stage.run(b);
    await finetuneVgg16Stage.run(plain);
    const h = (c: typeof a) => readFile(path.join(c.outDir, 'history.json'), 'utf8');
    assert.equal(await h(a), await h(b));
    assert.notEqual(await h(a), await h(plain));
  } finally {
    await a.cleanup();
    await b.cleanup();
    await plain.cleanup();
  }
});
