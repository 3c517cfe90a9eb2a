// Reading and validating what the report shows. The evaluation's metrics.json is required; every
// other file is optional (its section then says "not available"), but a file that exists and is
// malformed is a StageError naming the file and the field: a broken upstream stage should be
// noticed, not papered over.
import path from 'node:path';
import { StageError } from '../../runner/types.js';
import { parseCsv } from './csv.js';
import { fail, record, array, finite, fraction, count, text, maybeNumber, classList, readText, parseJson } from './checked-json.js';

export interface ClassMetrics {
  readonly precision: number;
  readonly recall: number;
  readonly f1: number;
  readonly support: number;
}

export interface EvalMetrics {
  readonly on: string;
  readonly count: number;
  readonly accuracy: number;
  readonly logLoss: number;
  readonly classes: readonly string[];
  /** rows = true class, columns = predicted class, in `classes` order. */
  readonly confusion: readonly (readonly number[])[];
  readonly perClass: Readonly<Record<string, ClassMetrics>>;
  readonly testCount?: number;
  /** Test-time augmentation the probabilities were averaged over ('flip', '4 variants'). */
  readonly tta?: string;
}

export interface AnalysisItem {
  readonly file: string;
  readonly label: string;
  readonly predicted: string;
  readonly probability: number;
  readonly probs: Readonly<Record<string, number>>;
}

export interface AnalysisView {
  readonly id: string;
  readonly title: string;
  /** 'correct' | 'wrong' | 'uncertain' from evaluate; other kinds are shown as they are. */
  readonly kind: string;
  readonly className?: string;
  readonly items: readonly AnalysisItem[];
}

export interface Analysis {
  readonly classes: readonly string[];
  readonly views: readonly AnalysisView[];
}

export interface Prediction {
  readonly file: string;
  readonly label: string;
  readonly predicted: string;
  readonly probs: Readonly<Record<string, number>>;
}

export interface Epoch {
  readonly epoch: number;
  readonly loss: number | null;
  readonly accuracy: number | null;
  readonly valLoss: number | null;
  readonly valAccuracy: number | null;
  readonly seconds: number | null;
}

export interface History {
  readonly epochs: readonly Epoch[];
  /** The epoch whose weights the model holds and why (absent in models made before keep). */
  readonly kept: { readonly epoch: number; readonly reason: string } | null;
  /** Why training stopped before its epochs (patience), when it did. */
  readonly earlyStop: string | null;
}

/** An optional input: its value, or why the report cannot show it. */
export type Available<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

export const available = <T>(value: T): Available<T> => ({ ok: true, value });
export const unavailable = <T>(reason: string): Available<T> => ({ ok: false, reason });

/** Read `name` from an artifact dir; undefined when the file does not exist. */
export async function readJsonFile(dir: string, name: string): Promise<unknown> {
  const body = await readText(path.join(dir, name));
  return body === undefined ? undefined : parseJson(body, name);
}

export async function readMetrics(evaluationDir: string): Promise<EvalMetrics> {
  const name = 'metrics.json';
  const json = await readJsonFile(evaluationDir, name);
  if (json === undefined) {
    throw new StageError(`${name}: not found in the evaluation artifact (${evaluationDir})`, 'is the `evaluation` input an evaluate stage?');
  }
  return parseMetrics(json, name);
}

export function parseMetrics(json: unknown, name = 'metrics.json'): EvalMetrics {
  const m = record(json, `${name}:`);
  const classes = classList(m.classes, `${name}: classes`);
  const n = classes.length;
  const rows = array(m.confusion, `${name}: confusion`);
  if (rows.length !== n) fail(`${name}: confusion`, `must have ${n} rows (one per class), got ${rows.length}`);
  const confusion = rows.map((row, i) => {
    const cells = array(row, `${name}: confusion[${i}]`);
    if (cells.length !== n) fail(`${name}: confusion[${i}]`, `must have ${n} columns (one per class), got ${cells.length}`);
    return cells.map((c, j) => count(c, `${name}: confusion[${i}][${j}]`));
  });
  const perClass: Record<string, ClassMetrics> = {};
  if (m.per_class === undefined) {
    Object.assign(perClass, classMetricsFromConfusion(classes, confusion));
  } else {
    const pc = record(m.per_class, `${name}: per_class`);
    for (const c of classes) {
      const at = `${name}: per_class[${JSON.stringify(c)}]`;
      const entry = record(pc[c], at);
      perClass[c] = {
        precision: fraction(entry.precision, `${at}.precision`),
        recall: fraction(entry.recall, `${at}.recall`),
        f1: fraction(entry.f1, `${at}.f1`),
        support: count(entry.support, `${at}.support`),
      };
    }
  }
  const total = confusion.reduce((s, row) => s + row.reduce((a, b) => a + b, 0), 0);
  const result: EvalMetrics = {
    on: m.on === undefined ? 'valid' : text(m.on, `${name}: on`),
    count: m.count === undefined ? total : count(m.count, `${name}: count`),
    accuracy: fraction(m.accuracy, `${name}: accuracy`),
    logLoss: finite(m.log_loss, `${name}: log_loss`),
    classes,
    confusion,
    perClass,
  };
  if (result.logLoss < 0) fail(`${name}: log_loss`, `must not be negative, got ${result.logLoss}`);
  if (m.tta !== undefined) Object.assign(result, { tta: text(m.tta, `${name}: tta`) });
  if (m.test_count !== undefined && m.test_count !== null) {
    return { ...result, testCount: count(m.test_count, `${name}: test_count`) };
  }
  return result;
}

