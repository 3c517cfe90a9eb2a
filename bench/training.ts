// Training benchmarks of the engines: block5 (+ a 2-way top, or VGG16's fc1/fc2 + a 2-way top)
// on cached block4_pool outputs on the ONNX trainer, tfjs wasm and PyTorch; VGG16's dense layers
// on ONNX; a Dense(2) head over cached 4,096-float features (ONNX, tfjs lean loop, model.fit,
// PyTorch). The block5 comparison alone, small enough for a busy machine:
//   node dist/bench/training.js [--batches 8,32] [--no-dense2] [--no-vgg-top] [--no-tfjs]
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmGradKernels } from '../stages/vision/wasm-grad-kernels.js';
import { createOnnxTrainer } from '../stages/vision/onnx/trainer.js';
import { layerMultipliers, trainedLayerNames } from '../stages/vision/unfreeze.js';
import type { OptimizerName } from '../stages/vision/optimizers.js';
import { randomFill, ratio, round, type Json } from './bench-util.js';
import type { EngineBenchOptions } from './engines.js';
import { runTorchReference, type TorchResult } from './torch.js';

/** block5_conv1..3 on [14,14,512]: 3 x 14*14*512*512*9 MAC = 2.77 GFLOP forward per image. */
export const BLOCK5_FWD_GFLOP = (3 * 14 * 14 * 512 * 512 * 9 * 2) / 1e9;
/** Training: forward + weight gradients of the 3 convs + input gradients of the upper 2 (the first needs none). */
export const BLOCK5_TRAIN_GFLOP = BLOCK5_FWD_GFLOP * (2 + 2 / 3);

/** What the block5 bench trains on cached block4_pool outputs [14,14,512]. */
type Block5Top = 'dense2' | 'vgg';

/**
 * block5_conv1..3 + block5_pool and a top: `dense2` a new Dense(2) (finetune with a new head),
 * `vgg` VGG16's fc1 + fc2 + a new Dense(2) (finetune-vgg16 with `unfreeze: block5_conv1`).
 */
function block5Model(top: Block5Top): tf.Sequential {
  const dense =
    top === 'vgg' ? [tf.layers.dense({ units: 4096, activation: 'relu', name: 'fc1' }), tf.layers.dense({ units: 4096, activation: 'relu', name: 'fc2' })] : [];
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ filters: 512, kernelSize: 3, padding: 'same', activation: 'relu', name: 'block5_conv1', inputShape: [14, 14, 512] }),
      tf.layers.conv2d({ filters: 512, kernelSize: 3, padding: 'same', activation: 'relu', name: 'block5_conv2' }),
      tf.layers.conv2d({ filters: 512, kernelSize: 3, padding: 'same', activation: 'relu', name: 'block5_conv3' }),
      tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: 'block5_pool' }),
      tf.layers.flatten({ name: 'flatten' }),
      ...dense,
      tf.layers.dense({ units: 2, activation: 'softmax', name: 'predictions' }),
    ],
  });
}

/** One block5 workload, run identically by both engines. */
interface Block5Work {
  readonly top: Block5Top;
  readonly batch: number;
  readonly optimizer: OptimizerName;
  readonly learningRate: number;
  /** Over the trained layers, as `lr_mult` in a pipeline. */
  readonly lrMult: readonly number[];
  readonly threads: number;
  /** Timed rounds (the best counts): 2, or 1 where a step takes half a minute on a busy machine. */
  readonly rounds: number;
}

/** ~96 images a round (at least 2 steps) after 2 warm-up steps: the same on both engines. */
const WARMUP_STEPS = 2;
const stepsFor = (batch: number) => Math.max(2, Math.round(96 / batch));

