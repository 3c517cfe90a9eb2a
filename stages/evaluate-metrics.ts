// The arithmetic of `evaluate`, pure and separately tested: accuracy, log loss, the confusion
// matrix, per-class precision/recall/F1, the lesson's views (most confident correct, most
// confident wrong, most uncertain), and the CSV files.

export interface Prediction {
  /** Relative to the dataset artifact. */
  readonly file: string;
  /** Class index, or -1 when unknown (test images). */
  readonly label: number;
  /** One probability per class. */
  readonly probs: readonly number[];
}

export interface ClassMetrics {
  readonly precision: number;
  readonly recall: number;
  readonly f1: number;
  readonly support: number;
}

export interface Metrics {
  readonly on: string;
  readonly count: number;
  readonly accuracy: number;
  readonly log_loss: number;
  readonly classes: readonly string[];
  /** Rows: true class; columns: predicted class; both in `classes` order. */
  readonly confusion: number[][];
  readonly per_class: Record<string, ClassMetrics>;
  readonly test_count: number;
}

/** Index of the largest probability (the first on ties). */
export function predicted(probs: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < probs.length; i++) if (probs[i]! > probs[best]!) best = i;
  return best;
}

/**
 * The log loss's clipping: probabilities are clipped to [eps, 1-eps] as scikit-learn and Kaggle's
 * scorer do. The one definition of the metric: evaluate's log_loss and finetune's val_loss.
 */
export const LOG_LOSS_EPS = 1e-15;

/** One row's share of the log loss: -log of the true class's probability, clipped. */
export function rowLogLoss(pTrue: number): number {
  return -Math.log(Math.min(1 - LOG_LOSS_EPS, Math.max(LOG_LOSS_EPS, pTrue)));
}

/** Mean negative log-likelihood of the true class, probabilities clipped (rowLogLoss). */
export function logLoss(preds: readonly Prediction[]): number {
  if (preds.length === 0) return Number.NaN;
  let sum = 0;
  for (const p of preds) sum += rowLogLoss(p.probs[p.label] ?? 0);
  return sum / preds.length;
}

export function accuracy(preds: readonly Prediction[]): number {
  if (preds.length === 0) return Number.NaN;
  return preds.filter((p) => predicted(p.probs) === p.label).length / preds.length;
}

export function confusion(preds: readonly Prediction[], nClasses: number): number[][] {
  const m = Array.from({ length: nClasses }, () => new Array<number>(nClasses).fill(0));
  for (const p of preds) m[p.label]![predicted(p.probs)]!++;
  return m;
}

/** Precision = TP / predicted as the class, recall = TP / truly the class; 0 when undefined. */
export function perClass(matrix: readonly (readonly number[])[], classes: readonly string[]): Record<string, ClassMetrics> {
  const out: Record<string, ClassMetrics> = {};
  classes.forEach((name, c) => {
    const tp = matrix[c]?.[c] ?? 0;
    const support = (matrix[c] ?? []).reduce((a, b) => a + b, 0);
    const predictedCount = matrix.reduce((a, row) => a + (row[c] ?? 0), 0);
    const precision = predictedCount ? tp / predictedCount : 0;
    const recall = support ? tp / support : 0;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    out[name] = { precision, recall, f1, support };
  });
  return out;
}

/** Metrics of the labelled predictions `preds` (rows with label -1 are ignored). */
export function computeMetrics(preds: readonly Prediction[], classes: readonly string[], on: string, testCount: number): Metrics {
  const labelled = preds.filter((p) => p.label >= 0);
  const matrix = confusion(labelled, classes.length);
  return {
    on,
    count: labelled.length,
    accuracy: accuracy(labelled),
    log_loss: logLoss(labelled),
    classes,
    confusion: matrix,
    per_class: perClass(matrix, classes),
    test_count: testCount,
  };
}

export interface ViewItem {
  readonly file: string;
  readonly label: string | null;
  readonly predicted: string;
  readonly probability: number;
  readonly probs: Record<string, number>;
}

export interface View {
  readonly id: string;
  readonly title: string;
  readonly kind: 'correct' | 'wrong' | 'uncertain';
  readonly class: string;
  readonly items: ViewItem[];
}

export interface Analysis {
  readonly classes: readonly string[];
  readonly views: View[];
}

function item(p: Prediction, classes: readonly string[], c: number): ViewItem {
  return {
    file: p.file,
    label: p.label >= 0 ? classes[p.label]! : null,
    predicted: classes[predicted(p.probs)]!,
    probability: p.probs[c]!,
    probs: Object.fromEntries(classes.map((name, i) => [name, p.probs[i]!])),
  };
}

/**
 * The lesson's views, per class c (labelled rows only; ties keep file order):
 * - correct: labelled c, predicted c, highest P(c) first;
 * - wrong: predicted c but labelled otherwise, highest P(c) first (the most confident mistakes);
 * - uncertain: labelled c, P(c) closest to 1/n first.
 * `probability` is P(c).
 */
