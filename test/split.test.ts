import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { StageError } from '../runner/types.js';
import { apportion, makeRng, splitStage, type SplitFile, type SplitParams } from '../stages/split.js';
import { artifactFromDir, makeTestContext } from './helpers/stage-context.js';
import { jpeg, truncatedJpeg, writeKaggleSet, writeFiles } from './helpers/jpegs.js';
import { listAll } from './helpers/files.js';

let root: string;
let kaggle: string; // train/cat.N.jpg x12, train/dog.N.jpg x8, test/N.jpg x5, plus junk
let folders: string; // cat/, dog/, bird/ class folders

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

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'pipe-split-'));
  kaggle = path.join(root, 'kaggle');
  await writeKaggleSet(kaggle, { cats: 12, dogs: 8, test: 5 });
  const good = await jpeg(99);
  await writeFiles(
    kaggle,
    new Map([
      ['train/cat.12.jpg', truncatedJpeg(good)], // corrupt: left out with the decoder's reason
      ['train/dog.8.jpg', Buffer.from('not an image at all')],
      ['train/notes.txt', Buffer.from('ignored: not an image extension')],
      ['train/.DS_Store', Buffer.from('hidden')],
      ['train/Mystery.jpg', good], // no label: does not match ^([a-z]+)\.
      ['test/6.jpg', Buffer.alloc(0)], // empty: corrupt test image
    ]),
  );
  folders = path.join(root, 'folders');
  let seed = 500;
  const files = new Map<string, Buffer>();
  for (const [cls, n] of [
    ['cat', 6],
    ['dog', 6],
    ['bird', 3],
  ] as const) {
    for (let i = 0; i < n; i++) files.set(`${cls}/img_${i}.png`.replace('.png', i % 2 ? '.jpg' : '.jpeg'), await jpeg(seed++));
  }
  files.set('loose.jpg', await jpeg(1));
  await writeFiles(folders, files);
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function runSplit(
  input: string,
  p: Partial<SplitParams>,
): Promise<{ split: SplitFile; raw: string; outDir: string; logs: string[]; cleanup: () => Promise<void> }> {
  const ctx = await makeTestContext<SplitParams>({ ...DEFAULTS, ...p }, { inputs: { images: artifactFromDir(input, 'files') } });
  try {
    await splitStage.run(ctx);
  } catch (e) {
    await ctx.cleanup();
    throw e;
  }
  const raw = await readFile(path.join(ctx.outDir, 'split.json'), 'utf8');
  return { split: JSON.parse(raw) as SplitFile, raw, outDir: ctx.outDir, logs: ctx.logs, cleanup: () => ctx.cleanup() };
}

