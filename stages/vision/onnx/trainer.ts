// Trains the trainable part of a network with ONNX Runtime: the graphs of ./train-graph.ts give
// the loss and every weight's gradient in one run; the optimizer (../optimizers.ts: tfjs' formulas
// and defaults) updates the weights here, in plain typed arrays. ORT's matrix
// products use every core, where tfjs' wasm backend is single-threaded in Node.
// At the end (and for checkpoints) the weights go back into the tf.layers variables.
import os from 'node:os';
import type * as tf from '@tensorflow/tfjs';
import type * as Ort from 'onnxruntime-node';
import { mulberry32 } from '../../random.js';
import type { NamedArray } from '../model-io.js';
import { loadOrt, openSession, type OnnxProvider } from './engine.js';
import { convKernelToOnnx, convKernelToTf } from './kernel-layout.js';
import { OPTIMIZERS, type OptimizerName } from '../optimizers.js';
import { buildTrainGraphs, type TrainGraphs, type TrainParam } from './train-graph.js';

export interface OnnxTrainerOptions {
  readonly optimizer: OptimizerName;
  readonly learningRate: number;
  /** Intra-op threads; default every core. */
  readonly threads?: number;
  readonly provider?: OnnxProvider;
  /**
   * Bytes a step's graph may hold; a larger batch runs in slices whose gradients are summed
   * (same result). Default: a quarter of the machine's memory, between 1 and 8 GiB.
   */
  readonly memoryBudgetBytes?: number;
  readonly log?: (message: string) => void;
  /** Learning-rate multiplier per layer name (discriminative rates: ../unfreeze.ts); default 1. */
  readonly lrMult?: ReadonlyMap<string, number>;
}

export interface StepResult {
  readonly loss: number;
  /** Softmax outputs, [count, classes] flat. */
  readonly probs: Float32Array;
}

export interface OnnxTrainer {
  readonly detail: Record<string, unknown>;
  readonly classes: number;
  /** One optimizer step on `count` rows; `seed` draws the dropout masks. */
  step(x: Float32Array, labels: ArrayLike<number>, count: number, seed: number): Promise<StepResult>;
  /** Softmax outputs with the current weights (no dropout). */
  predict(x: Float32Array, count: number): Promise<Float32Array>;
  /** The step size of the next steps. */
  setLearningRate(lr: number): void;
  /** Copies the current weights into the tf.layers variables. */
  writeBack(tf: typeof import('@tensorflow/tfjs')): void;
  /** Weights and optimizer state, for a checkpoint. */
  state(): NamedArray[];
  /** Restores what state() returned (throws when it does not fit). */
  restore(state: readonly NamedArray[]): void;
  dispose(): Promise<void>;
}

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The weights of `p` as the graph wants them. */
function toOnnx(p: TrainParam): Float32Array {
  const data = p.variable.read().dataSync() as Float32Array;
  return p.conv ? convKernelToOnnx(data, p.conv) : Float32Array.from(data);
}

/**
 * A trainer for `head`, or throws UnsupportedLayerError (a layer the graphs cannot express) or
 * the error of onnxruntime-node not loading; the caller then trains with tfjs.
 */
