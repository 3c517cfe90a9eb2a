// split's ready-made layouts (layout: folders, as fast.ai's dogscats.zip, Keras' and
// torchvision's one-folder-per-class sets), valid: 0, and byte-identical images across train
// and valid.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { StageError } from '../runner/types.js';
import { splitStage, type SplitFile, type SplitParams } from '../stages/split.js';
import { splitProblems } from '../stages/dataset-contract.js';
import { loadPipeline } from '../runner/load.js';
import { registry } from '../stages/registry.js';
import { diagnosticLine } from '../runner/diagnostics.js';
import { artifactFromDir, makeTestContext } from './helpers/stage-context.js';
import { jpeg, writeKaggleSet, writeFiles } from './helpers/jpegs.js';

const DEFAULTS: SplitParams = {
  from: '',
  label_from: 'filename',
  label_pattern: '^([a-z]+)\\.',
  valid: 0.2,
  sample: { train: 200, valid: 50 },
  stratify: true,
  seed: 42,
  extensions: ['jpg', 'jpeg', 'png', 'webp'],
};

let root: string;
let dogscats: string; // fast.ai's layout: dogscats/{train,valid,sample/train,sample/valid}/{cats,dogs}, dogscats/test1
let seed = 1000;

async function images(prefix: string, n: number): Promise<[string, Buffer][]> {
  const out: [string, Buffer][] = [];
  for (let i = 0; i < n; i++) out.push([`${prefix}/${i}.jpg`, await jpeg(seed++)]);
  return out;
}

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'pipe-split-layouts-'));
  dogscats = path.join(root, 'fastai');
  const files = new Map<string, Buffer>([
    ...(await images('dogscats/train/cats', 6)),
    ...(await images('dogscats/train/dogs', 5)),
    ...(await images('dogscats/valid/cats', 3)),
    ...(await images('dogscats/valid/dogs', 2)),
    ...(await images('dogscats/sample/train/cats', 2)),
    ...(await images('dogscats/sample/train/dogs', 2)),
    ...(await images('dogscats/sample/valid/cats', 1)),
    ...(await images('dogscats/sample/valid/dogs', 1)),
    ...(await images('dogscats/test1', 4)),
  ]);
  await writeFiles(dogscats, files);
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function runSplit(input: string, p: Partial<SplitParams>): Promise<{ split: SplitFile; summary: string; logs: string[]; cleanup: () => Promise<void> }> {
  const ctx = await makeTestContext<SplitParams>({ ...DEFAULTS, ...p }, { inputs: { images: artifactFromDir(input, 'files') } });
  try {
    const result = await splitStage.run(ctx);
    const split = JSON.parse(await readFile(path.join(ctx.outDir, 'split.json'), 'utf8')) as SplitFile;
    return { split, summary: result?.summary ?? '', logs: ctx.logs, cleanup: () => ctx.cleanup() };
  } catch (e) {
    await ctx.cleanup();
    throw e;
  }
}

