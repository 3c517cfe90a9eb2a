// Artifacts are deterministic: a run killed (kill -9) in the middle of training and then resumed
// from its checkpoint gives every stage the same content hash as an uninterrupted run. Nothing
// time-, host- or engine-dependent goes under data/ (timings belong in meta.json). The report too:
// its run facts (run id, date, timings, earlier runs) are in the run view outside the cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { killGroup, killStageProcesses, runPipe, spawnPipe, waitForOutput, waitGroupGone } from './faults.js';

// The demo in miniature: a few tiny synthetic photos, a tiny VGG trained for a few epochs.
const PIPELINE = `name: mini
stages:
  photos:
    uses: synth-images
    with: { classes: [cat, dog], train_per_class: 40, test: 6, width: 40, height: 30, seed: 7 }
  split:
    uses: split
    inputs: { images: photos }
    with: { from: train, label_from: filename, valid: 16, sample: { train: 8, valid: 4 }, test: test, seed: 7 }
  finetune:
    uses: finetune-vgg16
    inputs: { dataset: split }
    with: { architecture: tiny-vgg, weights: none, input_size: 32, trainable: all, epochs: 4, batch_size: 16, learning_rate: 0.001, seed: 7 }
  evaluate:
    uses: evaluate
    inputs: { model: finetune, dataset: split }
    with: { on: both }
  report:
    uses: report
    inputs: { evaluation: evaluate, model: finetune }
`;
const STAGES = ['photos', 'split', 'finetune', 'evaluate', 'report'];

async function contentHashes(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const s of STAGES) {
    const key = path.basename(path.dirname(await readlink(path.join(dir, '.pipe/latest/mini', s))));
    out[s] = (JSON.parse(await readFile(path.join(dir, '.pipe/cache', key, 'meta.json'), 'utf8')) as { contentHash: string }).contentHash;
  }
  return out;
}

test('a run killed mid-training and resumed gives every stage the content hash of an uninterrupted run', { timeout: 180_000 }, async () => {
  const straight = await mkdtemp(path.join(os.tmpdir(), 'pipe-det-a-'));
  const resumed = await mkdtemp(path.join(os.tmpdir(), 'pipe-det-b-'));
  try {
    for (const d of [straight, resumed]) await writeFile(path.join(d, 'p.yaml'), PIPELINE);
    const a = await runPipe(straight, ['run', 'p.yaml'], {}, 120_000);
    assert.equal(a.code, 0, a.stderr);

    const s = spawnPipe(resumed, ['run', 'p.yaml']);
    assert.ok(await waitForOutput(s, /finetune \| epoch 2\/4:/, 120_000), s.stderr());
    killGroup(s.child.pid);
    await s.done;
    assert.ok(await waitGroupGone(s.child.pid, 10_000));
    const b = await runPipe(resumed, ['run', 'p.yaml'], {}, 120_000);
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stderr, /resuming from the checkpoint of epoch [123]\/4/);

    assert.deepEqual(await contentHashes(resumed), await contentHashes(straight));
  } finally {
    for (const d of [straight, resumed]) {
      await killStageProcesses(d);
      await rm(d, { recursive: true, force: true });
    }
  }
});
