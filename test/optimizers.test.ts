// The optimizers table (stages/vision/optimizers.ts): every row's update formula (what the ONNX
// trainer applies) follows the same row's tfjs optimizer step for step, and the stage schemas
// offer exactly the table's names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { OPTIMIZERS, OPTIMIZER_NAMES } from '../stages/vision/optimizers.js';
import { finetuneStage } from '../stages/finetune.js';
import { finetuneVgg16Stage } from '../stages/finetune-vgg16.js';

test('optimizers: each formula matches its tfjs optimizer over several steps', async () => {
  await tf.setBackend('cpu');
  for (const name of OPTIMIZER_NAMES) {
    const spec = OPTIMIZERS[name];
    const lr = 0.05;
    const w = Float32Array.from([0.5, -1.2, 2.0, 0.01]);
    const slots = Array.from({ length: spec.slots }, () => new Float32Array(w.length));
    const v = tf.variable(tf.tensor1d(Float32Array.from(w))); // a copy: the cpu backend would share w's buffer
    const opt = spec.tfjs(tf, lr);
    for (let step = 1; step <= 5; step++) {
      const g = Float32Array.from(w, (x, j) => Math.fround(2 * x - 0.3 * j + 0.1 * step));
      spec.update(w, g, slots, lr, step);
      opt.applyGradients({ [v.name]: tf.tensor1d(Float32Array.from(v.dataSync(), (x, j) => Math.fround(2 * x - 0.3 * j + 0.1 * step))) });
      const got = v.dataSync();
      w.forEach((x, j) => assert.ok(Math.abs(x - got[j]!) < 1e-5, `${name} step ${step} weight ${j}: ${x} vs tfjs ${got[j]}`));
    }
    opt.dispose();
    v.dispose();
  }
});

test('optimizers: the finetune stages offer exactly the names of the table', () => {
  for (const stage of [finetuneStage, finetuneVgg16Stage]) {
    const prop = (stage.params as { properties: Record<string, { enum?: unknown[]; description?: string }> }).properties['optimizer']!;
    assert.deepEqual(prop.enum, OPTIMIZER_NAMES);
    for (const n of OPTIMIZER_NAMES) assert.ok(prop.description!.includes(`\`${n}\``), `${n} described`);
  }
  assert.deepEqual([...OPTIMIZER_NAMES].sort(), ['adam', 'sgd']);
});
