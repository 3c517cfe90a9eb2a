// The trainable part ("head") of a network trains on cached frozen outputs (or on images when
// nothing is frozen) through a Learner (ONNX Runtime or tfjs, ./learner.ts): a seeded custom
// loop, so that progress is reported per batch, the run can be aborted between batches, and a
// checkpoint after each epoch (weights, optimizer state, history) lets an interrupted run resume
// from the last finished epoch.
import { mkdir, readFile, readdir, rm, writeFile, rename } from 'node:fs/promises';
import path from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import type { Progress } from '../../runner/types.js';
import type { Tf } from './backend.js';
import { cutOutputShape } from './tfjs-engine.js';
import { mulberry32 as prng, shuffle } from '../random.js';
import { rowLogLoss } from '../evaluate-metrics.js';
import { openLearner, type Learner, type OptimizerName } from './learner.js';
import type { EnginePref } from './tfjs-engine.js';
import { EpochKeeper, type EarlyStop, type KeeperOptions, type KeptEpoch } from './epoch-keeper.js';

export type { OptimizerName };

/** Rows of training data: cached frozen outputs, or decoded images. */
export interface DataSource {
  readonly count: number;
  /** Per example, without the batch dimension. */
  readonly shape: readonly number[];
  /** Class index per row. */
  readonly labels: Int32Array;
  rows(indices: readonly number[]): Promise<Float32Array>;
  /** The rows epoch `epoch` trains on, when they vary by epoch (augmented variants: ./variants.ts). */
  forEpoch?(epoch: number): DataSource;
}

export interface EpochRecord {
  epoch: number;
  loss: number;
  accuracy: number;
  val_loss?: number;
  val_accuracy?: number;
}

/** How long an epoch took: run-dependent, so it goes to meta.json, never into history.json. */
export interface EpochTiming {
  epoch: number;
  /** Training time of the epoch. */
  seconds: number;
  /** Validation time of the epoch (when validated). */
  val_seconds?: number;
}

export interface History {
  epochs: EpochRecord[];
  /** Which epoch's weights the model holds, and why. */
  kept?: KeptEpoch;
  /** Present when patience ended training before `epochs`. */
  early_stop?: EarlyStop;
}

export interface TrainOptions {
  readonly tf: Tf;
  readonly head: TF.LayersModel;
  readonly train: DataSource;
  readonly valid: DataSource | null;
  readonly classes: number;
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  /** How the step size moves over training (default constant). */
  readonly lrSchedule?: LrSchedule;
  readonly optimizer: OptimizerName;
  readonly seed: number;
  readonly validateEveryEpoch: boolean;
  /** Which epoch to keep and when to stop early (default: keep the last, no patience). */
  readonly keep?: KeeperOptions;
  /** What trains: ONNX Runtime where it can (auto), or tfjs. */
  readonly engine: EnginePref;
  /** Checkpoints live here (ctx.workDir). */
  readonly checkpointDir: string;
  /** Identifies the training setup; a checkpoint made for another one is ignored. */
  readonly checkpointKey: string;
  readonly signal: AbortSignal;
  readonly progress: (label: string, total?: number) => Progress;
  readonly log: (message: string) => void;
  readonly warn?: (message: string) => void;
  /** Learning-rate multiplier per layer name (discriminative rates: ./unfreeze.ts). */
  readonly lrMult?: ReadonlyMap<string, number>;
}

export interface TrainResult {
  readonly history: History;
  /** Which learner trained (engine, provider, threads, ...). */
  readonly engine: Record<string, unknown>;
  readonly resumedFrom: number;
  readonly trainSeconds: number;
  readonly validSeconds: number;
  /** The epochs trained by this call (not those restored from a checkpoint). */
  readonly epochTimings: readonly EpochTiming[];
}

/**
 * A model of the layers after `cutLayer` (which must form a chain up to the model's output),
 * taking the cut's output as input. It shares the layer objects, so training it trains `model`.
 */
