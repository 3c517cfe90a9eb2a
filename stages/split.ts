// `uses: split`: labelled images -> the Keras/fast.ai layout: train/<class>/, valid/<class>/,
// sample/train/<class>/, sample/valid/<class>/, test/unknown/ as hard links into the input
// artifact, plus split.json (the model and report stages read it). Every image is decoded once;
// files that do not decode are left out and listed with the decoder's reason. Deterministic:
// files are sorted before a seeded shuffle, so the same input and seed give byte-identical
// split.json whatever order the file system lists them in.
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Stage } from '../runner/types.js';
import { StageError } from '../runner/types.js';
import { mapLimit } from '../runner/hash-files.js';
import { apportion, byCodePoint, makeRng, shuffle } from './random.js';

export { apportion, byCodePoint, makeRng, shuffle };

export interface SplitParams {
  from: string;
  label_from: 'filename' | 'folder';
  label_pattern: string;
  valid: number;
  sample: { train: number; valid: number };
  test?: string;
  stratify: boolean;
  seed: number;
  extensions: string[];
}

/** The split.json written by this stage (version 1). */
export interface SplitFile {
  readonly version: 1;
  readonly classes: string[];
  readonly seed: number;
  readonly counts: {
    train: Record<string, number>;
    valid: Record<string, number>;
    'sample/train': Record<string, number>;
    'sample/valid': Record<string, number>;
    test: number;
  };
  readonly files: { train: string[]; valid: string[]; 'sample/train': string[]; 'sample/valid': string[]; test: string[] };
  readonly excluded: { file: string; reason: string }[];
}

/** Decodes in flight: measured best at 3-4 on two cores (sharp runs one thread per call). */
const DECODE_CONCURRENCY = 4;

// ---- finding the files ----

interface Found {
  /** Path in the input artifact, '/'-separated. */
  readonly file: string;
  readonly cls: string;
  /** File name in the class folder of the output. */
  readonly outName: string;
}

function isHidden(name: string): boolean {
  return name.startsWith('.') || name === '__MACOSX';
}

/** Image files under `dir` (relative to `base`), sorted; `skip` is a base-relative folder left out. */
async function listImages(base: string, dir: string, exts: ReadonlySet<string>, skip?: string): Promise<string[]> {
  const out: string[] = [];
  const stack = [dir];
  while (stack.length) {
    const rel = stack.pop()!;
    const entries = await readdir(path.join(base, rel), { withFileTypes: true });
    for (const e of entries) {
      if (isHidden(e.name)) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (r !== skip) stack.push(r);
      } else if (e.isFile() && exts.has(path.posix.extname(e.name).slice(1).toLowerCase())) {
        out.push(r);
      }
    }
  }
  return out.sort(byCodePoint);
}

function safeSegment(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\\') && !name.includes('\0');
}

async function requireDir(base: string, rel: string, what: string): Promise<void> {
  let isDir = false;
  try {
    isDir = (await stat(path.join(base, rel))).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir) {
    const top = (await readdir(base, { withFileTypes: true })).filter((e) => e.isDirectory() && !isHidden(e.name)).map((e) => e.name).sort(byCodePoint);
    throw new StageError(`split: the input has no folder '${rel}' (${what})`, top.length ? `its folders: ${top.slice(0, 20).join(', ')}` : 'it has no folders');
  }
}

function normaliseSub(p: string): string {
  const n = path.posix.normalize(p.replace(/\\/g, '/')).replace(/^\.\/?/, '').replace(/\/+$/, '');
  if (n.startsWith('/') || n === '..' || n.startsWith('../')) throw new StageError(`split: '${p}' must be a folder inside the input`);
  return n === '.' ? '' : n;
}

// ---- the stage ----

