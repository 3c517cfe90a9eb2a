import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { synthImagesStage, synthesise, type SynthImagesParams } from '../stages/synth-images.js';
import { makeRng, splitStage, type SplitFile, type SplitParams } from '../stages/split.js';
import { artifactFromDir, makeTestContext, type TestContext } from './helpers/stage-context.js';
import { listAll } from './helpers/files.js';

const BASE: SynthImagesParams = { classes: ['cat', 'dog'], train_per_class: 6, test: 3, width: 64, height: 48, seed: 42, quality: 85 };

async function synth(p: Partial<SynthImagesParams>): Promise<TestContext<SynthImagesParams>> {
  const ctx = await makeTestContext<SynthImagesParams>({ ...BASE, ...p });
  await synthImagesStage.run(ctx);
  return ctx;
}

test('Kaggle naming, the asked size, decodable JPEGs', async () => {
  const ctx = await synth({});
  try {
    const files = await listAll(ctx.outDir);
    const want = [...[0, 1, 2, 3, 4, 5].flatMap((n) => [`train/cat.${n}.jpg`, `train/dog.${n}.jpg`]), 'test/1.jpg', 'test/2.jpg', 'test/3.jpg'].sort();
    assert.deepEqual(files, want);
    for (const f of files) {
      const meta = await sharp(path.join(ctx.outDir, f)).metadata();
      assert.equal(meta.format, 'jpeg');
      assert.equal(meta.width, 64);
      assert.equal(meta.height, 48);
    }
  } finally {
    await ctx.cleanup();
  }
});

test('the same seed gives byte-identical files; image n does not depend on the counts; another seed differs', async () => {
  const a = await synth({});
  const b = await synth({});
  const more = await synth({ train_per_class: 9, test: 5 });
  const other = await synth({ seed: 43 });
  try {
    for (const f of await listAll(a.outDir)) {
      const bytes = await readFile(path.join(a.outDir, f));
      assert.ok(bytes.equals(await readFile(path.join(b.outDir, f))), `${f} differs between runs`);
      assert.ok(bytes.equals(await readFile(path.join(more.outDir, f))), `${f} depends on the counts`);
      assert.ok(!bytes.equals(await readFile(path.join(other.outDir, f))), `${f} ignores the seed`);
    }
  } finally {
    await Promise.all([a, b, more, other].map((c) => c.cleanup()));
  }
});

test('classes differ on average but single images vary widely (not separable by colour alone)', () => {
  const w = 64;
  const h = 48;
  const stats = [0, 1].map((cls) => {
    const values: number[] = [];
    for (let i = 0; i < 60; i++) {
      const px = synthesise(w, h, cls, 2, makeRng(1000 * cls + i));
      let rg = 0;
      for (let p = 0; p < px.length; p += 3) rg += px[p]! - px[p + 1]!;
      values.push(rg / (w * h));
    }
    const mean = values.reduce((s, v) => s + v, 0) / values.length;
    const sd = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length);
    return { mean, sd };
  });
  const [cat, dog] = stats as [{ mean: number; sd: number }, { mean: number; sd: number }];
  assert.ok(cat.mean - dog.mean > 5, `class colour statistics should differ a little: ${JSON.stringify(stats)}`);
  assert.ok(cat.sd > cat.mean - dog.mean && dog.sd > cat.mean - dog.mean, `within-class spread should exceed the class difference: ${JSON.stringify(stats)}`);
  // Pixels of two images of one class are not the same picture.
  const x = synthesise(w, h, 0, 2, makeRng(1));
  const y = synthesise(w, h, 0, 2, makeRng(2));
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff += Math.abs(x[i]! - y[i]!);
  assert.ok(diff / x.length > 20);
});

test('fast: 200 images of 160x120 in a few seconds, and split reads them with its defaults', async () => {
  const t0 = performance.now();
  const ctx = await synth({ train_per_class: 90, test: 20, width: 160, height: 120 });
  const seconds = (performance.now() - t0) / 1000;
  const splitCtx = await makeTestContext<SplitParams>(
    {
      from: 'train',
      label_from: 'filename',
      label_pattern: '^([a-z]+)\\.',
      valid: 0.2,
      sample: { train: 20, valid: 10 },
      test: 'test',
      stratify: true,
      seed: 42,
      extensions: ['jpg', 'jpeg', 'png', 'webp'],
    },
    { inputs: { images: artifactFromDir(ctx.outDir, 'files', 'data') } },
  );
  try {
    assert.ok(seconds < 10, `200 images took ${seconds.toFixed(1)} s`);
    await splitStage.run(splitCtx);
    const split = JSON.parse(await readFile(path.join(splitCtx.outDir, 'split.json'), 'utf8')) as SplitFile;
    assert.deepEqual(split.classes, ['cat', 'dog']);
    assert.deepEqual(split.counts.valid, { cat: 18, dog: 18 });
    assert.equal(split.counts.test, 20);
    assert.deepEqual(split.excluded, []);
  } finally {
    await splitCtx.cleanup();
    await ctx.cleanup();
  }
});

test('more classes use other kinds of structure', async () => {
  const ctx = await synth({ classes: ['alpha', 'beta', 'gamma', 'delta', 'eps'], train_per_class: 2, test: 0 });
  try {
    assert.equal((await listAll(ctx.outDir)).length, 10);
  } finally {
    await ctx.cleanup();
  }
});
