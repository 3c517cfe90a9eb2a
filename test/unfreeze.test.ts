// Unfreezing with discriminative learning rates (vision/unfreeze.ts): `unfreeze` trains the named
// layer and those after it only (the weights below stay bit for bit), `lr_mult` gives each group
// of trained layers its own step size, on ONNX Runtime and on tfjs; the generic finetune stage
// falls back to tfjs naming the layer ONNX cannot train.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import { StageError, type Artifact } from '../runner/types.js';
import { finetuneVgg16Stage } from '../stages/finetune-vgg16.js';
import { finetuneStage, type FinetuneParams } from '../stages/finetune.js';
import { selectBackend } from '../stages/vision/backend.js';
import { loadModel, saveModel } from '../stages/vision/model-io.js';
import { buildVgg } from '../stages/vision/vgg16.js';
import { describeMultipliers, layerMultipliers, unfreezeCut } from '../stages/vision/unfreeze.js';
import { darknetBlocks } from './helpers/darknet.js';
import { artifactFromDir, makeTestContext } from './helpers/stage-context.js';
import { tinyFinetuneParams } from './helpers/tiny-finetune.js';
import { writeSyntheticSplit } from './helpers/tiny-vgg.js';

let root: string;
let dataset: Artifact;

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'pipe-unfreeze-'));
  const dsDir = path.join(root, 'dataset');
  await writeSyntheticSplit(dsDir, { train: 12, valid: 4, size: [32, 32] });
  dataset = artifactFromDir(dsDir, 'dataset', 'split');
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

test('layerMultipliers: consecutive groups, the last layer always in the last group', () => {
  const six = ['b5c1', 'b5c2', 'b5c3', 'fc1', 'fc2', 'pred'];
  assert.deepEqual([...layerMultipliers(six, [0.01, 0.1, 1]).values()], [0.01, 0.01, 0.1, 0.1, 1, 1]);
  assert.deepEqual([...layerMultipliers(['pred'], [0.01, 0.1, 1]).values()], [1]);
  assert.deepEqual([...layerMultipliers(['a', 'b'], [0.1, 1]).values()], [0.1, 1]);
  assert.equal(describeMultipliers(layerMultipliers(six, [0.01, 0.1, 1])), 'b5c1..b5c2 x0.01, b5c3..fc1 x0.1, fc2..pred x1');
});

test('unfreezeCut: the layer feeding the named one; all and the first layer freeze nothing; an unknown name lists the layers', async () => {
  const { tf } = await selectBackend('wasm');
  const vgg = buildVgg(tf, { architecture: 'tiny-vgg', inputSize: [32, 32], classes: 2 });
  try {
    assert.equal(unfreezeCut(vgg, 'block5_conv1'), 'block4_pool');
    assert.equal(unfreezeCut(vgg, 'fc1'), 'flatten');
    assert.equal(unfreezeCut(vgg, 'all'), null);
    assert.equal(unfreezeCut(vgg, 'block1_conv1'), null);
    assert.throws(
      () => unfreezeCut(vgg, 'block9'),
      (e: Error) => e instanceof StageError && /no layer 'block9'/.test(e.message) && /block5_conv3/.test((e as StageError).hint ?? ''),
    );
  } finally {
    vgg.dispose();
  }
});

/** Per layer name, its weights flattened. */
function layerWeights(model: TF.LayersModel): Map<string, Float32Array[]> {
  return new Map(model.layers.map((l) => [l.name, l.getWeights().map((w) => w.dataSync() as Float32Array)]));
}

function maxAbsDiff(a: Float32Array[], b: Float32Array[]): number {
  let m = 0;
  a.forEach((x, i) => x.forEach((v, j) => (m = Math.max(m, Math.abs(v - b[i]![j]!)))));
  return m;
}

