// tf.loadLayersModel from the file system without @tensorflow/tfjs-node (which cannot install
// here): an IOHandler that reads a tfjs layers `model.json` and its weight shards with fs.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';

interface ModelJson {
  modelTopology?: unknown;
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  trainingConfig?: unknown;
  userDefinedMetadata?: Record<string, {}>;
  weightsManifest?: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
}

/** `tf.loadLayersModel(fileHandler('/path/model.json'))`; accepts a `file://` URL too. */
export function fileHandler(modelJson: string): tf.io.IOHandler {
  const file = modelJson.startsWith('file://') ? new URL(modelJson).pathname : modelJson;
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      let json: ModelJson;
      try {
        json = JSON.parse(await readFile(file, 'utf8')) as ModelJson;
      } catch (e) {
        throw new Error(`cannot read tfjs model ${file}: ${(e as Error).message}`);
      }
      if (!json.modelTopology) throw new Error(`${file}: no modelTopology (not a tfjs layers model)`);
      const dir = path.dirname(file);
      const specs: tf.io.WeightsManifestEntry[] = [];
      const buffers: Buffer[] = [];
      for (const group of json.weightsManifest ?? []) {
        specs.push(...group.weights);
        for (const shard of group.paths) {
          // Shard paths are relative to model.json and never leave its folder.
          const p = path.resolve(dir, decodeURIComponent(shard));
          if (path.relative(dir, p).startsWith('..')) throw new Error(`${file}: weight path '${shard}' leaves the model folder`);
          buffers.push(await readFile(p));
        }
      }
      const all = Buffer.concat(buffers);
      const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
      return {
        modelTopology: json.modelTopology as tf.io.ModelArtifacts['modelTopology'],
        weightSpecs: specs,
        weightData,
        ...(json.format !== undefined ? { format: json.format } : {}),
        ...(json.generatedBy !== undefined ? { generatedBy: json.generatedBy } : {}),
        ...(json.convertedBy != null ? { convertedBy: json.convertedBy } : {}),
        ...(json.userDefinedMetadata ? { userDefinedMetadata: json.userDefinedMetadata } : {}),
      };
    },
  };
}