/** img/s of the ONNX trainer (what `engine: auto` trains with) on one workload. */
async function onnxBlock5(w: Block5Work): Promise<Json> {
  const m = block5Model(w.top);
  // Discriminative rates as `unfreeze` + `lr_mult` give them: one factor per trained layer.
  const mults = layerMultipliers(trainedLayerNames(m), w.lrMult);
  const trainer = await createOnnxTrainer(m, { optimizer: w.optimizer, learningRate: w.learningRate, threads: w.threads, provider: 'cpu', lrMult: mults });
  try {
    const b = w.batch;
    const x = randomFill(new Float32Array(b * 14 * 14 * 512), 1, 3);
    const labels = Array.from({ length: b }, (_, i) => i % 2);
    // ORT's arena and the first outputs' pages settle over the first two runs.
    for (let i = 0; i < WARMUP_STEPS; i++) await trainer.step(x, labels, b, i);
    const steps = stepsFor(b);
    let best = Infinity;
    for (let round = 0; round < w.rounds; round++) {
      const t0 = performance.now();
      for (let i = 0; i < steps; i++) await trainer.step(x, labels, b, i);
      best = Math.min(best, (performance.now() - t0) / 1000);
    }
    const imgS = (steps * b) / best;
    return {
      batch: b,
      img_per_s: round(imgS, 2),
      step_s: round(best / steps, 3),
      effective_gflop_per_s: round(imgS * BLOCK5_TRAIN_GFLOP, 1),
      lr_mult: [...mults.values()],
      parameters: trainer.detail['parameters'],
      warmup_steps: WARMUP_STEPS,
      steps,
      rounds: w.rounds,
      threads: w.threads,
    };
  } finally {
    await trainer.dispose();
    m.dispose();
  }
}

/** The same workload on PyTorch: the same per-layer rates, optimizer, batch, steps, rounds and threads. */
async function torchBlock5(w: Block5Work, perLayer: readonly number[]): Promise<TorchResult> {
  return runTorchReference('block5', {
    batch: w.batch,
    steps: stepsFor(w.batch),
    warmup: WARMUP_STEPS,
    rounds: w.rounds,
    threads: w.threads,
    top: w.top,
    optimizer: w.optimizer,
    lr_mult: perLayer.join(','),
  });
}

/** Training images of one epoch, for the epoch figures: the lesson's dogs-vs-cats and pets' grouped split. */
const EPOCH_IMAGES = { dogscats: 23_000, pets: 575 };

function epochSeconds(imgS: number | undefined): Json | null {
  return imgS ? Object.fromEntries(Object.entries(EPOCH_IMAGES).map(([k, n]) => [`${k}_${n}_images`, Math.round(n / imgS)])) : null;
}

/** Both engines on one workload: their figures, the ratio, and an epoch's training time at these rates. */
async function compareBlock5(w: Block5Work, torch: boolean, log: (m: string) => void): Promise<Json> {
  log(`block5 training (${w.top}, ${w.optimizer}): onnx, batch ${w.batch}`);
  const ours = await onnxBlock5(w);
  log(`block5 training (${w.top}, ${w.optimizer}): pytorch, batch ${w.batch}`);
  const t: TorchResult = torch ? await torchBlock5(w, ours['lr_mult'] as number[]) : { ok: false, reason: 'disabled' };
  const torchImgS = t.ok ? Number(t.result['img_per_s']) : undefined;
  const oursImgS = Number(ours['img_per_s']);
  return {
    top: w.top,
    optimizer: w.optimizer,
    batch: w.batch,
    onnx: ours,
    pytorch: t.ok ? { ...t.result, img_per_s: round(torchImgS!, 2), seconds: round(Number(t.result['seconds']), 2) } : { skipped: t.reason },
    onnx_vs_pytorch: ratio(oursImgS, torchImgS),
    epoch_training_s: { onnx: epochSeconds(oursImgS), pytorch: epochSeconds(torchImgS) },
  };
}

