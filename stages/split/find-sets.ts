// Step 1 of split: which images make up each set before decoding. layout: random labels the
// images under `from` (by file name or class folder) into one pool; layout: folders takes the
// given train/valid folders as they are. Both find the unlabelled test folder.
import { StageError } from '../../runner/types.js';
import { isDir, labelByFolder, labelByName, listImages, normaliseSub, requireDir, type Excluded, type Found } from './find.js';
import type { SplitParams } from './params.js';

export interface FoundSets {
  /** layout: folders: the given sets. */
  readonly train: Found[];
  readonly valid: Found[];
  /** layout: random: the labelled images to split. */
  readonly pool: Found[];
  readonly testFiles: string[];
  readonly testRel: string | undefined;
  readonly excluded: Excluded[];
}

/** layout: random: the labelled images under `from` (by file name or class folder) and the test folder. */
export async function findLabelled(p: SplitParams, base: string, exts: ReadonlySet<string>): Promise<FoundSets> {
  const from = normaliseSub(p.from);
  const testRel = p.test === undefined ? undefined : normaliseSub(p.test);
  if (testRel === '') throw new StageError('split: `test` must name a folder of the input, not its root');
  let pattern: RegExp | undefined;
  if (p.label_from === 'filename') {
    try {
      pattern = new RegExp(p.label_pattern);
    } catch (e) {
      throw new StageError(`split: label_pattern is not a valid regular expression (${(e as Error).message})`);
    }
    if ((new RegExp(`${p.label_pattern}|`).exec('')?.length ?? 1) < 2)
      throw new StageError(`split: label_pattern '${p.label_pattern}' needs a capture group, e.g. '^([a-z]+)\\.'`);
  }
  await requireDir(base, from, 'from');
  if (testRel !== undefined) await requireDir(base, testRel, 'test');
  const skip = testRel !== undefined && (from === '' || testRel.startsWith(`${from}/`)) ? new Set([testRel]) : new Set<string>();
  const candidates = await listImages(base, from, exts, skip);
  const excluded: Excluded[] = [];
  const pool = pattern ? labelByName(candidates, from, pattern, p.label_pattern, excluded) : labelByFolder(candidates, from, excluded);
  if (pool.length === 0) {
    throw new StageError(
      `split: no labelled images under '${from || '.'}' (${candidates.length} image files, none labelled)`,
      p.label_from === 'filename'
        ? `label_pattern '${p.label_pattern}' must match the file names; or use label_from: folder`
        : 'put each class in its own folder under `from`',
    );
  }
  const testFiles = testRel === undefined ? [] : await listImages(base, testRel, exts);
  return { train: [], valid: [], pool, testFiles, testRel, excluded };
}

/** layout: folders: the given train and valid folders (one sub-folder per class) and the test folder. */
export async function findGivenSets(p: SplitParams, base: string, exts: ReadonlySet<string>, log: (m: string) => void): Promise<FoundSets> {
  const from = normaliseSub(p.from);
  await requireDir(base, from, 'from');
  const under = (name: string, what: string): string => {
    const rel = normaliseSub(name, what);
    if (rel === '') throw new StageError(`split: ${what} must name a folder inside '${from || '.'}', not the folder itself`);
    return from ? `${from}/${rel}` : rel;
  };
  const trainRel = under(p.folders?.train ?? 'train', 'folders.train');
  const validRel = under(p.folders?.valid ?? 'valid', 'folders.valid');
  let testRel: string | undefined;
  if (p.test !== undefined) {
    testRel = normaliseSub(p.test, 'test');
    await requireDir(base, testRel, 'test');
  } else if (p.folders?.test !== undefined) {
    testRel = under(p.folders.test, 'folders.test');
    await requireDir(base, testRel, 'folders.test', from);
  } else if (await isDir(base, under('test', 'folders.test'))) {
    testRel = under('test', 'folders.test');
  }
  const [hasTrain, hasValid] = [await isDir(base, trainRel), await isDir(base, validRel)];
  if (!hasTrain && !hasValid) await requireDir(base, trainRel, 'layout: folders needs a train or a valid folder', from);
  if (!hasTrain) log(`split: no folder '${trainRel}': the dataset has no train set (it can evaluate a model, not train one)`);
  if (!hasValid) log(`split: no folder '${validRel}': the dataset has no valid set`);
  const excluded: Excluded[] = [];
  const list = async (rel: string, has: boolean) => (has ? labelByFolder(await listImages(base, rel, exts), rel, excluded) : []);
  const train = await list(trainRel, hasTrain);
  const valid = await list(validRel, hasValid);
  if (train.length + valid.length === 0)
    throw new StageError(
      `split: no images in class folders under '${trainRel}' or '${validRel}'`,
      'put each class in its own folder: train/cats/1.jpg, valid/dogs/2.jpg',
    );
  const testFiles = testRel === undefined ? [] : await listImages(base, testRel, exts);
  return { train, valid, pool: [], testFiles, testRel, excluded };
}