export function analysisViews(preds: readonly Prediction[], classes: readonly string[], topN: number): Analysis {
  const labelled = preds.filter((p) => p.label >= 0);
  const n = classes.length;
  const views: View[] = [];
  classes.forEach((name, c) => {
    const byConfidence = (a: Prediction, b: Prediction) => b.probs[c]! - a.probs[c]!;
    const correct = labelled.filter((p) => p.label === c && predicted(p.probs) === c).sort(byConfidence);
    const wrong = labelled.filter((p) => p.label !== c && predicted(p.probs) === c).sort(byConfidence);
    const uncertain = labelled.filter((p) => p.label === c).sort((a, b) => Math.abs(a.probs[c]! - 1 / n) - Math.abs(b.probs[c]! - 1 / n));
    views.push({
      id: `correct-${name}`,
      title: `Most confident correct: ${name}`,
      kind: 'correct',
      class: name,
      items: correct.slice(0, topN).map((p) => item(p, classes, c)),
    });
    views.push({
      id: `wrong-${name}`,
      title: `Most confident wrong: predicted ${name}`,
      kind: 'wrong',
      class: name,
      items: wrong.slice(0, topN).map((p) => item(p, classes, c)),
    });
    views.push({
      id: `uncertain-${name}`,
      title: `Most uncertain: ${name}`,
      kind: 'uncertain',
      class: name,
      items: uncertain.slice(0, topN).map((p) => item(p, classes, c)),
    });
  });
  return { classes, views };
}

export function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Probabilities with 6 decimals, trailing zeros dropped ("0.98", "1", "0.000123"). */
export function formatProb(x: number): string {
  return String(Number(x.toFixed(6)));
}

/** `file,label,p_<class>...,predicted,correct`; unlabelled rows have empty label and correct. */
export function predictionsCsv(preds: readonly Prediction[], classes: readonly string[]): string {
  const lines = [['file', 'label', ...classes.map((c) => `p_${c}`), 'predicted', 'correct'].map(csvField).join(',')];
  for (const p of preds) {
    const pred = predicted(p.probs);
    const labelled = p.label >= 0;
    lines.push(
      [
        csvField(p.file),
        labelled ? csvField(classes[p.label]!) : '',
        ...p.probs.map(formatProb),
        csvField(classes[pred]!),
        labelled ? String(pred === p.label) : '',
      ].join(','),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The numeric stem of a file ("test/unknown/123.jpg" -> 123), or the stem itself. */
export function submissionId(file: string): string {
  const base = file.slice(file.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(0, dot) : base;
}

/**
 * Kaggle's `id,label` with label = P(classes[1]) (dogs-vs-cats: P(dog)) clipped to `clip`,
 * ids sorted numerically (non-numeric ones after, by name). With more than two classes, one
 * clipped column per class.
 */
export function submissionCsv(preds: readonly Prediction[], classes: readonly string[], clip: readonly [number, number]): string {
  const [lo, hi] = clip;
  const c = (x: number) => formatProb(Math.min(hi, Math.max(lo, x)));
  const rows = preds.map((p) => ({ id: submissionId(p.file), p }));
  rows.sort((a, b) => {
    const na = Number(a.id);
    const nb = Number(b.id);
    const ia = a.id !== '' && Number.isFinite(na);
    const ib = b.id !== '' && Number.isFinite(nb);
    if (ia && ib) return na - nb;
    if (ia !== ib) return ia ? -1 : 1;
    return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  });
  const header = classes.length === 2 ? 'id,label' : ['id', ...classes.map(csvField)].join(',');
  const lines = rows.map(({ id, p }) => (classes.length === 2 ? `${csvField(id)},${c(p.probs[1]!)}` : [csvField(id), ...p.probs.map(c)].join(',')));
  return `${[header, ...lines].join('\n')}\n`;
}

export interface Gate {
  readonly accuracy?: number;
  readonly log_loss?: number;
}

/** Failed gates as readable lines (empty: passed). accuracy is a minimum, log_loss a maximum. */
export function gateFailures(m: Pick<Metrics, 'accuracy' | 'log_loss'>, gate: Gate): string[] {
  const out: string[] = [];
  if (gate.accuracy !== undefined && !(m.accuracy >= gate.accuracy)) out.push(`accuracy ${m.accuracy.toFixed(4)} is below the gate ${gate.accuracy}`);
  if (gate.log_loss !== undefined && !(m.log_loss <= gate.log_loss)) out.push(`log_loss ${m.log_loss.toFixed(4)} is above the gate ${gate.log_loss}`);
  return out;
}

/** The gate's verdict: passed or not, each failure, and one line saying so (for the log, the report, the run summary). */
export function gateVerdict(m: Pick<Metrics, 'accuracy' | 'log_loss'>, gate: Gate): { passed: boolean; failures: string[]; message: string } {
  const failures = gateFailures(m, gate);
  const checked = [
    ...(gate.accuracy === undefined ? [] : [`accuracy ${m.accuracy.toFixed(4)} ≥ ${gate.accuracy}`]),
    ...(gate.log_loss === undefined ? [] : [`log_loss ${m.log_loss.toFixed(4)} ≤ ${gate.log_loss}`]),
  ];
  return failures.length > 0
    ? { passed: false, failures, message: `gate failed: ${failures.join('; ')}` }
    : { passed: true, failures, message: `gate passed: ${checked.join(', ')}` };
}
