// Test-time augmentation in predict and evaluate (vision/tta.ts through vision/predictor.ts): a
// mirror-symmetric image keeps its probabilities under `tta: flip`, an image and its mirror get
// the mean of their plain probabilities; evaluate's metrics say TTA was used; variants cached.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import type { Artifact } from '../runner/types.js';
import { predictStage, type PredictParams } from '../stages/predict.js';
import { evaluateStage, type EvaluateParams } from '../stages/evaluate.js';
import { finetuneVgg16Stage } from '../stages/finetune-vgg16.js';
import { parseMetrics } from '../stages/report/model.js';
import { averageTta } from '../stages/vision/tta.js';
import { tinyFinetuneParams } from './helpers/tiny-finetune.js';
import { artifactFromDir, makeTestContext } from './helpers/stage-context.js';
import { writeSyntheticSplit } from './helpers/tiny-vgg.js';

let root: string;
let derivedRoot: string;
let dataset: Artifact;
let photos: Artifact;
const models: Record<'frozen' | 'whole', Artifact> = {} as never;
const cleanups: (() => Promise<void>)[] = [];

/** A 32x32 PNG whose pixel (x, y) is `pixel(x, y)`; exactly the input size, so no resize. */
async function png(file: string, pixel: (x: number, y: number) => [number, number, number]): Promise<void> {
  const data = Buffer.alloc(32 * 32 * 3);
  for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) data.set(pixel(x, y), (y * 32 + x) * 3);
  await sharp(data, { raw: { width: 32, height: 32, channels: 3 } })
    .png()
    .toFile(file);
}

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'pipe-tta-'));
  derivedRoot = path.join(root, 'derived');
  await mkdir(derivedRoot);
  const dsDir = path.join(root, 'dataset');
  await writeSyntheticSplit(dsDir, { train: 12, valid: 6, size: [32, 32], seed: 3 });
  dataset = artifactFromDir(dsDir, 'dataset', 'split');
  const dir = path.join(root, 'photos');
  await mkdir(dir);
  // Left-right asymmetric content: a warm ramp, a cool block on the left.
  const asym = (x: number, y: number): [number, number, number] => (x < 10 && y > 8 && y < 24 ? [20, 60, 230] : [200 - x * 5, 40 + y * 4, 30 + x * 3]);
  await png(path.join(dir, 'asym.png'), asym);
  await png(path.join(dir, 'asym-mirror.png'), (x, y) => asym(31 - x, y));
  await png(path.join(dir, 'symmetric.png'), (x, y) => asym(Math.min(x, 31 - x), y));
  photos = artifactFromDir(dir, 'files', 'images');
  for (const [name, over] of [
    ['frozen', {}],
    ['whole', { trainable: 'all', engine: 'onnx' }],
  ] as const) {
    const ctx = await makeTestContext(tinyFinetuneParams({ epochs: 2, ...over }), { inputs: { dataset }, derivedRoot });
    cleanups.push(() => ctx.cleanup());
    await finetuneVgg16Stage.run(ctx);
    models[name] = artifactFromDir(ctx.outDir, 'model', 'finetune');
  }
});
after(async () => {
  for (const c of cleanups) await c();
  await rm(root, { recursive: true, force: true });
});

const PARAMS: PredictParams = { from: '', batch_size: 5, top_k: 3, extensions: ['png'], backend: 'wasm', engine: 'tfjs' };

async function predictProbs(
  model: Artifact,
  tta: PredictParams['tta'],
): Promise<{ probs: Record<string, [number, number]>; summary: string; json: Record<string, unknown> }> {
  const ctx = await makeTestContext<PredictParams>({ ...PARAMS, tta }, { inputs: { model, images: photos }, derivedRoot });
  try {
    const r = await predictStage.run(ctx);
    const rows = (await readFile(path.join(ctx.outDir, 'predictions.csv'), 'utf8'))
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(','));
    const json = JSON.parse(await readFile(path.join(ctx.outDir, 'predict.json'), 'utf8')) as Record<string, unknown>;
    return { probs: Object.fromEntries(rows.map((r) => [r[0]!, [Number(r[2]), Number(r[3])]])), summary: r?.summary ?? '', json };
  } finally {
    await ctx.cleanup();
  }
}

