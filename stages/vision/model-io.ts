// tfjs layers models and plain tensor lists to and from directories with node:fs. The pure-JS
// tfjs package has no file:// handler (that lives in tfjs-node), so these are small IOHandlers.
import { open, readFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import type { Tf } from './backend.js';
import { writeAtomic } from '../../runner/stage-api.js';

/** Weight shards are split at this size, like tfjs' converter does (at 4 MB) but larger. */
const SHARD_BYTES = 128 * 1024 * 1024;

interface ModelJson {
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  modelTopology: unknown;
  weightsManifest: { paths: string[]; weights: TF.io.WeightsManifestEntry[] }[];
  trainingConfig?: unknown;
}

/** Write the weight buffers into shard files of at most SHARD_BYTES; returns their names. */
async function writeShards(dir: string, buffers: readonly ArrayBuffer[], prefix: string): Promise<string[]> {
  const total = buffers.reduce((a, b) => a + b.byteLength, 0);
  const count = Math.max(1, Math.ceil(total / SHARD_BYTES));
  const names = Array.from({ length: count }, (_, i) => `${prefix}-shard${i + 1}of${count}.bin`);
  let shard = 0;
  let inShard = 0;
  let fh = await open(path.join(dir, names[0]!), 'w');
  try {
    for (const buf of buffers) {
      let pos = 0;
      while (pos < buf.byteLength) {
        if (inShard === SHARD_BYTES) {
          await fh.close();
          shard++;
          inShard = 0;
          fh = await open(path.join(dir, names[shard]!), 'w');
        }
        const n = Math.min(buf.byteLength - pos, SHARD_BYTES - inShard);
        await fh.write(new Uint8Array(buf, pos, n));
        pos += n;
        inShard += n;
      }
    }
  } finally {
    await fh.close();
  }
  return names;
}

/** Save `model` as model.json + weight shards (tfjs layers format) into `dir`. */
export async function saveModel(model: TF.LayersModel, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await model.save({
    async save(artifacts: TF.io.ModelArtifacts): Promise<TF.io.SaveResult> {
      const data = artifacts.weightData;
      const buffers = data === undefined ? [] : Array.isArray(data) ? data : [data];
      const paths = await writeShards(dir, buffers, 'group1');
      const json: ModelJson = {
        format: 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths, weights: artifacts.weightSpecs ?? [] }],
      };
      await writeAtomic(path.join(dir, 'model.json'), JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    },
  });
}

function ownBuffer(b: Buffer): ArrayBuffer {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength) return b.buffer as ArrayBuffer;
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

/** Read a tfjs layers model.json and its weight files (paths relative to it). */
export async function readModelArtifacts(modelJson: string): Promise<TF.io.ModelArtifacts> {
  let json: ModelJson;
  try {
    json = JSON.parse(await readFile(modelJson, 'utf8')) as ModelJson;
  } catch (e) {
    throw new Error(`cannot read tfjs model ${modelJson}: ${(e as Error).message}`);
  }
  if (!json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new Error(`${modelJson} is not a tfjs layers model (no modelTopology/weightsManifest)`);
  }
  const base = path.dirname(modelJson);
  const weightSpecs: TF.io.WeightsManifestEntry[] = [];
  const buffers: ArrayBuffer[] = [];
  for (const group of json.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const p of group.paths) buffers.push(ownBuffer(await readFile(path.join(base, decodeURIComponent(p)))));
  }
  return {
    modelTopology: json.modelTopology as TF.io.ModelArtifacts['modelTopology'],
    weightSpecs,
    weightData: buffers.length === 1 ? buffers[0]! : buffers,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy ?? null,
  };
}

/** Load a tfjs layers model from a model.json path. */
export async function loadModel(tf: Tf, modelJson: string): Promise<TF.LayersModel> {
  const artifacts = await readModelArtifacts(modelJson);
  return tf.loadLayersModel({ load: async () => artifacts }, { strict: true });
}

export interface NamedTensor {
  readonly name: string;
  readonly tensor: TF.Tensor;
}

export interface NamedArray {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array | Int32Array;
}

/** Save a list of tensors (a checkpoint's weights, an optimizer's state) as `<name>.json` + `<name>.bin`. */
export async function saveTensors(dir: string, name: string, tensors: readonly NamedTensor[]): Promise<void> {
  const arrays = tensors.map(({ name: n, tensor }) => {
    if (tensor.dtype !== 'float32' && tensor.dtype !== 'int32') throw new Error(`saveTensors: ${n} has dtype ${tensor.dtype}`);
    return { name: n, shape: tensor.shape, data: tensor.dataSync() as Float32Array | Int32Array };
  });
  await saveArrays(dir, name, arrays);
}

/** saveTensors for plain typed arrays (the ONNX trainer keeps its weights outside tfjs). */
export async function saveArrays(dir: string, name: string, arrays: readonly NamedArray[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  const specs = arrays.map((a) => ({ name: a.name, shape: [...a.shape], dtype: a.data instanceof Int32Array ? 'int32' : 'float32' }));
  const parts = arrays.map(({ data }) => new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  await writeAtomic(path.join(dir, `${name}.bin`), parts);
  await writeAtomic(path.join(dir, `${name}.json`), JSON.stringify(specs));
}

export async function loadTensors(tf: Tf, dir: string, name: string): Promise<NamedTensor[]> {
  return (await loadArrays(dir, name)).map((a) => ({
    name: a.name,
    tensor: tf.tensor(a.data, [...a.shape], a.data instanceof Int32Array ? 'int32' : 'float32'),
  }));
}

export async function loadArrays(dir: string, name: string): Promise<NamedArray[]> {
  const specs = JSON.parse(await readFile(path.join(dir, `${name}.json`), 'utf8')) as { name: string; shape: number[]; dtype: 'float32' | 'int32' }[];
  // Each array read straight into its own buffer: no whole-file copy beside them.
  const fh = await open(path.join(dir, `${name}.bin`), 'r');
  try {
    const out: NamedArray[] = [];
    let offset = 0;
    for (const s of specs) {
      const n = s.shape.reduce((a, b) => a * b, 1);
      const data = s.dtype === 'int32' ? new Int32Array(n) : new Float32Array(n);
      const bytes = new Uint8Array(data.buffer);
      for (let got = 0; got < bytes.byteLength;) {
        const { bytesRead } = await fh.read(bytes, got, bytes.byteLength - got, offset + got);
        if (bytesRead === 0) throw new Error(`${name}.bin is shorter than ${name}.json says`);
        got += bytesRead;
      }
      out.push({ name: s.name, shape: s.shape, data });
      offset += n * 4;
    }
    return out;
  } finally {
    await fh.close();
  }
}
