// What trains the head, behind one interface: ONNX Runtime (./onnx/trainer.ts: hand-built
// backward graphs, every core) or tfjs' optimizers on the selected backend (wasm: one core).
// `auto` takes ONNX when the head's layers have training graphs and onnxruntime-node loads, and
// says why not otherwise. Each learner keeps its own checkpoint format.
import type * as TF from '@tensorflow/tfjs';
import type { Tf } from './backend.js';
import { loadArrays, loadTensors, saveArrays, saveTensors } from './model-io.js';
import type { EnginePref } from './tfjs-engine.js';

import { OPTIMIZERS, type OptimizerName } from './optimizers.js';

export type { OptimizerName };

export interface Learner {
  readonly name: 'onnx' | 'tfjs';
  readonly detail: Record<string, unknown>;
  /** One optimizer step on `count` rows; `seed` varies dropout per step. */
  step(x: Float32Array, labels: ArrayLike<number>, count: number, seed: number): Promise<{ loss: number; probs: Float32Array }>;
  /** Softmax outputs with the current weights (inference: no dropout). */
  predict(x: Float32Array, count: number): Promise<Float32Array>;
  /** The step size of the next steps (a schedule moves it). */
  setLearningRate(lr: number): void;
  save(dir: string): Promise<void>;
  restore(dir: string): Promise<void>;
  /** Leaves the trained weights in the tf.layers model and frees what the learner holds. */
  finish(): Promise<void>;
}

export interface LearnerOptions {
  readonly tf: Tf;
  readonly head: TF.LayersModel;
  /** Per row, without the batch dimension. */
  readonly shape: readonly number[];
  readonly classes: number;
  readonly optimizer: OptimizerName;
  readonly learningRate: number;
  readonly engine: EnginePref;
  readonly log: (message: string) => void;
  readonly warn?: (message: string) => void;
  /** Learning-rate multiplier per layer name (discriminative rates: ./unfreeze.ts); default 1. */
  readonly lrMult?: ReadonlyMap<string, number>;
}

/** The learner for `o.engine`: onnx where it can train this head (auto, onnx), else tfjs. */
export async function openLearner(o: LearnerOptions): Promise<Learner> {
  if (o.engine !== 'tfjs') {
    try {
      return await onnxLearner(o);
    } catch (e) {
      const reason = `${((e as Error).message ?? String(e)).split('\n')[0]}`;
      (o.engine === 'onnx' ? (o.warn ?? o.log) : o.log)(`training on onnx is not possible (${reason}); training with tfjs (${o.tf.getBackend()})`);
    }
  }
  return tfjsLearner(o);
}

async function onnxLearner(o: LearnerOptions): Promise<Learner> {
  const { createOnnxTrainer } = await import('./onnx/trainer.js');
  const trainer = await createOnnxTrainer(o.head, {
    optimizer: o.optimizer,
    learningRate: o.learningRate,
    log: o.log,
    ...(o.lrMult ? { lrMult: o.lrMult } : {}),
  });
  return {
    name: 'onnx',
    detail: trainer.detail,
    step: (x, labels, count, seed) => trainer.step(x, labels, count, seed),
    predict: (x, count) => trainer.predict(x, count),
    setLearningRate: (lr) => trainer.setLearningRate(lr),
    save: (dir) => saveArrays(dir, 'onnx-state', trainer.state()),
    async restore(dir) {
      trainer.restore(await loadArrays(dir, 'onnx-state'));
    },
    async finish() {
      trainer.writeBack(o.tf);
      await trainer.dispose();
    },
  };
}

/**
 * Training on softmax probabilities saturates: cross-entropy clips p at 1e-7 and a confidently
 * wrong start (large frozen features, e.g. random weights on caffe-range pixels) gets zero
 * gradient. Like Keras, train on the logits instead: run the head with its final Dense layer's
 * softmax bypassed for the forward pass, and use softmax cross-entropy on the logits.
 * Returns null when the head does not end in a softmax Dense layer.
 */