export async function createOnnxTrainer(head: tf.LayersModel, opts: OnnxTrainerOptions): Promise<OnnxTrainer> {
  const graphs: TrainGraphs = buildTrainGraphs(head);
  const log = opts.log ?? (() => {});
  const threads = Math.max(1, Math.floor(opts.threads ?? os.availableParallelism()));
  const ort = await loadOrt();
  const train = await openSession(ort, graphs.train, opts.provider ?? 'auto', threads, log);
  let predictSession: Ort.InferenceSession;
  try {
    predictSession = (await openSession(ort, graphs.predict, train.provider, threads, log)).session;
  } catch (e) {
    await train.session.release();
    throw e;
  }
  const { params, dropouts, classes, inputShape } = graphs;
  const inSize = size(inputShape);
  const weights = params.map(toOnnx);
  const optimizer = OPTIMIZERS[opts.optimizer];
  const slots = params.map((p) => Array.from({ length: optimizer.slots }, () => new Float32Array(size(p.onnxShape))));
  let steps = 0;
  const gradBuffers = params.map((p) => new Float32Array(size(p.onnxShape)));
  const budget = opts.memoryBudgetBytes ?? Math.min(8 * 2 ** 30, Math.max(2 ** 30, os.totalmem() / 4));
  const maxRows = Math.max(1, Math.floor(budget / graphs.bytesPerExample));
  // Sums of the slices' gradients, made the first time a batch is larger than maxRows.
  const gradSumStore: (Float32Array | undefined)[] = params.map(() => undefined);
  const gradSum = (i: number): Float32Array => (gradSumStore[i] ??= new Float32Array(size(params[i]!.onnxShape)));
  let lrNow = opts.learningRate;
  const mults = params.map((p) => opts.lrMult?.get(p.layer) ?? 1);

  const weightFeeds = (): Record<string, Ort.Tensor> =>
    Object.fromEntries(params.map((p, i) => [p.name, new ort.Tensor('float32', weights[i]!, [...p.onnxShape])]));
  const xFeed = (x: Float32Array, count: number) => {
    if (x.length < count * inSize) throw new Error(`onnx trainer: ${x.length} values for ${count} rows of ${inSize}`);
    return new ort.Tensor('float32', x.subarray(0, count * inSize), [count, ...inputShape]);
  };

  const update = (i: number, g: Float32Array) => optimizer.update(weights[i]!, g, slots[i]!, lrNow * mults[i]!, steps);

  /** One run of the train graph on rows [start, start + n): loss, probabilities, gradients. */
  const runSlice = async (x: Float32Array, labels: ArrayLike<number>, start: number, n: number, rand: () => number) => {
    const y = new Float32Array(n * classes);
    for (let i = 0; i < n; i++) y[i * classes + labels[start + i]!] = 1;
    const feeds: Record<string, Ort.Tensor> = { x: xFeed(x.subarray(start * inSize), n), y: new ort.Tensor('float32', y, [n, classes]), ...weightFeeds() };
    for (const d of dropouts) {
      const mask = new Float32Array(n * d.perExample);
      const keep = 1 / (1 - d.rate);
      for (let j = 0; j < mask.length; j++) mask[j] = rand() >= d.rate ? keep : 0;
      feeds[d.name] = new ort.Tensor(
        'float32',
        mask,
        d.dims.map((v) => (v === 'N' ? n : Number(v))),
      );
    }
    // Gradients land in buffers kept from step to step: fresh 100 MB+ arrays per step (fc1)
    // cost more in page faults than the products themselves.
    const fetches: Record<string, Ort.Tensor | null> = { loss: null, probs: null };
    params.forEach((p, i) => (fetches[`grad/${p.name}`] = new ort.Tensor('float32', gradBuffers[i]!, [...p.onnxShape])));
    const out = await train.session.run(feeds, fetches);
    return {
      loss: (out['loss']!.data as Float32Array)[0]!,
      probs: out['probs']!.data as Float32Array,
      grads: params.map((p) => out[`grad/${p.name}`]!.data as Float32Array),
    };
  };

  const detail = {
    engine: 'onnx',
    provider: train.provider,
    threads,
    ortVersion: ort.env.versions?.node ?? ort.env.versions?.common ?? 'unknown',
    layers: [...new Set(params.map((p) => p.layer))],
    parameters: params.reduce((a, p) => a + size(p.onnxShape), 0),
    forward_gmac_per_example: graphs.forwardMacs / 1e9,
    max_rows_per_run: maxRows,
    ...(train.providerNote ? { providerNote: train.providerNote } : {}),
  };
  log(`training on onnx (${train.provider}, ${threads} threads): ${detail.layers.join(', ')} — ${detail.parameters.toLocaleString('en-US')} weights`);
  let disposed = false;
  const alive = () => {
    if (disposed) throw new Error('onnx trainer used after dispose');
  };

  return {
    detail,
    classes,
    async step(x, labels, count, seed) {
      alive();
      const rand = mulberry32(seed);
      const probs = new Float32Array(count * classes);
      let loss = 0;
      // The loss is a mean over the rows: a slice's loss and gradients count by its share.
      for (let start = 0; start < count; start += maxRows) {
        const n = Math.min(maxRows, count - start);
        const slice = await runSlice(x, labels, start, n, rand);
        const share = n / count;
        loss += share * slice.loss;
        probs.set(slice.probs, start * classes);
        if (n === count) {
          // One slice: its gradients are the batch's.
          steps++;
          slice.grads.forEach((g, i) => update(i, g));
          return { loss, probs };
        }
        slice.grads.forEach((g, i) => {
          const acc = gradSum(i);
          for (let j = 0; j < acc.length; j++) acc[j] = (start === 0 ? 0 : acc[j]!) + share * g[j]!;
        });
      }
      steps++;
      params.forEach((_, i) => update(i, gradSum(i)));
      return { loss, probs };
    },
    setLearningRate(next) {
      lrNow = next;
    },
    async predict(x, count) {
      alive();
      if (count <= maxRows * 3) {
        const out = await predictSession.run({ x: xFeed(x, count), ...weightFeeds() });
        return out['probs']!.data as Float32Array;
      }
      // Inference holds no gradients: slices three times the training ones fit the budget.
      const probs = new Float32Array(count * classes);
      for (let start = 0; start < count; start += maxRows * 3) {
        const n = Math.min(maxRows * 3, count - start);
        const out = await predictSession.run({ x: xFeed(x.subarray(start * inSize), n), ...weightFeeds() });
        probs.set(out['probs']!.data as Float32Array, start * classes);
      }
      return probs;
    },
    writeBack(tfm) {
      params.forEach((p, i) => {
        const data = p.conv ? convKernelToTf(weights[i]!, p.conv) : weights[i]!;
        p.variable.write(tfm.tensor(data, [...p.tfShape], 'float32'));
      });
    },
    state() {
      return [
        { name: 'steps', shape: [1], data: Int32Array.of(steps) },
        ...params.flatMap((p, i) => [
          { name: p.name, shape: p.onnxShape, data: weights[i]! },
          ...slots[i]!.map((s, k) => ({ name: `${p.name}#${k}`, shape: p.onnxShape, data: s })),
        ]),
      ];
    },
    restore(state) {
      const byName = new Map(state.map((s) => [s.name, s]));
      const get = (name: string, n: number) => {
        const s = byName.get(name);
        if (!s || s.data.length !== n || !(s.data instanceof Float32Array)) throw new Error(`checkpoint does not fit the trainable layers (${name})`);
        return s.data;
      };
      const stepState = byName.get('steps');
      if (!stepState || !(stepState.data instanceof Int32Array)) throw new Error('checkpoint has no step count');
      params.forEach((p, i) => {
        weights[i]!.set(get(p.name, weights[i]!.length));
        slots[i]!.forEach((s, k) => s.set(get(`${p.name}#${k}`, s.length)));
      });
      steps = stepState.data[0]!;
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      await train.session.release();
      await predictSession.release();
    },
  };
}
