// `uses: split`: labelled images -> the Keras/fast.ai layout: train/<class>/, valid/<class>/,
// sample/train/<class>/, sample/valid/<class>/, test/unknown/ as hard links into the input
// artifact, plus split.json (the dataset contract: dataset-contract.ts). `layout: random` splits
// one labelled folder by seed; `layout: folders` keeps given train/valid folders as they are.
// Every image is decoded once; files that do not decode are left out and listed with the
// decoder's reason; images byte-identical in train and valid are reported (and left out of
// valid). Deterministic: files are sorted before a seeded shuffle, so the same input and seed
// give byte-identical split.json whatever order the file system lists them in.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Stage } from '../runner/types.js';
import { StageError } from '../runner/types.js';
import type { DatasetSplit } from './dataset-contract.js';
import { apportion, byCodePoint, makeRng, shuffle } from './random.js';
import { byClass, type Found } from './split/find.js';
import { findGivenSets, findLabelled } from './split/find-sets.js';
import { findDuplicates } from './split/duplicates.js';
import { decodeCheck, writeLinks } from './split/io.js';
import { groupRegExp, groupsOf, type GroupedSplit } from './split/groups.js';
import { randomSplit } from './split/random-split.js';
import type { SplitParams } from './split/params.js';

export { apportion, byCodePoint, makeRng, shuffle };
export type { SplitParams };

type SetName = 'train' | 'valid' | 'sample/train' | 'sample/valid';

/** The split.json this stage writes: the dataset contract with every set and count filled in. */
export type SplitFile = DatasetSplit &
  Required<Pick<DatasetSplit, 'seed' | 'excluded'>> & {
    readonly counts: Record<SetName, Record<string, number>> & { test: number };
    readonly files: Record<SetName | 'test', string[]>;
    /** With group_pattern: the groups on each side. */
    readonly groups?: { pattern: string; train: string[]; valid: string[] };
  };

