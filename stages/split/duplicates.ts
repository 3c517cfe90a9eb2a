// Byte-identical images across train and valid: leakage that makes validation look better than
// it is. Found by sha256 (the same digest the artifact manifest records); with `dedupe` the
// valid copies are left out, so valid only holds images the model has not trained on.
import path from 'node:path';
import { mapLimit, sha256File } from '../../runner/stage-api.js';
import { byCodePoint } from '../random.js';
import type { Found } from './find.js';

/** One image that is in train and (also) in valid: the input's files that hold it. */
export interface Duplicate {
  readonly sha256: string;
  readonly train: string[];
  readonly valid: string[];
}

/** Files hashed at once: reading is the cost, and the disk is shared with the decoder. */
const HASH_CONCURRENCY = 8;

export async function findDuplicates(base: string, train: readonly Found[], valid: readonly Found[]): Promise<Duplicate[]> {
  if (train.length === 0 || valid.length === 0) return [];
  const hashOf = new Map<string, string>();
  const all = [...train, ...valid].map((f) => f.file);
  await mapLimit([...new Set(all)], HASH_CONCURRENCY, async (file) => {
    hashOf.set(file, await sha256File(path.join(base, file)));
  });
  const trainBy = new Map<string, string[]>();
  for (const f of train) {
    const h = hashOf.get(f.file)!;
    const list = trainBy.get(h);
    if (list) list.push(f.file);
    else trainBy.set(h, [f.file]);
  }
  const out = new Map<string, Duplicate>();
  for (const f of valid) {
    const h = hashOf.get(f.file)!;
    const inTrain = trainBy.get(h);
    if (!inTrain) continue;
    const d = out.get(h) ?? { sha256: h, train: [...inTrain].sort(byCodePoint), valid: [] };
    d.valid.push(f.file);
    out.set(h, d);
  }
  return [...out.values()].map((d) => ({ ...d, valid: d.valid.sort(byCodePoint) })).sort((a, b) => byCodePoint(a.valid[0]!, b.valid[0]!));
}
