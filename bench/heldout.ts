// A nested held-out figure for pets.yaml: whole breeds are drawn out (seeded) as a test set that
// is never trained on and never used to choose an epoch; the other breeds go through pets.yaml's
// own breed-grouped split (keep-best chooses its epoch on that valid set); then the kept model
// is measured on the held-out breeds with pipe's "evaluate on another labelled folder" (a second
// `split` with `layout: folders` holding only valid/, and an `evaluate` of the finetune stage on
// it: no retraining). Everything runs through the real bin/pipe.js; the JSON goes to stdout.
//
//   node dist/bench/heldout.js [--draws 1,2,3] [--seeds 1,2,3] [--photos DIR] [--work DIR]
//        [--cache-dir DIR] [--heldout 150] [--tta flip] [--pipeline pets.yaml] [--set path=value ...]
// --draws seeds the held-out breed draws (fixed in advance, all reported); --seeds the training;
// --pipeline measures another file shaped as pets.yaml (stages photos, split, finetune).
// --cache-dir keeps one cache for every draw and seed (and is left in place), so frozen outputs
// and augmented variants are computed once per photo.
import { execFile } from 'node:child_process';
import { copyFile, link, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { makeRng } from '../stages/random.js';
import type { Found } from '../stages/split/find.js';
import { groupedSplit, groupRegExp, groupsOf } from '../stages/split/groups.js';
import type { EpochRecord, History } from '../stages/vision/train.js';
import { round } from './bench-util.js';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PIPE = path.join(ROOT, 'bin/pipe.js');
/** The pipeline measured (`--pipeline`): its photos, split, finetune stage. */
const PETS = path.join(ROOT, 'pipelines/pets.yaml');
/** The breed in `Abyssinian_12.jpg`, as pets.yaml groups its split. */
export const BREED = '^(.+)_\\d+\\.jpg$';

export interface Photo {
  /** Path under the photos folder, '/'-separated: `<class>/<Breed>_<n>.jpg`. */
  readonly file: string;
  readonly cls: string;
}

export interface HeldoutDraw {
  readonly seed: number;
  /** Breeds held out (never trained on, never used to choose an epoch), sorted. */
  readonly breeds: string[];
  readonly heldout: Photo[];
  /** Everything else: what pets.yaml's own split divides into train and valid. */
  readonly inner: Photo[];
}

/**
 * Whole breeds held out, about `target` photos in all, each class in its share (the split's own
 * grouped draw: seeded order, a breed taken when it brings its class nearer its share).
 */
export function drawHeldout(photos: readonly Photo[], seed: number, target: number): HeldoutDraw {
  const classes = [...new Set(photos.map((p) => p.cls))].sort();
  const found: Found[] = photos.map((p) => ({ file: p.file, cls: p.cls, outName: path.posix.basename(p.file) }));
  const perClass = classes.map((c) => found.filter((f) => f.cls === c));
  const group = groupsOf(found, groupRegExp(BREED), BREED);
  const split = groupedSplit(perClass, classes, group, target, true, makeRng(seed));
  const strip = (f: Found): Photo => ({ file: f.file, cls: f.cls });
  return { seed, breeds: split.validGroups, heldout: split.valid.flat().map(strip), inner: split.train.flat().map(strip) };
}

/** The labelled photos under `dir` (one sub-folder per class), sorted. */
export async function listPhotos(dir: string): Promise<Photo[]> {
  const out: Photo[] = [];
  for (const cls of (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory() && !e.name.startsWith('.'))) {
    for (const f of await readdir(path.join(dir, cls.name))) if (/\.jpe?g$/i.test(f)) out.push({ file: `${cls.name}/${f}`, cls: cls.name });
  }
  return out.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
}

/** Hard links (copies across file systems) of `photos` from `from` into `to`, same relative paths. */
async function place(photos: readonly Photo[], from: string, to: string): Promise<void> {
  for (const p of photos) {
    const dest = path.join(to, p.file);
    await mkdir(path.dirname(dest), { recursive: true });
    await link(path.join(from, p.file), dest).catch(() => copyFile(path.join(from, p.file), dest));
  }
}

/**
 * pets.yaml (its text, and its folder `dir` for the backbone's relative path) with its photos
 * replaced by `inner`, the split's seed pinned, and the held-out breeds evaluated as a second
 * labelled folder (no retraining): `heldout` (and `heldout_tta`).
 */
export function heldoutPipeline(pets: string, dir: string, name: string, innerDir: string, heldoutDir: string, splitSeed: number, tta?: string): string {
  const doc = parse(pets) as {
    name: string;
    params?: Record<string, unknown>;
    stages: Record<string, { uses: string; inputs?: Record<string, string>; with?: Record<string, unknown> }>;
  };
  const s = doc.stages;
  s.photos!.with = { ...s.photos!.with, path: innerDir };
  s.split!.with = { ...s.split!.with, seed: splitSeed };
  const backbone = s.finetune!.with!.backbone as string;
  s.finetune!.with = { ...s.finetune!.with, backbone: path.resolve(dir, backbone) };
  const stages: typeof s = {
    photos: s.photos!,
    split: s.split!,
    finetune: s.finetune!,
    heldout_photos: { uses: 'images', with: { path: heldoutDir } },
    heldout_split: { uses: 'split', inputs: { images: 'heldout_photos' }, with: { layout: 'folders', sample: { train: 0, valid: 0 } } },
    heldout: { uses: 'evaluate', inputs: { model: 'finetune', dataset: 'heldout_split' }, with: { on: 'valid' } },
  };
  if (tta)
    stages.heldout_tta = {
      uses: 'evaluate',
      inputs: { model: 'finetune', dataset: 'heldout_split' },
      with: { on: 'valid', tta: /^\d+$/.test(tta) ? Number(tta) : tta },
    };
  return stringify({ name, description: `${doc.name} with whole breeds held out`, params: doc.params, stages });
}

interface Metrics {
  accuracy: number;
  log_loss: number;
}

interface SeedResult {
  seed: number;
  heldout: Metrics;
  /** Held-out accuracy per breed: which unseen breeds the model gets wrong. */
  heldout_by_breed: Record<string, number>;
  heldout_tta?: Metrics;
  /** Inner validation (the set keep-best chose on): the kept epoch and the last. */
  kept_epoch: number;
  epochs: number;
  inner_val_accuracy_kept: number;
  inner_val_accuracy_last: number;
  seconds: number;
}

/** Accuracy per breed from evaluate's predictions.csv (`file,...,correct`). */
export function accuracyByBreed(csv: string): Record<string, number> {
  const [head, ...rows] = csv.trim().split('\n');
  const cols = head!.split(',');
  const [fileAt, correctAt] = [cols.indexOf('file'), cols.indexOf('correct')];
  const tally = new Map<string, [number, number]>();
  for (const row of rows) {
    const cells = row.split(',');
    const breed = new RegExp(BREED).exec(path.posix.basename(cells[fileAt]!))?.[1] ?? '?';
    const t = tally.get(breed) ?? tally.set(breed, [0, 0]).get(breed)!;
    t[0] += cells[correctAt] === 'true' ? 1 : 0;
    t[1]++;
  }
  return Object.fromEntries([...tally].sort(([a], [b]) => (a < b ? -1 : 1)).map(([b, [ok, n]]) => [b, round(ok / n, 3)]));
}

const readJson = async <T>(file: string): Promise<T> => JSON.parse(await readFile(file, 'utf8')) as T;

/** Mean and min of each seed's value. */
function stats(values: number[]): { mean: number; min: number; per_seed: number[] } {
  return { mean: round(values.reduce((a, b) => a + b, 0) / values.length, 4), min: round(Math.min(...values), 4), per_seed: values.map((v) => round(v, 4)) };
}

function summarise(runs: readonly SeedResult[]): Record<string, unknown> {
  const out: Record<string, unknown> = {
    heldout_accuracy: stats(runs.map((r) => r.heldout.accuracy)),
    heldout_log_loss: stats(runs.map((r) => r.heldout.log_loss)),
    inner_val_accuracy_kept: stats(runs.map((r) => r.inner_val_accuracy_kept)),
    inner_val_accuracy_last: stats(runs.map((r) => r.inner_val_accuracy_last)),
  };
  if (runs.every((r) => r.heldout_tta)) {
    out.heldout_tta_accuracy = stats(runs.map((r) => r.heldout_tta!.accuracy));
    out.heldout_tta_log_loss = stats(runs.map((r) => r.heldout_tta!.log_loss));
  }
  const byBreed = new Map<string, number[]>();
  for (const r of runs) for (const [b, a] of Object.entries(r.heldout_by_breed)) (byBreed.get(b) ?? byBreed.set(b, []).get(b)!).push(a);
  out.heldout_breed_accuracy_mean = Object.fromEntries([...byBreed].map(([b, v]) => [b, round(v.reduce((x, y) => x + y, 0) / v.length, 3)]));
  return out;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const list = (s: string) => s.split(',').map(Number);
  const draws = list(opt('draws') ?? '1,2,3');
  const seeds = list(opt('seeds') ?? '1,2,3');
  const target = Number(opt('heldout') ?? 150);
  const splitSeed = Number(opt('split-seed') ?? 42);
  const tta = opt('tta');
  const photosDir = path.resolve(opt('photos') ?? path.join(ROOT, '../shared/datasets/oxford-pets-730'));
  const sets = args.flatMap((a, i) => (a === '--set' ? ['--set', args[i + 1]!] : []));
  const work = opt('work') ? path.resolve(opt('work')!) : await mkdtemp(path.join(os.tmpdir(), 'pipe-heldout-'));
  const cache = path.resolve(opt('cache-dir') ?? path.join(work, 'cache'));
  const tag = (opt('tag') ?? '').replace(/[^a-z0-9-]/gi, '');
  const photos = await listPhotos(photosDir);
  const base = path.resolve(opt('pipeline') ?? PETS);
  const pets = await readFile(base, 'utf8');
  const results = [];
  for (const drawSeed of draws) {
    const draw = drawHeldout(photos, drawSeed, target);
    const dir = path.join(work, `draw-${drawSeed}`);
    await rm(dir, { recursive: true, force: true });
    await place(draw.inner, photosDir, path.join(dir, 'inner'));
    await place(draw.heldout, photosDir, path.join(dir, 'heldout', 'valid'));
    const name = `pets-heldout-${drawSeed}${tag ? `-${tag}` : ''}`;
    const file = path.join(dir, 'pipeline.yaml');
    await writeFile(file, heldoutPipeline(pets, path.dirname(base), name, path.join(dir, 'inner'), path.join(dir, 'heldout'), splitSeed, tta));
    const count = (l: readonly Photo[], c: string) => l.filter((p) => p.cls === c).length;
    const about = {
      draw: drawSeed,
      heldout_breeds: draw.breeds,
      heldout_photos: { cat: count(draw.heldout, 'cat'), dog: count(draw.heldout, 'dog') },
      inner_photos: draw.inner.length,
    };
    process.stderr.write(`draw ${drawSeed}: ${JSON.stringify(about)}\n`);
    const runs: SeedResult[] = [];
    let inner: unknown;
    for (const seed of seeds) {
      const t0 = performance.now();
      await run(process.execPath, [PIPE, 'run', file, '-p', `seed=${seed}`, '--cache-dir', cache, ...sets], { maxBuffer: 64 * 2 ** 20 });
      const latest = (stage: string, f: string) => path.join(cache, 'latest', name, stage, f);
      const history = await readJson<History>(latest('finetune', 'history.json'));
      const split = await readJson<{ counts?: unknown; groups?: unknown }>(latest('split', 'split.json'));
      inner ??= { counts: split.counts, groups: split.groups };
      const acc = (e: number) => history.epochs.find((r: EpochRecord) => r.epoch === e)!.val_accuracy!;
      const last = history.epochs[history.epochs.length - 1]!.epoch;
      const pick = async (stage: string) => {
        const m = await readJson<Metrics>(latest(stage, 'metrics.json'));
        return { accuracy: round(m.accuracy, 4), log_loss: round(m.log_loss, 4) };
      };
      const r: SeedResult = {
        seed,
        heldout: await pick('heldout'),
        heldout_by_breed: accuracyByBreed(await readFile(latest('heldout', 'predictions.csv'), 'utf8')),
        ...(tta ? { heldout_tta: await pick('heldout_tta') } : {}),
        kept_epoch: history.kept?.epoch ?? last,
        epochs: last,
        inner_val_accuracy_kept: round(acc(history.kept?.epoch ?? last), 4),
        inner_val_accuracy_last: round(acc(last), 4),
        seconds: Math.round((performance.now() - t0) / 1000),
      };
      runs.push(r);
      process.stderr.write(`draw ${drawSeed} seed ${seed}: ${JSON.stringify(r)}\n`);
    }
    results.push({ ...about, inner_split: inner, summary: summarise(runs), runs });
  }
  const all = results.flatMap((r) => r.runs);
  console.log(
    JSON.stringify({ sets, tta: tta ?? 'none', seeds, heldout_target: target, split_seed: splitSeed, overall: summarise(all), draws: results }, null, 2),
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main().catch((e: Error & { stderr?: string }) => {
    console.error(e.stderr ? `${e.message}\n${e.stderr.slice(-4000)}` : e.message);
    process.exit(1);
  });
}
