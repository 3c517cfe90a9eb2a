// Engine benchmark: VGG16 frozen-part inference (ONNX Runtime vs tfjs wasm vs PyTorch), block5
// training on cached block4_pool outputs, head training on cached fc2 features, peak RSS of ONNX
// inference, and the projected CPU time of the whole lesson. Random weights; prints one JSON.
//   node dist/bench/engines.js            (about 2 minutes on the 2-core dev machine)
import { spawn } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { createOnnxEngine } from '../stages/vision/onnx/engine.js';
import { registerWasmGradKernels } from '../stages/vision/wasm-grad-kernels.js';
import { runTorchReference, type TorchResult } from './torch.js';
import { randomFill, ratio, round, type Json } from './bench-util.js';
import { BLOCK5_FWD_GFLOP, benchBlock5, benchDense, benchHead } from './training.js';
import { buildVgg } from '../stages/vision/vgg16.js';

/** VGG16 conv base, 224x224: 15.35 GMAC = 30.7 GFLOP per image. */
export const VGG16_BASE_GFLOP = 30.7;
/** The lesson on a K80: 3 epochs of 588 s (fast.ai 2017, lesson 1). */
const K80_LESSON_S = 3 * 588;
const LESSON_IMAGES = { train: 23_000, valid: 2_000, test: 12_500 };
/** sharp decode + resize + float32, 3-4 in flight (docs/architecture.md, "Figures the benchmarks use"). */
const DECODE_IMG_PER_S = 300;

export interface BenchOptions {
  readonly batch?: number; // inference batch (8)
  readonly onnxImages?: number; // images timed on ONNX (40)
  readonly tfjsBatches?: number; // batches timed on tfjs wasm (2: ~11 s each)
  readonly block5Steps?: number; // timed training steps of block5 on tfjs wasm (3)
  readonly block5Batches?: readonly number[]; // batch sizes for the ONNX trainer and PyTorch ([8, 32, 64]; 64 is the stage default)
  readonly headSamples?: number; // cached features for the head epoch (23,000)
  readonly threads?: number; // ONNX intra-op threads (all cores)
  readonly rss?: boolean; // measure peak RSS at batch 32 in a child process (true)
  readonly torch?: boolean; // run the PyTorch reference when importable (true)
  readonly log?: (m: string) => void;
}

export type EngineBenchOptions = Required<Omit<BenchOptions, 'log'>>;

/** VGG16's conv base with Keras' layer names, random (Glorot) weights: the project's own builder. */
export function vgg16ConvBase(size = 224): tf.LayersModel {
  return buildVgg(tf, { architecture: 'vgg16', inputSize: [size, size], classes: 2, includeTop: false });
}

function torchColumn(r: TorchResult, key: string): Json {
  if (!r.ok) return { skipped: r.reason };
  return { ...r.result, [key]: r.result[key] };
}

