// `finetune` on any tf.layers backbone cut at a named layer, with a new pooled head: a
// darknet-shaped net on a few dozen generated images (wasm backend), and the real-photo
// transfer-learning check (darknet-tiny on oxford-pets-730) when ../shared exists.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { link, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Artifact } from '../runner/types.js';
import { finetuneStage, type FinetuneParams } from '../stages/finetune.js';
import { selectBackend } from '../stages/vision/backend.js';
import { saveModel } from '../stages/vision/model-io.js';
import { darknetBlocks } from './helpers/darknet.js';
import { artifactFromDir, makeTestContext, type TestContext } from './helpers/stage-context.js';
import { LEARNING_RUN } from './helpers/tiny-finetune.js';
import { writeSyntheticSplit } from './helpers/tiny-vgg.js';

let root: string;
let dataset: Artifact;

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'pipe-finetune-backbone-'));
  const dsDir = path.join(root, 'dataset');
  await writeSyntheticSplit(dsDir, { train: 32, valid: 16, test: 4, sample: { train: 6, valid: 3 } });
  dataset = artifactFromDir(dsDir, 'dataset', 'split');
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const readJson = async <T>(ctx: TestContext<unknown>, name: string) => JSON.parse(await readFile(path.join(ctx.outDir, name), 'utf8')) as T;

function finetuneParams(over: Partial<FinetuneParams> & Pick<FinetuneParams, 'backbone' | 'cut' | 'preprocess'>): FinetuneParams {
  return {
    fit: 'fill',
    pooling: 'avg',
    dropout: 0.2,
    ...LEARNING_RUN,
    seed: 3,
    ...over,
  };
}

test('finetune: any tfjs layers backbone, cut at a named layer, new pooled head', async (t) => {
  // A darknet-shaped backbone: conv (no bias) + batch norm + leaky relu + max pool.
  const { tf } = await selectBackend('wasm');
  const { input, output: x } = darknetBlocks(tf);
  const top = tf.layers.conv2d({ name: 'conv2d_top', filters: 10, kernelSize: 1 }).apply(x) as typeof x;
  const out = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(top) as typeof x;
  const backbone = tf.model({ inputs: input, outputs: out });
  const dir = path.join(root, 'backbone');
  await saveModel(backbone, dir);
  backbone.dispose();

  const params = finetuneParams({ backbone: 'backbone/model.json', cut: 'max_pooling2d_2', preprocess: 'unit' });
  const ctx = await makeTestContext(params, { inputs: { dataset }, pipelineDir: root });
  try {
    const result = (await finetuneStage.run(ctx)) ?? {};
    t.diagnostic(`val_accuracy ${result.metrics!['val_accuracy']}, val_loss ${result.metrics!['val_loss']}`);
    assert.ok(result.metrics!['val_accuracy']! >= 0.8, `val_accuracy ${result.metrics!['val_accuracy']}`);
    const ft = await readJson<Record<string, unknown>>(ctx, 'finetune.json');
    assert.equal(ft['cut'], 'max_pooling2d_2');
    assert.deepEqual(ft['head'], { pooling: 'avg', dropout: 0.2 });
    assert.deepEqual(await readJson(ctx, 'preprocess.json'), { mode: 'unit', size: [32, 32], fit: 'fill' });
    const topology = JSON.stringify((await readJson<{ modelTopology: unknown }>(ctx, 'model.json')).modelTopology);
    assert.match(topology, /finetune_predictions/);
    assert.doesNotMatch(topology, /conv2d_top/); // the backbone's old top is gone
    const key = await finetuneStage.keyExtra!(params, root);
    assert.ok(JSON.stringify(key).length > 64);
  } finally {
    await ctx.cleanup();
  }
  const missing = await makeTestContext(finetuneParams({ backbone: 'backbone/model.json', cut: 'nope', preprocess: 'unit' }), {
    inputs: { dataset },
    pipelineDir: root,
  });
  await assert.rejects(finetuneStage.run(missing), /has no layer 'nope'/);
  await missing.cleanup();
});

// Transfer learning on real photos: Tiny Darknet (ImageNet-trained) frozen up to its last
// leaky ReLU (7x7x128), a new head (global average pooling, dropout, Dense(2)), oxford-pets-730
// split 584/146. About 10 s on 2 cores with the ONNX engine (~50 s if it falls back to tfjs
// wasm), so it runs whenever ../shared is there, and skips with a message otherwise.
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SHARED = path.resolve(REPO, '../shared');
const PETS = path.join(SHARED, 'datasets/oxford-pets-730');
const DARKNET = path.join(SHARED, 'models/darknet-tiny/model.json');
const realSkip = !existsSync(PETS) || !existsSync(DARKNET) ? `${path.relative(REPO, SHARED)}/datasets/oxford-pets-730 or models/darknet-tiny is absent` : false;

