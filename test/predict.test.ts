// predict on a model fine-tuned here (tiny VGG, generated images): predictions.csv in the
// model's class order, corrupt files left out and listed, the picture page, and the frozen
// outputs shared with finetune and evaluate (a folder they saw costs no frozen pass).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { StageError, type Artifact } from '../runner/types.js';
import { predictStage, type PredictParams } from '../stages/predict.js';
import { evaluateStage, type EvaluateParams } from '../stages/evaluate.js';
import { finetuneVgg16Stage, type FinetuneVgg16Params } from '../stages/finetune-vgg16.js';
import { tinyFinetuneParams } from './helpers/tiny-finetune.js';
import { artifactFromDir, makeTestContext, type TestContext } from './helpers/stage-context.js';
import { writeSyntheticSplit } from './helpers/tiny-vgg.js';

let root: string;
let derivedRoot: string;
let dataset: Artifact;
let model: Artifact;
let finetuneCtx: TestContext<FinetuneVgg16Params>;
let files: Record<string, string[]>;

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'pipe-predict-'));
  derivedRoot = path.join(root, 'derived');
  await mkdir(derivedRoot);
  const dsDir = path.join(root, 'dataset');
  ({ files } = await writeSyntheticSplit(dsDir, { train: 24, valid: 12, test: 6, seed: 11 }));
  dataset = artifactFromDir(dsDir, 'dataset', 'split');
  const params = tinyFinetuneParams();
  finetuneCtx = await makeTestContext(params, { inputs: { dataset }, derivedRoot });
  await finetuneVgg16Stage.run(finetuneCtx);
  model = artifactFromDir(finetuneCtx.outDir, 'model', 'finetune');
});
after(async () => {
  await finetuneCtx.cleanup();
  await rm(root, { recursive: true, force: true });
});

const PARAMS: PredictParams = { from: '', batch_size: 5, top_k: 3, extensions: ['jpg', 'jpeg', 'png', 'webp'], backend: 'wasm', engine: 'tfjs' };

async function predict(
  images: Artifact,
  over: Partial<PredictParams> = {},
): Promise<TestContext<PredictParams> & { summary: string; meta: Record<string, unknown> }> {
  const ctx = await makeTestContext<PredictParams>({ ...PARAMS, ...over }, { inputs: { model, images }, derivedRoot });
  try {
    const r = await predictStage.run(ctx);
    return Object.assign(ctx, { summary: r?.summary ?? '', meta: r?.meta ?? {} });
  } catch (e) {
    await ctx.cleanup();
    throw e;
  }
}

function parseCsv(text: string): string[][] {
  return text
    .trim()
    .split('\n')
    .map((l) => l.split(','));
}