export const splitStage: Stage<SplitParams> = {
  name: 'split',
  // 2: byte-identical train/valid images are left out of valid (version 1 kept them). A bump
  // re-splits once; where the data has no such pairs the dataset's bytes, and so its content
  // hash, are unchanged and what was trained on it stays cached.
  version: 2,
  description:
    'Splits labelled images into train/valid (and a small sample of each, plus an unlabelled test set) in the Keras/fast.ai layout, ' +
    'one folder per class, as hard links into the input, with split.json; or keeps given train/valid folders (`layout: folders`). ' +
    'Every image is decoded once: corrupt files are left out and listed. Images byte-identical in train and valid are reported and left out of valid.',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      from: {
        description:
          "Folder of the input holding the labelled images (e.g. 'train'), or with `layout: folders` the folder holding train/ and valid/; '' is the input's root.",
        type: 'string',
        default: '',
      },
      layout: {
        description:
          '`random` (default): split the labelled images under `from` by `valid` and `seed`. `folders`: keep the train and valid folders under `from` as they are ' +
          "(one sub-folder per class, as fast.ai's dogscats.zip, Keras' flow_from_directory, torchvision's ImageFolder); `valid` and `label_from` do not apply.",
        enum: ['random', 'folders'],
      },
      folders: {
        description:
          'With `layout: folders`: the folders under `from` holding each set. A missing train or valid folder is an empty set (a valid-only dataset evaluates a model on it); a missing test folder is no test set.',
        type: 'object',
        additionalProperties: false,
        properties: {
          train: { description: "Training images, one sub-folder per class (default 'train').", type: 'string', minLength: 1 },
          valid: { description: "Validation images, one sub-folder per class (default 'valid').", type: 'string', minLength: 1 },
          test: {
            description: "Unlabelled test images (default 'test'; fast.ai's dogscats has 'test1'). The `test` param, when given, wins.",
            type: 'string',
            minLength: 1,
          },
        },
      },
      label_from: {
        description:
          "'filename': the class is label_pattern's capture group on the file name (cat.123.jpg -> cat); 'folder': the class is the folder under `from`.",
        enum: ['filename', 'folder'],
        default: 'filename',
      },
      label_pattern: {
        description: 'With label_from: filename, a regular expression with one capture group matched against the file name.',
        type: 'string',
        minLength: 1,
        default: '^([a-z]+)\\.',
      },
      valid: {
        description:
          'Validation images: a count (e.g. 2000; 0 trains on everything, with no validation metrics) or a fraction of the labelled images (e.g. 0.2). `1.0` is refused: write 1 for one image.',
        oneOf: [
          { type: 'integer', minimum: 0 },
          { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
        ],
        default: 0.2,
      },
      sample: {
        description: 'Sizes of the small sample sets drawn from train and valid, for quick experiments (as the lesson). 0 for none.',
        type: 'object',
        additionalProperties: false,
        properties: {
          train: { description: 'Images in sample/train.', type: 'integer', minimum: 0, default: 200 },
          valid: { description: 'Images in sample/valid.', type: 'integer', minimum: 0, default: 50 },
        },
        default: { train: 200, valid: 50 },
      },
      test: {
        description: "Folder of the input holding unlabelled test images (e.g. 'test'): linked into test/unknown/.",
        type: 'string',
        minLength: 1,
      },
      stratify: {
        description: 'Keep each class in the same proportion in train, valid and the samples.',
        type: 'boolean',
        default: true,
      },
      seed: {
        description: 'Seed of the shuffle: the same input and seed give the same split.',
        type: 'integer',
        default: 42,
      },
      extensions: {
        description: 'File extensions taken as images (case-insensitive); other files are ignored.',
        type: 'array',
        items: { type: 'string', pattern: '^[A-Za-z0-9]+$' },
        minItems: 1,
        default: ['jpg', 'jpeg', 'png', 'webp'],
      },
      group_pattern: {
        description:
          "A regular expression whose capture group names each image's group, matched against the file name (e.g. `^(.+)_\\d+\\.jpg$`: the breed in `Abyssinian_12.jpg`): " +
          "all images of a group land on the same side, so validation measures kinds never trained on (as scikit-learn's GroupShuffleSplit). " +
          '`valid` is met as closely as whole groups allow. A file that does not match is an error. Not with `layout: folders`.',
        type: 'string',
        minLength: 1,
      },
      dedupe: {
        description:
          'Leave out of valid the images byte-identical (same sha256) to a train image, so validation only sees unseen images (default true). Either way they are listed in split.json.',
        type: 'boolean',
      },
    },
  },
  inputs: { images: { kind: 'files', description: 'labelled images (fetch-kaggle, images, synth-images)' } },
  output: 'dataset',
  async run(ctx) {
    const p = ctx.params;
    const input = ctx.inputs.images;
    if (!input) throw new StageError("split needs an input 'images'");
    const base = input.dir;
    const folders = p.layout === 'folders';
    const dedupe = p.dedupe ?? true;
    const exts = new Set(p.extensions.map((e) => e.toLowerCase()));
    if (folders && p.group_pattern !== undefined)
      throw new StageError('split: group_pattern applies to layout: random (given folders are kept as they are)', 'remove group_pattern, or layout: folders');
    const groupRe = p.group_pattern === undefined ? undefined : groupRegExp(p.group_pattern);

    // 1. Find and label.
    const found = folders ? await findGivenSets(p, base, exts, (m) => ctx.log.info(m)) : await findLabelled(p, base, exts);
    const { excluded, testFiles, testRel } = found;
    const labelled = [...found.train, ...found.valid, ...found.pool];

    // 2. Decode every image once; leave out what does not decode.
    const bad = await decodeCheck(ctx, base, [...labelled.map((f) => f.file), ...testFiles]);
    for (const [file, reason] of bad) excluded.push({ file, reason });
    const good = (list: readonly Found[]) => list.filter((f) => !bad.has(f.file));

    // 3. Classes (sorted); train and valid per class, shuffled with the seed.
    const classes = [...new Set(good(labelled).map((f) => f.cls))].sort(byCodePoint);
    if (classes.length < 2) {
      throw new StageError(
        `split: found ${classes.length} class${classes.length === 1 ? ` ('${classes[0]}')` : 'es'}: a classifier needs at least two`,
        folders || p.label_from === 'folder' ? 'each class needs its own folder' : `check label_pattern '${p.label_pattern}' against the file names`,
      );
    }
    const rng = makeRng(p.seed);
    let train: Found[][];
    let valid: Found[][];
    let groups: GroupedSplit | undefined;
    if (folders) {
      train = byClass(good(found.train), classes).map((l) => shuffle(l, rng));
      valid = byClass(good(found.valid), classes).map((l) => shuffle(l, rng));
    } else {
      const perClass = byClass(good(found.pool), classes).map((l) => shuffle(l, rng));
      const grouping = groupRe && groupsOf(perClass.flat(), groupRe, p.group_pattern!);
      ({ train, valid, groups } = randomSplit(p, perClass, classes, rng, grouping));
      if (groups) {
        const n = valid.reduce((s, l) => s + l.length, 0);
        ctx.log.info(
          `split: group_pattern: valid holds ${n} images in ${groups.validGroups.length} of ${groups.validGroups.length + groups.trainGroups.length} groups (${groups.validGroups.join(', ')}); ${p.valid} asked, whole groups only`,
        );
      }
    }

    // 4. Byte-identical images in train and valid: reported, and left out of valid unless dedupe: false.
    const duplicates = await findDuplicates(base, train.flat(), valid.flat());
    const dupValid = new Set(duplicates.flatMap((d) => d.valid));
    if (dupValid.size) {
      ctx.log.warn(
        `${dupValid.size} valid image${dupValid.size === 1 ? ' is' : 's are'} byte-identical to train images (listed in split.json): ${dedupe ? 'left out of valid (dedupe: false keeps them)' : 'kept in valid (dedupe: false)'}`,
      );
      if (dedupe) valid = valid.map((l) => l.filter((f) => !dupValid.has(f.file)));
    }

    // Samples come from the split's own train and valid sets (as the lesson), in shuffled order.
    const drawSample = (from: Found[][], asked: number, name: string): Found[][] => {
      const have = from.reduce((s, l) => s + l.length, 0);
      // An empty set has an empty sample; given folders are as large as they are.
      const size = have === 0 || folders ? Math.min(asked, have) : asked;
      if (size > have) throw new StageError(`split: sample.${name} asks for ${size} images but ${name} has ${have}`, `lower sample.${name}, or valid`);
      if (p.stratify) {
        const want = apportion(
          size,
          from.map((l) => l.length),
        );
        return from.map((l, i) => l.slice(0, want[i]!));
      }
      const pooled = shuffle(
        from.flat().sort((x, y) => byCodePoint(x.file, y.file)),
        rng,
      ).slice(0, size);
      const chosen = new Set(pooled);
      return from.map((l) => l.filter((f) => chosen.has(f)));
    };
    const sampleTrain = drawSample(train, p.sample.train, 'train');
    const sampleValid = drawSample(valid, p.sample.valid, 'valid');

    // 5. Lay out the links.
    const links: [string, string][] = [];
    const files = { train: [] as string[], valid: [] as string[], 'sample/train': [] as string[], 'sample/valid': [] as string[], test: [] as string[] };
    const counts = {
      train: {} as Record<string, number>,
      valid: {} as Record<string, number>,
      'sample/train': {} as Record<string, number>,
      'sample/valid': {} as Record<string, number>,
      test: 0,
    };
    const place = (set: 'train' | 'valid' | 'sample/train' | 'sample/valid', groups: Found[][]): void => {
      const seen = new Set<string>();
      classes.forEach((c, i) => {
        const group = groups[i]!;
        counts[set][c] = group.length;
        for (const f of group) {
          const rel = `${set}/${c}/${f.outName}`;
          if (seen.has(rel)) throw new StageError(`split: two images would both be ${rel} (from files named alike in different folders)`);
          seen.add(rel);
          files[set].push(rel);
          links.push([f.file, rel]);
        }
      });
      files[set].sort(byCodePoint);
    };
    place('train', train);
    place('valid', valid);
    place('sample/train', sampleTrain);
    place('sample/valid', sampleValid);
    const testSeen = new Set<string>();
    for (const file of testFiles) {
      if (bad.has(file)) continue;
      const rel = `test/unknown/${file
        .slice(testRel!.length + 1)
        .split('/')
        .join('_')}`;
      if (testSeen.has(rel)) throw new StageError(`split: two test images would both be ${rel}`);
      testSeen.add(rel);
      files.test.push(rel);
      links.push([file, rel]);
    }
    files.test.sort(byCodePoint);
    counts.test = files.test.length;
    await writeLinks(ctx, base, links);

    excluded.sort((x, y) => byCodePoint(x.file, y.file));
    // Fields beyond the first version's are written only when they say something, so a split
    // made before them is byte-identical (and what was trained on it stays cached).
    const split: SplitFile = {
      version: 1,
      classes,
      ...(folders ? { layout: 'folders' as const } : {}),
      seed: p.seed,
      counts,
      files,
      excluded,
      ...(duplicates.length ? { duplicates, dedupe } : {}),
      ...(groups ? { groups: { pattern: p.group_pattern!, train: groups.trainGroups, valid: groups.validGroups } } : {}),
    };
    await writeFile(path.join(ctx.outDir, 'split.json'), `${JSON.stringify(split, null, 2)}\n`);

    const n = (set: keyof typeof files): number => files[set].length;
    const dupNote = dupValid.size
      ? `; ${dupValid.size} duplicate${dupValid.size === 1 ? '' : 's'} of train images ${dedupe ? 'left out of' : 'kept in'} valid`
      : '';
    return {
      meta: {
        classes,
        layout: folders ? 'folders' : 'random',
        train: n('train'),
        valid: n('valid'),
        sample_train: n('sample/train'),
        sample_valid: n('sample/valid'),
        test: n('test'),
        excluded: excluded.length,
        corrupt: bad.size,
        duplicates: dupValid.size,
        ...(groups ? { groups_train: groups.trainGroups.length, groups_valid: groups.validGroups.length } : {}),
      },
      summary: `${classes.length} classes (${classes.join(', ')}): train ${n('train')}, valid ${n('valid')}, sample ${n('sample/train')}/${n('sample/valid')}, test ${n('test')}${groups ? ` (groups: ${groups.trainGroups.length} train, ${groups.validGroups.length} valid)` : ''}; ${excluded.length} left out${dupNote}`,
    };
  },
};
