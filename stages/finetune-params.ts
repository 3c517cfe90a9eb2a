// The params every fine-tuning stage (finetune, finetune-vgg16) takes, and their schema.
import type { BackendPref } from './vision/backend.js';
import type { EnginePref } from './vision/tfjs-engine.js';
import type { LrSchedule, OptimizerName } from './vision/train.js';
import { OPTIMIZER_PARAM_SCHEMA } from './vision/optimizers.js';
import { KEEP_PARAM_SCHEMA, type KeepPolicy, type Monitor } from './vision/epoch-keeper.js';
import type { AugmentParams } from './vision/augment.js';
import type { UnfreezeParams } from './vision/unfreeze.js';

/** Params every fine-tuning stage takes. */
export interface TrainParams extends UnfreezeParams {
  use_sample: boolean;
  epochs: number;
  batch_size: number;
  learning_rate: number;
  lr_schedule: LrSchedule;
  optimizer: OptimizerName;
  seed: number;
  validate_every_epoch: boolean;
  /** Schema defaults: best, val_loss, 0 (absent in params built by hand: the same). */
  keep?: KeepPolicy;
  monitor?: Monitor;
  patience?: number;
  backend: BackendPref;
  engine: EnginePref;
  /** Training-set augmentation (./vision/augment.ts); absent: none. */
  augment?: Partial<AugmentParams>;
}

export const TRAIN_PARAM_SCHEMA: Record<string, Record<string, unknown>> = {
  use_sample: { type: 'boolean', default: false, description: "Train on the split's `sample/` folders (a quick check) instead of the full train/valid sets." },
  epochs: { type: 'integer', minimum: 1, default: 3, description: 'Passes over the training set.' },
  batch_size: { type: 'integer', minimum: 1, default: 64, description: 'Images per training step.' },
  learning_rate: { type: 'number', exclusiveMinimum: 0, default: 0.001, description: 'Step size of the optimizer.' },
  lr_schedule: {
    enum: ['constant', 'cosine'],
    default: 'constant',
    description:
      '`constant`, or `cosine`: the step size falls from `learning_rate` to near 0 along a half cosine over all the steps of all epochs (annealing).',
  },
  optimizer: OPTIMIZER_PARAM_SCHEMA,
  seed: { type: 'integer', default: 42, description: 'Seeds the new layers, the shuffles and dropout.' },
  validate_every_epoch: { type: 'boolean', default: true, description: 'Validate after every epoch (else only after the last).' },
  ...KEEP_PARAM_SCHEMA,
  backend: {
    enum: ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'],
    default: 'auto',
    description: 'TensorFlow.js backend for training: `auto` takes the first that loads of tfjs-node-gpu, tfjs-node, wasm, cpu. Not part of the cache key.',
  },
  engine: {
    enum: ['auto', 'onnx', 'tfjs'],
    default: 'auto',
    description:
      'What computes the frozen layers and trains the rest: ONNX Runtime on every core (`auto` uses it where it loads and has the layers) or tfjs on `backend`. Not part of the cache key.',
  },
};
