// `pipe lr-find FILE --stage NAME`: the range test on a tiny synthetic pipeline. It runs the
// stages the fine-tuning stage needs, prints a table and a suggested rate, writes the plot (SVG
// in the report's style) and the numbers under the cache and says where; a stage without the
// tool, or an unknown one, is a usage error (exit 2).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Rig } from './rig.js';
import { rangeRate, steepestRate } from '../../stages/vision/lr-range.js';

const PIPELINE = `name: tiny
stages:
  photos:
    uses: synth-images
    with: { classes: [cat, dog], train_per_class: 24, test: 0, width: 40, height: 32, seed: 1 }
  split:
    uses: split
    inputs: { images: photos }
    with: { from: train, label_from: filename, valid: 10, sample: { train: 4, valid: 4 }, seed: 1 }
  finetune:
    uses: finetune-vgg16
    inputs: { dataset: split }
    with: { architecture: tiny-vgg, weights: none, input_size: 32, trainable: dense, epochs: 1, batch_size: 8, seed: 1, backend: wasm }
`;

const rigs: Rig[] = [];
after(async () => {
  for (const r of rigs) await r.cleanup();
});

test('rangeRate grows exponentially from start to end; steepestRate finds the fastest fall', () => {
  const o = { steps: 5, startLr: 1e-4, endLr: 1 };
  assert.deepEqual(
    [0, 1, 2, 3, 4].map((i) => Number(rangeRate(o, i).toPrecision(6))),
    [1e-4, 1e-3, 1e-2, 0.1, 1],
  );
  // Smoothed loss flat, then falling fastest around 1e-3, then rising.
  const smoothed = [1, 1, 1, 0.99, 0.9, 0.5, 0.45, 0.44, 0.5, 0.8, 2, 3];
  const points = smoothed.map((s, i) => ({ step: i + 1, lr: 10 ** (-6 + i * 0.5), loss: s, smoothed: s }));
  assert.equal(steepestRate(points), points[4]!.lr); // slope (0.5 - 0.99) per step: the steepest
  assert.equal(steepestRate(points.map((p, i) => ({ ...p, smoothed: 1 + i }))), null);
  // A one-step dip early (noise) loses to the broad fall that follows.
  const noisy = Array.from({ length: 40 }, (_, i) => {
    const s = i === 6 ? 1.6 : i < 20 ? 2 : i <= 30 ? 2 - 0.15 * (i - 20) : 0.5;
    return { step: i + 1, lr: 10 ** (-7 + i * 0.2), loss: s, smoothed: s };
  });
  const pick = steepestRate(noisy)!;
  assert.ok(pick >= noisy[20]!.lr && pick <= noisy[30]!.lr, `suggested ${pick}`);
});

test('pipe lr-find: table, suggested rate, SVG and JSON under the cache; usage errors exit 2', { timeout: 240_000 }, async () => {
  const rig = await Rig.create();
  rigs.push(rig);
  await rig.write('p.yaml', PIPELINE);
  const r = await rig.run(['lr-find', 'p.yaml', '--stage', 'finetune', '--steps', '60', '--start', '1e-5', '--end', '1e4']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /step\s+learning rate\s+loss\s+smoothed/);
  const suggested = /suggested learning_rate: (\S+) /.exec(r.stdout);
  assert.ok(suggested, r.stdout);
  assert.ok(Number(suggested[1]) > 1e-5 && Number(suggested[1]) < 1e4, suggested[1]);
  assert.match(r.stdout, /plot: \.pipe\/lr-find\/tiny\/finetune\/lr-find\.svg/);
  const svg = await rig.read('.pipe/lr-find/tiny/finetune/lr-find.svg');
  assert.match(svg, /^<svg class="chart"[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg">\n<style>/);
  assert.match(svg, /<title>Learning-rate range test<\/title>/);
  assert.match(svg, /suggested /);
  const json = JSON.parse(await rig.read('.pipe/lr-find/tiny/finetune/lr-find.json')) as {
    points: { lr: number; smoothed: number }[];
    suggested: number;
    stopped?: string;
  };
  assert.ok(json.points.length > 10 && json.points.length <= 60);
  for (let i = 1; i < json.points.length; i++) assert.ok(json.points[i]!.lr > json.points[i - 1]!.lr);
  // A rate in the hundreds blows Adam up on this head: the test stops where the loss diverges.
  assert.match(json.stopped ?? '', /the loss diverged at rate/);
  assert.match(r.stdout, /stopped: the loss diverged/);

  const unknown = await rig.run(['lr-find', 'p.yaml', '--stage', 'nope']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /has no stage 'nope' \(stages: photos, split, finetune\)/);
  const notTrain = await rig.run(['lr-find', 'p.yaml', '--stage', 'split']);
  assert.equal(notTrain.code, 2);
  assert.match(notTrain.stderr, /stage 'split' \(uses: split\) has no learning-rate finder; in this pipeline: finetune/);
  const bad = await rig.run(['lr-find', 'p.yaml', '--stage', 'finetune', '--steps', 'many']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--steps must be a positive integer, not 'many'/);
  assert.doesNotMatch(bad.stderr + unknown.stderr + notTrain.stderr, /internal error|\n\s+at /);
});