test("layout: folders keeps fast.ai's train/valid as given, plural class names, test1, its own samples", async () => {
  const r = await runSplit(dogscats, { layout: 'folders', from: 'dogscats', folders: { test: 'test1' }, sample: { train: 4, valid: 2 } });
  try {
    assert.deepEqual(r.split.classes, ['cats', 'dogs']);
    assert.equal(r.split.layout, 'folders');
    assert.deepEqual(r.split.counts.train, { cats: 6, dogs: 5 });
    assert.deepEqual(r.split.counts.valid, { cats: 3, dogs: 2 });
    assert.equal(r.split.counts.test, 4);
    // The given valid images are the valid set, nothing of sample/ or test1/ is trained on.
    assert.deepEqual(r.split.files.valid, ['valid/cats/0.jpg', 'valid/cats/1.jpg', 'valid/cats/2.jpg', 'valid/dogs/0.jpg', 'valid/dogs/1.jpg']);
    assert.ok(r.split.files.train.every((f) => /^train\/(cats|dogs)\/\d+\.jpg$/.test(f)));
    assert.equal(r.split.files['sample/train'].length, 4);
    assert.equal(r.split.files['sample/valid'].length, 2);
    assert.ok(r.split.files['sample/valid'].every((f) => r.split.files.valid.includes(f.replace(/^sample\//, ''))));
    assert.deepEqual(splitProblems(r.split), []);
  } finally {
    await r.cleanup();
  }
});

test('layout: folders with only valid/ is a dataset to evaluate on; with neither it is a located error', async () => {
  const dir = path.join(root, 'valid-only');
  await writeFiles(dir, new Map([...(await images('valid/cats', 2)), ...(await images('valid/dogs', 3))]));
  const r = await runSplit(dir, { layout: 'folders' }); // default samples (200/50) shrink to what there is
  try {
    assert.deepEqual(r.split.counts.train, { cats: 0, dogs: 0 });
    assert.deepEqual(r.split.counts.valid, { cats: 2, dogs: 3 });
    assert.equal(r.split.files['sample/valid'].length, 5);
    assert.ok(
      r.logs.some((l) => /no folder 'train': the dataset has no train set/.test(l)),
      r.logs.join('\n'),
    );
  } finally {
    await r.cleanup();
  }
  await assert.rejects(runSplit(dogscats, { layout: 'folders', from: 'dogscats', folders: { train: 'training', valid: 'validation' } }), (e: Error) => {
    assert.ok(e instanceof StageError);
    assert.match(e.message, /'dogscats' has no folder 'training' \(layout: folders needs a train or a valid folder\)/);
    assert.match(e.hint ?? '', /its folders: sample, test1, train, valid/);
    return true;
  });
});

test('valid: 0 trains on everything: no valid images, no valid sample', async () => {
  const dir = path.join(root, 'kaggle');
  await writeKaggleSet(dir, { cats: 4, dogs: 3 });
  const r = await runSplit(dir, { from: 'train', valid: 0, sample: { train: 5, valid: 50 } });
  try {
    assert.deepEqual(r.split.counts.train, { cat: 4, dog: 3 });
    assert.deepEqual(r.split.counts.valid, { cat: 0, dog: 0 });
    assert.deepEqual(r.split.files['sample/valid'], []);
    assert.equal(r.split.files['sample/train'].length, 5);
  } finally {
    await r.cleanup();
  }
});

test('byte-identical images in train and valid: listed, left out of valid; dedupe: false keeps them', async () => {
  const dir = path.join(root, 'dups');
  const same = await jpeg(7);
  const other = await jpeg(8);
  await writeFiles(
    dir,
    new Map([
      ...(await images('train/cats', 3)),
      ...(await images('train/dogs', 3)),
      ['train/cats/copy.jpg', same],
      ['train/dogs/again.jpg', other],
      ['valid/cats/same.jpg', same],
      ['valid/dogs/other.jpg', other],
      ...(await images('valid/dogs', 2)),
    ]),
  );
  const r = await runSplit(dir, { layout: 'folders', sample: { train: 0, valid: 0 } });
  try {
    assert.deepEqual(r.split.files.valid, ['valid/dogs/0.jpg', 'valid/dogs/1.jpg']);
    assert.equal(r.split.dedupe, true);
    assert.deepEqual(
      r.split.duplicates?.map((d) => [d.train, d.valid]),
      [
        [['train/cats/copy.jpg'], ['valid/cats/same.jpg']],
        [['train/dogs/again.jpg'], ['valid/dogs/other.jpg']],
      ],
    );
    assert.match(r.summary, /2 duplicates of train images left out of valid/);
    assert.ok(r.logs.some((l) => /^warn: 2 valid images are byte-identical to train images/.test(l)));
  } finally {
    await r.cleanup();
  }
  const kept = await runSplit(dir, { layout: 'folders', sample: { train: 0, valid: 0 }, dedupe: false });
  try {
    assert.equal(kept.split.files.valid.length, 4);
    assert.equal(kept.split.dedupe, false);
    assert.equal(kept.split.duplicates?.length, 2);
    assert.match(kept.summary, /2 duplicates of train images kept in valid/);
  } finally {
    await kept.cleanup();
  }
});

test('random layout: a duplicate that lands in valid is left out of it', async () => {
  const dir = path.join(root, 'random-dups');
  const same = await jpeg(9);
  const files = new Map<string, Buffer>();
  for (let i = 0; i < 6; i++) {
    files.set(`cat.${i}.jpg`, same); // all alike: whichever land in valid are copies of train images
    files.set(`dog.${i}.jpg`, await jpeg(seed++));
  }
  await writeFiles(dir, files);
  const r = await runSplit(dir, { valid: 4, sample: { train: 0, valid: 0 } });
  try {
    assert.deepEqual(r.split.counts.valid, { cat: 0, dog: 2 });
    assert.equal(r.split.duplicates?.length, 1);
    assert.equal(r.split.duplicates?.[0]?.valid.length, 2);
    assert.equal(r.split.duplicates?.[0]?.train.length, 4);
  } finally {
    await r.cleanup();
  }
});

test('valid: 1.0 is refused where it is written, naming both readings; 1, 0 and 0.5 pass', async () => {
  const check = async (valid: string): Promise<string[]> => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-split-valid-'));
    try {
      const yaml = [
        'stages:',
        '  raw:',
        '    uses: command',
        "    with: { run: 'true' }",
        '  split:',
        '    uses: split',
        '    inputs: { images: raw }',
        '    with:',
        `      valid: ${valid}`,
        '',
      ].join('\n');
      await writeFile(path.join(dir, 'p.yaml'), yaml);
      const r = await loadPipeline('p.yaml', { cwd: dir, registry });
      return r.ok ? [] : r.errors.map(diagnosticLine);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
  const lines = await check('1.0');
  assert.equal(lines.length, 1, lines.join('\n'));
  assert.match(lines[0]!, /p\.yaml:9:14/);
  assert.match(lines[0]!, /valid: 1\.0 reads as the count 1 \(one image\) or as the fraction 1\.0 \(all images\)/);
  assert.match(await check('2.0').then((l) => l.join('\n')), /reads as the count 2 \(2 images\) or as a fraction \(2\.0 is not below 1\)/);
  for (const ok of ['1', '0', '0.5', '2000']) assert.deepEqual(await check(ok), [], ok);
});

test('the new params have no schema defaults (a default would change the key of every split written before them)', () => {
  const props = splitStage.params.properties as Record<string, { default?: unknown; description?: string }>;
  for (const name of ['layout', 'folders', 'dedupe']) {
    assert.equal(props[name]?.default, undefined, `${name} must not have a schema default: defaults go into the cache key`);
  }
  assert.match(props['layout']?.description ?? '', /`random` \(default\)/);
  assert.match(props['dedupe']?.description ?? '', /\(default true\)/);
});