/** tfjs on wasm (one core in Node), block5 + Dense(2) at `b`: img/s. */
async function tfjsBlock5(b: number, steps: number): Promise<Json> {
  const m = block5Model('dense2');
  m.compile({ optimizer: tf.train.momentum(1e-3, 0.9), loss: 'categoricalCrossentropy' });
  const xs = tf.tensor4d(randomFill(new Float32Array(b * 14 * 14 * 512), 1, 3), [b, 14, 14, 512]);
  const ys = tf.oneHot(
    tf.tensor1d(
      Array.from({ length: b }, (_, i) => i % 2),
      'int32',
    ),
    2,
  );
  await m.trainOnBatch(xs, ys); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await m.trainOnBatch(xs, ys);
  const s = (performance.now() - t0) / 1000;
  const imgS = (steps * b) / s;
  tf.dispose([xs, ys]);
  m.dispose();
  return {
    batch: b,
    img_per_s: round(imgS, 2),
    step_s: round(s / steps, 2),
    effective_gflop_per_s: round(imgS * BLOCK5_TRAIN_GFLOP, 1),
    kernels: 'Conv2DBackpropFilter + stride-1 Conv2DBackpropInput + MaxPoolGrad from stages/vision/wasm-grad-kernels.ts',
    lr_mult: 'none (one rate)',
    threads: 1,
  };
}

/**
 * Training from block5 on, ours against PyTorch on the same work: block5 + Dense(2) with SGD
 * at each of `block5Batches`, and block5 + fc1 + fc2 + Dense(2) with Adam at batch 32 (what
 * finetune-vgg16's `unfreeze: block5_conv1` trains), both with lr_mult [0.01, 0.1, 1].
 */
export async function benchBlock5(o: EngineBenchOptions, log: (m: string) => void, tops: readonly Block5Top[] = ['dense2', 'vgg']): Promise<Json> {
  const lrMult = [0.01, 0.1, 1];
  const dense2: Json[] = [];
  if (tops.includes('dense2'))
    for (const batch of o.block5Batches)
      dense2.push(await compareBlock5({ top: 'dense2', batch, optimizer: 'sgd', learningRate: 1e-3, lrMult, threads: o.threads, rounds: 2 }, o.torch, log));
  const vgg = tops.includes('vgg')
    ? await compareBlock5({ top: 'vgg', batch: 32, optimizer: 'adam', learningRate: 1e-4, lrMult, threads: o.threads, rounds: 1 }, o.torch, log)
    : null;
  let tfjsWasm: Json = { skipped: 'disabled' };
  if (o.block5Steps > 0) {
    log('block5 training: tfjs wasm');
    tfjsWasm = await tfjsBlock5(o.batch, o.block5Steps);
  }
  const firstOnnx = (dense2[0]?.['onnx'] as Json | undefined)?.['img_per_s'];
  return {
    what: `block5_conv1..3 + block5_pool + a top on cached block4_pool outputs [14,14,512], lr_mult [0.01, 0.1, 1] (a rate per trained layer, as unfreeze gives them), the same batch, steps, rounds, optimizer and threads on both engines; block5 alone costs ~${round(BLOCK5_TRAIN_GFLOP, 2)} GFLOP per image to train as direct convolutions (effective_gflop_per_s counts those; the ONNX trainer's Winograd F(2x2,3x3) does 2.25x fewer multiplies in them). epoch_training_s: an epoch's training steps at the measured rate (no validation pass)`,
    block5_dense2_sgd: dense2,
    ...(vgg ? { block5_fc1_fc2_dense2_adam: vgg } : {}),
    tfjs_wasm: tfjsWasm,
    ratios: {
      ...Object.fromEntries(dense2.map((r) => [`onnx_vs_pytorch_dense2_batch${String(r['batch'])}`, r['onnx_vs_pytorch']])),
      ...(vgg ? { onnx_vs_pytorch_vgg_top_batch32: vgg['onnx_vs_pytorch'] } : {}),
      onnx_vs_tfjs_wasm: ratio(Number(firstOnnx), Number(tfjsWasm['img_per_s'])),
      target: 0.8,
    },
  };
}

