// The params of a quick finetune-vgg16 run that tests train a model with: tiny-vgg at 32x32 from
// random weights, on wasm and tfjs (deterministic), a few epochs. Tests override what they vary.
import type { FinetuneVgg16Params } from '../../stages/finetune-vgg16.js';
import type { TrainParams } from '../../stages/finetune-params.js';

/** The training params of the finetune tests' runs that check a model learns (8 epochs of 8 images, wasm, tfjs); each adds its seed. */
export const LEARNING_RUN: Omit<TrainParams, 'seed'> = {
  use_sample: false,
  epochs: 8,
  batch_size: 8,
  learning_rate: 0.01,
  lr_schedule: 'constant',
  optimizer: 'adam',
  validate_every_epoch: true,
  backend: 'wasm',
  engine: 'tfjs',
};

export function tinyFinetuneParams(overrides: Partial<FinetuneVgg16Params> = {}): FinetuneVgg16Params {
  return {
    weights: 'none',
    architecture: 'tiny-vgg',
    input_size: 32,
    trainable: 'predictions',
    fit: 'fill',
    use_sample: false,
    epochs: 4,
    batch_size: 8,
    learning_rate: 0.01,
    lr_schedule: 'constant',
    optimizer: 'adam',
    seed: 2,
    validate_every_epoch: false,
    backend: 'wasm',
    engine: 'tfjs',
    ...overrides,
  };
}
