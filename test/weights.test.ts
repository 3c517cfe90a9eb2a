import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { selectBackend, type Tf } from '../stages/vision/backend.js';
import { buildVgg } from '../stages/vision/vgg16.js';
import { attrStrings, copyWeights, loadKerasWeights, readKerasH5 } from '../stages/vision/weights.js';
import { loadModel, saveModel } from '../stages/vision/model-io.js';
import { writeTinyVggH5 } from './helpers/tiny-vgg.js';

let dir: string;
let tf: Tf;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-weights-'));
  tf = (await selectBackend('wasm')).tf;
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function assertClose(a: Float32Array, b: Float32Array, what: string) {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) assert.fail(`${what}[${i}]: ${a[i]} != ${b[i]}`);
}

for (const style of ['keras1', 'keras2'] as const) {
  for (const strings of ['fixed', 'vlen'] as const) {
    test(`loads a ${style}-style file with ${strings}-length names by layer name`, async () => {
      const file = path.join(dir, `w-${style}-${strings}.h5`);
      const made = await writeTinyVggH5(file, { style, strings, classes: 1000, seed: 3 });
      const model = buildVgg(tf, { architecture: 'tiny-vgg', inputSize: [32, 32], classes: 1000, seed: 9 });
      const report = await loadKerasWeights(tf, model, file);
      assert.equal(report.style, style);
      assert.deepEqual(
        report.loaded.sort(),
        [...made.weights.entries()]
          .filter(([, a]) => a.length > 0)
          .map(([n]) => n)
          .sort(),
      );
      for (const name of ['block1_conv1', 'block5_conv3', 'fc1', 'predictions']) {
        const layer = model.getLayer(name);
        const expected = made.weights.get(name)!;
        layer.getWeights().forEach((t, i) => assertClose(t.dataSync() as Float32Array, expected[i]!.data, `${name}[${i}]`));
      }
      model.dispose();
    });
  }
}

test('a whole-model file keeps its weights under model_weights/', async () => {
  const file = path.join(dir, 'whole.h5');
  const made = await writeTinyVggH5(file, { style: 'keras2', wholeModel: true, seed: 5 });
  const model = buildVgg(tf, { architecture: 'tiny-vgg', inputSize: [32, 32], classes: 1000 });
  await loadKerasWeights(tf, model, file);
  assertClose(model.getLayer('fc2').getWeights()[1]!.dataSync() as Float32Array, made.weights.get('fc2')![1]!.data, 'fc2 bias');
  model.dispose();
});

test('a new top is excluded; its shape may differ from the file', async () => {
  const file = path.join(dir, 'top.h5');
  await writeTinyVggH5(file, { classes: 1000 });
  const model = buildVgg(tf, { architecture: 'tiny-vgg', inputSize: [32, 32], classes: 2 });
  const before = model.getLayer('predictions').getWeights()[0]!.dataSync().slice();
  const report = await loadKerasWeights(tf, model, file, ['predictions']);
  assert.ok(!report.loaded.includes('predictions'));
  assert.ok(report.ignored.includes('predictions'));
  assertClose(model.getLayer('predictions').getWeights()[0]!.dataSync() as Float32Array, before as Float32Array, 'untouched top');
  model.dispose();
});

test('a shape mismatch names the layer and both shapes', async () => {
  const file = path.join(dir, 'bad.h5');
  await writeTinyVggH5(file, { kernelShape: { block3_conv2: [3, 3, 16, 8] } });
  const model = buildVgg(tf, { architecture: 'tiny-vgg', inputSize: [32, 32], classes: 1000 });
  await assert.rejects(loadKerasWeights(tf, model, file), (e: Error) => {
    assert.equal(e.name, 'WeightsError');
    assert.match(e.message, /layer 'block3_conv2'/);
    assert.match(e.message, /the file has \[3, 3, 16, 8\], the model expects \[3, 3, 16, 16\]/);
    return true;
  });
  // At another input size fc1's kernel differs: the message says so.
  const big = buildVgg(tf, { architecture: 'tiny-vgg', inputSize: [64, 64], classes: 1000 });
  await assert.rejects(loadKerasWeights(tf, big, path.join(dir, 'top.h5')), /layer 'fc1'.*\[32, 256\].*\[128, 256\]/);
  model.dispose();
  big.dispose();
});

