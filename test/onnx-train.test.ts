// The ONNX training graphs checked against tfjs' own gradients on the same weights and batch:
// one SGD step with learning rate 1 moves each weight by minus its gradient, so the step of the
// ONNX trainer and tfjs' variableGrads must agree. Then Adam over several steps, dropout,
// checkpoints (state/restore), write-back into the tf.layers model, and the fallback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmGradKernels } from '../stages/vision/wasm-grad-kernels.js';
import { createOnnxTrainer } from '../stages/vision/onnx/trainer.js';
import { buildTrainGraphs } from '../stages/vision/onnx/train-graph.js';
import { UnsupportedLayerError } from '../stages/vision/onnx/values.js';
import { mulberry32 } from '../stages/random.js';

await tf.setBackend('wasm');
await tf.ready();
registerWasmGradKernels(tf);

function randoms(n: number, seed: number, scale = 1): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

/** Non-trivial weights everywhere (biases default to zero). */
function randomize(model: tf.LayersModel, seed: number): void {
  let s = seed;
  for (const layer of model.layers) {
    const ws = layer.getWeights().map((w) => {
      const fanIn = w.shape.length > 1 ? w.shape.slice(0, -1).reduce((a, b) => a * b, 1) : 4;
      return tf.tensor(randoms(w.size, s++, Math.sqrt(3 / fanIn)), w.shape);
    });
    if (ws.length) layer.setWeights(ws);
    tf.dispose(ws);
  }
}

/** A block5-like conv head on [8, 8, 6] inputs, ending in a softmax Dense. */
function convHead(opts: { gap?: boolean; dropout?: number; valid?: boolean } = {}): tf.LayersModel {
  const layers: tf.layers.Layer[] = [
    tf.layers.conv2d({ filters: 5, kernelSize: 3, padding: opts.valid ? 'valid' : 'same', activation: 'relu', inputShape: [8, 8, 6], name: 'c1' }),
    // c2 and c3 need input gradients: one valid and one same-padded 2x2 (uneven) kernel cover dx's padding.
    tf.layers.conv2d({ filters: 7, kernelSize: 3, padding: opts.valid ? 'valid' : 'same', activation: 'relu', name: 'c2' }),
    tf.layers.conv2d({ filters: 4, kernelSize: 2, padding: 'same', activation: 'linear', name: 'c3' }),
    // Overlapping windows in the GAP variant (gradients of one input element add up: ScatterElements), else MaxUnpool's case.
    opts.gap ? tf.layers.maxPooling2d({ poolSize: 3, strides: 2, name: 'pool' }) : tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: 'pool' }),
    opts.gap ? tf.layers.globalAveragePooling2d({ name: 'gap' }) : tf.layers.flatten({ name: 'flat' }),
  ];
  if (opts.dropout) layers.push(tf.layers.dropout({ rate: opts.dropout, name: 'drop' }));
  layers.push(tf.layers.dense({ units: 6, activation: 'relu', name: 'fc' }), tf.layers.dense({ units: 3, activation: 'softmax', name: 'out' }));
  const m = tf.sequential({ layers });
  randomize(m, 11);
  return m;
}

/** tfjs' gradients of the mean softmax cross-entropy (on the logits, as training does). */
function tfjsGrads(model: tf.LayersModel, x: Float32Array, labels: number[], shape: number[]): Map<string, Float32Array> {
  const last = model.layers[model.layers.length - 1] as tf.layers.Layer & { activation: unknown };
  const softmax = last.activation;
  last.activation = { apply: (t: tf.Tensor) => t, getClassName: () => 'Linear' };
  try {
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { grads } = tf.variableGrads(() => {
      const logits = model.apply(tf.tensor(x, [labels.length, ...shape]), { training: false }) as tf.Tensor;
      return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(labels, 'int32'), 3), logits) as tf.Scalar;
    }, vars);
    const out = new Map<string, Float32Array>();
    for (const [name, g] of Object.entries(grads)) out.set(name, g.dataSync() as Float32Array);
    tf.dispose(Object.values(grads));
    return out;
  } finally {
    last.activation = softmax;
  }
}