export function headModel(tf: Tf, model: TF.LayersModel, cutLayer: string): TF.LayersModel {
  const layers = model.layers;
  const at = layers.findIndex((l) => l.name === cutLayer);
  if (at < 0) throw new Error(`layer '${cutLayer}' not found`);
  const input = tf.input({ shape: cutOutputShape(model, cutLayer), name: `${cutLayer}_features` });
  let x: TF.SymbolicTensor = input;
  let prev = layers[at]!;
  const after = layers.slice(at + 1);
  if (after.length === 0) throw new Error(`nothing after '${cutLayer}' to train`);
  for (const layer of after) {
    const inbound = layer.inboundNodes[0]?.inboundLayers ?? [];
    if (inbound.length !== 1 || inbound[0] !== prev) {
      throw new Error(`the layers after '${cutLayer}' must form a chain; '${layer.name}' does not follow '${prev.name}'`);
    }
    x = layer.apply(x) as TF.SymbolicTensor;
    prev = layer;
  }
  if (!model.outputLayers.includes(prev)) throw new Error(`the chain after '${cutLayer}' ends at '${prev.name}', not at the model's output`);
  return tf.model({ inputs: input, outputs: x, name: `head_after_${cutLayer}` });
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : Object.assign(new Error('interrupted'), { name: 'AbortError' });
}

/** Mean log loss (evaluate's definition: rowLogLoss) and accuracy on `source` of what `predict` returns (softmax rows). */
export async function evaluateSource(
  predict: (x: Float32Array, count: number) => Promise<Float32Array>,
  source: DataSource,
  batchSize: number,
  signal?: AbortSignal,
): Promise<{ loss: number; accuracy: number }> {
  let lossSum = 0;
  let correct = 0;
  for (let s = 0; s < source.count; s += batchSize) {
    if (signal?.aborted) throw abortError(signal);
    const idx = Array.from({ length: Math.min(batchSize, source.count - s) }, (_, i) => s + i);
    const x = await source.rows(idx);
    const probs = await predict(x, idx.length);
    const k = probs.length / idx.length;
    idx.forEach((row, i) => {
      const label = source.labels[row]!;
      const p = probs.subarray(i * k, (i + 1) * k);
      lossSum += rowLogLoss(p[label]!);
      if (argmax(p) === label) correct++;
    });
  }
  return { loss: lossSum / source.count, accuracy: correct / source.count };
}

export function argmax(p: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < p.length; i++) if (p[i]! > p[best]!) best = i;
  return best;
}

interface CheckpointState {
  key: string;
  epoch: number;
  history: History;
}

/**
 * Saves epoch `state.epoch`; older epochs' checkpoints go, except the best one (`keepEpoch`): its
 * weights are what `keep: best` restores at the end, also after a kill and resume.
 */
async function writeCheckpoint(dir: string, state: CheckpointState, learner: Learner, keepEpoch: number | null): Promise<void> {
  const epochDir = path.join(dir, `epoch-${state.epoch}`);
  await rm(epochDir, { recursive: true, force: true });
  await learner.save(epochDir);
  const tmp = path.join(dir, `state.json.tmp-${process.pid}`);
  await writeFile(tmp, JSON.stringify(state));
  await rename(tmp, path.join(dir, 'state.json')); // the checkpoint counts from here on
  for (const name of await readdir(dir)) {
    const m = /^epoch-(\d+)$/.exec(name);
    if (m && Number(m[1]) !== state.epoch && Number(m[1]) !== keepEpoch) await rm(path.join(dir, name), { recursive: true, force: true });
  }
}

async function readCheckpoint(dir: string, key: string): Promise<CheckpointState | null> {
  try {
    const state = JSON.parse(await readFile(path.join(dir, 'state.json'), 'utf8')) as CheckpointState;
    return state.key === key ? state : null;
  } catch {
    return null;
  }
}

export type LrSchedule = 'constant' | 'cosine';

