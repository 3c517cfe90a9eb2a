// Inputs for the report stage as evaluate/finetune/split write them: a fake dataset of small
// generated JPEGs, an evaluation (metrics.json, analysis.json, predictions.csv) and a model
// (history.json, finetune.json, preprocess.json), plus the lineage the runner would pass.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import type { Artifact, ArtifactKind, LineageEntry } from '../../runner/types.js';
import { artifactFromDir } from './stage-context.js';

/** A file name that would run script if the report forgot to escape it. */
export const NASTY_FILE = `valid/cat/<script>alert("x")<\\script> & 'pic'.jpg`;

export const CLASSES = ['cat', 'dog'] as const;

export interface FixtureItem {
  readonly file: string;
  readonly label: string;
  readonly predicted: string;
  readonly pCat: number;
}

export interface ReportFixture {
  readonly root: string;
  readonly datasetDir: string;
  readonly evaluationDir: string;
  readonly modelDir: string;
  readonly dataDir: string;
  /** Every labelled prediction (predictions.csv rows). */
  readonly predictions: readonly FixtureItem[];
  readonly metrics: Record<string, unknown>;
  readonly analysis: { classes: string[]; views: { id: string; title: string; kind: string; class: string; items: unknown[] }[] };
  cleanup(): Promise<void>;
}

export interface FixtureOptions {
  /** Write history.json (default true). */
  readonly history?: boolean;
  /** Write finetune.json and preprocess.json (default true). */
  readonly modelInfo?: boolean;
  /** Write predictions.csv (default true). */
  readonly predictionsCsv?: boolean;
  /** Write analysis.json (default true). */
  readonly analysis?: boolean;
  /** Replace metrics.json's body. */
  readonly metricsBody?: string;
  /** Extra analysis items (e.g. a path that leaves the dataset). */
  readonly extraItems?: readonly { file: string; label: string; predicted: string; probability: number }[];
  /** Files of the analysis to leave out of the dataset (to test missing pictures). */
  readonly omitImages?: readonly string[];
}

