// The practitioner's workflow end to end, through the real `pipe` binary, on real photos: a
// folder in fast.ai's layout (train/valid with plural class folders, sample/, test1/) through
// split (layout: folders) -> finetune -> evaluate -> predict; then new photos for predict and a
// second labelled folder evaluated with the same model: only those stages run, finetune is
// cached.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { REPO, Rig } from './rig.js';

const PETS = path.join(REPO, '..', 'shared', 'datasets', 'oxford-pets-730');
const skip = existsSync(PETS) ? false : `${path.relative(REPO, PETS)} is absent (the team's shared photos)`;

const PIPELINE = `
name: workflow
stages:
  photos: { uses: images, with: { path: fastai } }
  split:
    uses: split
    inputs: { images: photos }
    with: { layout: folders, from: dogscats, folders: { test: test1 }, sample: { train: 4, valid: 2 } }
  finetune:
    uses: finetune-vgg16
    inputs: { dataset: split }
    with: { architecture: tiny-vgg, weights: none, input_size: 32, trainable: predictions, epochs: 1, batch_size: 8 }
  evaluate:
    uses: evaluate
    inputs: { model: finetune, dataset: split }
    with: { on: both }
  new_photos: { uses: images, with: { path: new-photos } }
  predict:
    uses: predict
    inputs: { model: finetune, images: new_photos }
  other_photos: { uses: images, with: { path: other } }
  other:
    uses: split
    inputs: { images: other_photos }
    with: { layout: folders }         # only valid/: a labelled folder to evaluate on
  evaluate_other:
    uses: evaluate
    inputs: { model: finetune, dataset: other }
    with: { on: valid }
`;

type Event = { type: string; stage?: string };

function byType(record: readonly Record<string, unknown>[], type: string): string[] {
  return (record as Event[])
    .filter((e) => e.type === type)
    .map((e) => e.stage!)
    .sort();
}

test(
  'fast.ai layout -> split -> finetune -> evaluate -> predict; new photos and another labelled folder leave finetune cached',
  { skip, timeout: 300_000 },
  async () => {
    const rig = await Rig.create();
    try {
      const photos = (cls: string) => readdir(path.join(PETS, cls)).then((l) => l.filter((f) => f.endsWith('.jpg')).sort());
      const [cats, dogs] = [await photos('cat'), await photos('dog')];
      const place = async (cls: string, names: string[], dest: string) => {
        await mkdir(rig.path(dest), { recursive: true });
        for (const n of names) await copyFile(path.join(PETS, cls, n), rig.path(dest, n));
      };
      await place('cat', cats.slice(0, 10), 'fastai/dogscats/train/cats');
      await place('dog', dogs.slice(0, 10), 'fastai/dogscats/train/dogs');
      await place('cat', cats.slice(10, 14), 'fastai/dogscats/valid/cats');
      await place('dog', dogs.slice(10, 14), 'fastai/dogscats/valid/dogs');
      await place('cat', cats.slice(0, 2), 'fastai/dogscats/sample/train/cats');
      await place('dog', dogs.slice(0, 2), 'fastai/dogscats/sample/train/dogs');
      await place('cat', cats.slice(14, 17), 'fastai/dogscats/test1');
      await place('dog', dogs.slice(14, 17), 'fastai/dogscats/test1');
      await place('cat', cats.slice(20, 23), 'new-photos');
      await place('dog', dogs.slice(20, 22), 'new-photos');
      await place('cat', cats.slice(30, 33), 'other/valid/cats');
      await place('dog', dogs.slice(30, 33), 'other/valid/dogs');
      await rig.write('p.yaml', PIPELINE);

      const first = await rig.run(['run', 'p.yaml']);
      assert.equal(first.code, 0, first.stdout + first.stderr);
      const split = JSON.parse(await rig.read('.pipe/latest/workflow/split/split.json')) as {
        classes: string[];
        counts: { train: Record<string, number>; valid: Record<string, number>; test: number };
      };
      assert.deepEqual(split.classes, ['cats', 'dogs']);
      assert.deepEqual(split.counts.train, { cats: 10, dogs: 10 });
      assert.deepEqual(split.counts.valid, { cats: 4, dogs: 4 });
      assert.equal(split.counts.test, 6);
      const predictions = (await rig.read('.pipe/latest/workflow/predict/predictions.csv')).trim().split('\n');
      assert.equal(predictions[0], 'file,predicted,p_cats,p_dogs');
      assert.equal(predictions.length, 1 + 5);
      assert.ok(existsSync(rig.path('.pipe/latest/workflow/predict/predictions.html')));
      const other = JSON.parse(await rig.read('.pipe/latest/workflow/evaluate_other/metrics.json')) as { on: string };
      assert.equal(other.on, 'valid');

      // New photos to predict, and the second labelled folder changes: finetune stays cached.
      await place('dog', dogs.slice(22, 24), 'new-photos');
      await place('dog', dogs.slice(33, 35), 'other/valid/dogs');
      const second = await rig.run(['run', 'p.yaml']);
      assert.equal(second.code, 0, second.stdout + second.stderr);
      const records = await rig.runRecords();
      const last = records.at(-1)!;
      assert.deepEqual(byType(last, 'stage-finish'), ['evaluate_other', 'new_photos', 'other', 'other_photos', 'predict']);
      assert.deepEqual(byType(last, 'stage-cached'), ['evaluate', 'finetune', 'photos', 'split']);
      assert.equal((await readFile(rig.path('.pipe/latest/workflow/predict/predictions.csv'), 'utf8')).trim().split('\n').length, 1 + 7);
    } finally {
      await rig.cleanup();
    }
  },
);
