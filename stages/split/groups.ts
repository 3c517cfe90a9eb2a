// `group_pattern`: a grouped split, as scikit-learn's GroupShuffleSplit. The pattern's capture
// group names each image's group (the breed in `Abyssinian_12.jpg`); whole groups go to valid,
// so validation measures kinds of photos never trained on. The valid count is met as closely as
// whole groups allow (the summary says the real one).
import path from 'node:path';
import { StageError } from '../../runner/types.js';
import { apportion, byCodePoint, shuffle } from '../random.js';
import type { Found } from './find.js';

/** The compiled pattern; StageError when it is not a regular expression with a capture group. */
export function groupRegExp(source: string): RegExp {
  let re: RegExp;
  try {
    re = new RegExp(source);
  } catch (e) {
    throw new StageError(`split: group_pattern is not a valid regular expression (${(e as Error).message})`);
  }
  if ((new RegExp(`${source}|`).exec('')?.length ?? 1) < 2)
    throw new StageError(`split: group_pattern '${source}' needs a capture group naming the group, e.g. '^(.+)_\\d+\\.jpg$'`);
  return re;
}

/** Each image's group: the pattern's first capture group on its file name. A file that does not match is an error naming it. */
export function groupsOf(files: readonly Found[], re: RegExp, source: string): Map<Found, string> {
  const out = new Map<Found, string>();
  for (const f of files) {
    const g = re.exec(path.posix.basename(f.file))?.[1];
    if (!g)
      throw new StageError(
        `split: '${f.file}' does not match group_pattern '${source}' (no group)`,
        'every labelled image needs a group: widen group_pattern, or move the file out',
      );
    out.set(f, g);
  }
  return out;
}

export interface GroupedSplit {
  readonly train: Found[][];
  readonly valid: Found[][];
  /** Group names on each side, sorted. */
  readonly validGroups: string[];
  readonly trainGroups: string[];
}

/**
 * Whole groups to valid until `validTotal` images are reached as closely as they allow: groups in
 * a seeded order, each taken when it brings the count nearer the target. Stratified (per class
 * targets) when every group lies in one class; else over all groups. `perClass` keeps its order.
 */
export function groupedSplit(
  perClass: readonly Found[][],
  classes: readonly string[],
  group: ReadonlyMap<Found, string>,
  validTotal: number,
  stratify: boolean,
  rng: () => number,
): GroupedSplit {
  const members = new Map<string, Found[]>();
  for (const f of perClass.flat()) {
    const g = group.get(f)!;
    (members.get(g) ?? members.set(g, []).get(g)!).push(f);
  }
  const order = shuffle([...members.keys()].sort(byCodePoint), rng);
  const classesOf = (g: string) => new Set(members.get(g)!.map((f) => f.cls));
  const oneClassEach = order.every((g) => classesOf(g).size === 1);
  const chosen = new Set<string>();
  const take = (groups: readonly string[], target: number) => {
    let taken = 0;
    for (const g of groups) {
      const n = members.get(g)!.length;
      if (Math.abs(taken + n - target) < Math.abs(taken - target)) {
        chosen.add(g);
        taken += n;
      }
    }
  };
  if (stratify && oneClassEach) {
    const want = apportion(
      validTotal,
      perClass.map((l) => l.length),
    );
    classes.forEach((c, i) =>
      take(
        order.filter((g) => members.get(g)![0]!.cls === c),
        want[i]!,
      ),
    );
  } else {
    take(order, validTotal);
  }
  const train: Found[][] = [];
  const valid: Found[][] = [];
  classes.forEach((c, i) => {
    const l = perClass[i]!;
    const v = l.filter((f) => chosen.has(group.get(f)!));
    if (v.length === l.length && v.length > 0) {
      throw new StageError(
        `split: every group of class '${c}' went to valid, leaving none to train on`,
        'lower `valid`, or use groups that split each class into more parts',
      );
    }
    valid.push(v);
    train.push(l.filter((f) => !chosen.has(group.get(f)!)));
  });
  const all = [...members.keys()].sort(byCodePoint);
  return { train, valid, validGroups: all.filter((g) => chosen.has(g)), trainGroups: all.filter((g) => !chosen.has(g)) };
}