/** VGG16's dense layers (fc1, fc2, a new 2-way top: 120 M weights) on cached block5_pool outputs, Adam, on the ONNX trainer. */
export async function benchDense(o: EngineBenchOptions, log: (m: string) => void): Promise<Json> {
  log('dense layers training: onnx, batch 64');
  const b = 64;
  const m = tf.sequential({
    layers: [
      tf.layers.flatten({ inputShape: [7, 7, 512], name: 'flatten' }),
      tf.layers.dense({ units: 4096, activation: 'relu', name: 'fc1' }),
      tf.layers.dense({ units: 4096, activation: 'relu', name: 'fc2' }),
      tf.layers.dense({ units: 2, activation: 'softmax', name: 'predictions' }),
    ],
  });
  const trainer = await createOnnxTrainer(m, { optimizer: 'adam', learningRate: 1e-4, threads: o.threads, provider: 'cpu' });
  try {
    const x = randomFill(new Float32Array(b * 7 * 7 * 512), 1, 9);
    const labels = Array.from({ length: b }, (_, i) => i % 2);
    for (let i = 0; i < 2; i++) await trainer.step(x, labels, b, i);
    const steps = 3;
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) await trainer.step(x, labels, b, i);
    const s = (performance.now() - t0) / 1000;
    return {
      what: 'fc1 + fc2 + Dense(2) (trainable: dense) on cached block5_pool outputs [7,7,512], batch 64, Adam',
      onnx: {
        img_per_s: round((steps * b) / s, 1),
        step_s: round(s / steps, 2),
        parameters: trainer.detail['parameters'],
        peak_rss_gb: round((process.resourceUsage().maxRSS * 1024) / 2 ** 30, 2),
      },
      note: 'each step moves the 120 M weights into ONNX Runtime and their gradients out, and runs Adam over them in JS: most of the step',
    };
  } finally {
    await trainer.dispose();
    m.dispose();
  }
}

