// split's group_pattern (as scikit-learn's GroupShuffleSplit): pet photos named by breed
// (`Abyssinian_3.jpg`) in cat/ and dog/ folders; every breed lands wholly in train or wholly in
// valid, whatever the seed, and valid's size is met as closely as whole breeds allow.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { StageError } from '../runner/types.js';
import { splitStage, type SplitFile, type SplitParams } from '../stages/split.js';
import { artifactFromDir, makeTestContext } from './helpers/stage-context.js';
import { jpeg, writeFiles } from './helpers/jpegs.js';

let root: string;
let pets: string;
const BREEDS: Record<string, Record<string, number>> = {
  cat: { Abyssinian: 5, Bengal: 4, Persian: 6, Siamese: 3, Sphynx: 2 },
  dog: { beagle: 5, boxer: 4, pug: 6, samoyed: 2, shiba_inu: 3 },
};
const PATTERN = '^(.+)_\\d+\\.jpg$';

const DEFAULTS: SplitParams = {
  from: '',
  label_from: 'folder',
  label_pattern: '^([a-z]+)\\.',
  valid: 0.3,
  sample: { train: 0, valid: 0 },
  stratify: true,
  seed: 42,
  extensions: ['jpg'],
  group_pattern: PATTERN,
};

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'pipe-split-groups-'));
  pets = path.join(root, 'pets');
  const files = new Map<string, Buffer>();
  let seed = 1;
  for (const [cls, breeds] of Object.entries(BREEDS))
    for (const [breed, n] of Object.entries(breeds)) for (let i = 1; i <= n; i++) files.set(`${cls}/${breed}_${i}.jpg`, await jpeg(seed++));
  await writeFiles(pets, files);
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function runSplit(input: string, p: Partial<SplitParams>) {
  const ctx = await makeTestContext<SplitParams>({ ...DEFAULTS, ...p }, { inputs: { images: artifactFromDir(input, 'files') } });
  try {
    const result = await splitStage.run(ctx);
    const { readFile } = await import('node:fs/promises');
    return { split: JSON.parse(await readFile(path.join(ctx.outDir, 'split.json'), 'utf8')) as SplitFile, result: result ?? {}, logs: ctx.logs };
  } finally {
    await ctx.cleanup();
  }
}

const breedOf = (rel: string) => /([^/]+)_\d+\.jpg$/.exec(rel)![1]!;

test('group_pattern: no breed on both sides, whatever the seed; valid as close to asked as whole breeds allow', async () => {
  for (const seed of [1, 2, 3, 4, 5, 42]) {
    const { split, result, logs } = await runSplit(pets, { seed });
    const train = new Set(split.files.train.map(breedOf));
    const valid = new Set(split.files.valid.map(breedOf));
    assert.deepEqual(
      [...train].filter((b) => valid.has(b)),
      [],
      `seed ${seed}: breeds on both sides`,
    );
    assert.deepEqual(split.groups, { pattern: PATTERN, train: [...train].sort(), valid: [...valid].sort() });
    // Stratified by class: each class gives whole breeds, and keeps at least one to train on.
    for (const cls of ['cat', 'dog']) {
      assert.ok(split.counts.valid[cls]! > 0 && split.counts.train[cls]! > 0, `seed ${seed}: ${cls} ${JSON.stringify(split.counts)}`);
    }
    // 40 photos, valid 0.3 -> 12 asked (6 cats, 6 dogs): whole breeds of 2-6 photos land within 1 per class here.
    const n = split.files.valid.length;
    assert.ok(Math.abs(n - 12) <= 2, `seed ${seed}: valid ${n}`);
    assert.ok(
      logs.some((l) => l.includes(`valid holds ${n} images in ${valid.size} of 10 groups`)),
      logs.join('\n'),
    );
    assert.match(result.summary!, new RegExp(`groups: ${train.size} train, ${valid.size} valid`));
  }
});

test('group_pattern: a file that does not match is a located error naming it; not with layout: folders', async () => {
  const odd = path.join(root, 'odd');
  await writeFiles(
    odd,
    new Map([
      ['cat/Bengal_1.jpg', await jpeg(1)],
      ['cat/Bengal_2.jpg', await jpeg(2)],
      ['dog/pug_1.jpg', await jpeg(3)],
      ['dog/IMG0001.jpg', await jpeg(4)],
    ]),
  );
  await assert.rejects(runSplit(odd, {}), (e: Error) => e instanceof StageError && e.message.includes("'dog/IMG0001.jpg' does not match group_pattern"));
  await assert.rejects(runSplit(pets, { group_pattern: '^.+_\\d+' }), (e: Error) => e instanceof StageError && /needs a capture group/.test(e.message));
  await assert.rejects(
    runSplit(pets, { layout: 'folders' }),
    (e: Error) => e instanceof StageError && /group_pattern applies to layout: random/.test(e.message),
  );
});