for (const engine of ['onnx', 'tfjs'] as const) {
  test(`finetune-vgg16 unfreeze: block5_conv2 with lr_mult [0.001, 1] (${engine}): layers below unchanged, each group steps at its own rate`, async () => {
    // One Adam step (the batch holds every image): each weight moves by about lr x mult x sign(gradient).
    const lr = 0.01;
    const params = tinyFinetuneParams({ epochs: 1, batch_size: 64, learning_rate: lr, engine, unfreeze: 'block5_conv2', lr_mult: [0.001, 1] });
    const ctx = await makeTestContext(params, { inputs: { dataset } });
    const { tf } = await selectBackend('wasm');
    const initial = buildVgg(tf, { architecture: 'tiny-vgg', inputSize: [32, 32], classes: 2, seed: params.seed });
    try {
      const result = await finetuneVgg16Stage.run(ctx);
      assert.equal((result!.meta!['train_engine'] as Record<string, unknown>)['engine'], engine);
      assert.ok(ctx.logs.includes(`learning rates: block5_conv2..block5_conv3 x0.001, fc1..predictions x1 (times learning_rate ${lr})`), ctx.logs.join('\n'));
      const ft = JSON.parse(await readFile(path.join(ctx.outDir, 'finetune.json'), 'utf8')) as Record<string, unknown>;
      assert.equal(ft['cut'], 'block5_conv1');
      assert.equal(ft['trainable'], 'from block5_conv2');
      assert.deepEqual(ft['lr_mult'], { block5_conv2: 0.001, block5_conv3: 0.001, fc1: 1, fc2: 1, predictions: 1 });
      const trained = await loadModel(tf, path.join(ctx.outDir, 'model.json'));
      const before = layerWeights(initial);
      const after = layerWeights(trained);
      trained.dispose();
      for (const frozen of ['block1_conv1', 'block4_conv3', 'block5_conv1'])
        assert.equal(maxAbsDiff(after.get(frozen)!, before.get(frozen)!), 0, `${frozen} is frozen`);
      const slow = maxAbsDiff(after.get('block5_conv2')!, before.get('block5_conv2')!);
      const fast = maxAbsDiff(after.get('fc1')!, before.get('fc1')!);
      assert.ok(slow > 0.9 * lr * 0.001 && slow < 1.01 * lr * 0.001, `block5_conv2 moved by up to ${slow}, expected ~${lr * 0.001}`);
      assert.ok(fast > 0.9 * lr && fast < 1.01 * lr, `fc1 moved by up to ${fast}, expected ~${lr}`);
    } finally {
      initial.dispose();
      await ctx.cleanup();
    }
  });
}

test('finetune unfreeze: a backbone layer ONNX cannot train falls back to tfjs naming it; the layers below stay unchanged', async () => {
  const { tf } = await selectBackend('cpu');
  const { input, output: x } = darknetBlocks(tf);
  const backbone = tf.model({ inputs: input, outputs: x });
  await saveModel(backbone, path.join(root, 'backbone'));
  const before = layerWeights(backbone);
  backbone.dispose();
  const params: FinetuneParams = {
    ...tinyFinetuneParams({ epochs: 1, backend: 'cpu', engine: 'auto', unfreeze: 'conv2d_2', lr_mult: [0.1, 1] }),
    backbone: 'backbone/model.json',
    cut: 'max_pooling2d_2',
    preprocess: 'unit',
    pooling: 'avg',
    dropout: 0,
  };
  const ctx = await makeTestContext(params, { inputs: { dataset }, pipelineDir: root });
  try {
    const result = await finetuneStage.run(ctx);
    assert.equal((result!.meta!['train_engine'] as Record<string, unknown>)['engine'], 'tfjs');
    assert.ok(
      ctx.logs.some((l) => /training on onnx is not possible \(.*layer 'batch_normalization_2'.*\); training with tfjs/.test(l)),
      ctx.logs.join('\n'),
    );
    assert.ok(
      ctx.logs.includes('learning rates: conv2d_2 x0.1, batch_normalization_2..finetune_predictions x1 (times learning_rate 0.01)'),
      ctx.logs.join('\n'),
    );
    const trained = await loadModel(tf, path.join(ctx.outDir, 'model.json'));
    const after = layerWeights(trained);
    trained.dispose();
    for (const frozen of ['conv2d_1', 'batch_normalization_1']) assert.equal(maxAbsDiff(after.get(frozen)!, before.get(frozen)!), 0, `${frozen} is frozen`);
    assert.ok(maxAbsDiff(after.get('conv2d_2')!, before.get('conv2d_2')!) > 0, 'conv2d_2 trained');
  } finally {
    await ctx.cleanup();
  }
});

for (const engine of ['onnx', 'tfjs'] as const) {
  test(`finetune-vgg16 with lr_mult (${engine}): an interrupted run resumes to the bytes of a straight one (each group's optimizer state checkpointed)`, async () => {
    const params = tinyFinetuneParams({ epochs: 3, engine, unfreeze: 'block5_conv3', lr_mult: [0.1, 1] });
    const workDir = path.join(root, `work-resume-${engine}`);
    const controller = new AbortController();
    const ctx1 = await makeTestContext(params, { inputs: { dataset }, workDir, signal: controller.signal });
    const aborting = { ...ctx1, log: { ...ctx1.log, info: (m: string) => (ctx1.log.info(m), /^epoch 1\/3:/.test(m) && controller.abort()) } };
    await assert.rejects(finetuneVgg16Stage.run(aborting));
    const resumed = await makeTestContext(params, { inputs: { dataset }, workDir });
    const straight = await makeTestContext(params, { inputs: { dataset } });
    try {
      await finetuneVgg16Stage.run(resumed);
      await finetuneVgg16Stage.run(straight);
      assert.ok(
        resumed.logs.some((l) => l.includes('resuming from the checkpoint of epoch 1/3')),
        resumed.logs.join('\n'),
      );
      const files = await readdir(straight.outDir);
      assert.ok(files.includes('history.json') && files.some((f) => f.endsWith('.bin')), files.join());
      for (const f of files) assert.ok((await readFile(path.join(resumed.outDir, f))).equals(await readFile(path.join(straight.outDir, f))), f);
    } finally {
      await ctx1.cleanup();
      await resumed.cleanup();
      await straight.cleanup();
    }
  });
}
