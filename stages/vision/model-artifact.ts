// The model artifact's file contract, read in one place: model.json + weights (tfjs layers
// format, model-io.ts), classes.json (the output order), preprocess.json (how an image becomes
// the input), finetune.json (architecture and the cut: where the frozen part ends). finetune
// writes them (finetune-flow.ts); evaluate, predict and the report read them through here.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import { StageError } from '../../runner/types.js';
import type { Tf } from './backend.js';
import type { Fit, PreprocessMode } from './images.js';

/** The files a consumer reads (model.json names its weight files, which come with `**`). */
export const MODEL_ARTIFACT_FILES = ['model.json', 'classes.json', 'preprocess.json', 'finetune.json'] as const;

export interface ModelArtifact {
  readonly dir: string;
  readonly classes: string[];
  readonly preprocess: { readonly mode: PreprocessMode; readonly size: [number, number]; readonly fit: Fit };
  /** `cut`: the last frozen layer, null when everything was trained. */
  readonly finetune: { readonly architecture: string; readonly cut: string | null } & Record<string, unknown>;
}

async function readJson<T>(dir: string, name: string): Promise<T> {
  try {
    return JSON.parse(await readFile(path.join(dir, name), 'utf8')) as T;
  } catch (e) {
    throw new StageError(`the model artifact lacks a readable ${name}: ${(e as Error).message}`);
  }
}

/** The JSON files of a model artifact; StageError naming the file that is missing or unreadable. */
export async function readModelArtifact(dir: string): Promise<ModelArtifact> {
  const classes = await readJson<string[]>(dir, 'classes.json');
  if (!Array.isArray(classes) || classes.length < 2 || !classes.every((c) => typeof c === 'string'))
    throw new StageError("the model artifact's classes.json must list at least two class names");
  const pre = await readJson<ModelArtifact['preprocess']>(dir, 'preprocess.json');
  const finetune = await readJson<ModelArtifact['finetune']>(dir, 'finetune.json');
  return { dir, classes, preprocess: { mode: pre.mode, size: [pre.size[0], pre.size[1]], fit: pre.fit }, finetune };
}

/** The trained network of a model artifact. */
export async function loadModelNetwork(tf: Tf, artifact: ModelArtifact): Promise<TF.LayersModel> {
  const { loadModel } = await import('./model-io.js');
  try {
    return await loadModel(tf, path.join(artifact.dir, 'model.json'));
  } catch (e) {
    throw new StageError(`cannot load the model: ${(e as Error).message}`);
  }
}
