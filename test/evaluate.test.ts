// evaluate on a model fine-tuned here (tiny VGG, generated images): the outputs the report
// reads, frozen outputs reused from finetune's cache, gates, the submission format.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile, cp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Artifact } from '../runner/types.js';
import { evaluateStage, type EvaluateParams } from '../stages/evaluate.js';
import { finetuneVgg16Stage, type FinetuneVgg16Params } from '../stages/finetune-vgg16.js';
import { tinyFinetuneParams } from './helpers/tiny-finetune.js';
import type { Analysis, Metrics } from '../stages/evaluate-metrics.js';
import { artifactFromDir, makeTestContext, type TestContext } from './helpers/stage-context.js';
import { writeSyntheticSplit } from './helpers/tiny-vgg.js';
import { selectBackend } from '../stages/vision/backend.js';
import { buildVgg } from '../stages/vision/vgg16.js';
import { saveModel } from '../stages/vision/model-io.js';
import { decodeImage, preprocessInto } from '../stages/vision/images.js';

let root: string;
let derivedRoot: string;
let dataset: Artifact;
let model: Artifact;
let finetuneMetrics: Record<string, number>;
let finetuneCtx: TestContext<FinetuneVgg16Params>;

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'pipe-evaluate-'));
  derivedRoot = path.join(root, 'derived');
  await mkdir(derivedRoot);
  const dsDir = path.join(root, 'dataset');
  await writeSyntheticSplit(dsDir, { train: 24, valid: 12, test: 12, seed: 11 });
  dataset = artifactFromDir(dsDir, 'dataset', 'split');
  const params = tinyFinetuneParams();
  finetuneCtx = await makeTestContext(params, { inputs: { dataset }, derivedRoot });
  finetuneMetrics = ((await finetuneVgg16Stage.run(finetuneCtx)) ?? {}).metrics ?? {};
  model = artifactFromDir(finetuneCtx.outDir, 'model', 'finetune');
});
after(async () => {
  await finetuneCtx.cleanup();
  await rm(root, { recursive: true, force: true });
});

function params(over: Partial<EvaluateParams> = {}): EvaluateParams {
  return { on: 'both', gate: {}, clip: [0.02, 0.98], top_n: 4, batch_size: 16, backend: 'wasm', engine: 'tfjs', ...over };
}

async function evaluate(p: EvaluateParams, root?: string, inputs: Record<string, Artifact> = { model, dataset }) {
  const ctx = await makeTestContext(p, { inputs, ...(root ? { derivedRoot: root } : {}) });
  const result = (await evaluateStage.run(ctx)) ?? {};
  return { ctx, result };
}

const read = (ctx: TestContext<unknown>, name: string) => readFile(path.join(ctx.outDir, name), 'utf8');

