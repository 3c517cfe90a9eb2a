// The frozen part of a network run by ONNX Runtime (CPU provider here, CUDA on a GPU host), from
// an ONNX graph converted from the same tf.layers model and weights (./convert.ts).
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type * as Ort from 'onnxruntime-node';
import { checkRunArgs, type FrozenEngine } from '../frozen.js';
import { noteDevice } from '../../../runner/stage-api.js';
import { convertToOnnx, UnsupportedLayerError } from './convert.js';
import { chainFingerprint, type ConvertOptions } from './chain.js';

export type OnnxProvider = 'cpu' | 'cuda' | 'auto';

/** Where converted graphs are kept, keyed by chainFingerprint (weights + cut + converter version). */
export interface OnnxStore {
  get(key: string): Promise<Uint8Array | null>;
  put(key: string, bytes: Uint8Array): Promise<void>;
}

export interface OnnxEngineOptions {
  /** Intra-op threads; default: every core (os.availableParallelism()). */
  readonly threads?: number;
  /** 'auto': CUDA when its provider library is installed and loads, else CPU. Default 'auto'. */
  readonly provider?: OnnxProvider;
  /** Keep the .onnx in this folder as `<key>.onnx` (written atomically). */
  readonly cacheDir?: string;
  /** Or any other store (e.g. a runner-owned derived artifact); takes precedence over cacheDir. */
  readonly store?: OnnxStore;
  readonly log?: (message: string) => void;
}

/** A store in a plain folder: `<dir>/<key>.onnx`, written to a temp name and renamed. */
export function dirStore(dir: string): OnnxStore {
  const file = (key: string) => path.join(dir, `${key}.onnx`);
  return {
    async get(key) {
      try {
        return new Uint8Array(await readFile(file(key)));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw e;
      }
    },
    async put(key, bytes) {
      await mkdir(dir, { recursive: true });
      const tmp = `${file(key)}.${process.pid}.${Date.now()}.tmp`;
      await writeFile(tmp, bytes);
      await rename(tmp, file(key));
    },
  };
}

/** The converted graph for (model, cut), from the store when an equal key is there. */
export async function onnxModelFor(
  model: tf.LayersModel,
  cutLayer: string,
  store?: OnnxStore,
  options: ConvertOptions = {},
): Promise<{ bytes: Uint8Array; key: string; cache: 'hit' | 'miss' | 'none'; inputShape: readonly number[]; outputShape: readonly number[] }> {
  const shapes = () => {
    // Shapes come from tfjs, so a cached graph needs no conversion to know them.
    const input = model.inputs[0]?.shape ?? [];
    const output = model.getLayer(cutLayer).outputShape as (number | null)[];
    return { inputShape: input.slice(1).map((d) => d ?? -1), outputShape: output.slice(1).map((d) => d ?? -1) };
  };
  const key = chainFingerprint(model, cutLayer, options); // also throws UnsupportedLayerError on a branching graph
  if (store) {
    const cached = await store.get(key);
    if (cached) return { bytes: cached, key, cache: 'hit', ...shapes() };
  }
  const converted = convertToOnnx(model, cutLayer, options);
  if (store) await store.put(key, converted.bytes);
  return { bytes: converted.bytes, key, cache: store ? 'miss' : 'none', inputShape: converted.inputShape, outputShape: converted.outputShape };
}

export type OrtModule = typeof Ort;

export async function loadOrt(): Promise<OrtModule> {
  const mod = (await import('onnxruntime-node')) as OrtModule & { default?: OrtModule };
  return mod.default ?? mod;
}

/** Whether a session for `provider` tries CUDA first (openSession): 'cuda', or 'auto' where its library is installed. */
export function triesCuda(provider: OnnxProvider): boolean {
  return provider === 'cuda' || (provider === 'auto' && cudaProviderInstalled());
}

/**
 * Whether onnxruntime-node's CUDA provider library is installed beside its binding: only its own
 * installer run with ONNXRUNTIME_NODE_INSTALL=cuda12 puts it there (the project's .npmrc has npm
 * run no install scripts, so `npm ci` stays offline on CPU hosts).
 */
export function cudaProviderInstalled(): boolean {
  if (process.platform !== 'linux' || process.arch !== 'x64') return false;
  try {
    const entry = createRequire(import.meta.url).resolve('onnxruntime-node');
    const binDir = path.join(path.dirname(entry), '..', 'bin', 'napi-v6', 'linux', 'x64');
    return existsSync(path.join(binDir, 'libonnxruntime_providers_cuda.so'));
  } catch {
    return false;
  }
}

export async function openSession(
  ort: OrtModule,
  bytes: Uint8Array,
  provider: OnnxProvider,
  threads: number,
  log: (m: string) => void,
): Promise<{ session: Ort.InferenceSession; provider: 'cpu' | 'cuda'; providerNote?: string }> {
  const base: Ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  };
  const cpu = async () => ort.InferenceSession.create(bytes, { ...base, executionProviders: ['cpu'] });
  // Not testable on this CPU-only host: the CUDA path follows onnxruntime-node's documented
  // `executionProviders: [{ name: 'cuda', deviceId }]`; session creation throws if the provider cannot load.
  const cuda = async () => ort.InferenceSession.create(bytes, { ...base, executionProviders: [{ name: 'cuda', deviceId: 0 }, 'cpu'] });
  const opened = await chooseSession(provider, cpu, cuda, log);
  // PIPE_GPU_NAME: set by the runner on a host where nvidia-smi named the GPU.
  noteDevice(opened.provider === 'cuda' ? `onnx cuda:0${process.env.PIPE_GPU_NAME ? ` (${process.env.PIPE_GPU_NAME})` : ''}` : `onnx cpu (${threads} threads)`);
  return opened;
}