function classMetricsFromConfusion(classes: readonly string[], confusion: readonly (readonly number[])[]): Record<string, ClassMetrics> {
  const out: Record<string, ClassMetrics> = {};
  classes.forEach((c, i) => {
    const tp = confusion[i]?.[i] ?? 0;
    const support = (confusion[i] ?? []).reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((s, row) => s + (row[i] ?? 0), 0);
    const precision = predicted === 0 ? 0 : tp / predicted;
    const recall = support === 0 ? 0 : tp / support;
    const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
    out[c] = { precision, recall, f1, support };
  });
  return out;
}

export async function readAnalysis(evaluationDir: string): Promise<Available<Analysis>> {
  const name = 'analysis.json';
  const json = await readJsonFile(evaluationDir, name);
  if (json === undefined) return unavailable(`${name} is not in the evaluation artifact`);
  return available(parseAnalysis(json, name));
}

export function parseAnalysis(json: unknown, name = 'analysis.json'): Analysis {
  const a = record(json, `${name}:`);
  const classes = a.classes === undefined ? [] : classList(a.classes, `${name}: classes`);
  const views = array(a.views, `${name}: views`).map((v, i): AnalysisView => {
    const at = `${name}: views[${i}]`;
    const view = record(v, at);
    const id = text(view.id, `${at}.id`);
    const items = array(view.items, `${at}.items`).map((it, j): AnalysisItem => {
      const iat = `${at}.items[${j}]`;
      const item = record(it, iat);
      const probs: Record<string, number> = {};
      if (item.probs !== undefined) {
        for (const [k, p] of Object.entries(record(item.probs, `${iat}.probs`))) probs[k] = fraction(p, `${iat}.probs[${JSON.stringify(k)}]`);
      }
      const file = text(item.file, `${iat}.file`);
      if (file === '') fail(`${iat}.file`, 'must not be empty');
      return {
        file,
        label: text(item.label, `${iat}.label`),
        predicted: text(item.predicted, `${iat}.predicted`),
        probability: fraction(item.probability, `${iat}.probability`),
        probs,
      };
    });
    const result: AnalysisView = {
      id,
      title: view.title === undefined ? id : text(view.title, `${at}.title`),
      kind: view.kind === undefined ? 'other' : text(view.kind, `${at}.kind`),
      items,
    };
    return view.class === undefined || view.class === null ? result : { ...result, className: text(view.class, `${at}.class`) };
  });
  return { classes, views };
}

export async function readHistory(modelDir: string): Promise<Available<History>> {
  const name = 'history.json';
  const json = await readJsonFile(modelDir, name);
  if (json === undefined) return unavailable(`${name} is not in the model artifact`);
  return available(parseHistory(json, name));
}

export function parseHistory(json: unknown, name = 'history.json'): History {
  const h = record(json, `${name}:`);
  const epochs = array(h.epochs, `${name}: epochs`).map((e, i): Epoch => {
    const at = `${name}: epochs[${i}]`;
    const ep = record(e, at);
    return {
      epoch: ep.epoch === undefined ? i + 1 : finite(ep.epoch, `${at}.epoch`),
      loss: maybeNumber(ep.loss, `${at}.loss`),
      accuracy: maybeNumber(ep.accuracy, `${at}.accuracy`),
      valLoss: maybeNumber(ep.val_loss, `${at}.val_loss`),
      valAccuracy: maybeNumber(ep.val_accuracy, `${at}.val_accuracy`),
      seconds: maybeNumber(ep.seconds, `${at}.seconds`),
    };
  });
  const kept = h.kept === undefined ? null : record(h.kept, `${name}: kept`);
  const stop = h.early_stop === undefined ? null : record(h.early_stop, `${name}: early_stop`);
  return {
    epochs,
    kept: kept ? { epoch: finite(kept.epoch, `${name}: kept.epoch`), reason: text(kept.reason, `${name}: kept.reason`) } : null,
    earlyStop: stop ? text(stop.reason, `${name}: early_stop.reason`) : null,
  };
}