async function benchInference(o: EngineBenchOptions, log: (m: string) => void): Promise<Json> {
  const model = vgg16ConvBase();
  const per = 224 * 224 * 3;
  const x = randomFill(new Float32Array(o.batch * per), 120);

  log('inference: onnx');
  const t0 = performance.now();
  const engine = await createOnnxEngine(model, 'block5_pool', { provider: 'cpu', threads: o.threads });
  const setupS = (performance.now() - t0) / 1000;
  await engine.run(x, o.batch); // warm-up
  const batches = Math.max(1, Math.ceil(o.onnxImages / o.batch));
  const t1 = performance.now();
  for (let i = 0; i < batches; i++) await engine.run(x, o.batch);
  const onnxS = (performance.now() - t1) / 1000;
  const onnxImgS = (batches * o.batch) / onnxS;
  const detail = engine.detail;
  await engine.dispose();

  log('inference: tfjs wasm');
  const one = tf.tensor4d(x.subarray(0, per), [1, 224, 224, 3]);
  const warm = model.predict(one) as tf.Tensor; // warm-up, one image
  await warm.data();
  tf.dispose([one, warm]);
  const xt = tf.tensor4d(x, [o.batch, 224, 224, 3]);
  const t2 = performance.now();
  for (let i = 0; i < o.tfjsBatches; i++) {
    const y = model.predict(xt) as tf.Tensor;
    await y.data();
    y.dispose();
  }
  const tfjsS = (performance.now() - t2) / 1000;
  const tfjsImgS = (o.tfjsBatches * o.batch) / tfjsS;
  xt.dispose();
  model.dispose();

  log('inference: pytorch');
  const torch = o.torch
    ? await runTorchReference('features', { batch: o.batch, images: o.onnxImages, threads: o.threads })
    : ({ ok: false, reason: 'disabled' } as const);
  const torchImgS = torch.ok ? Number(torch.result['img_per_s']) : undefined;
  return {
    what: `VGG16 conv base (to block5_pool), 224x224, batch ${o.batch}, random weights`,
    onnx: {
      img_per_s: round(onnxImgS, 2),
      gflop_per_s: round(onnxImgS * VGG16_BASE_GFLOP, 1),
      images: batches * o.batch,
      seconds: round(onnxS, 2),
      convert_and_load_s: round(setupS, 2),
      provider: detail['provider'],
      threads: detail['threads'],
      ort: detail['ortVersion'],
    },
    tfjs_wasm: {
      img_per_s: round(tfjsImgS, 3),
      gflop_per_s: round(tfjsImgS * VGG16_BASE_GFLOP, 1),
      images: o.tfjsBatches * o.batch,
      seconds: round(tfjsS, 2),
      threads: 1,
      note: 'tfjs-backend-wasm runs its single-threaded SIMD build under Node',
    },
    pytorch: torch.ok ? { ...torchColumn(torch, 'img_per_s'), gflop_per_s: round(torchImgS! * VGG16_BASE_GFLOP, 1) } : { skipped: torch.reason },
    ratios: { onnx_vs_tfjs_wasm: ratio(onnxImgS, tfjsImgS), onnx_vs_pytorch: ratio(onnxImgS, torchImgS), target_onnx_vs_pytorch: 1.2 },
  };
}

/** Peak RSS of a fresh process that builds VGG16's base in tfjs and runs ONNX at batch 32. */
async function benchRss(o: EngineBenchOptions, log: (m: string) => void): Promise<Json> {
  log('peak RSS: onnx batch 32 (child process)');
  const self = fileURLToPath(import.meta.url);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [self, '--rss-child', '32', String(o.threads)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as Json);
      } catch {
        resolve({ error: `child exited ${code}: ${err.trim().split('\n').pop() ?? ''}` });
      }
    });
  });
}

async function rssChild(batch: number, threads: number): Promise<void> {
  await tf.setBackend('wasm');
  const model = vgg16ConvBase();
  const engine = await createOnnxEngine(model, 'block5_pool', { provider: 'cpu', threads });
  model.dispose();
  const before = process.memoryUsage().rss;
  const x = randomFill(new Float32Array(batch * 224 * 224 * 3), 120);
  const t0 = performance.now();
  for (let i = 0; i < 2; i++) await engine.run(x, batch);
  const s = (performance.now() - t0) / 1000;
  await engine.dispose();
  const peak = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(
    JSON.stringify({
      batch,
      peak_rss_gb: round(peak / 2 ** 30, 2),
      rss_before_inference_gb: round(before / 2 ** 30, 2),
      img_per_s: round((2 * batch) / s, 2),
      target_gb: 3,
      note: 'whole process: tfjs model built on wasm (its heap never shrinks), ONNX graph, session, two batches',
    }) + '\n',
  );
}

