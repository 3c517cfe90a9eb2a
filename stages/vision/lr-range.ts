// The learning-rate range test (Smith 2015; fastai's lr_find): train the head for a few hundred
// steps on the cached frozen outputs while the rate grows exponentially from `startLr` to
// `endLr`, smooth the loss (exponential moving average, bias-corrected), stop once it diverges,
// and suggest the rate where the smoothed loss falls fastest. The weights are thrown away.
import type * as TF from '@tensorflow/tfjs';
import type { Progress } from '../../runner/types.js';
import { mulberry32 as prng, shuffle } from '../random.js';
import type { Tf } from './backend.js';
import { openLearner } from './learner.js';
import type { OptimizerName } from './optimizers.js';
import type { EnginePref } from './tfjs-engine.js';
import type { DataSource } from './train.js';

export interface RangeTestOptions {
  readonly steps: number;
  readonly startLr: number;
  readonly endLr: number;
}

export interface RangePoint {
  readonly step: number;
  readonly lr: number;
  readonly loss: number;
  readonly smoothed: number;
}

export interface RangeTestResult {
  readonly points: RangePoint[];
  /** Steepest descent of the smoothed loss; null when the curve never falls. */
  readonly suggested: number | null;
  /** Why it ended before `steps` (divergence), if it did. */
  readonly stopped?: string;
  readonly engine: Record<string, unknown>;
}

const BETA = 0.98;
/** Diverged: the smoothed loss above this many times its minimum (fastai's 4). */
const DIVERGED = 4;

/** The rate of step `i` of `n`: exponential from start to end. */
export function rangeRate(o: RangeTestOptions, i: number): number {
  return o.startLr * (o.endLr / o.startLr) ** (o.steps <= 1 ? 0 : i / (o.steps - 1));
}

/**
 * Where the smoothed loss falls fastest against log(rate): the most negative slope over a window
 * of a twentieth of the steps each side (adjacent points are too noisy: on real photos they
 * picked a bump at 1e-6), leaving out the first tenth, where the average is still settling.
 * Null when no slope is negative.
 */
export function steepestRate(points: readonly RangePoint[]): number | null {
  const n = points.length;
  if (n < 5) return null;
  const k = Math.max(1, Math.round(n / 20));
  let best: number | null = null;
  let bestSlope = 0;
  for (let i = Math.max(k, Math.floor(n / 10)); i < n - k; i++) {
    const a = points[i - k]!;
    const b = points[i + k]!;
    const slope = (b.smoothed - a.smoothed) / (Math.log10(b.lr) - Math.log10(a.lr));
    if (slope < bestSlope) {
      bestSlope = slope;
      best = i;
    }
  }
  return best === null ? null : points[best]!.lr;
}

export interface RangeTestInput {
  readonly tf: Tf;
  readonly head: TF.LayersModel;
  readonly train: DataSource;
  readonly classes: number;
  readonly batchSize: number;
  readonly optimizer: OptimizerName;
  readonly engine: EnginePref;
  readonly seed: number;
  readonly signal: AbortSignal;
  readonly progress: (label: string, total?: number) => Progress;
  readonly log: (message: string) => void;
  readonly warn?: (message: string) => void;
}

export async function rangeTest(i: RangeTestInput, o: RangeTestOptions): Promise<RangeTestResult> {
  const learner = await openLearner({
    tf: i.tf,
    head: i.head,
    shape: i.train.shape,
    classes: i.classes,
    optimizer: i.optimizer,
    learningRate: o.startLr,
    engine: i.engine,
    log: i.log,
    ...(i.warn ? { warn: i.warn } : {}),
  });
  const points: RangePoint[] = [];
  let stopped: string | undefined;
  try {
    const bar = i.progress('learning-rate range test', o.steps);
    let order: number[] = [];
    let at = 0;
    let avg = 0;
    let min = Infinity;
    for (let step = 0; step < o.steps; step++) {
      if (i.signal.aborted) throw Object.assign(new Error('interrupted'), { name: 'AbortError' });
      if (at + i.batchSize > order.length) {
        // A new pass over the training rows, in a seeded order.
        order = shuffle(
          Array.from({ length: i.train.count }, (_, r) => r),
          prng((i.seed * 7919 + points.length) >>> 0),
        );
        at = 0;
      }
      const idx = order.slice(at, at + i.batchSize);
      at += idx.length;
      const lr = rangeRate(o, step);
      learner.setLearningRate(lr);
      const x = await i.train.rows(idx);
      const { loss } = await learner.step(
        x,
        idx.map((r) => i.train.labels[r]!),
        idx.length,
        (i.seed * 1_000_003 + step) >>> 0,
      );
      avg = BETA * avg + (1 - BETA) * loss;
      const smoothed = avg / (1 - BETA ** (step + 1));
      points.push({ step: step + 1, lr, loss, smoothed });
      bar.update(step + 1, `lr ${lr.toExponential(1)} loss ${smoothed.toFixed(4)}`);
      if (!Number.isFinite(smoothed) || (step >= 10 && smoothed > DIVERGED * min)) {
        stopped = `the loss diverged at rate ${lr.toExponential(2)} (step ${step + 1})`;
        break;
      }
      min = Math.min(min, smoothed);
    }
    bar.done(stopped ?? `${points.length} steps`);
    // The diverged tail says nothing about where to train: leave it out of the suggestion.
    const usable = stopped ? points.slice(0, -1) : points;
    return { points, suggested: steepestRate(usable), ...(stopped ? { stopped } : {}), engine: learner.detail };
  } finally {
    await learner.finish();
  }
}

/** About `rows` evenly spaced points, the suggestion's nearest marked, as a plain-text table. */
export function rangeTable(r: RangeTestResult, rows = 16): string {
  const every = Math.max(1, Math.ceil(r.points.length / rows));
  const near =
    r.suggested === null
      ? -1
      : r.points.reduce((b, p, k) => (Math.abs(Math.log(p.lr / r.suggested!)) < Math.abs(Math.log(r.points[b]!.lr / r.suggested!)) ? k : b), 0);
  const lines = ['  step  learning rate      loss  smoothed'];
  r.points.forEach((p, k) => {
    if (k % every !== 0 && k !== r.points.length - 1 && k !== near) return;
    lines.push(
      `${String(p.step).padStart(6)}  ${p.lr.toExponential(2).padStart(13)}  ${fmt(p.loss).padStart(8)}  ${fmt(p.smoothed).padStart(8)}${k === near ? '  <- suggested' : ''}`,
    );
  });
  return lines.join('\n');
}

function fmt(v: number): string {
  return Number.isFinite(v) ? v.toFixed(4) : String(v);
}