function softmaxLogits(head: TF.LayersModel): ((x: TF.Tensor) => TF.Tensor) | null {
  const last = head.layers[head.layers.length - 1] as
    (TF.layers.Layer & { activation?: { apply(x: TF.Tensor): TF.Tensor; getClassName?(): string } }) | undefined;
  if (!last || last.getClassName() !== 'Dense' || !last.activation) return null;
  const cfg = last.getConfig() as { activation?: unknown };
  if (cfg.activation !== 'softmax') return null;
  const softmax = last.activation;
  const identity = { apply: (t: TF.Tensor) => t, getClassName: () => 'Linear' };
  return (x) => {
    last.activation = identity;
    try {
      return head.apply(x, { training: true }) as TF.Tensor;
    } finally {
      last.activation = softmax;
    }
  };
}

/** Softmax outputs of `model` for `count` rows of shape `shape`, flat. */
async function predictRows(tf: Tf, model: TF.LayersModel, x: Float32Array, count: number, shape: readonly number[]): Promise<Float32Array> {
  const y = tf.tidy(() => model.predict(tf.tensor(x, [count, ...shape], 'float32')) as TF.Tensor);
  try {
    return (await y.data()) as Float32Array;
  } finally {
    y.dispose();
  }
}

/**
 * tfjs' Adam keeps beta1^t and beta2^t as variables multiplied by beta at every step, but its
 * setWeights recomputes them with pow(): in float32 the two differ after a dozen steps, and a
 * resumed run drifts from the uninterrupted one. The checkpoint keeps the variables themselves.
 */
function adamPowers(optimizer: TF.Optimizer): [TF.Variable, TF.Variable] | null {
  const o = optimizer as unknown as { accBeta1?: TF.Variable; accBeta2?: TF.Variable };
  return o.accBeta1 && o.accBeta2 ? [o.accBeta1, o.accBeta2] : null;
}

function tfjsLearner(o: LearnerOptions): Learner {
  const { head } = o;
  if (o.lrMult && [...o.lrMult.values()].some((m) => m !== 1)) return groupedTfjsLearner(o, tfjsLearnerWith);
  return tfjsLearnerWith(o, [{ mult: 1, vars: head.trainableWeights.map((w) => w.read() as TF.Variable) }]);
}

/** Variables trained at learning rate x `mult`, by one optimizer. */
interface VarGroup {
  readonly mult: number;
  readonly vars: TF.Variable[];
}