function weightsOf(model: tf.LayersModel): Map<string, Float32Array> {
  return new Map(model.trainableWeights.map((w) => [(w.read() as tf.Variable).name, Float32Array.from(w.read().dataSync() as Float32Array)]));
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]!));
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
  }
  return diff / Math.max(scale, 1e-12);
}

for (const variant of [{}, { gap: true }, { valid: true }] as const) {
  test(`one SGD step on onnx moves every weight by tfjs' gradient (${JSON.stringify(variant)})`, async () => {
    const model = convHead(variant);
    const n = 5;
    const x = randoms(n * 8 * 8 * 6, 3);
    const labels = [0, 1, 2, 1, 0];
    const grads = tfjsGrads(model, x, labels, [8, 8, 6]);
    const before = weightsOf(model);
    const trainer = await createOnnxTrainer(model, { optimizer: 'sgd', learningRate: 1, threads: 2, provider: 'cpu' });
    try {
      const { loss, probs } = await trainer.step(x, labels, n, 1);
      assert.ok(Number.isFinite(loss) && loss > 0, `loss ${loss}`);
      assert.equal(probs.length, n * 3);
      trainer.writeBack(tf);
      const after = weightsOf(model);
      assert.equal(grads.size, before.size);
      for (const [name, g] of grads) {
        const moved = before.get(name)!.map((w, i) => w - after.get(name)![i]!);
        const d = maxRelDiff(moved, g);
        assert.ok(d < 1e-4, `${name}: max relative difference ${d}`);
        assert.ok(
          g.some((v) => v !== 0),
          `${name}: zero gradient makes the check vacuous`,
        );
      }
    } finally {
      await trainer.dispose();
      model.dispose();
    }
  });
}

test('a batch larger than the memory budget runs in slices with the same step (summed gradients, mean loss)', async () => {
  const n = 7;
  const x = randoms(n * 8 * 8 * 6, 21);
  const labels = [0, 1, 2, 1, 0, 2, 2];
  const run = async (memoryBudgetBytes?: number) => {
    const model = convHead();
    const trainer = await createOnnxTrainer(model, {
      optimizer: 'adam',
      learningRate: 0.01,
      threads: 2,
      provider: 'cpu',
      ...(memoryBudgetBytes ? { memoryBudgetBytes } : {}),
    });
    try {
      const first = await trainer.step(x, labels, n, 1);
      const second = await trainer.step(x, labels, n, 2);
      const probs = await trainer.predict(x, n);
      trainer.writeBack(tf);
      return { rows: trainer.detail['max_rows_per_run'] as number, first, second, probs, weights: [...weightsOf(model).values()] };
    } finally {
      await trainer.dispose();
      model.dispose();
    }
  };
  const whole = await run();
  const { buildTrainGraphs: build } = await import('../stages/vision/onnx/train-graph.js');
  const probe = convHead();
  const perRow = build(probe).bytesPerExample;
  probe.dispose();
  const sliced = await run(perRow * 3); // 3 rows a run: slices of 3, 3 and 1
  assert.ok(whole.rows >= n);
  assert.equal(sliced.rows, 3);
  assert.ok(Math.abs(whole.first.loss - sliced.first.loss) < 1e-5, `${whole.first.loss} vs ${sliced.first.loss}`);
  assert.ok(Math.abs(whole.second.loss - sliced.second.loss) < 1e-5);
  assert.ok(maxRelDiff(sliced.first.probs, whole.first.probs) < 1e-5);
  assert.ok(maxRelDiff(sliced.probs, whole.probs) < 1e-4);
  // Adam divides by the gradient's own scale, so a near-zero component summed in another order
  // (slices; Winograd's transforms) can move its weight by a visible fraction of a step: 1.1e-4 seen.
  whole.weights.forEach((w, i) => assert.ok(maxRelDiff(sliced.weights[i]!, w) < 5e-4, `weight ${i}: ${maxRelDiff(sliced.weights[i]!, w)}`));
});

