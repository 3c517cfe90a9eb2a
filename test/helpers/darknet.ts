// A darknet-shaped backbone for the fine-tune tests (any tf.layers model, cut at a named layer):
// on a 32x32x3 `input_1`, two blocks of conv (no bias, seeded) + batch norm + leaky relu + max
// pool, named as Keras names them (conv2d_1 ... max_pooling2d_2).
import type * as TF from '@tensorflow/tfjs';
import type { Tf } from '../../stages/vision/backend.js';

export function darknetBlocks(tf: Tf): { input: TF.SymbolicTensor; output: TF.SymbolicTensor } {
  const input = tf.input({ shape: [32, 32, 3], name: 'input_1' });
  let x = input;
  for (const [i, f] of [8, 16].entries()) {
    x = tf.layers
      .conv2d({
        name: `conv2d_${i + 1}`,
        filters: f,
        kernelSize: 3,
        padding: 'same',
        useBias: false,
        kernelInitializer: tf.initializers.glorotUniform({ seed: i }),
      })
      .apply(x) as TF.SymbolicTensor;
    x = tf.layers.batchNormalization({ name: `batch_normalization_${i + 1}` }).apply(x) as TF.SymbolicTensor;
    x = tf.layers.leakyReLU({ name: `leaky_re_lu_${i + 1}`, alpha: 0.1 }).apply(x) as TF.SymbolicTensor;
    x = tf.layers.maxPooling2d({ name: `max_pooling2d_${i + 1}`, poolSize: 2, strides: 2 }).apply(x) as TF.SymbolicTensor;
  }
  return { input, output: x };
}
