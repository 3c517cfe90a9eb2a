// The params of a quick finetune-vgg16 run that tests train a model with: tiny-vgg at 32x32 from
// random weights, on wasm and tfjs (deterministic), a few epochs. Tests override what they vary.
import type { FinetuneVgg16Params } from '../../stages/finetune-vgg16.js';

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