test('a layer missing from the file is an error naming it; a missing file too', async () => {
  const file = path.join(dir, 'notop.h5');
  await writeTinyVggH5(file, { omit: ['fc1', 'fc2', 'predictions', 'flatten'] });
  const model = buildVgg(tf, { architecture: 'tiny-vgg', inputSize: [32, 32], classes: 2 });
  await assert.rejects(loadKerasWeights(tf, model, file, ['predictions']), /no weights for layers 'fc1', 'fc2'/);
  await assert.rejects(loadKerasWeights(tf, model, path.join(dir, 'nope.h5')), /weights file not found/);
  await writeFile(path.join(dir, 'junk.h5'), 'not hdf5');
  await assert.rejects(loadKerasWeights(tf, model, path.join(dir, 'junk.h5')), /not an HDF5 file/);
  model.dispose();
});

test('readKerasH5 visits every listed layer, empty ones included', async () => {
  const file = path.join(dir, 'visit.h5');
  await writeTinyVggH5(file, { strings: 'vlen' });
  const seen: [string, number][] = [];
  const { layers } = await readKerasH5(file, (name, w) => seen.push([name, w.length]));
  assert.equal(layers.length, seen.length);
  assert.deepEqual(
    seen.find(([n]) => n === 'block1_pool'),
    ['block1_pool', 0],
  );
  assert.deepEqual(
    seen.find(([n]) => n === 'fc1'),
    ['fc1', 2],
  );
});

test('attrStrings reads every string form', () => {
  assert.deepEqual(attrStrings(['a\0\0', 'bb ']), ['a', 'bb']);
  assert.deepEqual(attrStrings('one'), ['one']);
  assert.deepEqual(attrStrings(new Float64Array(0)), []);
  assert.deepEqual(attrStrings(new TextEncoder().encode('bytes\0')), ['bytes']);
  assert.deepEqual(attrStrings(null), []);
});

test('copyWeights copies a tfjs layers model by name; saveModel/loadModel round-trip', async () => {
  const src = buildVgg(tf, { architecture: 'tiny-vgg', inputSize: [32, 32], classes: 1000, seed: 11 });
  await saveModel(src, path.join(dir, 'tfjs'));
  const loaded = await loadModel(tf, path.join(dir, 'tfjs', 'model.json'));
  const dst = buildVgg(tf, { architecture: 'tiny-vgg', inputSize: [32, 32], classes: 2, seed: 12 });
  const report = copyWeights(tf, loaded, dst, 'model.json', ['predictions']);
  assert.equal(report.loaded.length, 15);
  assertClose(
    dst.getLayer('block2_conv1').getWeights()[0]!.dataSync() as Float32Array,
    src.getLayer('block2_conv1').getWeights()[0]!.dataSync() as Float32Array,
    'copied',
  );
  const x = tf.randomUniform([2, 32, 32, 3], -50, 50, 'float32', 1);
  const a = (src.predict(x) as ReturnType<typeof tf.tensor>).dataSync();
  const b = (loaded.predict(x) as ReturnType<typeof tf.tensor>).dataSync();
  assertClose(a as Float32Array, b as Float32Array, 'round-trip predictions');
  for (const m of [src, loaded, dst]) m.dispose();
});

test('weights: imagenet comes from the param, then PIPE_VGG16_WEIGHTS_URL, then Keras (md5 known only for Keras)', async () => {
  const { imagenetSource } = await import('../stages/finetune-vgg16.js');
  const saved = process.env['PIPE_VGG16_WEIGHTS_URL'];
  const savedMd5 = process.env['PIPE_VGG16_WEIGHTS_MD5'];
  try {
    delete process.env['PIPE_VGG16_WEIGHTS_URL'];
    delete process.env['PIPE_VGG16_WEIGHTS_MD5'];
    assert.deepEqual(imagenetSource({}), {
      url: 'https://storage.googleapis.com/tensorflow/keras-applications/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5',
      md5: '64373286793e3c8b2b4e3219cbf3544b',
    });
    process.env['PIPE_VGG16_WEIGHTS_URL'] = 'http://mirror.local/vgg16.h5';
    assert.deepEqual(imagenetSource({}), { url: 'http://mirror.local/vgg16.h5', md5: undefined });
    process.env['PIPE_VGG16_WEIGHTS_MD5'] = 'b'.repeat(32);
    assert.deepEqual(imagenetSource({}), { url: 'http://mirror.local/vgg16.h5', md5: 'b'.repeat(32) });
    assert.deepEqual(imagenetSource({ weights_url: 'http://other/w.h5', weights_md5: 'a'.repeat(32) }), { url: 'http://other/w.h5', md5: 'a'.repeat(32) });
  } finally {
    for (const [k, v] of [
      ['PIPE_VGG16_WEIGHTS_URL', saved],
      ['PIPE_VGG16_WEIGHTS_MD5', savedMd5],
    ] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});
