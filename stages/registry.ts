// The stage registry: the single source of truth for what `uses:` may name. The pipeline JSON
// Schema, the README's parameter reference and the validator are all generated from it.
// Stage modules stay light at import time (no TensorFlow.js, ONNX Runtime, sharp or h5wasm at
// the top level) so that `pipe validate`, `status` and `graph` start fast.
import type { Stage } from '../runner/types.js';
import { commandStage } from './command.js';
import { reportStage } from './report.js';
import { fetchKaggleStage } from './fetch-kaggle.js';
import { imagesStage } from './images.js';
import { splitStage } from './split.js';
import { synthImagesStage } from './synth-images.js';
import { provisionStage } from './provision.js';
import { finetuneVgg16Stage } from './finetune-vgg16.js';
import { finetuneStage } from './finetune.js';
import { evaluateStage } from './evaluate.js';
import { predictStage } from './predict.js';

type AnyStage = Stage<any>;

const stages: readonly AnyStage[] = [
  commandStage,
  provisionStage,
  fetchKaggleStage,
  imagesStage,
  synthImagesStage,
  splitStage,
  finetuneVgg16Stage,
  finetuneStage,
  evaluateStage,
  predictStage,
  reportStage,
];

export const registry: ReadonlyMap<string, AnyStage> = new Map(stages.map((s) => [s.name, s]));

export function getStage(name: string): AnyStage | undefined {
  return registry.get(name);
}