export const splitStage: Stage<SplitParams> = {
  name: 'split',
  version: 1,
  description:
    'Splits labelled images into train/valid (and a small sample of each, plus an unlabelled test set) in the Keras/fast.ai layout, ' +
    'one folder per class, as hard links into the input, with split.json. Every image is decoded once: corrupt files are left out and listed.',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      from: {
        description: "Folder of the input holding the labelled images (e.g. 'train'); '' is the input's root.",
        type: 'string',
        default: '',
      },
      label_from: {
        description: "'filename': the class is label_pattern's capture group on the file name (cat.123.jpg -> cat); 'folder': the class is the folder under `from`.",
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
        description: 'Validation images: a count (e.g. 2000) or a fraction of the labelled images (e.g. 0.2).',
        oneOf: [
          { type: 'integer', minimum: 1 },
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
    },
  },
  inputs: { images: { kind: 'files', description: 'labelled images (fetch-kaggle, images, synth-images)' } },
  output: 'dataset',
  async run(ctx) {
    const p = ctx.params;
    const input = ctx.inputs.images;
    if (!input) throw new StageError("split needs an input 'images'");
    const base = input.dir;
    const from = normaliseSub(p.from);
    const testRel = p.test === undefined ? undefined : normaliseSub(p.test);
    if (testRel === '') throw new StageError("split: `test` must name a folder of the input, not its root");
    let pattern: RegExp | undefined;
    if (p.label_from === 'filename') {
      try {
        pattern = new RegExp(p.label_pattern);
      } catch (e) {
        throw new StageError(`split: label_pattern is not a valid regular expression (${(e as Error).message})`);
      }
      if ((new RegExp(`${p.label_pattern}|`).exec('')?.length ?? 1) < 2) throw new StageError(`split: label_pattern '${p.label_pattern}' needs a capture group, e.g. '^([a-z]+)\\.'`);
    }
    const exts = new Set(p.extensions.map((e) => e.toLowerCase()));
    await requireDir(base, from, 'from');
    if (testRel !== undefined) await requireDir(base, testRel, 'test');

    // 1. Find and label.
    const skip = testRel !== undefined && (from === '' || testRel.startsWith(`${from}/`)) ? testRel : undefined;
    const candidates = await listImages(base, from, exts, skip);
    const excluded: { file: string; reason: string }[] = [];
    const labelled: Found[] = [];
    const prefix = from ? `${from}/` : '';
    for (const file of candidates) {
      const below = file.slice(prefix.length);
      let cls: string | undefined;
      let outName: string;
      if (p.label_from === 'filename') {
        const m = pattern!.exec(path.posix.basename(below));
        cls = m?.[1];
        outName = below.split('/').join('_');
        if (!cls) {
          excluded.push({ file, reason: `no label: the file name does not match ${p.label_pattern}` });
          continue;
        }
      } else {
        const parts = below.split('/');
        if (parts.length < 2) {
          excluded.push({ file, reason: 'no label: not in a class folder' });
          continue;
        }
        cls = parts[0]!;
        outName = parts.slice(1).join('_');
      }
      if (!safeSegment(cls)) {
        excluded.push({ file, reason: `no label: '${cls}' cannot be a folder name` });
        continue;
      }
      labelled.push({ file, cls, outName });
    }
    const testFiles = testRel === undefined ? [] : await listImages(base, testRel, exts);
    if (labelled.length === 0) {
      throw new StageError(
        `split: no labelled images under '${from || '.'}' (${candidates.length} image files, none labelled)`,
        p.label_from === 'filename' ? `label_pattern '${p.label_pattern}' must match the file names; or use label_from: folder` : 'put each class in its own folder under `from`',
      );
    }

    // 2. Decode every image once; leave out what does not decode.
    const { checkImage } = await import('./vision/decode-check.js');
    const all = [...labelled.map((f) => f.file), ...testFiles];
    const bar = ctx.progress('decode check', all.length);
    const bad = new Map<string, string>();
    await mapLimit(all, DECODE_CONCURRENCY, async (file) => {
      if (ctx.signal.aborted) throw new StageError('interrupted');
      const reason = await checkImage(path.join(base, file));
      if (reason !== undefined) bad.set(file, reason);
      bar.tick();
    });
    // Decoder messages are only reproducible when nothing else decodes at the same time (see
    // decode-check.ts): check the failures again, one by one, for the reason that is recorded.
    for (const file of [...bad.keys()].sort(byCodePoint)) {
      const reason = await checkImage(path.join(base, file));
      if (reason === undefined) bad.delete(file);
      else bad.set(file, reason);
    }
    bar.done(`${all.length - bad.size} ok, ${bad.size} corrupt`);
    for (const [file, reason] of bad) excluded.push({ file, reason });
    for (const [file, reason] of [...bad].sort((x, y) => byCodePoint(x[0], y[0])).slice(0, 10)) ctx.log.warn(`left out ${file}: ${reason}`);
    if (bad.size > 10) ctx.log.warn(`... and ${bad.size - 10} more corrupt files (listed in split.json)`);

    // 3. Group by class (sorted), shuffle with the seed, split.
    const byClass = new Map<string, Found[]>();
    for (const f of labelled) {
      if (bad.has(f.file)) continue;
      let list = byClass.get(f.cls);
      if (!list) byClass.set(f.cls, (list = []));
      list.push(f);
    }
    const classes = [...byClass.keys()].sort(byCodePoint);
    if (classes.length < 2) {
      throw new StageError(
        `split: found ${classes.length} class${classes.length === 1 ? ` ('${classes[0]}')` : 'es'}: a classifier needs at least two`,
        p.label_from === 'filename' ? `check label_pattern '${p.label_pattern}' against the file names` : 'each class needs its own folder under `from`',
      );
    }
    const rng = makeRng(p.seed);
    const perClass = classes.map((c) => shuffle(byClass.get(c)!, rng)); // each already in path order
    const sizes = perClass.map((l) => l.length);
    const total = sizes.reduce((s, n) => s + n, 0);
    if (!(p.valid > 0) || (p.valid >= 1 && !Number.isInteger(p.valid))) throw new StageError(`split: valid must be a count (1, 2, ...) or a fraction between 0 and 1, not ${p.valid}`);
    const validTotal = p.valid >= 1 ? p.valid : Math.round(p.valid * total);
    if (validTotal < 1) throw new StageError(`split: valid ${p.valid} of ${total} images is less than one image`);
    if (validTotal >= total) throw new StageError(`split: valid asks for ${validTotal} images but only ${total} labelled images decode (none would be left to train on)`);

    const train: Found[][] = [];
    const valid: Found[][] = [];
    if (p.stratify) {
      const want = apportion(validTotal, sizes);
      classes.forEach((c, i) => {
        const n = sizes[i]!;
        const v = want[i]!;
        if (v >= n) throw new StageError(`split: class '${c}' has ${n} images: holding out ${v} for validation would leave none to train on`, 'lower `valid`');
        valid.push(perClass[i]!.slice(0, v));
        train.push(perClass[i]!.slice(v));
      });
    } else {
      const pooled = shuffle(perClass.flat().sort((x, y) => byCodePoint(x.file, y.file)), rng);
      const v = new Set(pooled.slice(0, validTotal));
      classes.forEach((_c, i) => {
        valid.push(perClass[i]!.filter((f) => v.has(f)));
        train.push(perClass[i]!.filter((f) => !v.has(f)));
      });
    }
    // Samples come from the split's own train and valid sets (as the lesson), in shuffled order.
    const drawSample = (from: Found[][], size: number, name: string): Found[][] => {
      const have = from.reduce((s, l) => s + l.length, 0);
      if (size > have) throw new StageError(`split: sample.${name} asks for ${size} images but ${name} has ${have}`, `lower sample.${name}, or valid`);
      if (p.stratify) {
        const want = apportion(size, from.map((l) => l.length));
        return from.map((l, i) => l.slice(0, want[i]!));
      }
      const pooled = shuffle(from.flat().sort((x, y) => byCodePoint(x.file, y.file)), rng).slice(0, size);
      const chosen = new Set(pooled);
      return from.map((l) => l.filter((f) => chosen.has(f)));
    };
    const sampleTrain = drawSample(train, p.sample.train, 'train');
    const sampleValid = drawSample(valid, p.sample.valid, 'valid');

    // 4. Lay out the links.
    const links: [string, string][] = [];
    const files: SplitFile['files'] = { train: [], valid: [], 'sample/train': [], 'sample/valid': [], test: [] };
    const counts: SplitFile['counts'] = { train: {}, valid: {}, 'sample/train': {}, 'sample/valid': {}, test: 0 };
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
      const rel = `test/unknown/${file.slice(testRel!.length + 1).split('/').join('_')}`;
      if (testSeen.has(rel)) throw new StageError(`split: two test images would both be ${rel}`);
      testSeen.add(rel);
      files.test.push(rel);
      links.push([file, rel]);
    }
    files.test.sort(byCodePoint);
    counts.test = files.test.length;

    const dirs = new Set(links.map(([, rel]) => path.posix.dirname(rel)));
    for (const d of dirs) await mkdir(path.join(ctx.outDir, d), { recursive: true });
    const { linkOrCopy } = await import('./images.js');
    const linkBar = ctx.progress('link', links.length);
    let copies = 0;
    await mapLimit(links, 16, async ([src, rel]) => {
      if ((await linkOrCopy(path.join(base, src), path.join(ctx.outDir, rel))) === 'copy') copies++;
      linkBar.tick();
    });
    linkBar.done(copies ? `${copies} copied (another device)` : undefined);

    excluded.sort((x, y) => byCodePoint(x.file, y.file));
    const split: SplitFile = { version: 1, classes, seed: p.seed, counts, files, excluded };
    await writeFile(path.join(ctx.outDir, 'split.json'), `${JSON.stringify(split, null, 2)}\n`);

    const n = (set: keyof typeof files): number => files[set].length;
    return {
      meta: {
        classes,
        train: n('train'),
        valid: n('valid'),
        sample_train: n('sample/train'),
        sample_valid: n('sample/valid'),
        test: n('test'),
        excluded: excluded.length,
        corrupt: bad.size,
      },
      summary: `${classes.length} classes (${classes.join(', ')}): train ${n('train')}, valid ${n('valid')}, sample ${n('sample/train')}/${n('sample/valid')}, test ${n('test')}; ${excluded.length} left out`,
    };
  },
};