/**
 * The step size of step `step` (0-based) of `total`: `base`, or for `cosine` a half cosine from
 * `base` down towards 0 (the last step still moves a little). Depends on the step index only,
 * so a resumed run continues on the same curve.
 */
export function scheduledLearningRate(base: number, schedule: LrSchedule, step: number, total: number): number {
  if (schedule === 'constant' || total <= 1) return base;
  return base * 0.5 * (1 + Math.cos((Math.PI * step) / total));
}

/** Train `head`; returns the history (epochs restored from a checkpoint included). */
export async function trainHead(o: TrainOptions): Promise<TrainResult> {
  const { tf, head, train } = o;
  if (train.count === 0) throw new Error('no training examples');
  if (head.trainableWeights.length === 0) throw new Error('nothing to train: the head has no trainable weights');
  await mkdir(o.checkpointDir, { recursive: true });
  const learner = await openLearner({
    tf,
    head,
    shape: train.shape,
    classes: o.classes,
    optimizer: o.optimizer,
    learningRate: o.learningRate,
    engine: o.engine,
    log: o.log,
    ...(o.warn ? { warn: o.warn } : {}),
    ...(o.lrMult ? { lrMult: o.lrMult } : {}),
  });
  try {
    return await trainLoop(o, learner);
  } finally {
    await learner.finish();
  }
}