function projection(inf: Json, head: Json, block5Bench: Json): Json {
  const onnxImgS = Number((inf['onnx'] as Json)['img_per_s']);
  // What the stage trains with by default (engine: auto -> onnx); block5 at the largest batch measured.
  const headS = LESSON_IMAGES.train / Number((head['onnx'] as Json)['samples_per_s']);
  const onnxB5 = (block5Bench['block5_dense2_sgd'] as Json[]).map((r) => r['onnx'] as Json);
  const block5ImgS = Number(onnxB5[onnxB5.length - 1]!['img_per_s']);
  const all = LESSON_IMAGES.train + LESSON_IMAGES.valid + LESSON_IMAGES.test;
  const features = all / onnxImgS; // fc1/fc2 add 0.24 GFLOP/img (<1%): left out
  const decode = all / DECODE_IMG_PER_S;
  const predictions = features + decode + 3 * headS;
  const noCache = (3 * (LESSON_IMAGES.train + LESSON_IMAGES.valid) + LESSON_IMAGES.test) / onnxImgS;
  // trainable: block5: blocks 1-4 once (27.9 of 30.7 GFLOP), then block5 + top trained each epoch.
  const b4 = (all * ((VGG16_BASE_GFLOP - BLOCK5_FWD_GFLOP) / VGG16_BASE_GFLOP)) / onnxImgS;
  const block5 =
    b4 + decode + (3 * LESSON_IMAGES.train) / block5ImgS + (3 * LESSON_IMAGES.valid + LESSON_IMAGES.test) / (onnxImgS * (VGG16_BASE_GFLOP / BLOCK5_FWD_GFLOP));
  return {
    images: LESSON_IMAGES,
    k80_lesson_s: K80_LESSON_S,
    trainable_predictions: {
      frozen_features_once_s: Math.round(features),
      decode_s: Math.round(decode),
      decode_note: `sharp at ~${DECODE_IMG_PER_S} img/s (docs/architecture.md); it shares the 2 cores with ONNX, so counted in full`,
      head_3_epochs_s: round(3 * headS, 1),
      total_s: Math.round(predictions),
      total_h: round(predictions / 3600, 2),
      vs_k80: ratio(predictions, K80_LESSON_S),
      without_feature_cache_s: Math.round(noCache + decode * 3),
    },
    trainable_block5: {
      block4_once_s: Math.round(b4),
      block5_train_3_epochs_s: Math.round((3 * LESSON_IMAGES.train) / block5ImgS),
      total_s: Math.round(block5),
      total_h: round(block5 / 3600, 2),
      vs_k80: ratio(block5, K80_LESSON_S),
    },
  };
}

export async function benchEngines(options: BenchOptions = {}): Promise<Json> {
  const o = {
    batch: options.batch ?? 8,
    onnxImages: options.onnxImages ?? 40,
    tfjsBatches: options.tfjsBatches ?? 2,
    block5Steps: options.block5Steps ?? 3,
    block5Batches: options.block5Batches ?? [8, 32, 64],
    headSamples: options.headSamples ?? 23_000,
    threads: options.threads ?? os.availableParallelism(),
    rss: options.rss ?? true,
    torch: options.torch ?? true,
  };
  const log = options.log ?? ((m: string) => process.stderr.write(`[bench] ${m}\n`));
  if (tf.getBackend() !== 'wasm') await tf.setBackend('wasm');
  registerWasmGradKernels(tf);
  const started = performance.now();
  const load0 = os.loadavg();
  const inference = await benchInference(o, log);
  const block5 = await benchBlock5(o, log);
  const dense = await benchDense(o, log);
  const head = await benchHead(o, log);
  const rss = o.rss ? await benchRss(o, log) : { skipped: 'disabled' };
  return {
    bench: 'engines',
    machine: {
      cpus: os.availableParallelism(),
      model: os.cpus()[0]?.model ?? 'unknown',
      node: process.version,
      loadavg_1m_start: round(load0[0]!, 2),
      loadavg_1m_end: round(os.loadavg()[0]!, 2),
      note: 'shared machine: other jobs may have been running (see loadavg); absolute figures drift 10-20%',
    },
    inference,
    block5_training: block5,
    dense_training: dense,
    head_training: head,
    onnx_peak_rss_batch32: rss,
    lesson_projection: projection(inference, head, block5),
    total_bench_s: round((performance.now() - started) / 1000, 1),
  };
}

const invokedDirectly = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (invokedDirectly) {
  if (process.argv[2] === '--rss-child') {
    await rssChild(Number(process.argv[3] ?? 32), Number(process.argv[4] ?? os.availableParallelism()));
  } else {
    const result = await benchEngines();
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  }
}