test("evaluate writes the report's files and reuses finetune's frozen outputs for valid", async () => {
  const { ctx, result } = await evaluate(params(), derivedRoot);
  try {
    assert.equal(ctx.builds.get('features'), 1); // test only: valid came from finetune's run
    assert.ok(ctx.logs.some((l) => /frozen outputs: valid: 24 images from the cache/.test(l)));
    const metrics = JSON.parse(await read(ctx, 'metrics.json')) as Metrics;
    assert.equal(metrics.on, 'valid');
    assert.equal(metrics.count, 24);
    assert.equal(metrics.test_count, 12);
    assert.deepEqual(metrics.classes, ['cat', 'dog']);
    // Same features, same head: the same figures finetune reported for its last epoch.
    assert.ok(Math.abs(metrics.accuracy - finetuneMetrics['val_accuracy']!) < 1e-9, `${metrics.accuracy} vs ${finetuneMetrics['val_accuracy']}`);
    assert.ok(Math.abs(metrics.log_loss - finetuneMetrics['val_loss']!) < 1e-5);
    assert.equal(
      metrics.confusion.flat().reduce((a, b) => a + b, 0),
      24,
    );
    assert.deepEqual(Object.keys(metrics.per_class), ['cat', 'dog']);
    assert.equal(metrics.per_class['cat']!.support, 12);
    assert.deepEqual(result.metrics, { accuracy: metrics.accuracy, log_loss: metrics.log_loss });

    const rows = (await read(ctx, 'predictions.csv')).trim().split('\n');
    assert.equal(rows[0], 'file,label,p_cat,p_dog,predicted,correct');
    assert.equal(rows.length, 1 + 24 + 12);
    assert.match(rows[1]!, /^valid\/cat\/cat\.\d+\.jpg,cat,[\d.e-]+,[\d.e-]+,(cat|dog),(true|false)$/);
    assert.match(rows[rows.length - 1]!, /^test\/unknown\/12\.jpg,,[\d.e-]+,[\d.e-]+,(cat|dog),$/);
    const correct = rows.slice(1, 25).filter((r) => r.endsWith(',true')).length;
    assert.equal(correct / 24, metrics.accuracy);

    const sub = (await read(ctx, 'submission.csv')).trim().split('\n');
    assert.equal(sub[0], 'id,label');
    assert.deepEqual(
      sub.slice(1).map((r) => Number(r.split(',')[0])),
      Array.from({ length: 12 }, (_, i) => i + 1),
    );
    for (const r of sub.slice(1)) {
      const p = Number(r.split(',')[1]);
      assert.ok(p >= 0.02 && p <= 0.98, r);
    }
    // label = P(dog) of the same image in predictions.csv, clipped
    const row10 = rows.find((r) => r.startsWith('test/unknown/10.jpg,'))!.split(',');
    assert.equal(Number(sub[10]!.split(',')[1]), Math.min(0.98, Math.max(0.02, Number(row10[3]))));

    const analysis = JSON.parse(await read(ctx, 'analysis.json')) as Analysis;
    assert.deepEqual(analysis.classes, ['cat', 'dog']);
    assert.equal(analysis.views.length, 6);
    for (const v of analysis.views) {
      assert.ok(v.items.length <= 4);
      for (const item of v.items) {
        assert.ok(item.file.startsWith('valid/'));
        assert.equal(typeof item.probs['dog'], 'number');
      }
    }
    assert.ok(analysis.views.find((v) => v.id === 'correct-cat')!.items.length > 0);
  } finally {
    await ctx.cleanup();
  }
});

test('evaluate on a machine without the cache recomputes the same predictions (ONNX engine where it loads)', async () => {
  const { ctx } = await evaluate(params({ on: 'valid', engine: 'auto' }));
  try {
    assert.equal(ctx.builds.get('features'), 1);
    assert.ok(!existsSync(path.join(ctx.outDir, 'submission.csv')));
    const metrics = JSON.parse(await read(ctx, 'metrics.json')) as Metrics;
    assert.equal(metrics.test_count, 0);
    assert.ok(Math.abs(metrics.log_loss - finetuneMetrics['val_loss']!) < 1e-4);
    // The trained head too runs on ONNX: its layers are shared with the full model, and the
    // converter follows the head's own graph (it once fell back to tfjs here, silently slow).
    assert.ok(
      ctx.logs.some((l) => /onnx: 'predictions' on cpu/.test(l)),
      ctx.logs.join('\n'),
    );
    assert.ok(!ctx.logs.some((l) => /onnx engine unavailable/.test(l)), ctx.logs.join('\n'));
  } finally {
    await ctx.cleanup();
  }
});