test('averageTta: the mean of each image and its variants (copy-major rows)', () => {
  const plain = [Float32Array.of(1, 0), Float32Array.of(0.5, 0.5)];
  const variants = [Float32Array.of(0, 1), Float32Array.of(0.5, 0.5), Float32Array.of(0.5, 0.5), Float32Array.of(0.2, 0.8)];
  assert.deepEqual(
    averageTta(plain, variants, 2).map((r) => Array.from(r, (x) => Number(x.toFixed(6)))),
    [
      [0.5, 0.5],
      [0.4, 0.6],
    ],
  );
});

for (const kind of ['frozen', 'whole'] as const) {
  test(`predict with tta: flip (${kind === 'frozen' ? 'head on cached frozen outputs' : 'nothing frozen'}): a symmetric image keeps its probabilities, an image and its mirror get their mean`, async () => {
    const plain = await predictProbs(models[kind], 'none');
    const flip = await predictProbs(models[kind], 'flip');
    const close = (a: readonly number[], b: readonly number[], what: string) =>
      a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) < 2e-6, `${what}: ${a.join()} vs ${b.join()}`));
    close(flip.probs['symmetric.png']!, plain.probs['symmetric.png']!, 'symmetric');
    const mean = plain.probs['asym.png']!.map((x, i) => (x + plain.probs['asym-mirror.png']![i]!) / 2);
    close(flip.probs['asym.png']!, mean, 'asym');
    close(flip.probs['asym-mirror.png']!, mean, 'mirror');
    assert.ok(
      Math.abs(plain.probs['asym.png']![0] - plain.probs['asym-mirror.png']![0]) > 1e-4,
      'the model is not mirror-invariant (else this test shows nothing)',
    );
    assert.match(flip.summary, /\(TTA: flip\)$/);
    assert.equal(flip.json['tta'], 'flip');
    assert.equal(plain.json['tta'], undefined);
  });
}

test('evaluate with tta: K: metrics.json and the report say so; the variants are cached for the next run', async () => {
  const params: EvaluateParams = { on: 'valid', gate: {}, clip: [0.05, 0.95], top_n: 2, batch_size: 7, backend: 'wasm', engine: 'tfjs', tta: 3 };
  const first = await makeTestContext(params, { inputs: { model: models.frozen, dataset }, derivedRoot });
  const second = await makeTestContext(params, { inputs: { model: models.frozen, dataset }, derivedRoot });
  const plain = await makeTestContext({ ...params, tta: 'none' as const }, { inputs: { model: models.frozen, dataset }, derivedRoot });
  try {
    const r = await evaluateStage.run(first);
    assert.equal(first.builds.get('features'), 1, 'the variants of valid (valid itself is cached by finetune)');
    const metrics = JSON.parse(await readFile(path.join(first.outDir, 'metrics.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(metrics['tta'], '3 variants');
    assert.match(r!.summary!, /\(TTA: 3 variants\)$/);
    assert.equal(parseMetrics(metrics).tta, '3 variants');
    await evaluateStage.run(second);
    assert.equal(second.builds.get('features'), undefined, 'the second run computes nothing');
    assert.equal(await readFile(path.join(second.outDir, 'predictions.csv'), 'utf8'), await readFile(path.join(first.outDir, 'predictions.csv'), 'utf8'));
    await evaluateStage.run(plain);
    const plainMetrics = JSON.parse(await readFile(path.join(plain.outDir, 'metrics.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(plainMetrics['tta'], undefined);
    assert.notEqual(await readFile(path.join(plain.outDir, 'predictions.csv'), 'utf8'), await readFile(path.join(first.outDir, 'predictions.csv'), 'utf8'));
  } finally {
    await first.cleanup();
    await second.cleanup();
    await plain.cleanup();
  }
});