async function trainLoop(o: TrainOptions, learner: Learner): Promise<TrainResult> {
  const { train, valid, signal } = o;
  // A checkpoint belongs to one learner: its format (and numerics) are its own.
  const keepOptions: KeeperOptions = o.keep ?? { keep: 'last', monitor: 'val_loss', patience: 0 };
  const key = `${o.checkpointKey}|${learner.name}|${JSON.stringify(keepOptions)}`;
  const validated = !!valid && valid.count > 0;
  const judging = keepOptions.keep === 'best' || keepOptions.patience > 0;
  if (judging && (!validated || !o.validateEveryEpoch)) {
    const why = validated ? 'validate_every_epoch: false validates the last epoch only' : 'no validation set (valid: 0): nothing to judge epochs by';
    const effects = [keepOptions.keep === 'best' ? 'keep: best keeps the last epoch' : '', keepOptions.patience > 0 ? 'patience is off' : ''].filter(Boolean);
    // keep: best is the default, so validating once is a choice, not a mistake: said, not warned; patience set in vain is.
    const warn = !validated || keepOptions.patience > 0;
    (warn ? (o.warn ?? o.log) : o.log)(`${why}: ${effects.join(', ')}`);
  }
  let history: History = { epochs: [] };
  let start = 1;
  const state = await readCheckpoint(o.checkpointDir, key);
  if (state && state.epoch >= 1 && state.epoch <= o.epochs) {
    await learner.restore(path.join(o.checkpointDir, `epoch-${state.epoch}`));
    // Checkpoints written before timings left the history still carry them.
    history = {
      epochs: state.history.epochs.map(({ epoch, loss, accuracy, val_loss, val_accuracy }) => ({
        epoch,
        loss,
        accuracy,
        ...(val_loss === undefined ? {} : { val_loss }),
        ...(val_accuracy === undefined ? {} : { val_accuracy }),
      })),
    };
    start = state.epoch + 1;
    o.log(`resuming from the checkpoint of epoch ${state.epoch}/${o.epochs}`);
  }
  const keeper = EpochKeeper.replay(keepOptions, history.epochs);
  // A run killed after its early stop was checkpointed stops there again.
  let stopped: EarlyStop | undefined = start > 1 && start <= o.epochs && keeper.shouldStop() ? keeper.earlyStop() : undefined;

  let trainSeconds = 0;
  let validSeconds = 0;
  const epochTimings: EpochTiming[] = [];
  const batches = Math.ceil(train.count / o.batchSize);
  for (let epoch = start; epoch <= o.epochs && !stopped; epoch++) {
    const t0 = performance.now();
    const order = shuffle(
      Array.from({ length: train.count }, (_, i) => i),
      prng((o.seed * 7919 + epoch) >>> 0),
    );
    const bar = o.progress(`epoch ${epoch}/${o.epochs}`, train.count);
    let lossSum = 0;
    let correct = 0;
    let seen = 0;
    const batchIdx = (b: number) => order.slice(b * o.batchSize, (b + 1) * o.batchSize);
    const epochRows = train.forEpoch?.(epoch) ?? train;
    let next = epochRows.rows(batchIdx(0));
    for (let b = 0; b < batches; b++) {
      if (signal.aborted) {
        next.catch(() => undefined);
        throw abortError(signal);
      }
      const idx = batchIdx(b);
      const xData = await next;
      if (b + 1 < batches) next = epochRows.rows(batchIdx(b + 1)); // read ahead while this batch trains
      const labels = idx.map((r) => train.labels[r]!);
      const stepSeed = (o.seed * 1_000_003 + epoch * 10_007 + b * 101) >>> 0;
      if (o.lrSchedule && o.lrSchedule !== 'constant')
        learner.setLearningRate(scheduledLearningRate(o.learningRate, o.lrSchedule, (epoch - 1) * batches + b, o.epochs * batches));
      const { loss, probs: pData } = await learner.step(xData, labels, idx.length, stepSeed);
      idx.forEach((row, i) => {
        if (argmax(pData.subarray(i * o.classes, (i + 1) * o.classes)) === train.labels[row]) correct++;
      });
      lossSum += loss * idx.length;
      seen += idx.length;
      const secs = (performance.now() - t0) / 1000;
      const rate = seen / secs;
      bar.update(seen, `loss ${(lossSum / seen).toFixed(4)} acc ${(correct / seen).toFixed(3)} ${rate.toFixed(rate < 10 ? 1 : 0)} img/s`);
    }
    const seconds = (performance.now() - t0) / 1000;
    trainSeconds += seconds;
    const record: EpochRecord = { epoch, loss: lossSum / seen, accuracy: correct / seen };
    const timing: EpochTiming = { epoch, seconds };
    epochTimings.push(timing);
    bar.done(`loss ${record.loss.toFixed(4)} acc ${record.accuracy.toFixed(3)}`);
    if (valid && valid.count > 0 && (o.validateEveryEpoch || epoch === o.epochs)) {
      const v0 = performance.now();
      const v = await evaluateSource((x, n) => learner.predict(x, n), valid, Math.max(o.batchSize, 64), signal);
      record.val_loss = v.loss;
      record.val_accuracy = v.accuracy;
      timing.val_seconds = (performance.now() - v0) / 1000;
      validSeconds += timing.val_seconds;
    }
    history = { epochs: [...history.epochs, record] };
    o.log(
      `epoch ${epoch}/${o.epochs}: loss ${record.loss.toFixed(4)} acc ${record.accuracy.toFixed(4)}` +
        (record.val_loss !== undefined ? ` val_loss ${record.val_loss.toFixed(4)} val_acc ${record.val_accuracy!.toFixed(4)}` : '') +
        ` (${seconds.toFixed(1)} s)`,
    );
    keeper.observe(record);
    if (epoch < o.epochs && keeper.shouldStop()) {
      stopped = keeper.earlyStop();
      o.log(`stopping early after epoch ${epoch}: ${stopped.reason}`);
    }
    await writeCheckpoint(o.checkpointDir, { key, epoch, history }, learner, keeper.best);
  }
  const lastEpoch = history.epochs[history.epochs.length - 1]?.epoch ?? 0;
  const kept = keeper.kept(lastEpoch, { validated });
  if (kept.epoch !== lastEpoch) {
    await learner.restore(path.join(o.checkpointDir, `epoch-${kept.epoch}`));
    o.log(`keeping epoch ${kept.epoch} of ${lastEpoch}: ${kept.reason}`);
  }
  history = { epochs: history.epochs, kept, ...(stopped ? { early_stop: stopped } : {}) };
  return { history, engine: learner.detail, resumedFrom: start - 1, trainSeconds, validSeconds, epochTimings };
}
