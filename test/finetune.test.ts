// finetune-vgg16 and finetune on a tiny VGG-shaped net and a few dozen generated images (wasm
// backend): weights served from a local HTTP server, the frozen-output cache reused across runs,
// resume after an interrupted epoch. `finetune` on other backbones: finetune-backbone.test.ts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { StageError, type Artifact } from '../runner/types.js';
import { finetuneVgg16Stage, type FinetuneVgg16Params } from '../stages/finetune-vgg16.js';
import { selectBackend } from '../stages/vision/backend.js';
import type { History } from '../stages/vision/train.js';
import type { FrozenEngine } from '../stages/vision/frozen.js';
import { artifactFromDir, makeTestContext, type TestContext, type TestContextOptions } from './helpers/stage-context.js';
import { LEARNING_RUN } from './helpers/tiny-finetune.js';
import { writeSyntheticSplit, writeTinyVggH5 } from './helpers/tiny-vgg.js';

let root: string;
let dataset: Artifact;
let server: Server;
let weightsUrl: string;
let weightsMd5: string;
let requests = 0;

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'pipe-finetune-'));
  const dsDir = path.join(root, 'dataset');
  await writeSyntheticSplit(dsDir, { train: 32, valid: 16, test: 4, sample: { train: 6, valid: 3 } });
  dataset = artifactFromDir(dsDir, 'dataset', 'split');
  const h5 = path.join(root, 'tiny.h5');
  await writeTinyVggH5(h5, { inputSize: 32, classes: 1000, seed: 5 });
  const bytes = await readFile(h5);
  weightsMd5 = createHash('md5').update(bytes).digest('hex');
  server = createServer((req, res) => {
    requests++;
    res.writeHead(200, { 'content-length': bytes.length });
    res.end(bytes);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  weightsUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/vgg16_tiny.h5`;
});
after(async () => {
  server.close();
  await rm(root, { recursive: true, force: true });
});

function vggParams(over: Partial<FinetuneVgg16Params> = {}): FinetuneVgg16Params {
  return {
    weights: 'imagenet',
    weights_url: weightsUrl,
    weights_md5: weightsMd5,
    architecture: 'tiny-vgg',
    input_size: 32,
    trainable: 'predictions',
    fit: 'fill',
    ...LEARNING_RUN,
    seed: 1,
    ...over,
  };
}

async function runVgg(params: FinetuneVgg16Params, options: TestContextOptions = {}) {
  const ctx = await makeTestContext(params, { inputs: { dataset }, ...options });
  const result = await finetuneVgg16Stage.run(ctx);
  return { ctx, result: result ?? {} };
}

const readJson = async <T>(ctx: TestContext<unknown>, name: string) => JSON.parse(await readFile(path.join(ctx.outDir, name), 'utf8')) as T;

test('finetune-vgg16: downloads the weights once, trains the new top well above chance, writes the model artifact', async (t) => {
  const derivedRoot = path.join(root, 'derived-a');
  await mkdir(derivedRoot);
  const { ctx, result } = await runVgg(vggParams(), { derivedRoot });
  try {
    t.diagnostic(`val_accuracy ${result.metrics!['val_accuracy']}, val_loss ${result.metrics!['val_loss']}`);
    // Well above chance: at least 24 of the 32 validation images (p < 0.004 by chance).
    assert.ok(result.metrics!['val_accuracy']! >= 0.75, `val_accuracy ${result.metrics!['val_accuracy']}`);
    assert.equal(ctx.builds.get('weights'), 1);
    assert.equal(ctx.builds.get('features'), 2); // train + valid
    assert.equal(requests, 1);
    const out = await readdir(ctx.outDir);
    for (const f of ['model.json', 'classes.json', 'history.json', 'preprocess.json', 'finetune.json']) assert.ok(out.includes(f), f);
    assert.ok(out.some((f) => f.endsWith('.bin')));
    assert.deepEqual(await readJson(ctx, 'classes.json'), ['cat', 'dog']);
    assert.deepEqual(await readJson(ctx, 'preprocess.json'), { mode: 'caffe', size: [32, 32], fit: 'fill' });
    const ft = await readJson<Record<string, unknown>>(ctx, 'finetune.json');
    assert.equal(ft['architecture'], 'tiny-vgg');
    assert.equal(ft['cut'], 'fc2');
    assert.equal(ft['trainable'], 'predictions');
    // What computed the model is in meta.json only: finetune.json, like every file of the artifact, is the same on any engine.
    for (const k of ['backend', 'engine', 'train_engine']) assert.equal(ft[k], undefined, k);
    assert.match(String(ft['weights']), /^imagenet \(http:\/\/127\.0\.0\.1/);
    const history = await readJson<History>(ctx, 'history.json');
    assert.deepEqual(
      history.epochs.map((e) => e.epoch),
      [1, 2, 3, 4, 5, 6, 7, 8],
    );
    for (const e of history.epochs) for (const k of ['loss', 'accuracy', 'val_loss', 'val_accuracy'] as const) assert.equal(typeof e[k], 'number', k);
    for (const e of history.epochs)
      assert.deepEqual(Object.keys(e).sort(), ['accuracy', 'epoch', 'loss', 'val_accuracy', 'val_loss'], 'no timings in history.json');
    const timings = (result.meta!['timings'] as { epochs: { epoch: number; seconds: number }[] }).epochs;
    assert.deepEqual(
      timings.map((t) => t.epoch),
      [1, 2, 3, 4, 5, 6, 7, 8],
    );
    for (const t of timings) assert.equal(typeof t.seconds, 'number');
    assert.equal(result.meta!['backend'], 'wasm');
    assert.equal(result.meta!['engine'], 'tfjs');
    // The model.json is self-contained: only the top trained; block1 equals the file's weights.
    const topology = JSON.stringify((await readJson<{ modelTopology: unknown }>(ctx, 'model.json')).modelTopology);
    assert.match(topology, /"name":"predictions"/);

    // Another learning rate and optimizer: features and weights come from the cache.
    const second = await runVgg(vggParams({ learning_rate: 0.003, optimizer: 'sgd' }), { derivedRoot });
    try {
      assert.equal(second.ctx.builds.get('features'), undefined);
      assert.equal(second.ctx.builds.get('weights'), undefined);
      assert.equal(requests, 1);
      assert.ok(
        second.ctx.logs.some((l) => /frozen outputs: train: 64 images from the cache/.test(l)),
        second.ctx.logs.join('\n'),
      );
      assert.ok(second.result.metrics!['val_accuracy']! > 0.6);
    } finally {
      await second.ctx.cleanup();
    }
  } finally {
    await ctx.cleanup();
  }
});

for (const engine of ['tfjs', 'onnx'] as const) {
  test(`finetune-vgg16: an interrupted run resumes from the last finished epoch (${engine} learner)`, async () => {
    const derivedRoot = path.join(root, `derived-b-${engine}`);
    await mkdir(derivedRoot);
    const workDir = path.join(root, `work-b-${engine}`);
    await mkdir(workDir);
    const params = vggParams({ epochs: 3, weights: 'none', engine });
    const controller = new AbortController();
    const ctx1 = await makeTestContext(params, { inputs: { dataset }, derivedRoot, workDir, signal: controller.signal });
    const aborting = { ...ctx1, log: { ...ctx1.log, info: (m: string) => (ctx1.log.info(m), /^epoch 1\/3:/.test(m) && controller.abort()) } };
    await assert.rejects(finetuneVgg16Stage.run(aborting), (e: Error) => e.name === 'AbortError' || /interrupt|abort/i.test(e.message));
    assert.ok(ctx1.logs.some((l) => /^epoch 1\/3:/.test(l)));
    assert.ok(!ctx1.logs.some((l) => /^epoch 2\/3:/.test(l)));
    assert.ok(existsSync(path.join(workDir, 'checkpoint', 'state.json')));

    const resumed = await runVgg(params, { derivedRoot, workDir });
    const fresh = await runVgg(params, { derivedRoot });
    try {
      assert.ok(
        resumed.ctx.logs.some((l) => l.includes('resuming from the checkpoint of epoch 1/3')),
        resumed.ctx.logs.join('\n'),
      );
      assert.equal(resumed.result.meta!['resumed_from_epoch'], 1);
      assert.equal((resumed.result.meta!['train_engine'] as Record<string, unknown>)['engine'], engine);
      const h1 = await readJson<History>(resumed.ctx, 'history.json');
      const h2 = await readJson<History>(fresh.ctx, 'history.json');
      assert.equal(h1.epochs.length, 3);
      // Same seed, same shuffles, optimizer state restored: the resumed run matches an uninterrupted one.
      h1.epochs.forEach((e, i) => {
        assert.ok(Math.abs(e.loss - h2.epochs[i]!.loss) < 1e-4, `epoch ${i + 1} loss ${e.loss} vs ${h2.epochs[i]!.loss}`);
        assert.ok(Math.abs(e.val_loss! - h2.epochs[i]!.val_loss!) < 1e-4, `epoch ${i + 1} val_loss`);
      });
      // The artifact is deterministic: every file of the resumed run is byte for byte the uninterrupted run's.
      const files = (await readdir(fresh.ctx.outDir)).sort();
      assert.deepEqual((await readdir(resumed.ctx.outDir)).sort(), files);
      const differ: string[] = [];
      for (const f of files) if (!(await readFile(path.join(resumed.ctx.outDir, f))).equals(await readFile(path.join(fresh.ctx.outDir, f)))) differ.push(f);
      assert.deepEqual(differ, [], 'files that differ between the resumed and the uninterrupted run');
    } finally {
      await resumed.ctx.cleanup();
      await fresh.ctx.cleanup();
      await ctx1.cleanup();
    }
  });
}

test('finetune-vgg16: trainable block5 trains on ONNX Runtime as tfjs does (same first epoch), well above chance', async (t) => {
  const derivedRoot = path.join(root, 'derived-block5');
  await mkdir(derivedRoot);
  const params = (engine: 'onnx' | 'tfjs') => vggParams({ trainable: 'block5', engine, epochs: 6, learning_rate: 0.001 });
  const onnx = await runVgg(params('onnx'), { derivedRoot });
  const tfjs = await runVgg(params('tfjs'), { derivedRoot });
  try {
    const te = onnx.result.meta!['train_engine'] as Record<string, unknown>;
    assert.equal(te['engine'], 'onnx');
    assert.deepEqual(te['layers'], ['block5_conv1', 'block5_conv2', 'block5_conv3', 'fc1', 'fc2', 'predictions']);
    assert.equal((tfjs.result.meta!['train_engine'] as Record<string, unknown>)['engine'], 'tfjs');
    assert.equal((await readJson<Record<string, unknown>>(onnx.ctx, 'finetune.json'))['cut'], 'block4_pool');
    const h1 = await readJson<History>(onnx.ctx, 'history.json');
    const h2 = await readJson<History>(tfjs.ctx, 'history.json');
    const secs = (r: typeof onnx) => (r.result.meta!['timings'] as { epochs: { seconds: number }[] }).epochs.map((e) => e.seconds.toFixed(2)).join(' ');
    t.diagnostic(
      `block5, 6 epochs: onnx val_accuracy ${h1.epochs.at(-1)!.val_accuracy} (${secs(onnx)} s/epoch), tfjs ${h2.epochs.at(-1)!.val_accuracy} (${secs(tfjs)} s/epoch)`,
    );
    // Same initial weights, shuffles and optimizer: the first epoch's mean loss agrees closely.
    assert.ok(Math.abs(h1.epochs[0]!.loss - h2.epochs[0]!.loss) < 2e-3, `epoch 1 loss onnx ${h1.epochs[0]!.loss} vs tfjs ${h2.epochs[0]!.loss}`);
    assert.ok(onnx.result.metrics!['val_accuracy']! >= 0.75, `onnx val_accuracy ${onnx.result.metrics!['val_accuracy']}`);
    // The weights trained on ONNX reached the saved model: block5 moved away from its start (the
    // frozen block5 of a `predictions` run) about as far as tfjs moved it.
    const frozen = await runVgg(vggParams({ epochs: 1 }), { derivedRoot });
    try {
      const { tf } = await selectBackend('wasm');
      const { loadModel } = await import('../stages/vision/model-io.js');
      const kernel = async (dir: string) => {
        const m = await loadModel(tf, path.join(dir, 'model.json'));
        const w = m.getLayer('block5_conv1').getWeights()[0]!.dataSync() as Float32Array;
        m.dispose();
        return w;
      };
      const [start, a, b] = [await kernel(frozen.ctx.outDir), await kernel(onnx.ctx.outDir), await kernel(tfjs.ctx.outDir)];
      const dist = (x: Float32Array, y: Float32Array) => Math.sqrt(x.reduce((acc, v, i) => acc + (v - y[i]!) ** 2, 0));
      const moved = dist(a, start);
      const movedTfjs = dist(b, start);
      t.diagnostic(`block5_conv1 moved ${moved.toFixed(4)} on onnx, ${movedTfjs.toFixed(4)} on tfjs; onnx vs tfjs ${dist(a, b).toFixed(4)}`);
      assert.ok(moved > 0.1 * movedTfjs && moved < 10 * movedTfjs, `moved ${moved} vs ${movedTfjs}`);
    } finally {
      await frozen.ctx.cleanup();
    }
  } finally {
    await onnx.ctx.cleanup();
    await tfjs.ctx.cleanup();
  }
});

test('finetune-vgg16: trainable dense on the sample, ONNX engine where it loads; bad weights name the layer', async () => {
  const { ctx, result } = await runVgg(vggParams({ trainable: 'dense', use_sample: true, engine: 'auto', epochs: 1, validate_every_epoch: false }));
  try {
    const ft = await readJson<Record<string, unknown>>(ctx, 'finetune.json');
    assert.equal(ft['cut'], 'block5_pool');
    assert.ok(['onnx', 'tfjs'].includes(String(result.meta!['engine'])));
    const history = await readJson<History>(ctx, 'history.json');
    assert.equal(history.epochs.length, 1);
    assert.equal((ft['input'] as Record<string, unknown>)['train_count'], 12);
  } finally {
    await ctx.cleanup();
  }
  const bad = path.join(root, 'bad.h5');
  await writeTinyVggH5(bad, { inputSize: 64 }); // fc1 is [128, 256] there, [32, 256] at 32x32
  await assert.rejects(runVgg(vggParams({ weights: bad })), (e: Error) => {
    assert.ok(e instanceof StageError, String(e));
    assert.match(e.message, /layer 'fc1'.*\[128, 256\].*\[32, 256\]/);
    return true;
  });
});

test('finetune-vgg16: trainable all trains from the images (cpu backend)', async () => {
  const { ctx, result } = await runVgg(vggParams({ trainable: 'all', weights: 'none', backend: 'cpu', use_sample: true, epochs: 1 }));
  try {
    assert.equal((await readJson<Record<string, unknown>>(ctx, 'finetune.json'))['cut'], null);
    assert.equal(ctx.builds.get('features'), undefined);
    assert.equal(typeof result.metrics!['val_accuracy'], 'number');
  } finally {
    await ctx.cleanup();
    await selectBackend('wasm');
  }
});

test('frozen outputs: streamed to disk, and an interrupted computation resumes where it stopped', async () => {
  const { cachedFeatures, FeatureReader } = await import('../stages/vision/features.js');
  const files = [...(JSON.parse(await readFile(path.join(dataset.dir, 'split.json'), 'utf8')) as { files: { train: string[] } }).files.train];
  let images = 0;
  // A stand-in engine: per image, its mean pixel and two constants.
  const engine = async (): Promise<FrozenEngine> => ({
    name: 'tfjs',
    detail: {},
    inputShape: [8, 8, 3],
    outputShape: [3],
    async run(batch, count) {
      images += count;
      const out = new Float32Array(count * 3);
      for (let i = 0; i < count; i++) {
        let sum = 0;
        for (let k = 0; k < 192; k++) sum += batch[i * 192 + k]!;
        out.set([sum / 192, 1, 2], i * 3);
      }
      return out;
    },
    async dispose() {},
  });
  const controller = new AbortController();
  const ctx = await makeTestContext({});
  const resumeDir = path.join(ctx.workDir, 'features');
  const request = (signal: AbortSignal, progress = ctx.progress) => ({
    derived: ctx.derived.bind(ctx),
    frozen: 'f',
    cut: 'c',
    architecture: 'a',
    datasetHash: dataset.contentHash,
    datasetDir: dataset.dir,
    split: 'train',
    files,
    preprocess: { mode: 'unit' as const, size: [8, 8] as [number, number], fit: 'fill' as const },
    engine,
    batchSize: 8,
    progress,
    log: (m: string) => ctx.logs.push(m),
    signal,
    resumeDir,
  });
  try {
    const stopping = (label: string) => ({ ...ctx.progress(label), update: (done: number) => void (done >= 24 && controller.abort()) });
    await assert.rejects(cachedFeatures(request(controller.signal, stopping)));
    const partial = images;
    assert.ok(partial >= 24 && partial < 64, `${partial} images before the abort`);
    const bars: [string, number | undefined, number | undefined][] = [];
    const spy = (label: string, total?: number, resumedAt?: number) => (bars.push([label, total, resumedAt]), ctx.progress(label));
    const resumed = await cachedFeatures(request(new AbortController().signal, spy));
    assert.ok(
      ctx.logs.some((l) => l.startsWith(`frozen outputs: train: resuming after ${partial} of 64 images`)),
      ctx.logs.join('\n'),
    );
    assert.deepEqual(bars, [['frozen outputs: train', 64, partial]], 'the bar starts where the resume does, for its ETA');
    assert.equal(images, 64); // the rest only
    assert.equal(ctx.builds.get('features'), 1);
    assert.deepEqual(await readdir(resumeDir), []); // moved into the derived entry
    // Same rows as one uninterrupted pass.
    const other = await makeTestContext({});
    const fresh = await cachedFeatures({ ...request(new AbortController().signal), derived: other.derived.bind(other), resumeDir: undefined });
    const a = await FeatureReader.open(resumed);
    const b = await FeatureReader.open(fresh);
    const all = Array.from({ length: 64 }, (_, i) => i);
    assert.deepEqual(await a.rows(all), await b.rows(all));
    // Disk reads (above the in-memory limit) give the same rows, in any order.
    const onDisk = await FeatureReader.open(resumed, 0);
    const order = [5, 4, 63, 0, 1, 2, 40];
    const expected = await a.rows(order);
    assert.deepEqual(await onDisk.rows(order), expected);
    for (const r of [a, b, onDisk]) await r.close();
    assert.equal(resumed.index.count, 64);
    await other.cleanup();
  } finally {
    await ctx.cleanup();
  }
});