test('the fast.ai layout, split.json in the agreed shape, hard links, corrupt files listed', async () => {
  const r = await runSplit(kaggle, { from: 'train', test: 'test', valid: 5, sample: { train: 4, valid: 2 } });
  try {
    const { split } = r;
    assert.deepEqual(Object.keys(split), ['version', 'classes', 'seed', 'counts', 'files', 'excluded']);
    assert.equal(split.version, 1);
    assert.deepEqual(split.classes, ['cat', 'dog']);
    assert.equal(split.seed, 42);
    // 12 good cats, 8 good dogs: 5 valid apportioned 3/2.
    assert.deepEqual(split.counts, {
      train: { cat: 9, dog: 6 },
      valid: { cat: 3, dog: 2 },
      'sample/train': { cat: 2, dog: 2 },
      'sample/valid': { cat: 1, dog: 1 },
      test: 5,
    });
    assert.deepEqual(Object.keys(split.files), ['train', 'valid', 'sample/train', 'sample/valid', 'test']);
    for (const [set, list] of Object.entries(split.files)) {
      assert.deepEqual(list, [...list].sort(), `${set} is sorted`);
      for (const f of list) assert.ok(f.startsWith(`${set}/`), f);
    }
    assert.deepEqual(split.files.test, ['test/unknown/1.jpg', 'test/unknown/2.jpg', 'test/unknown/3.jpg', 'test/unknown/4.jpg', 'test/unknown/5.jpg']);
    assert.ok(split.files.train.includes('train/cat/cat.0.jpg') || split.files.valid.includes('valid/cat/cat.0.jpg'));
    // Every file listed exists, and nothing else (but split.json).
    const listed = Object.values(split.files).flat().sort();
    assert.deepEqual(await listAll(r.outDir), [...listed, 'split.json'].sort());
    // Hard links into the input.
    const a = await stat(path.join(r.outDir, 'test/unknown/1.jpg'));
    const b = await stat(path.join(kaggle, 'test/1.jpg'));
    assert.equal(a.ino, b.ino);
    // train and valid are disjoint and cover every good labelled image; samples come from them.
    const base = (f: string) => path.posix.basename(f);
    const train = new Set(split.files.train.map(base));
    const valid = new Set(split.files.valid.map(base));
    assert.equal([...train].filter((f) => valid.has(f)).length, 0);
    assert.equal(train.size + valid.size, 20);
    for (const f of split.files['sample/train']) assert.ok(split.files.train.includes(f.replace(/^sample\//, '')), f);
    for (const f of split.files['sample/valid']) assert.ok(split.files.valid.includes(f.replace(/^sample\//, '')), f);
    // Excluded: corrupt images with the decoder's reason, unlabelled names; sorted by file.
    assert.deepEqual(
      split.excluded.map((e) => e.file),
      ['test/6.jpg', 'train/Mystery.jpg', 'train/cat.12.jpg', 'train/dog.8.jpg'],
    );
    const reason = (f: string) => split.excluded.find((e) => e.file === f)!.reason;
    assert.match(reason('train/cat.12.jpg'), /premature end of JPEG|Corrupt JPEG/i);
    assert.match(reason('train/dog.8.jpg'), /unsupported image format/i);
    assert.match(reason('test/6.jpg'), /empty|unsupported/i);
    assert.match(reason('train/Mystery.jpg'), /^no label/);
    assert.ok(r.logs.some((l) => l.includes('left out train/cat.12.jpg')));
    assert.ok(r.raw.endsWith('}\n'));
  } finally {
    await r.cleanup();
  }
});

test('deterministic: the same seed gives a byte-identical split.json; another seed another split', async () => {
  const p = { from: 'train', valid: 6, sample: { train: 3, valid: 2 } };
  const a = await runSplit(kaggle, p);
  const b = await runSplit(kaggle, p);
  const c = await runSplit(kaggle, { ...p, seed: 7 });
  try {
    assert.equal(a.raw, b.raw);
    assert.notDeepEqual(a.split.files.valid, c.split.files.valid);
    assert.deepEqual(a.split.counts, { ...c.split.counts });
  } finally {
    await Promise.all([a.cleanup(), b.cleanup(), c.cleanup()]);
  }
});

test('folder labels, a fraction for valid, stratified; files outside class folders are left out', async () => {
  const r = await runSplit(folders, { label_from: 'folder', valid: 0.2, sample: { train: 0, valid: 0 } });
  try {
    assert.deepEqual(r.split.classes, ['bird', 'cat', 'dog']);
    // 15 images, valid 3: one per class.
    assert.deepEqual(r.split.counts.valid, { bird: 1, cat: 1, dog: 1 });
    assert.deepEqual(r.split.counts.train, { bird: 2, cat: 5, dog: 5 });
    assert.deepEqual(r.split.counts['sample/train'], { bird: 0, cat: 0, dog: 0 });
    assert.deepEqual(r.split.excluded, [{ file: 'loose.jpg', reason: 'no label: not in a class folder' }]);
    assert.ok(r.split.files.train.every((f) => /^train\/(bird|cat|dog)\/img_\d\.jpe?g$/.test(f)));
  } finally {
    await r.cleanup();
  }
});

test('stratify: false draws valid from the pool', async () => {
  const r = await runSplit(kaggle, { from: 'train', valid: 10, stratify: false, sample: { train: 5, valid: 5 } });
  try {
    const sum = (o: Record<string, number>) => Object.values(o).reduce((s, n) => s + n, 0);
    assert.equal(sum(r.split.counts.valid), 10);
    assert.equal(sum(r.split.counts.train), 10);
    assert.equal(sum(r.split.counts['sample/train']), 5);
    assert.equal(sum(r.split.counts['sample/valid']), 5);
  } finally {
    await r.cleanup();
  }
});

test('clear errors: too little data, a missing folder, one class, a pattern without a group', async () => {
  const cases: [Partial<SplitParams>, RegExp][] = [
    [{ from: 'train', valid: 20 }, /valid asks for 20 images but only 20 labelled images decode/],
    [{ from: 'train', valid: 0.5, sample: { train: 11, valid: 1 } }, /sample\.train asks for 11 images but train has 10/],
    [{ from: 'train', valid: 2, sample: { train: 2, valid: 3 } }, /sample\.valid asks for 3 images but valid has 2/],
    [{ from: 'nope' }, /the input has no folder 'nope' \(from\)/],
    [{ from: 'train', test: 'missing' }, /the input has no folder 'missing' \(test\)/],
    [{ from: 'train', label_pattern: '^(cat)\\.' }, /found 1 class \('cat'\): a classifier needs at least two/],
    [{ from: 'train', label_pattern: '^[a-z]+\\.' }, /needs a capture group/],
    [{ from: 'train', label_pattern: '([a-z' }, /not a valid regular expression/],
  ];
  for (const [p, pattern] of cases) {
    await assert.rejects(runSplit(kaggle, p), (e: Error) => {
      assert.ok(e instanceof StageError, e.stack);
      assert.match(e.message, pattern);
      return true;
    });
  }
  // A class smaller than its share of valid (stratified): bird has 3 images.
  const small = path.join(root, 'small');
  await writeFiles(
    small,
    new Map([
      ['a/1.jpg', await jpeg(1)],
      ['b/1.jpg', await jpeg(2)],
      ['b/2.jpg', await jpeg(3)],
      ['b/3.jpg', await jpeg(4)],
    ]),
  );
  await assert.rejects(
    runSplit(small, { label_from: 'folder', valid: 2, sample: { train: 0, valid: 0 } }),
    /class 'a' has 1 images: holding out 1 for validation would leave none/,
  );
});

test('test images nested inside `from` are not taken as training images', async () => {
  const dir = path.join(root, 'flat');
  await writeFiles(
    dir,
    new Map([
      ['cat.1.jpg', await jpeg(1)],
      ['cat.2.jpg', await jpeg(2)],
      ['dog.1.jpg', await jpeg(3)],
      ['dog.2.jpg', await jpeg(4)],
      ['test/1.jpg', await jpeg(5)],
    ]),
  );
  const r = await runSplit(dir, { valid: 2, test: 'test', sample: { train: 0, valid: 0 } });
  try {
    assert.deepEqual(r.split.excluded, []);
    assert.equal(r.split.counts.test, 1);
  } finally {
    await r.cleanup();
  }
});

test('apportion and the PRNG', () => {
  assert.deepEqual(apportion(5, [12, 8]), [3, 2]);
  assert.deepEqual(apportion(3, [1, 1, 1]), [1, 1, 1]);
  assert.deepEqual(apportion(1, [1, 1]), [1, 0]);
  assert.deepEqual(apportion(0, [4, 4]), [0, 0]);
  const a = makeRng(42);
  const b = makeRng(42);
  const xs = Array.from({ length: 1000 }, () => a());
  assert.deepEqual(
    xs,
    Array.from({ length: 1000 }, () => b()),
  );
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05);
  assert.notEqual(makeRng(1)(), makeRng(2)());
});

test('schema: documented, defaults, dataset output and a files input', () => {
  assert.equal(splitStage.output, 'dataset');
  assert.deepEqual(splitStage.inputs.images?.kind, 'files');
  const props = splitStage.params.properties as Record<string, { description?: string; default?: unknown }>;
  for (const [name, prop] of Object.entries(props)) assert.ok(prop.description, name);
  assert.deepEqual(props.sample?.default, { train: 200, valid: 50 });
  assert.equal(props.seed?.default, 42);
});
