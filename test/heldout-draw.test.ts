// The held-out bench's pure parts (bench/heldout.ts): the breed draw is seeded, takes whole
// breeds of both classes, about the asked number of photos, and is disjoint from what the
// pipeline trains and validates on; the pipeline it writes evaluates the finetune stage's model
// on the held-out folder without retraining. No training here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { BREED, accuracyByBreed, drawHeldout, heldoutPipeline, type Photo } from '../bench/heldout.js';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// The shared pets set's breeds and photo counts (cats capitalised, dogs not, as Oxford-IIIT names them).
const BREEDS: Record<string, Record<string, number>> = {
  cat: {
    Abyssinian: 17,
    Bengal: 37,
    Bombay: 21,
    British_Shorthair: 50,
    Egyptian_Mau: 28,
    Maine_Coon: 20,
    Persian: 37,
    Ragdoll: 35,
    Russian_Blue: 42,
    Siamese: 32,
  },
  dog: {
    american_bulldog: 30,
    basset_hound: 12,
    beagle: 40,
    chihuahua: 8,
    german_shorthaired: 24,
    great_pyrenees: 45,
    leonberger: 11,
    miniature_pinscher: 14,
    pomeranian: 41,
    saint_bernard: 24,
    samoyed: 58,
    shiba_inu: 64,
    staffordshire_bull_terrier: 40,
  },
};
const PHOTOS: Photo[] = Object.entries(BREEDS).flatMap(([cls, breeds]) =>
  Object.entries(breeds).flatMap(([breed, n]) => Array.from({ length: n }, (_, i) => ({ file: `${cls}/${breed}_${i + 1}.jpg`, cls }))),
);
const breedOf = (p: Photo) => new RegExp(BREED).exec(path.posix.basename(p.file))![1]!;

test('the held-out draw takes whole breeds of both classes, about the target, disjoint from the rest', () => {
  for (const seed of [1, 2, 3]) {
    const d = drawHeldout(PHOTOS, seed, 150);
    assert.equal(d.heldout.length + d.inner.length, PHOTOS.length);
    const held = new Set(d.heldout.map((p) => p.file));
    assert.ok(
      d.inner.every((p) => !held.has(p.file)),
      'no photo on both sides',
    );
    const heldBreeds = new Set(d.heldout.map(breedOf));
    assert.deepEqual([...heldBreeds].sort(), d.breeds);
    assert.ok(
      d.inner.every((p) => !heldBreeds.has(breedOf(p))),
      'no breed on both sides',
    );
    for (const b of d.breeds) assert.equal(d.heldout.filter((p) => breedOf(p) === b).length, BREEDS.cat![b] ?? BREEDS.dog![b], `all of ${b}`);
    assert.ok(d.heldout.some((p) => p.cls === 'cat') && d.heldout.some((p) => p.cls === 'dog'), 'both classes held out');
    assert.ok(d.inner.some((p) => p.cls === 'cat') && d.inner.some((p) => p.cls === 'dog'), 'both classes left to train on');
    assert.ok(Math.abs(d.heldout.length - 150) <= 20, `${d.heldout.length} photos held out for 150 asked`);
  }
});

test('the held-out draw is seeded: the same seed the same breeds, other seeds other breeds', () => {
  const files = (l: readonly Photo[]) => l.map((p) => p.file).sort();
  const [a, b] = [drawHeldout(PHOTOS, 1, 150), drawHeldout([...PHOTOS].reverse(), 1, 150)];
  assert.deepEqual(a.breeds, b.breeds);
  assert.deepEqual(files(a.heldout), files(b.heldout));
  const draws = [1, 2, 3].map((s) => drawHeldout(PHOTOS, s, 150).breeds.join());
  assert.equal(new Set(draws).size, 3);
});

test('the written pipeline is pets.yaml on the inner photos, plus an evaluation of its model on the held-out folder', async () => {
  const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../pipelines');
  const pets = await readFile(path.join(dir, 'pets.yaml'), 'utf8');
  const doc = parse(heldoutPipeline(pets, dir, 'pets-heldout-1', '/w/inner', '/w/heldout', 42, 'flip')) as {
    params: Record<string, unknown>;
    stages: Record<string, { uses: string; inputs?: Record<string, string>; with?: Record<string, unknown> }>;
  };
  const shipped = (parse(pets) as { stages: typeof doc.stages; params: unknown }).stages;
  assert.deepEqual(doc.params, (parse(pets) as { params: unknown }).params);
  assert.equal(doc.stages.photos!.with!.path, '/w/inner');
  assert.deepEqual(doc.stages.split!.with, { ...shipped.split!.with, seed: 42 });
  assert.equal(doc.stages.finetune!.with!.backbone, path.resolve(dir, shipped.finetune!.with!.backbone as string));
  assert.deepEqual({ ...doc.stages.finetune!.with, backbone: shipped.finetune!.with!.backbone }, shipped.finetune!.with);
  assert.equal(doc.stages.heldout_photos!.with!.path, '/w/heldout');
  assert.equal(doc.stages.heldout_split!.with!.layout, 'folders');
  for (const stage of ['heldout', 'heldout_tta']) {
    assert.deepEqual(doc.stages[stage]!.inputs, { model: 'finetune', dataset: 'heldout_split' });
    assert.equal(doc.stages[stage]!.with!.on, 'valid');
  }
  assert.equal(doc.stages.heldout_tta!.with!.tta, 'flip');
  assert.equal(doc.stages.evaluate, undefined, 'the inner valid set is judged by finetune alone');
});

test("held-out accuracy per breed is read from evaluate's predictions.csv", () => {
  const csv = [
    'file,label,p_cat,p_dog,predicted,correct',
    'valid/cat/Siamese_1.jpg,cat,0.9,0.1,cat,true',
    'valid/cat/Siamese_2.jpg,cat,0.2,0.8,dog,false',
    'valid/dog/chihuahua_7.jpg,dog,0.9,0.1,cat,false',
  ].join('\n');
  assert.deepEqual(accuracyByBreed(`${csv}\n`), { Siamese: 0.5, chihuahua: 0 });
});