test('predict on a folder of new photos: predictions.csv in class order, corrupt files left out and listed, the picture page', async () => {
  const dir = path.join(root, 'new-photos');
  await mkdir(path.join(dir, 'batch1'), { recursive: true });
  for (const f of files['test']!) await copyFile(path.join(dataset.dir, f), path.join(dir, 'batch1', path.basename(f)));
  await writeFile(path.join(dir, 'batch1', 'broken.jpg'), 'not a jpeg');
  await writeFile(path.join(dir, 'notes.txt'), 'ignored');
  const ctx = await predict(artifactFromDir(dir, 'files', 'images'));
  try {
    const rows = parseCsv(await readFile(path.join(ctx.outDir, 'predictions.csv'), 'utf8'));
    assert.deepEqual(rows[0], ['file', 'predicted', 'p_cat', 'p_dog']);
    assert.deepEqual(
      rows.slice(1).map((r) => r[0]),
      ['batch1/1.jpg', 'batch1/2.jpg', 'batch1/3.jpg', 'batch1/4.jpg', 'batch1/5.jpg', 'batch1/6.jpg'],
    );
    for (const r of rows.slice(1)) {
      const [pc, pd] = [Number(r[2]), Number(r[3])];
      assert.ok(Math.abs(pc + pd - 1) < 1e-4, r.join());
      assert.equal(r[1], pc >= pd ? 'cat' : 'dog');
    }
    const summary = JSON.parse(await readFile(path.join(ctx.outDir, 'predict.json'), 'utf8')) as {
      count: number;
      excluded: { file: string; reason: string }[];
      per_class: Record<string, number>;
    };
    assert.equal(summary.count, 6);
    assert.deepEqual(
      summary.excluded.map((e) => e.file),
      ['batch1/broken.jpg'],
    );
    assert.ok(summary.excluded[0]!.reason.length > 0);
    assert.equal(summary.per_class['cat']! + summary.per_class['dog']!, 6);
    const page = await readFile(path.join(ctx.outDir, 'predictions.html'), 'utf8');
    assert.match(page, /Predicted cat \(\d+, most confident first\)/);
    assert.match(page, /Least confident/);
    assert.equal(
      (page.match(/<img src="data:image\/jpeg;base64,/g) ?? []).length,
      Math.min(3, summary.per_class['cat']!) + Math.min(3, summary.per_class['dog']!) + 3,
    );
    assert.match(page, /1 left out \(corrupt: listed in predict\.json\)/);
    assert.match(ctx.summary, /^6 images predicted \(cat \d, dog \d\); 1 corrupt left out$/);
  } finally {
    await ctx.cleanup();
  }
});

test("predict on a dataset's valid folder: finetune's frozen outputs reused, the same probabilities as evaluate", async () => {
  const ctx = await predict(dataset, { from: 'valid' });
  try {
    assert.equal(ctx.builds.get('features'), undefined, 'no frozen pass: finetune computed valid/ already');
    assert.ok(
      ctx.logs.some((l) => /frozen outputs: valid: 24 images from the cache/.test(l)),
      ctx.logs.join('\n'),
    );
    const ours = parseCsv(await readFile(path.join(ctx.outDir, 'predictions.csv'), 'utf8')).slice(1);
    const evalParams: EvaluateParams = { on: 'valid', gate: {}, clip: [0.05, 0.95], top_n: 2, batch_size: 7, backend: 'wasm', engine: 'tfjs' };
    const ev = await makeTestContext(evalParams, { inputs: { model, dataset }, derivedRoot });
    try {
      await evaluateStage.run(ev);
      const theirs = parseCsv(await readFile(path.join(ev.outDir, 'predictions.csv'), 'utf8')).slice(1);
      assert.equal(ours.length, 24);
      assert.deepEqual(
        ours.map((r) => [`valid/${r[0]}`, r[1], r[2], r[3]]),
        theirs.map((r) => [r[0], r[4], r[2], r[3]]),
      );
    } finally {
      await ev.cleanup();
    }
  } finally {
    await ctx.cleanup();
  }
});

test('predict on a new folder: the photos the model has seen cost nothing, one new photo computes one, with the same probabilities', async () => {
  const dir = path.join(root, 'seen-plus-one');
  await mkdir(dir, { recursive: true });
  // Finetune computed the frozen outputs of train/ and valid/: copies of those under other names.
  for (const f of files['valid']!) await copyFile(path.join(dataset.dir, f), path.join(dir, `seen-${path.basename(path.dirname(f))}-${path.basename(f)}`));
  // A photo nothing has seen: a valid one mirrored.
  await sharp(path.join(dataset.dir, files['valid']![0]!)).flop().jpeg().toFile(path.join(dir, 'new.jpg'));
  const ctx = await predict(artifactFromDir(dir, 'files', 'images'));
  const ref = await predict(dataset, { from: 'valid' });
  try {
    assert.equal(ctx.meta['frozen_computed'], 1, 'only the new photo went through the frozen part');
    assert.equal(ctx.meta['decoded'], 1, 'only the new photo was decoded');
    assert.ok(!ctx.logs.some((l) => /decode check/.test(l)), 'no separate decode check');
    assert.ok(
      ctx.logs.some((l) => /frozen outputs: \.: 24 of 25 images already computed \(same photos in an earlier set\), 1 to compute/.test(l)),
      ctx.logs.join('\n'),
    );
    assert.equal(ref.meta['frozen_computed'], 0);
    // The reused rows give the probabilities the model gives those photos in valid/.
    const ours = new Map(
      parseCsv(await readFile(path.join(ctx.outDir, 'predictions.csv'), 'utf8'))
        .slice(1)
        .map((r) => [r[0], r.slice(1)]),
    );
    const theirs = parseCsv(await readFile(path.join(ref.outDir, 'predictions.csv'), 'utf8')).slice(1);
    assert.equal(ours.size, 25);
    for (const r of theirs) assert.deepEqual(ours.get(`seen-${r[0]!.replace('/', '-')}`), r.slice(1), r[0]);
    // Again: the whole folder from the cache, nothing computed.
    const again = await predict(artifactFromDir(dir, 'files', 'images'));
    try {
      assert.equal(again.meta['frozen_computed'], 0);
    } finally {
      await again.cleanup();
    }
  } finally {
    await ctx.cleanup();
    await ref.cleanup();
  }
});

test('predict decodes each photo once (the frozen pass is the decode check): the same predictions.csv, and corrupt files left out with the reasons a lone check gives', async () => {
  const clean = path.join(root, 'once-clean');
  const dirty = path.join(root, 'once-dirty');
  await mkdir(clean, { recursive: true });
  await mkdir(dirty, { recursive: true });
  for (const f of files['test']!) {
    await copyFile(path.join(dataset.dir, f), path.join(clean, path.basename(f)));
    await copyFile(path.join(dataset.dir, f), path.join(dirty, path.basename(f)));
  }
  const jpeg = await readFile(path.join(clean, '1.jpg'));
  await writeFile(path.join(dirty, '0-truncated.jpg'), jpeg.subarray(0, Math.floor(jpeg.length / 2)));
  await writeFile(path.join(dirty, 'not-a-jpeg.jpg'), 'not a jpeg');
  await writeFile(path.join(dirty, 'same-bytes.jpg'), 'not a jpeg'); // the same bytes: left out too
  await writeFile(path.join(dirty, 'empty.png'), '');
  const { checkImage } = await import('../stages/vision/decode-check.js');
  const ref = await predict(artifactFromDir(clean, 'files', 'images'));
  const ctx = await predict(artifactFromDir(dirty, 'files', 'images'));
  try {
    assert.equal(await readFile(path.join(ctx.outDir, 'predictions.csv'), 'utf8'), await readFile(path.join(ref.outDir, 'predictions.csv'), 'utf8'));
    const excluded = (JSON.parse(await readFile(path.join(ctx.outDir, 'predict.json'), 'utf8')) as { excluded: { file: string; reason: string }[] }).excluded;
    const expected = [];
    for (const file of ['0-truncated.jpg', 'empty.png', 'not-a-jpeg.jpg', 'same-bytes.jpg'])
      expected.push({ file, reason: await checkImage(path.join(dirty, file)) });
    assert.deepEqual(excluded, expected);
    assert.equal(expected[1]!.reason, 'empty file');
    // The six good photos' frozen outputs are cached (the first test predicted them): only the
    // three distinct corrupt ones were decoded (the two equal ones are one), once each.
    assert.equal(ctx.meta['decoded'], 3);
    assert.ok(!ctx.logs.some((l) => /decode check/.test(l)), ctx.logs.join('\n'));
    assert.ok(ctx.logs.includes(`warn: left out 0-truncated.jpg: ${expected[0]!.reason}`), ctx.logs.join('\n'));
    // Again: everything from the cache, nothing decoded, the same files left out.
    const again = await predict(artifactFromDir(dirty, 'files', 'images'));
    try {
      assert.equal(again.meta['decoded'], 0);
      assert.equal(await readFile(path.join(again.outDir, 'predict.json'), 'utf8'), await readFile(path.join(ctx.outDir, 'predict.json'), 'utf8'));
      assert.equal(await readFile(path.join(again.outDir, 'predictions.csv'), 'utf8'), await readFile(path.join(ref.outDir, 'predictions.csv'), 'utf8'));
    } finally {
      await again.cleanup();
    }
  } finally {
    await ctx.cleanup();
    await ref.cleanup();
  }
});

test('predict: clear errors for a missing folder, no images, and the wrong kind of input', async () => {
  await assert.rejects(
    predict(dataset, { from: 'nope' }),
    (e: Error) =>
      e instanceof StageError &&
      /^predict: the input has no folder 'nope' \(from\)/.test(e.message) &&
      /its folders: sample|test|train|valid/.test(e.hint ?? ''),
  );
  const empty = path.join(root, 'empty');
  await mkdir(path.join(empty, 'docs'), { recursive: true });
  await writeFile(path.join(empty, 'docs', 'a.txt'), 'x');
  await assert.rejects(predict(artifactFromDir(empty, 'files')), /predict: no images under '\.' of the input/);
  await assert.rejects(predict(model), /input 'images' is a model artifact \(from 'finetune'\): it needs photos/);
  assert.deepEqual(predictStage.reads?.(PARAMS, 'images'), undefined);
  assert.deepEqual(predictStage.reads?.({ ...PARAMS, from: 'test/' }, 'images'), ['test/**']);
});