function tfjsLearnerWith(o: LearnerOptions, groups: readonly VarGroup[]): Learner {
  const { tf, head } = o;
  const optimizers = groups.map((g) => OPTIMIZERS[o.optimizer].tfjs(tf, o.learningRate * g.mult));
  const optimizer = optimizers[0]!;
  const vars = groups.flatMap((g) => g.vars);
  if (vars.length === 0) throw new Error('nothing to train: the head has no trainable weights');
  const dropouts = head.layers.filter((l) => l.getClassName() === 'Dropout');
  const logitsOf = softmaxLogits(head);
  o.log(`training with tfjs (${tf.getBackend()})`);
  return {
    name: 'tfjs',
    detail: { engine: 'tfjs', backend: tf.getBackend() },
    async step(xData, labels, count, seed) {
      // Dropout with a fixed seed would drop the same units every step: vary it per step, seeded.
      dropouts.forEach((l, i) => ((l as unknown as { seed?: number }).seed = (seed + i) >>> 0));
      const kept: { probs?: TF.Tensor } = {};
      const lossT = tf.tidy((): TF.Scalar => {
        const x = tf.tensor(xData, [count, ...o.shape], 'float32');
        const y = tf.oneHot(
          tf.tensor1d(
            Array.from({ length: count }, (_, i) => labels[i]!),
            'int32',
          ),
          o.classes,
        );
        const lossOf = (): TF.Scalar => {
          if (logitsOf) {
            const logits = logitsOf(x);
            kept.probs = tf.keep(tf.softmax(logits));
            return tf.losses.softmaxCrossEntropy(y, logits) as TF.Scalar;
          }
          const p = head.apply(x, { training: true }) as TF.Tensor;
          kept.probs = tf.keep(p);
          return tf.metrics.categoricalCrossentropy(y, p).mean() as TF.Scalar;
        };
        if (optimizers.length === 1) return optimizer.minimize(lossOf, true, vars) as TF.Scalar;
        // One gradient pass, then each group's optimizer steps its own variables at its own rate.
        const { value, grads } = tf.variableGrads(lossOf, vars);
        groups.forEach((g, i) => optimizers[i]!.applyGradients(Object.fromEntries(g.vars.map((v) => [v.name, grads[v.name]!]))));
        return value;
      });
      const loss = (await lossT.data())[0]!;
      const probs = (await kept.probs!.data()) as Float32Array;
      tf.dispose([lossT, kept.probs!]);
      return { loss, probs };
    },
    predict: (x, count) => predictRows(tf, head, x, count, o.shape),
    setLearningRate(lr) {
      // Momentum (an SGDOptimizer) keeps -lr as a scalar tensor and has a setter; Adam reads its
      // learningRate field at every step. (tfjs' optimizers answer `instanceof` for any
      // optimizer class, so the setter is looked up.)
      optimizers.forEach((opt, i) => {
        const o = opt as unknown as { learningRate: number; setLearningRate?: (lr: number) => void };
        const rate = lr * groups[i]!.mult;
        if (typeof o.setLearningRate === 'function') o.setLearningRate(rate);
        else o.learningRate = rate;
      });
    },
    async save(dir) {
      await saveTensors(
        dir,
        'weights',
        head.weights.map((w) => ({ name: w.name, tensor: w.read() })),
      );
      for (const [i, opt] of optimizers.entries()) {
        const state = await opt.getWeights();
        await saveTensors(dir, optimizerFile(i), state);
        // getWeights returns the optimizer's live variables, plus a fresh scalar for the step count.
        tf.dispose(state.filter((w) => w.name === 'iter').map((w) => w.tensor));
        const powers = adamPowers(opt);
        if (powers)
          await saveTensors(
            dir,
            `adam-powers${i === 0 ? '' : `-${i}`}`,
            powers.map((v, k) => ({ name: `beta${k + 1}_power`, tensor: v })),
          );
      }
    },
    async restore(dir) {
      const weights = await loadTensors(tf, dir, 'weights');
      if (weights.length !== head.weights.length) throw new Error(`checkpoint has ${weights.length} weights, the head ${head.weights.length}`);
      head.setWeights(weights.map((w) => w.tensor));
      tf.dispose(weights.map((w) => w.tensor));
      for (const [i, opt] of optimizers.entries()) {
        await opt.setWeights(await loadTensors(tf, dir, optimizerFile(i))); // takes ownership
        const powers = adamPowers(opt);
        if (powers) {
          const saved = await loadTensors(tf, dir, `adam-powers${i === 0 ? '' : `-${i}`}`);
          powers.forEach((v, k) => v.assign(saved[k]!.tensor as TF.Scalar));
          tf.dispose(saved.map((w) => w.tensor));
        }
      }
    },
    async finish() {
      for (const opt of optimizers) opt.dispose();
    },
  };
}

/** Checkpoint file of group i's optimizer ('optimizer' for the first, as with one optimizer). */
function optimizerFile(i: number): string {
  return i === 0 ? 'optimizer' : `optimizer-${i}`;
}

/** The head's trainable variables grouped by their layer's learning-rate multiplier (first-seen order). */
function groupedTfjsLearner(o: LearnerOptions, make: (o: LearnerOptions, groups: readonly VarGroup[]) => Learner): Learner {
  const groups: VarGroup[] = [];
  for (const layer of o.head.layers) {
    if (!layer.trainable) continue;
    const mult = o.lrMult?.get(layer.name) ?? 1;
    const vars = layer.trainableWeights.map((w) => w.read() as TF.Variable);
    if (vars.length === 0) continue;
    const g = groups.find((x) => x.mult === mult);
    if (g) g.vars.push(...vars);
    else groups.push({ mult, vars });
  }
  return make(o, groups);
}
