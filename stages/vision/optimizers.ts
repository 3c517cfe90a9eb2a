// The optimizers, as one table: name -> the state it keeps per weight, its update formula (the
// ONNX trainer applies it to plain typed arrays) and the same optimizer in tfjs (the tfjs
// learner). The stage schema's enum, the learners and the checkpoint formats take their list
// from here: adding an optimizer is adding a row. Light on purpose (tfjs is a type import only):
// `pipe validate` loads this module for the schema.
import type * as TF from '@tensorflow/tfjs';

export interface OptimizerSpec {
  /** For the param's description: what the name means. */
  readonly describe: string;
  /** How many state arrays (each the weight's shape) the update keeps per weight. */
  readonly slots: number;
  /**
   * One update of `w` in place from its gradient `g`, with its `slots`, step size `lr` and the
   * 1-based count of steps taken so far (this one included). Same formulas and defaults as tfjs.
   */
  update(w: Float32Array, g: Float32Array, slots: readonly Float32Array[], lr: number, step: number): void;
  /** The same optimizer in tfjs. */
  tfjs(tf: typeof TF, lr: number): TF.Optimizer;
}

// tfjs' defaults: adam(lr, 0.9, 0.999, epsilon = backend epsilon 1e-7); momentum 0.9.
const BETA1 = 0.9;
const BETA2 = 0.999;
const EPSILON = 1e-7;
const MOMENTUM = 0.9;

const adam: OptimizerSpec = {
  describe: '`adam`',
  slots: 2,
  update(w, g, [m, v], lr, step) {
    const c1 = 1 / (1 - BETA1 ** step);
    const c2 = 1 / (1 - BETA2 ** step);
    for (let j = 0; j < w.length; j++) {
      const gj = g[j]!;
      const mj = BETA1 * m![j]! + (1 - BETA1) * gj;
      const vj = BETA2 * v![j]! + (1 - BETA2) * gj * gj;
      m![j] = mj;
      v![j] = vj;
      w[j] = w[j]! - (lr * (mj * c1)) / (Math.sqrt(vj * c2) + EPSILON);
    }
  },
  tfjs: (tf, lr) => tf.train.adam(lr),
};

const sgd: OptimizerSpec = {
  describe: `\`sgd\` with momentum ${MOMENTUM}`,
  slots: 1,
  update(w, g, [a], lr) {
    for (let j = 0; j < w.length; j++) {
      const aj = MOMENTUM * a![j]! + g[j]!;
      a![j] = aj;
      w[j] = w[j]! - lr * aj;
    }
  },
  tfjs: (tf, lr) => tf.train.momentum(lr, MOMENTUM),
};

export const OPTIMIZERS = { adam, sgd } as const;

export type OptimizerName = keyof typeof OPTIMIZERS;

export const OPTIMIZER_NAMES = Object.keys(OPTIMIZERS) as OptimizerName[];

/** The `optimizer` param of the fine-tuning stages. */
export const OPTIMIZER_PARAM_SCHEMA: Record<string, unknown> = {
  enum: OPTIMIZER_NAMES,
  default: 'adam',
  description: `${OPTIMIZER_NAMES.slice(0, -1)
    .map((n) => OPTIMIZERS[n].describe)
    .join(', ')}${OPTIMIZER_NAMES.length > 1 ? ', or ' : ''}${OPTIMIZERS[OPTIMIZER_NAMES[OPTIMIZER_NAMES.length - 1]!].describe}.`,
};
