// The `backend` and `engine` params of the stages that predict with a trained model (evaluate,
// predict): one schema, built from the lists of what exists, so the two stages cannot drift.
import { BACKEND_PREFS } from './backend.js';
import { ENGINE_PREFS } from './tfjs-engine.js';

export const PREDICTION_ENGINE_PARAMS = {
  backend: { enum: [...BACKEND_PREFS], default: 'auto', description: 'TensorFlow.js backend (see finetune-vgg16). Not part of the cache key.' },
  engine: {
    enum: [...ENGINE_PREFS],
    default: 'auto',
    description: 'What computes the frozen layers and the trained head: ONNX Runtime where it loads and converts them (`auto`), or tfjs. Not part of the cache key.',
  },
} as const;