test('a failed gate is a verdict on a written evaluation, naming the metric, value and threshold (gate.json too)', async () => {
  const failed = await evaluate(params({ gate: { log_loss: 0.0001 } }), derivedRoot);
  try {
    assert.equal(failed.result.verdict?.passed, false);
    assert.match(failed.result.verdict?.message ?? '', /^gate failed: log_loss \d\.\d{4} is above the gate 0\.0001$/);
    assert.ok((await read(failed.ctx, 'metrics.json')).length > 0, 'the evaluation is written');
    const gate = JSON.parse(await read(failed.ctx, 'gate.json')) as { gate: unknown; passed: boolean; failures: string[] };
    assert.deepEqual(gate.gate, { log_loss: 0.0001 });
    assert.equal(gate.passed, false);
    assert.equal(gate.failures.length, 1);
  } finally {
    await failed.ctx.cleanup();
  }
  const passed = await evaluate(params({ gate: { accuracy: 0 }, on: 'valid' }), derivedRoot);
  assert.match(passed.result.verdict?.message ?? '', /^gate passed: accuracy \d\.\d{4} ≥ 0$/);
  assert.equal(passed.result.verdict?.passed, true);
  await passed.ctx.cleanup();
  const ungated = await evaluate(params({ on: 'valid' }), derivedRoot);
  assert.equal(ungated.result.verdict, undefined);
  await assert.rejects(read(ungated.ctx, 'gate.json'), /ENOENT/);
  await ungated.ctx.cleanup();
  await assert.rejects(evaluate(params({ gate: { accuracy: 0.5 }, on: 'test' }), derivedRoot), /gate needs labelled data/);
});

test('evaluate refuses a dataset whose classes differ from the model', async () => {
  const other = path.join(root, 'other');
  await cp(dataset.dir, other, { recursive: true });
  const split = JSON.parse(await readFile(path.join(other, 'split.json'), 'utf8')) as { classes: string[] };
  split.classes = ['dog', 'cat'];
  await writeFile(path.join(other, 'split.json'), JSON.stringify(split));
  await assert.rejects(
    evaluate(params(), derivedRoot, { model, dataset: artifactFromDir(other, 'dataset') }),
    /classes \[cat, dog\] differ from the dataset's \[dog, cat\]/,
  );
});

test('a model with nothing frozen is evaluated straight from the images', async () => {
  // A model artifact as finetune writes it for `trainable: all` (cut null), made directly.
  const { tf } = await selectBackend('wasm');
  const net = buildVgg(tf, { architecture: 'tiny-vgg', inputSize: [32, 32], classes: 2, seed: 8 });
  const dir = path.join(root, 'model-all');
  await saveModel(net, dir);
  await writeFile(path.join(dir, 'classes.json'), JSON.stringify(['cat', 'dog']));
  await writeFile(path.join(dir, 'preprocess.json'), JSON.stringify({ mode: 'caffe', size: [32, 32], fit: 'fill' }));
  await writeFile(path.join(dir, 'finetune.json'), JSON.stringify({ architecture: 'tiny-vgg', cut: null, trainable: 'all' }));
  const { ctx, result } = await evaluate(params({ on: 'valid' }), undefined, { model: artifactFromDir(dir, 'model'), dataset });
  try {
    assert.equal(ctx.builds.get('features'), undefined);
    assert.equal(result.meta!['cut'], null);
    const rows = (await read(ctx, 'predictions.csv')).trim().split('\n').slice(1);
    assert.equal(rows.length, 24);
    // The first row's P(dog) is the network's own output for that image.
    const [file, , , pDog] = rows[0]!.split(',');
    const x = new Float32Array(32 * 32 * 3);
    preprocessInto(await decodeImage(path.join(dataset.dir, file!), { size: [32, 32], fit: 'fill' }), x, 0, 'caffe');
    const expected = (net.predict(tf.tensor(x, [1, 32, 32, 3])) as ReturnType<typeof tf.tensor>).dataSync()[1]!;
    assert.ok(Math.abs(Number(pDog) - expected) < 1e-6, `${pDog} vs ${expected}`);
  } finally {
    net.dispose();
    await ctx.cleanup();
  }
});

test('evaluate on valid and test opens the trained head once, not once per set', async () => {
  const { ctx } = await evaluate(params({ on: 'both', engine: 'auto' }));
  try {
    const opened = ctx.logs.filter((l) => /onnx: 'predictions' on cpu/.test(l));
    assert.equal(opened.length, 1, ctx.logs.join('\n'));
    assert.ok(existsSync(path.join(ctx.outDir, 'submission.csv')));
  } finally {
    await ctx.cleanup();
  }
});
