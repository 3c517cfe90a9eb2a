// predict's throughput against the frozen pass it is built on: VGG16 (random weights, a 2-way
// head on block5_pool) on N generated 500x375 photos at 224x224. The frozen pass is what
// finetune runs (cachedFeatures: decode + preprocess + conv base); predict adds loading the
// model artifact, the head, predictions.csv and the picture page (its frozen pass is its decode
// check). Fresh caches for both: no reuse. Besides wall time, the process CPU time of each
// (all threads): on a machine shared with other work the wall ratio swings with their load,
// the CPU ratio much less.
//   node dist/bench/predict.js [N=1000]      (VGG16 on 2 cores: about 10 img/s, so minutes)
// `npm run bench` runs it too (`npm run bench -- predict` alone).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import type { Progress, StageContext } from '../runner/types.js';
import { buildVgg } from '../stages/vision/vgg16.js';
import { saveModel } from '../stages/vision/model-io.js';
import { cachedFeatures, frozenFingerprint } from '../stages/vision/features.js';
import { openFrozenEngine } from '../stages/vision/tfjs-engine.js';
import { selectBackend } from '../stages/vision/backend.js';
import { predictStage, type PredictParams } from '../stages/predict.js';
import { generate } from './loader.js';
import { round } from './bench-util.js';

const quiet: Progress = { tick: () => undefined, update: () => undefined, setTotal: () => undefined, done: () => undefined };

/** A derived store in a folder, as the runner's (without its locking). */
function derivedIn(root: string) {
  return async (name: string, key: unknown, build: (dir: string) => Promise<void>): Promise<string> => {
    const dir = path.join(root, `${name}-${Buffer.from(JSON.stringify(key)).toString('base64url').slice(0, 40)}-${Math.random().toString(36).slice(2)}`);
    await mkdir(dir, { recursive: true });
    await build(dir);
    return dir;
  };
}

async function main(n: number): Promise<object> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'pipe-bench-predict-'));
  try {
    const photos = path.join(root, 'photos');
    await mkdir(photos);
    const files = (await generate(photos, n)).map((f) => path.relative(photos, f));
    const choice = await selectBackend('auto');
    // VGG16's conv base + a 2-way head: the model artifact finetune would write (cut block5_pool).
    const base = buildVgg(choice.tf, { architecture: 'vgg16', inputSize: [224, 224], classes: 2, includeTop: false });
    const pooled = choice.tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(base.outputs[0]!) as tf.SymbolicTensor;
    const out = choice.tf.layers.dense({ name: 'predictions', units: 2, activation: 'softmax' }).apply(pooled) as tf.SymbolicTensor;
    const model = choice.tf.model({ inputs: base.inputs, outputs: out });
    const modelDir = path.join(root, 'model');
    await mkdir(modelDir);
    await saveModel(model, modelDir);
    const preprocess = { mode: 'caffe' as const, size: [224, 224] as [number, number], fit: 'fill' as const };
    await writeFile(path.join(modelDir, 'classes.json'), JSON.stringify(['cat', 'dog']));
    await writeFile(path.join(modelDir, 'preprocess.json'), JSON.stringify(preprocess));
    await writeFile(path.join(modelDir, 'finetune.json'), JSON.stringify({ architecture: 'vgg16', cut: 'block5_pool' }));

    // 1. The frozen pass, as finetune runs it.
    let engineName = '';
    const fc0 = process.cpuUsage();
    const f0 = performance.now();
    const engine = await openFrozenEngine(choice.tf, model, 'block5_pool', {
      engine: 'auto',
      log: () => undefined,
      warn: () => undefined,
      derived: derivedIn(path.join(root, 'd1')),
    });
    try {
      const set = await cachedFeatures({
        derived: derivedIn(path.join(root, 'd1')),
        frozen: frozenFingerprint(model, 'block5_pool'),
        cut: 'block5_pool',
        architecture: 'vgg16',
        datasetHash: 'bench',
        datasetDir: photos,
        split: '.',
        files,
        preprocess,
        engine: async () => engine,
        batchSize: 16,
        progress: () => quiet,
        log: () => undefined,
        signal: new AbortController().signal,
      });
      engineName = String(set.index.engine['name']);
    } finally {
      await engine.dispose();
    }
    const frozenS = (performance.now() - f0) / 1000;
    const frozenCpu = cpuSeconds(fc0);

    // 2. The predict stage on the same photos, fresh caches.
    const artifact = (dir: string, kind: 'model' | 'files') => ({
      kind,
      key: kind,
      contentHash: `${kind}-hash`,
      dir,
      meta: {
        key: kind,
        contentHash: kind,
        stage: kind,
        uses: kind,
        version: 1,
        params: {},
        inputs: {},
        createdAt: '',
        durationMs: 0,
        runId: 'bench',
        host: 'bench',
      },
    });
    const outDir = path.join(root, 'out');
    await mkdir(outDir);
    const params: PredictParams = { from: '', batch_size: 64, top_k: 12, extensions: ['jpg'], backend: 'auto', engine: 'auto' };
    const ctx: StageContext<PredictParams> = {
      params,
      inputs: { model: artifact(modelDir, 'model'), images: artifact(photos, 'files') },
      stageId: 'predict',
      pipelineName: 'bench',
      pipelineDir: root,
      outDir,
      workDir: path.join(root, 'work'),
      log: { info: () => undefined, warn: () => undefined, debug: () => undefined },
      progress: () => quiet,
      signal: new AbortController().signal,
      derived: derivedIn(path.join(root, 'd2')),
      lineage: [],
      runId: 'bench',
    };
    const pc0 = process.cpuUsage();
    const p0 = performance.now();
    const r = await predictStage.run(ctx);
    const predictS = (performance.now() - p0) / 1000;
    const predictCpu = cpuSeconds(pc0);
    const meta = r?.meta ?? {};
    return {
      images: n,
      size: '224x224',
      model: 'VGG16 conv base (random weights) + 2-way head, cut block5_pool',
      backend: choice.backend,
      engine: engineName,
      predict_engine: meta['engine'],
      predict_decoded: meta['decoded'],
      cores: os.availableParallelism(),
      frozen_pass_img_per_s: round(n / frozenS, 2),
      predict_img_per_s: round(n / predictS, 2),
      predict_vs_frozen: round(frozenS / predictS, 3),
      frozen_pass_cpu_s: round(frozenCpu, 2),
      predict_cpu_s: round(predictCpu, 2),
      predict_vs_frozen_cpu: round(frozenCpu / predictCpu, 3),
      loadavg: os.loadavg().map((x) => round(x, 2)),
    };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
}

/** For `npm run bench` (bench/index.ts): 1,000 photos, or PIPE_BENCH_PREDICT_IMAGES. */
export async function benchPredict(): Promise<object> {
  return main(Number(process.env['PIPE_BENCH_PREDICT_IMAGES'] ?? 1000));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(JSON.stringify(await main(Number(process.argv[2] ?? 1000)), null, 2));
}