test('onnx predictions equal the tfjs model with the same weights', async () => {
  const model = convHead({ dropout: 0.5 });
  const n = 4;
  const x = randoms(n * 8 * 8 * 6, 5);
  const trainer = await createOnnxTrainer(model, { optimizer: 'adam', learningRate: 1e-3, threads: 2, provider: 'cpu' });
  try {
    const ours = await trainer.predict(x, n);
    const theirs = tf.tidy(() => (model.predict(tf.tensor(x, [n, 8, 8, 6])) as tf.Tensor).dataSync() as Float32Array);
    assert.ok(maxRelDiff(ours, theirs) < 1e-5);
  } finally {
    await trainer.dispose();
    model.dispose();
  }
});

test('Adam on onnx follows tfjs Adam over several steps; state/restore resumes exactly', async () => {
  const a = convHead();
  const b = convHead();
  const n = 6;
  const x = randoms(n * 8 * 8 * 6, 9);
  const labels = [0, 1, 2, 2, 1, 0];
  const opt = tf.train.adam(0.01);
  const last = b.layers[b.layers.length - 1] as tf.layers.Layer & { activation: unknown };
  const softmax = last.activation;
  const trainer = await createOnnxTrainer(a, { optimizer: 'adam', learningRate: 0.01, threads: 2, provider: 'cpu' });
  try {
    for (let s = 0; s < 4; s++) {
      await trainer.step(x, labels, n, s);
      last.activation = { apply: (t: tf.Tensor) => t, getClassName: () => 'Linear' };
      tf.tidy(() => {
        opt.minimize(
          () => tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(labels, 'int32'), 3), b.apply(tf.tensor(x, [n, 8, 8, 6])) as tf.Tensor) as tf.Scalar,
          false,
          b.trainableWeights.map((w) => w.read() as tf.Variable),
        );
      });
      last.activation = softmax;
    }
    trainer.writeBack(tf);
    // Same layers in the same order (tfjs suffixes the second model's variable names).
    const wa = [...weightsOf(a).values()];
    const wb = [...weightsOf(b).entries()];
    assert.equal(wa.length, wb.length);
    wb.forEach(([name, v], i) => {
      const d = maxRelDiff(wa[i]!, v);
      assert.ok(d < 1e-3, `${name}: ${d}`);
    });
    // A checkpoint taken now and restored into a fresh trainer continues identically.
    const saved = trainer.state().map((s) => ({ ...s, data: s.data.slice() }));
    const next = await trainer.step(x, labels, n, 7);
    const other = await createOnnxTrainer(a, { optimizer: 'adam', learningRate: 0.01, threads: 2, provider: 'cpu' });
    try {
      other.restore(saved);
      const again = await other.step(x, labels, n, 7);
      assert.equal(again.loss, next.loss);
      assert.deepEqual(
        other.state().map((s) => Array.from(s.data.slice(0, 5))),
        trainer.state().map((s) => Array.from(s.data.slice(0, 5))),
      );
      assert.throws(() => other.restore(saved.slice(1)), /checkpoint/);
    } finally {
      await other.dispose();
    }
  } finally {
    await trainer.dispose();
    opt.dispose();
    a.dispose();
    b.dispose();
  }
});

test('dropout masks come from the step seed and scale kept units by 1 / (1 - rate)', async () => {
  const model = convHead({ dropout: 0.5 });
  const n = 4;
  const x = randoms(n * 8 * 8 * 6, 5);
  const labels = [0, 1, 2, 0];
  const run = async (seed: number) => {
    const t = await createOnnxTrainer(model, { optimizer: 'sgd', learningRate: 0.1, threads: 1, provider: 'cpu' });
    try {
      return (await t.step(x, labels, n, seed)).loss;
    } finally {
      await t.dispose();
    }
  };
  assert.equal(await run(1), await run(1));
  assert.notEqual(await run(1), await run(2));
  model.dispose();
});

test('a layer without a training graph is refused with its name (the caller falls back to tfjs)', () => {
  const m = tf.sequential({
    layers: [
      tf.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, inputShape: [8, 8, 3], name: 'strided' }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 2, activation: 'softmax' }),
    ],
  });
  assert.throws(
    () => buildTrainGraphs(m),
    (e: unknown) => e instanceof UnsupportedLayerError && /strided/.test(e.message) && /strides/.test(e.message),
  );
  const noSoftmax = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [4], name: 'plain' })] });
  assert.throws(() => buildTrainGraphs(noSoftmax), /softmax Dense/);
  m.dispose();
  noSoftmax.dispose();
});

