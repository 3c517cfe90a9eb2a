// The dataset contract: what a `dataset` artifact holds, so that any program (a `command` stage
// with `kind: dataset`, a script of one's own) can make a dataset that finetune, evaluate and
// predict accept. The README's "The dataset format" section documents the same rules.
//
//   split.json             { version: 1, classes: [...], files: { train: [...], valid: [...], ... } }
//   train/<class>/<name>   the images split.json lists, each under its set and class folder
//   test/<anything>/<name> unlabelled images (test/unknown/ from `split`)
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';

/** The sets a dataset may list; `train` and `valid` (and the samples) hold labelled images. */
export const LABELLED_SETS = ['train', 'valid', 'sample/train', 'sample/valid'] as const;
export type LabelledSet = (typeof LABELLED_SETS)[number];
export const DATASET_SETS = [...LABELLED_SETS, 'test'] as const;
export type DatasetSet = (typeof DATASET_SETS)[number];

/** split.json, version 1. Only `version`, `classes` and `files` are required of other programs. */
export interface DatasetSplit {
  readonly version: 1;
  readonly classes: string[];
  /** How `split` laid it out: 'random' (split by seed) or 'folders' (given train/valid folders). */
  readonly layout?: 'random' | 'folders';
  readonly seed?: number;
  readonly counts?: {
    train: Record<string, number>;
    valid: Record<string, number>;
    'sample/train': Record<string, number>;
    'sample/valid': Record<string, number>;
    test: number;
  };
  readonly files: Partial<Record<DatasetSet, string[]>>;
  readonly excluded?: { file: string; reason: string }[];
  /** Images byte-identical in train and valid (input paths), and whether valid kept them. */
  readonly duplicates?: { sha256: string; train: string[]; valid: string[] }[];
  readonly dedupe?: boolean;
}

const MAX_PROBLEMS = 10;

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/** What is wrong with a parsed split.json (empty: it follows the contract). */
export function splitProblems(json: unknown): string[] {
  const out: string[] = [];
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return ['split.json must hold a JSON object'];
  const s = json as Record<string, unknown>;
  if (s['version'] !== 1) out.push(`'version' must be 1, not ${JSON.stringify(s['version'])}`);
  const classes = s['classes'];
  if (!isStringArray(classes) || classes.length < 2) out.push("'classes' must list at least two class names");
  else {
    const bad = classes.find((c) => c === '' || c === '.' || c === '..' || /[/\\\0]/.test(c));
    if (bad !== undefined) out.push(`class ${JSON.stringify(bad)} cannot be a folder name`);
    if (new Set(classes).size !== classes.length) out.push("'classes' lists a class twice");
  }
  const files = s['files'];
  if (files === null || typeof files !== 'object' || Array.isArray(files)) {
    out.push("'files' must be an object of set name -> file list (train, valid, sample/train, sample/valid, test)");
    return out;
  }
  const known = new Set<string>(DATASET_SETS);
  const cls = new Set(isStringArray(classes) ? classes : []);
  for (const [set, list] of Object.entries(files as Record<string, unknown>)) {
    if (!known.has(set)) {
      out.push(`files: unknown set '${set}' (known: ${DATASET_SETS.join(', ')})`);
      continue;
    }
    if (!isStringArray(list)) {
      out.push(`files.${set} must be a list of paths`);
      continue;
    }
    for (const f of list) {
      if (out.length >= MAX_PROBLEMS) return out;
      const parts = f.split('/');
      if (f.startsWith('/') || parts.includes('..') || parts.includes('.') || parts.includes('')) {
        out.push(`files.${set}: '${f}' must be a relative path inside the dataset`);
      } else if (!f.startsWith(`${set}/`)) {
        out.push(`files.${set}: '${f}' must be under '${set}/'`);
      } else if (set !== 'test' && (parts.length !== set.split('/').length + 2 || !cls.has(parts[parts.length - 2]!))) {
        out.push(`files.${set}: '${f}' must be ${set}/<class>/<name> with <class> one of 'classes'`);
      }
    }
  }
  if (!isStringArray((files as Record<string, unknown>)['train']) && !isStringArray((files as Record<string, unknown>)['valid'])) {
    out.push("'files' must list 'train' or 'valid' images");
  }
  return out;
}

/** Reads and checks a dataset's split.json; throws an Error naming the problems. */
export async function readSplitFile(datasetDir: string): Promise<DatasetSplit> {
  const file = path.join(datasetDir, 'split.json');
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
  const problems = splitProblems(json);
  if (problems.length) throw new Error(`${file} does not follow the dataset format: ${problems.join('; ')}`);
  return json as DatasetSplit;
}

/** Problems with a dataset folder: its split.json, then the files it lists (missing ones). */
export async function datasetProblems(datasetDir: string): Promise<string[]> {
  let split: DatasetSplit;
  try {
    split = await readSplitFile(datasetDir);
  } catch (e) {
    return [(e as Error).message];
  }
  const missing: string[] = [];
  for (const list of Object.values(split.files)) {
    for (const f of list ?? []) {
      const ok = await stat(path.join(datasetDir, f)).then(
        (st) => st.isFile(),
        () => false,
      );
      if (!ok) missing.push(f);
    }
  }
  if (missing.length === 0) return [];
  return [
    `split.json lists ${missing.length} file${missing.length === 1 ? '' : 's'} the dataset lacks: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}`,
  ];
}