/** A JSON object file shown as key/value pairs (finetune.json, preprocess.json). */
export async function readObjectFile(dir: string, name: string): Promise<Available<Record<string, unknown>>> {
  const json = await readJsonFile(dir, name);
  if (json === undefined) return unavailable(`${name} is not in the model artifact`);
  return available(record(json, `${name}:`));
}

// ---------------------------------------------------------------------------------------------
// predictions.csv: file,label,p_<class>...,predicted,correct. Rows without a label (test images)
// are skipped: the report lists mistakes, which need the truth.

export async function readPredictions(evaluationDir: string): Promise<Available<readonly Prediction[]>> {
  const name = 'predictions.csv';
  const body = await readText(path.join(evaluationDir, name));
  if (body === undefined) return unavailable(`${name} is not in the evaluation artifact`);
  return available(parsePredictions(body, name));
}

export function parsePredictions(body: string, name = 'predictions.csv'): Prediction[] {
  const rows = parseCsv(body, name);
  const header = rows[0];
  if (!header) fail(`${name}:`, 'is empty (expected a header line)');
  const column = (col: string): number => {
    const i = header.indexOf(col);
    if (i < 0) fail(`${name}:`, `header has no "${col}" column (got ${header.join(',')})`);
    return i;
  };
  const fileCol = column('file');
  const labelCol = column('label');
  const predictedCol = column('predicted');
  const probCols = header.flatMap((h, i) => (h.startsWith('p_') ? [{ cls: h.slice(2), i }] : []));
  const out: Prediction[] = [];
  for (let r = 1; r < rows.length; r++) {
    const row = rows[r]!;
    if (row.length === 1 && row[0] === '') continue;
    if (row.length !== header.length) fail(`${name}: line ${r + 1}`, `has ${row.length} fields, the header has ${header.length}`);
    const label = row[labelCol]!;
    if (label === '') continue;
    const probs: Record<string, number> = {};
    for (const { cls, i } of probCols) {
      const p = Number(row[i]);
      if (row[i] === '' || !Number.isFinite(p) || p < 0 || p > 1)
        fail(`${name}: line ${r + 1}`, `p_${cls} must be a probability, got ${JSON.stringify(row[i])}`);
      probs[cls] = p;
    }
    out.push({ file: row[fileCol]!, label, predicted: row[predictedCol]!, probs });
  }
  return out;
}

/** The most confidently wrong predictions first (lowest probability given to the true class). */
export function mostWrong(predictions: readonly Prediction[], limit: number): Prediction[] {
  const trueProb = (p: Prediction): number => p.probs[p.label] ?? 1 - (p.probs[p.predicted] ?? 0.5);
  return predictions
    .filter((p) => p.label !== p.predicted)
    .sort((a, b) => trueProb(a) - trueProb(b) || a.file.localeCompare(b.file))
    .slice(0, limit);
}

// ---------------------------------------------------------------------------------------------
// What the renderers get: everything read, validated and resolved.

/**
 * One stage of the report's lineage (or the report itself, last), with what its content
 * determines only: when, where and by which run it was made belongs to the run view.
 */
export interface StageRow {
  readonly stage: string;
  readonly uses: string;
  readonly kind: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly metrics: Readonly<Record<string, number>>;
}

export interface RemoteOrigin {
  /** s3://bucket/prefix */
  readonly url: string;
  /** When it was pulled (undefined: not downloaded, `downloaded` false). */
  readonly at?: string;
  /** False: only its meta.json was read (nothing here read its files). */
  readonly downloaded: boolean;
  /** A partial pull: `files` of the artifact's `of` files are local (what the stages that read it declare). */
  readonly partial?: { readonly files: number; readonly of: number };
}

export interface StageVerdict {
  readonly stage: string;
  readonly passed: boolean;
  readonly message: string;
}

/**
 * What the cached report shows: only what its inputs determine, so the artifact's bytes are the
 * same whichever run makes it. The run's facts (run id, date, timings, hosts, engines, earlier
 * runs) are added by the run view (run-view.ts) that `pipe run` writes outside the cache.
 */
export interface ReportData {
  readonly title: string;
  readonly pipelineName: string;
  readonly metrics: EvalMetrics;
  readonly analysis: Available<Analysis>;
  readonly history: Available<History>;
  readonly finetune: Available<Record<string, unknown>>;
  readonly preprocess: Available<Record<string, unknown>>;
  /** Most confidently wrong predictions, most wrong first. */
  readonly mostWrong: Available<readonly Prediction[]>;
  readonly stages: readonly StageRow[];
  readonly maxPerView: number;
  /** Upstream stages' verdicts on their outputs (evaluate's gate): shown first, a failed one plainly. */
  readonly verdicts: readonly StageVerdict[];
}