test('openLearner: auto trains on onnx where it can, else on tfjs and says which layer stopped it; onnx asked for warns', async () => {
  const { openLearner } = await import('../stages/vision/learner.js');
  const logs: string[] = [];
  const warns: string[] = [];
  const common = {
    tf,
    shape: [8, 8, 6],
    classes: 3,
    optimizer: 'sgd' as const,
    learningRate: 0.1,
    log: (m: string) => logs.push(m),
    warn: (m: string) => warns.push(m),
  };
  const ok = convHead();
  const a = await openLearner({ ...common, head: ok, engine: 'auto' });
  assert.equal(a.name, 'onnx');
  await a.finish();
  const bn = tf.sequential({
    layers: [
      tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', inputShape: [8, 8, 6], name: 'c' }),
      tf.layers.batchNormalization({ name: 'bn' }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 3, activation: 'softmax' }),
    ],
  });
  const b = await openLearner({ ...common, head: bn, engine: 'auto' });
  assert.equal(b.name, 'tfjs');
  assert.ok(
    logs.some((l) => /training on onnx is not possible \(cannot convert layer 'bn' \(BatchNormalization\)/.test(l)),
    logs.join('\n'),
  );
  assert.equal(warns.length, 0);
  // It still trains there.
  const x = randoms(2 * 8 * 8 * 6, 4);
  const { loss } = await b.step(x, [0, 2], 2, 1);
  assert.ok(Number.isFinite(loss));
  await b.finish();
  const c = await openLearner({ ...common, head: bn, engine: 'onnx' });
  assert.equal(c.name, 'tfjs');
  assert.equal(warns.length, 1, 'engine: onnx that cannot be honoured is a warning');
  await c.finish();
  const d = await openLearner({ ...common, head: ok, engine: 'tfjs' });
  assert.equal(d.name, 'tfjs');
  await d.finish();
  ok.dispose();
  bn.dispose();
});

test('a learning-rate schedule: setLearningRate moves the next step on both learners, both optimizers; the cosine curve', async () => {
  const { openLearner } = await import('../stages/vision/learner.js');
  const { scheduledLearningRate } = await import('../stages/vision/train.js');
  assert.equal(scheduledLearningRate(0.01, 'constant', 50, 100), 0.01);
  assert.equal(scheduledLearningRate(0.01, 'cosine', 0, 100), 0.01);
  assert.ok(Math.abs(scheduledLearningRate(0.01, 'cosine', 50, 100) - 0.005) < 1e-12);
  const lastStep = scheduledLearningRate(0.01, 'cosine', 99, 100);
  assert.ok(lastStep > 0 && lastStep < 0.0001, String(lastStep));
  const x = randoms(3 * 8 * 8 * 6, 8);
  for (const engine of ['onnx', 'tfjs'] as const) {
    for (const optimizer of ['sgd', 'adam'] as const) {
      // Two steps from the same weights: one learner made with the step size, one made with
      // another and set to it. The weights must end equal, and differ from a third left alone.
      const after = async (made: number, set?: number) => {
        const head = convHead();
        const learner = await openLearner({ tf, head, shape: [8, 8, 6], classes: 3, optimizer, learningRate: made, engine, log: () => {} });
        assert.equal(learner.name, engine);
        if (set !== undefined) learner.setLearningRate(set);
        await learner.step(x, [0, 1, 2], 3, 1);
        await learner.step(x, [2, 1, 0], 3, 2);
        await learner.finish();
        const w = [...weightsOf(head).values()];
        head.dispose();
        return w;
      };
      const want = await after(0.01);
      const got = await after(0.5, 0.01);
      const other = await after(0.5);
      want.forEach((w, i) => assert.ok(maxRelDiff(got[i]!, w) < 1e-5, `${engine}/${optimizer} weight ${i}: ${maxRelDiff(got[i]!, w)}`));
      assert.ok(
        want.some((w, i) => maxRelDiff(other[i]!, w) > 1e-3),
        `${engine}/${optimizer}: the step size makes no difference`,
      );
    }
  }
});