async function chooseSession(
  provider: OnnxProvider,
  cpu: () => Promise<Ort.InferenceSession>,
  cuda: () => Promise<Ort.InferenceSession>,
  log: (m: string) => void,
): Promise<{ session: Ort.InferenceSession; provider: 'cpu' | 'cuda'; providerNote?: string }> {
  switch (provider) {
    case 'cpu':
      return { session: await cpu(), provider: 'cpu' };
    case 'cuda':
      return { session: await cuda(), provider: 'cuda' };
    case 'auto': {
      if (!triesCuda(provider)) {
        return {
          session: await cpu(),
          provider: 'cpu',
          providerNote: 'CUDA provider not installed (on a GPU host: ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js)',
        };
      }
      try {
        return { session: await cuda(), provider: 'cuda' };
      } catch (e) {
        const note = `CUDA provider did not load: ${(e as Error).message.split('\n')[0]}`;
        log(`onnx: ${note}; using the CPU provider`);
        return { session: await cpu(), provider: 'cpu', providerNote: note };
      }
    }
    default: {
      const never: never = provider;
      throw new Error(`unknown provider ${String(never)}`);
    }
  }
}

/**
 * An engine computing `model`'s output at `cutLayer` with ONNX Runtime. Input NHWC float32
 * [N, h, w, 3]; output per image in tfjs' layout (channels-last for conv outputs).
 * Throws UnsupportedLayerError for a layer it cannot convert (see tryCreateOnnxEngine).
 */
export async function createOnnxEngine(model: tf.LayersModel, cutLayer: string, opts: OnnxEngineOptions = {}): Promise<FrozenEngine> {
  const log = opts.log ?? (() => {});
  const threads = Math.max(1, Math.floor(opts.threads ?? os.availableParallelism()));
  const store = opts.store ?? (opts.cacheDir ? dirStore(opts.cacheDir) : undefined);
  // Winograd is tuned for the CPU provider (MLAS); on a GPU, cuDNN's own convolutions run.
  const graph = await onnxModelFor(model, cutLayer, store, { winograd: !triesCuda(opts.provider ?? 'auto') });
  const inputShape = [...graph.inputShape];
  const outputShape = [...graph.outputShape];
  if (inputShape.some((d) => d < 0) || outputShape.some((d) => d < 0)) {
    throw new Error(`onnx engine needs fixed image sizes; model input is [${inputShape.join(', ')}], '${cutLayer}' output [${outputShape.join(', ')}]`);
  }
  const ort = await loadOrt();
  const opened = await openSession(ort, graph.bytes, opts.provider ?? 'auto', threads, log);
  const session = opened.session;
  const inName = session.inputNames[0]!;
  const outName = session.outputNames[0]!;
  const inSize = inputShape.reduce((a, b) => a * b, 1);
  const outSize = outputShape.reduce((a, b) => a * b, 1);
  const detail = {
    engine: 'onnx',
    provider: opened.provider,
    threads,
    ortVersion: ort.env.versions?.node ?? ort.env.versions?.common ?? 'unknown',
    cut: cutLayer,
    onnxKey: graph.key,
    onnxCache: graph.cache,
    ...(opened.providerNote ? { providerNote: opened.providerNote } : {}),
  };
  log(
    `onnx: '${cutLayer}' on ${opened.provider} (${threads} threads, onnxruntime ${detail.ortVersion}, graph ${graph.cache === 'hit' ? 'from cache' : 'converted'})`,
  );
  let disposed = false;
  return {
    name: 'onnx',
    detail,
    inputShape,
    outputShape,
    async run(batch: Float32Array, count: number): Promise<Float32Array> {
      checkRunArgs('onnx', disposed, batch, count, inputShape);
      const input = new ort.Tensor('float32', batch.subarray(0, count * inSize), [count, ...inputShape]);
      const result = await session.run({ [inName]: input });
      const out = result[outName];
      if (!out || !(out.data instanceof Float32Array) || out.data.length !== count * outSize) {
        throw new Error(`onnx engine: unexpected output for '${cutLayer}'`);
      }
      return out.data;
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      await session.release();
    },
  };
}

/**
 * createOnnxEngine, or the reason it cannot be used (an unconvertible layer, onnxruntime-node not
 * loading, ...), so the caller falls back to the tfjs engine and logs why.
 */
export async function tryCreateOnnxEngine(
  model: tf.LayersModel,
  cutLayer: string,
  opts: OnnxEngineOptions = {},
): Promise<{ engine: FrozenEngine } | { reason: string }> {
  try {
    return { engine: await createOnnxEngine(model, cutLayer, opts) };
  } catch (e) {
    const reason = e instanceof UnsupportedLayerError ? e.message : `onnx engine unavailable: ${(e as Error).message ?? String(e)}`;
    opts.log?.(`${reason}; falling back to tfjs`);
    return { reason };
  }
}