/** A small picture of a cat-ish or dog-ish face, so the screenshot looks like something. */
async function picture(kind: string, i: number, width: number, height: number): Promise<Buffer> {
  const hue = kind === 'cat' ? 25 + ((i * 17) % 40) : 200 + ((i * 23) % 60);
  const face = kind === 'cat' ? `hsl(${hue},70%,55%)` : `hsl(${(hue + 180) % 360},35%,40%)`;
  const cx = width / 2;
  const cy = height / 2 + 8;
  const r = Math.min(width, height) * 0.3;
  const ears =
    kind === 'cat'
      ? `<polygon points="${cx - r},${cy - r * 0.3} ${cx - r * 0.75},${cy - r * 1.35} ${cx - r * 0.2},${cy - r * 0.9}" fill="${face}"/>
         <polygon points="${cx + r},${cy - r * 0.3} ${cx + r * 0.75},${cy - r * 1.35} ${cx + r * 0.2},${cy - r * 0.9}" fill="${face}"/>`
      : `<ellipse cx="${cx - r * 0.95}" cy="${cy}" rx="${r * 0.32}" ry="${r * 0.75}" fill="hsl(30,40%,25%)"/>
         <ellipse cx="${cx + r * 0.95}" cy="${cy}" rx="${r * 0.32}" ry="${r * 0.75}" fill="hsl(30,40%,25%)"/>`;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="hsl(${hue},45%,88%)"/><stop offset="1" stop-color="hsl(${hue + 40},45%,72%)"/></linearGradient></defs>
    <rect width="100%" height="100%" fill="url(#g)"/>
    ${ears}
    <circle cx="${cx}" cy="${cy}" r="${r}" fill="${face}"/>
    <circle cx="${cx - r * 0.38}" cy="${cy - r * 0.15}" r="${r * 0.11}" fill="#222"/>
    <circle cx="${cx + r * 0.38}" cy="${cy - r * 0.15}" r="${r * 0.11}" fill="#222"/>
    <ellipse cx="${cx}" cy="${cy + r * 0.25}" rx="${r * 0.14}" ry="${r * 0.1}" fill="#3a2a2a"/>
  </svg>`;
  return sharp(Buffer.from(svg)).jpeg({ quality: 85 }).toBuffer();
}

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export async function makeReportFixture(options: FixtureOptions = {}): Promise<ReportFixture> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'pipe-report-'));
  const datasetDir = path.join(root, 'dataset');
  const evaluationDir = path.join(root, 'evaluation');
  const modelDir = path.join(root, 'model');
  const dataDir = path.join(root, 'data');
  for (const d of [datasetDir, evaluationDir, modelDir, dataDir]) await mkdir(d, { recursive: true });

  // 20 cats and 20 dogs; cats 0-1 and dogs 0-2 are wrong. The nasty name is a wrong cat.
  const predictions: FixtureItem[] = [];
  for (const label of CLASSES) {
    for (let i = 0; i < 20; i++) {
      const file = label === 'cat' && i === 0 ? NASTY_FILE : `valid/${label}/${label}.${1000 + i}.jpg`;
      const wrongCount = label === 'cat' ? 2 : 3;
      const wrong = i < wrongCount;
      // Confidence in the truth: wrong ones low (most wrong first), then uncertain, then confident.
      const pTrue = wrong ? 0.04 + i * 0.12 : i < wrongCount + 3 ? 0.52 + (i - wrongCount) * 0.06 : 0.8 + ((i * 7) % 20) / 100;
      const pCat = label === 'cat' ? pTrue : 1 - pTrue;
      const predicted = pCat >= 0.5 ? 'cat' : 'dog';
      predictions.push({ file, label, predicted, pCat: Number(pCat.toFixed(4)) });
    }
  }
  const omit = new Set(options.omitImages ?? []);
  let n = 0;
  for (const p of predictions) {
    if (omit.has(p.file)) continue;
    const abs = path.join(datasetDir, ...p.file.split('/'));
    await mkdir(path.dirname(abs), { recursive: true });
    const portrait = n++ % 3 === 0;
    await writeFile(abs, await picture(p.label, n, portrait ? 240 : 320, portrait ? 320 : 240));
  }
  await writeFile(path.join(datasetDir, 'split.json'), JSON.stringify({ classes: CLASSES, valid: 40 }));

  const item = (p: FixtureItem): Record<string, unknown> => {
    const probs = { cat: p.pCat, dog: Number((1 - p.pCat).toFixed(4)) };
    return { file: p.file, label: p.label, predicted: p.predicted, probability: probs[p.predicted as 'cat' | 'dog'], probs };
  };
  const views: ReportFixture['analysis']['views'] = [];
  for (const c of CLASSES) {
    const mine = predictions.filter((p) => p.label === c);
    const pTrue = (p: FixtureItem): number => (c === 'cat' ? p.pCat : 1 - p.pCat);
    const correct = mine.filter((p) => p.predicted === c).sort((a, b) => pTrue(b) - pTrue(a));
    const wrong = mine.filter((p) => p.predicted !== c).sort((a, b) => pTrue(a) - pTrue(b));
    const uncertain = [...mine].sort((a, b) => Math.abs(a.pCat - 0.5) - Math.abs(b.pCat - 0.5));
    views.push({ id: `correct-${c}`, title: `Most confident correct: ${c}`, kind: 'correct', class: c, items: correct.slice(0, 4).map(item) });
    views.push({ id: `wrong-${c}`, title: `Most confident wrong: ${c}`, kind: 'wrong', class: c, items: wrong.slice(0, 4).map(item) });
    views.push({ id: `uncertain-${c}`, title: `Most uncertain: ${c}`, kind: 'uncertain', class: c, items: uncertain.slice(0, 4).map(item) });
  }
  if (options.extraItems && views[0]) views[0].items.push(...options.extraItems.map((e) => ({ ...e, probs: {} })));
  const analysis = { classes: [...CLASSES], views };

  const confusion = CLASSES.map((t) => CLASSES.map((pc) => predictions.filter((p) => p.label === t && p.predicted === pc).length));
  const correctCount = predictions.filter((p) => p.label === p.predicted).length;
  const perClass = Object.fromEntries(
    CLASSES.map((c, i) => {
      const tp = confusion[i]![i]!;
      const support = confusion[i]!.reduce((a, b) => a + b, 0);
      const predictedCount = confusion.reduce((s, row) => s + row[i]!, 0);
      const precision = tp / predictedCount;
      const recall = tp / support;
      return [c, { precision, recall, f1: (2 * precision * recall) / (precision + recall), support }];
    }),
  );
  const metrics = {
    on: 'valid',
    count: predictions.length,
    accuracy: correctCount / predictions.length,
    log_loss: 0.3127,
    classes: [...CLASSES],
    confusion,
    per_class: perClass,
    test_count: 12,
  };
  await writeFile(path.join(evaluationDir, 'metrics.json'), options.metricsBody ?? JSON.stringify(metrics, null, 2));
  if (options.analysis !== false) await writeFile(path.join(evaluationDir, 'analysis.json'), JSON.stringify(analysis, null, 2));
  if (options.predictionsCsv !== false) {
    const lines = ['file,label,p_cat,p_dog,predicted,correct'];
    for (const p of predictions) {
      lines.push([csvField(p.file), p.label, p.pCat.toFixed(4), (1 - p.pCat).toFixed(4), p.predicted, String(p.label === p.predicted)].join(','));
    }
    for (let i = 1; i <= 12; i++) lines.push(`test/${i}.jpg,,0.5000,0.5000,cat,`);
    await writeFile(path.join(evaluationDir, 'predictions.csv'), `${lines.join('\n')}\n`);
  }
  await writeFile(path.join(evaluationDir, 'submission.csv'), 'id,label\n1,0.5\n');

  if (options.history !== false) {
    const epochs = [0.62, 0.41, 0.33, 0.29, 0.27].map((loss, i) => ({
      epoch: i + 1,
      loss,
      accuracy: 0.68 + i * 0.06,
      val_loss: loss + 0.04 + (i === 4 ? 0.03 : 0),
      val_accuracy: 0.66 + i * 0.055,
      seconds: 41.5 + i,
    }));
    await writeFile(path.join(modelDir, 'history.json'), JSON.stringify({ epochs }, null, 2));
  }
  await writeFile(path.join(modelDir, 'classes.json'), JSON.stringify(CLASSES));
  if (options.modelInfo !== false) {
    await writeFile(
      path.join(modelDir, 'finetune.json'),
      JSON.stringify({
        architecture: 'vgg16',
        cut: 'block5_pool',
        trainable: ['predictions'],
        backend: 'wasm',
        engine: { frozen: 'onnxruntime', train: 'tfjs' },
      }),
    );
    await writeFile(path.join(modelDir, 'preprocess.json'), JSON.stringify({ size: [224, 224], mode: 'caffe', mean: [103.939, 116.779, 123.68] }));
  }

  return {
    root,
    datasetDir,
    evaluationDir,
    modelDir,
    dataDir,
    predictions,
    metrics,
    analysis,
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

function artifact(dir: string, kind: ArtifactKind, stage: string, uses: string, meta: Partial<Artifact['meta']>): Artifact {
  const base = artifactFromDir(dir, kind, stage);
  return { ...base, meta: { ...base.meta, uses, ...meta } };
}

/** The artifacts of the fixture and the lineage the runner would give the report. */
export function fixtureArtifacts(f: ReportFixture): { data: Artifact; dataset: Artifact; model: Artifact; evaluation: Artifact; lineage: LineageEntry[] } {
  const earlier = { runId: '20261127-0912-a1b2', createdAt: '2026-11-27T09:12:44.000Z', host: 'gpu-box' };
  const data = artifact(f.dataDir, 'files', 'data', 'synth-images', { ...earlier, params: { count: 40, size: 320, seed: 42 }, durationMs: 2_350 });
  const dataset = artifact(f.datasetDir, 'dataset', 'split', 'split', {
    ...earlier,
    params: { label_from: 'folder', valid: 40, seed: 42, sample: { train: 200, valid: 50 } },
    durationMs: 812,
  });
  const model = artifact(f.modelDir, 'model', 'finetune', 'finetune-vgg16', {
    ...earlier,
    params: { weights: 'imagenet', epochs: 5, batch_size: 64, learning_rate: 0.001, trainable: 'predictions' },
    durationMs: 3_725_000,
    metrics: { val_accuracy: 0.88, val_loss: 0.34 },
    info: { backend: 'wasm', engine: 'onnxruntime-node (frozen) + tfjs (head)', images_per_second: 5.6 },
    inputs: { dataset: dataset.contentHash },
  });
  const evaluation = artifact(f.evaluationDir, 'evaluation', 'evaluate', 'evaluate', {
    runId: 'test-run',
    createdAt: '2026-11-28T14:03:07.000Z',
    host: 'ci-runner',
    params: { on: 'valid', gate: { accuracy: 0.8 }, clip: [0.05, 0.95] },
    durationMs: 12_400,
    metrics: { accuracy: f.metrics.accuracy as number, log_loss: 0.3127 },
    info: { backend: 'cpu', engine: 'onnxruntime-node' },
    inputs: { model: model.contentHash, dataset: dataset.contentHash },
  });
  const entry = (a: Artifact): LineageEntry => ({ stage: a.meta.stage, uses: a.meta.uses, artifact: a });
  return { data, dataset, model, evaluation, lineage: [entry(data), entry(dataset), entry(model), entry(evaluation)] };
}