/** oxford-pets-730 linked into a dataset folder with split.json, each photo where `side` puts it. */
async function petsDataset(dir: string, side: (cls: string, name: string, i: number) => 'train' | 'valid'): Promise<Record<string, string[]>> {
  const files: Record<string, string[]> = { train: [], valid: [], 'sample/train': [], 'sample/valid': [], test: [] };
  for (const cls of ['cat', 'dog']) {
    const names = (await readdir(path.join(PETS, cls))).filter((n) => /\.jpe?g$/i.test(n)).sort();
    for (const [i, name] of names.entries()) {
      const split = side(cls, name, i);
      const rel = `${split}/${cls}/${name}`;
      await mkdir(path.join(dir, split, cls), { recursive: true });
      await link(path.join(PETS, cls, name), path.join(dir, rel)).catch(async () => writeFile(path.join(dir, rel), await readFile(path.join(PETS, cls, name))));
      files[split]!.push(rel);
    }
  }
  await writeFile(path.join(dir, 'split.json'), JSON.stringify({ version: 1, classes: ['cat', 'dog'], seed: 0, counts: {}, files, excluded: [] }));
  return files;
}

const darknetParams = (over: Partial<FinetuneParams> = {}): FinetuneParams =>
  finetuneParams({
    backbone: DARKNET,
    cut: 'leaky_re_lu_15',
    preprocess: 'unit',
    engine: 'auto',
    backend: 'auto',
    epochs: 8,
    batch_size: 32,
    learning_rate: 0.003,
    ...over,
  });

test('finetune: darknet-tiny transfers to real cat/dog photos', { skip: realSkip, timeout: 600_000 }, async (t) => {
  const dir = path.join(root, 'pets');
  // Every 5th image goes to valid: 584 train / 146 valid.
  const files = await petsDataset(dir, (_cls, _name, i) => (i % 5 === 2 ? 'valid' : 'train'));
  const params = darknetParams();
  const ctx = await makeTestContext(params, { inputs: { dataset: artifactFromDir(dir, 'dataset', 'split') } });
  try {
    const result = (await finetuneStage.run(ctx)) ?? {};
    const acc = result.metrics!['val_accuracy']!;
    t.diagnostic(
      `darknet-tiny on oxford-pets-730: ${files['train']!.length} train / ${files['valid']!.length} valid, val_accuracy ${acc.toFixed(4)}, val_loss ${result.metrics!['val_loss']!.toFixed(4)}, backend ${String(result.meta!['backend'])}, engine ${String(result.meta!['engine'])}, timings ${JSON.stringify(result.meta!['timings'])}`,
    );
    assert.ok(acc >= 0.85, `val_accuracy ${acc}`);
  } finally {
    await ctx.cleanup();
  }
});

// pets.yaml's own breed split (its seed 42 puts these 5 breeds, 149 photos, in valid) at the
// stage's default seed. With a random (Glorot) start of the new head this seed ended at 0.85
// validation accuracy (its first batch's loss was 2.0 against ln 2 = 0.69 for a neutral head),
// other seeds at 0.94-0.98; the head starts at zero now, and every seed tried gets 0.99-1.00.
test("finetune: the new head's start does not decide the run (pets' breed split, the default seed)", { skip: realSkip, timeout: 600_000 }, async (t) => {
  const dir = path.join(root, 'pets-breeds');
  const held = new Set(['Egyptian_Mau', 'Russian_Blue', 'german_shorthaired', 'miniature_pinscher', 'pomeranian']);
  const files = await petsDataset(dir, (_cls, name) => (held.has(name.replace(/_\d+\.jpg$/, '')) ? 'valid' : 'train'));
  assert.equal(files['valid']!.length, 149);
  const ctx = await makeTestContext(darknetParams({ seed: 42, keep: 'last' }), { inputs: { dataset: artifactFromDir(dir, 'dataset', 'split') } });
  try {
    const result = (await finetuneStage.run(ctx)) ?? {};
    const acc = result.metrics!['val_accuracy']!;
    t.diagnostic(`pets, 5 breeds never trained on, seed 42, last epoch: val_accuracy ${acc.toFixed(4)}, val_loss ${result.metrics!['val_loss']!.toFixed(4)}`);
    assert.ok(acc >= 0.95, `val_accuracy ${acc} on breeds never trained on`);
  } finally {
    await ctx.cleanup();
  }
});