export async function benchHead(o: EngineBenchOptions, log: (m: string) => void): Promise<Json> {
  log('head training: tfjs wasm');
  const n = o.headSamples;
  const dim = 4096;
  const batch = 64;
  const feats = randomFill(new Float32Array(n * dim), 1, 5);
  const labels = Int32Array.from({ length: n }, (_, i) => (feats[i * dim]! > 0 ? 1 : 0));

  // The lean loop: a batch tensor made from the cached floats, one optimizer.minimize per batch.
  const w = tf.variable(tf.randomNormal([dim, 2], 0, 0.01));
  const bias = tf.variable(tf.zeros([2]));
  const opt = tf.train.adam(1e-3);
  const epoch = () => {
    let last = 0;
    for (let i = 0; i < n; i += batch) {
      const m = Math.min(batch, n - i);
      const l = tf.tidy(() => {
        const xb = tf.tensor2d(feats.subarray(i * dim, (i + m) * dim), [m, dim]);
        const yb = tf.oneHot(tf.tensor1d(labels.subarray(i, i + m), 'int32'), 2);
        return opt.minimize(() => tf.losses.softmaxCrossEntropy(yb, tf.add(tf.matMul(xb, w), bias)) as tf.Scalar, true)!;
      });
      if (i + batch >= n) last = (l.dataSync() as Float32Array)[0]!;
      l.dispose();
    }
    return last;
  };
  const t0 = performance.now();
  const loss = epoch();
  const leanS = (performance.now() - t0) / 1000;
  tf.dispose([w, bias]);
  opt.dispose();

  // model.fit over the same data (what a straightforward stage does): timed on a part, scaled.
  const part = Math.min(n, 4_000);
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 2, activation: 'softmax', inputShape: [dim] })] });
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
  const xs = tf.tensor2d(feats.subarray(0, part * dim), [part, dim]);
  const ys = tf.oneHot(tf.tensor1d(labels.subarray(0, part), 'int32'), 2);
  const t1 = performance.now();
  await model.fit(xs, ys, { batchSize: batch, epochs: 1, shuffle: true, verbose: 0 });
  const fitS = ((performance.now() - t1) / 1000) * (n / part);
  tf.dispose([xs, ys]);
  model.dispose();

  log('head training: onnx (what engine: auto trains with)');
  const hm = tf.sequential({ layers: [tf.layers.dense({ units: 2, activation: 'softmax', inputShape: [dim] })] });
  const trainer = await createOnnxTrainer(hm, { optimizer: 'adam', learningRate: 1e-3, threads: o.threads, provider: 'cpu' });
  const t2 = performance.now();
  let onnxLoss = 0;
  for (let i = 0; i < n; i += batch) {
    const m = Math.min(batch, n - i);
    onnxLoss = (await trainer.step(feats.subarray(i * dim, (i + m) * dim), labels.subarray(i, i + m), m, i)).loss;
  }
  const onnxS = (performance.now() - t2) / 1000;
  await trainer.dispose();
  hm.dispose();

  log('head training: pytorch');
  const torch = o.torch ? await runTorchReference('head', { features: n, dim, batch, threads: o.threads }) : ({ ok: false, reason: 'disabled' } as const);
  const torchS = torch.ok ? Number(torch.result['epoch_seconds']) : undefined;
  return {
    what: `one epoch of Dense(2) softmax over ${n} cached ${dim}-float features, batch ${batch}, Adam`,
    onnx: { epoch_s: round(onnxS, 2), samples_per_s: Math.round(n / onnxS), last_batch_loss: round(onnxLoss, 4) },
    tfjs_wasm_lean_loop: { epoch_s: round(leanS, 2), samples_per_s: Math.round(n / leanS), last_batch_loss: round(loss, 4) },
    tfjs_wasm_model_fit: { epoch_s: round(fitS, 2), samples_per_s: Math.round(n / fitS), measured_on: part },
    pytorch: torch.ok ? torch.result : { skipped: torch.reason },
    ratios: { onnx_vs_pytorch_time: ratio(onnxS, torchS), lean_vs_pytorch_time: ratio(leanS, torchS), target_epoch_s: 5 },
  };
}

const invokedDirectly = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (invokedDirectly) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--batches');
  const batches = at >= 0 ? (args[at + 1] ?? '').split(',').map(Number) : [32];
  if (!batches.length || batches.some((b) => !Number.isInteger(b) || b < 1)) {
    process.stderr.write('training.js: --batches takes positive integers, e.g. --batches 8,32\n');
    process.exit(2);
  }
  if (tf.getBackend() !== 'wasm') await tf.setBackend('wasm');
  registerWasmGradKernels(tf);
  const o: EngineBenchOptions = {
    batch: 8,
    onnxImages: 0,
    tfjsBatches: 0,
    block5Steps: args.includes('--no-tfjs') ? 0 : 3,
    block5Batches: batches,
    headSamples: 0,
    threads: os.availableParallelism(),
    rss: false,
    torch: true,
  };
  const load0 = os.loadavg();
  const t0 = performance.now();
  const tops = (['dense2', 'vgg'] as const).filter((t) => !args.includes(t === 'vgg' ? '--no-vgg-top' : '--no-dense2'));
  const block5 = await benchBlock5(o, (m) => process.stderr.write(`[bench] ${m}\n`), tops);
  const machine = {
    cpus: os.availableParallelism(),
    model: os.cpus()[0]?.model ?? 'unknown',
    loadavg_1m_start: round(load0[0]!, 2),
    loadavg_1m_end: round(os.loadavg()[0]!, 2),
    note: 'shared machine: compare the ratios, measured in the same run, not the absolute figures',
  };
  process.stdout.write(
    JSON.stringify({ bench: 'block5_training', machine, block5_training: block5, total_bench_s: round((performance.now() - t0) / 1000, 1) }, null, 2) + '\n',
  );
}
