// The `backend` and `engine` params of the stages that predict with a trained model (evaluate,
// predict): one schema, built from the lists of what exists, so the two stages cannot drift;
// and their test-time augmentation.
import { BACKEND_PREFS } from './backend.js';
import { ENGINE_PREFS } from './tfjs-engine.js';

export const PREDICTION_ENGINE_PARAMS = {
  backend: { enum: [...BACKEND_PREFS], default: 'auto', description: 'TensorFlow.js backend (see finetune-vgg16). Not part of the cache key.' },
  engine: {
    enum: [...ENGINE_PREFS],
    default: 'auto',
    description:
      'What computes the frozen layers and the trained head: ONNX Runtime where it loads and converts them (`auto`), or tfjs. Not part of the cache key.',
  },
} as const;

/** `tta` of evaluate and predict (./tta.ts). */
export const TTA_PARAM_SCHEMA = {
  tta: {
    anyOf: [{ enum: ['none', 'flip'] }, { type: 'integer', minimum: 1, maximum: 64 }],
    default: 'none',
    description:
      "Test-time augmentation: average each image's probabilities with its mirror image's (`flip`) or with K seeded augmented variants' (an integer K: " +
      "the model's training `augment` settings, else flip, crop 0.1, rotate 10, brightness 0.1). Variants are cached like the frozen outputs.",
  },
} as const;
