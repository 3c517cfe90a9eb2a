// layout: random: which labelled images hold out for validation: a count, 0 or a fraction of
// them, per class (stratify) or from the pool, or whole groups of them (group_pattern: groups.ts).
import { StageError } from '../../runner/types.js';
import type { SplitParams } from './params.js';
import { apportion, byCodePoint, shuffle } from '../random.js';
import type { Found } from './find.js';
import { groupedSplit, type GroupedSplit } from './groups.js';

/** layout: random: hold out `valid` images (a count, 0, or a fraction), per class or from the pool, or whole groups of them. */
export function randomSplit(
  p: SplitParams,
  perClass: Found[][],
  classes: readonly string[],
  rng: () => number,
  group?: ReadonlyMap<Found, string>,
): { train: Found[][]; valid: Found[][]; groups?: GroupedSplit } {
  const sizes = perClass.map((l) => l.length);
  const total = sizes.reduce((s, n) => s + n, 0);
  if (!(p.valid >= 0) || (p.valid >= 1 && !Number.isInteger(p.valid)))
    throw new StageError(`split: valid must be a count (0, 1, 2, ...) or a fraction between 0 and 1, not ${p.valid}`);
  const validTotal = p.valid >= 1 || p.valid === 0 ? p.valid : Math.round(p.valid * total);
  if (validTotal < 1 && p.valid !== 0) throw new StageError(`split: valid ${p.valid} of ${total} images is less than one image`);
  if (validTotal >= total)
    throw new StageError(`split: valid asks for ${validTotal} images but only ${total} labelled images decode (none would be left to train on)`);
  if (group) {
    const groups = groupedSplit(perClass, classes, group, validTotal, p.stratify, rng);
    return { train: groups.train, valid: groups.valid, groups };
  }
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
    const pooled = shuffle(
      perClass.flat().sort((x, y) => byCodePoint(x.file, y.file)),
      rng,
    );
    const v = new Set(pooled.slice(0, validTotal));
    perClass.forEach((l) => {
      valid.push(l.filter((f) => v.has(f)));
      train.push(l.filter((f) => !v.has(f)));
    });
  }
  return { train, valid };
}
