import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selectBackend } from '../stages/vision/backend.js';
import { buildVgg, parameterCount, vggCutLayer, vggLayerSpecs } from '../stages/vision/vgg16.js';
import { createTfjsEngine, cutOutputShape } from '../stages/vision/tfjs-engine.js';
import { headModel } from '../stages/vision/train.js';

const KERAS_NAMES = [
  'input_1',
  'block1_conv1',
  'block1_conv2',
  'block1_pool',
  'block2_conv1',
  'block2_conv2',
  'block2_pool',
  'block3_conv1',
  'block3_conv2',
  'block3_conv3',
  'block3_pool',
  'block4_conv1',
  'block4_conv2',
  'block4_conv3',
  'block4_pool',
  'block5_conv1',
  'block5_conv2',
  'block5_conv3',
  'block5_pool',
  'flatten',
  'fc1',
  'fc2',
  'predictions',
];

test("VGG16's layers, shapes and parameter counts are Keras'", () => {
  const specs = vggLayerSpecs({ architecture: 'vgg16', inputSize: [224, 224], classes: 1000 });
  assert.deepEqual(
    specs.map((s) => s.name),
    KERAS_NAMES,
  );
  assert.equal(parameterCount(specs), 138_357_544);
  assert.equal(parameterCount(specs, false), 14_714_688);
  const by = new Map(specs.map((s) => [s.name, s]));
  assert.deepEqual(by.get('block1_conv1')!.weightShapes, [[3, 3, 3, 64], [64]]);
  assert.deepEqual(by.get('block5_conv3')!.weightShapes, [[3, 3, 512, 512], [512]]);
  assert.deepEqual(by.get('block4_pool')!.outputShape, [14, 14, 512]);
  assert.deepEqual(by.get('block5_pool')!.outputShape, [7, 7, 512]);
  assert.deepEqual(by.get('fc1')!.weightShapes, [[25088, 4096], [4096]]);
  assert.deepEqual(by.get('fc2')!.weightShapes, [[4096, 4096], [4096]]);
  assert.deepEqual(by.get('predictions')!.weightShapes, [[4096, 1000], [1000]]);
  assert.throws(() => vggLayerSpecs({ architecture: 'vgg16', inputSize: [16, 224], classes: 2 }), /at least 32x32/);
});

test('trainable names map to the last frozen layer', () => {
  assert.equal(vggCutLayer('predictions'), 'fc2');
  assert.equal(vggCutLayer('dense'), 'block5_pool');
  assert.equal(vggCutLayer('block5'), 'block4_pool');
  assert.equal(vggCutLayer('all'), null);
});

test("tiny-vgg builds with the spec's names and shapes; seeded init is reproducible", async () => {
  const { tf } = await selectBackend('wasm');
  const options = { architecture: 'tiny-vgg' as const, inputSize: [64, 48] as [number, number], classes: 2, seed: 4 };
  const model = buildVgg(tf, options);
  const specs = vggLayerSpecs(options);
  assert.deepEqual(
    model.layers.map((l) => l.name),
    specs.map((s) => s.name),
  );
  for (const s of specs) {
    const layer = model.getLayer(s.name);
    assert.deepEqual((layer.outputShape as number[]).slice(1), [...s.outputShape], s.name);
    assert.deepEqual(
      layer.weights.map((w) => w.shape),
      s.weightShapes.map((x) => [...x]),
      s.name,
    );
  }
  assert.equal(model.countParams(), parameterCount(specs));
  const again = buildVgg(tf, options);
  assert.deepEqual(again.getLayer('fc1').getWeights()[0]!.dataSync(), model.getLayer('fc1').getWeights()[0]!.dataSync());

  // The frozen part through the engine, then the head, equals the whole model.
  const x = tf.randomUniform([3, 64, 48, 3], -100, 100, 'float32', 2);
  const engine = createTfjsEngine(tf, model, 'block5_pool', { maxBatch: 2 });
  assert.deepEqual(engine.outputShape, cutOutputShape(model, 'block5_pool'));
  const features = await engine.run(x.dataSync() as Float32Array, 3);
  const head = headModel(tf, model, 'block5_pool');
  const viaHead = (head.predict(tf.tensor(features, [3, ...engine.outputShape])) as ReturnType<typeof tf.tensor>).dataSync();
  const whole = (model.predict(x) as ReturnType<typeof tf.tensor>).dataSync();
  for (let i = 0; i < whole.length; i++) assert.ok(Math.abs(whole[i]! - viaHead[i]!) < 1e-5, `output ${i}`);
  model.dispose();
  again.dispose();
});
