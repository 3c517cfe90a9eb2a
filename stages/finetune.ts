// `uses: finetune`: fine-tune any tfjs layers model. Everything up to and including `cut` is
// frozen; a new head (global average pooling for a spatial output, or flatten; dropout; a
// softmax Dense over the dataset's classes) trains on cached frozen outputs (finetune-flow.ts).
// Heavy modules (tfjs, sharp, h5wasm, onnxruntime) are imported inside run only.
import path from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import type { Stage } from '../runner/types.js';
import { StageError } from '../runner/types.js';
import type { Fit, PreprocessMode } from './vision/images.js';
import { lrFindTool } from './lr-find-tool.js';
import { modelFilesHash, runFinetune } from './finetune-flow.js';
import { TRAIN_PARAM_SCHEMA, type TrainParams } from './finetune-params.js';
import { AUGMENT_PARAM_SCHEMA } from './vision/augment.js';
import { UNFREEZE_PARAM_SCHEMA } from './vision/unfreeze.js';

export interface FinetuneParams extends TrainParams {
  backbone: string;
  cut: string;
  preprocess: PreprocessMode;
  fit: Fit;
  pooling: 'avg' | 'flatten';
  dropout: number;
}

export const finetuneStage: Stage<FinetuneParams> = {
  name: 'finetune',
  // 2: the new head starts at zero (its trained models differ from version 1's).
  version: 2,
  description:
    'Fine-tunes any TensorFlow.js layers model: layers up to and including `cut` are frozen (their outputs computed once per image and cached), ' +
    'then a new head (global average pooling for a spatial output or flatten, dropout, a softmax over the classes) trains on them. Same outputs as `finetune-vgg16`.',
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['backbone', 'cut', 'preprocess'],
    properties: {
      backbone: { type: 'string', minLength: 1, description: "Path (relative to the pipeline file) to the backbone's tfjs layers `model.json`." },
      cut: { type: 'string', minLength: 1, description: 'Name of the last frozen layer; the new head goes on its output.' },
      preprocess: {
        enum: ['caffe', 'tf', 'torch', 'unit'],
        description: "The backbone's input scaling: caffe (BGR minus ImageNet means), tf (x/127.5-1), torch ((x/255-mean)/std), unit (x/255).",
      },
      fit: { enum: ['fill', 'cover'], default: 'fill', description: 'Resize to the input size by stretching (`fill`) or centre-cropping (`cover`).' },
      pooling: { enum: ['avg', 'flatten'], default: 'avg', description: 'How a spatial cut output becomes a vector for the new Dense layer.' },
      dropout: { type: 'number', minimum: 0, maximum: 0.9, default: 0.2, description: 'Dropout rate before the new Dense layer.' },
      ...TRAIN_PARAM_SCHEMA,
      ...AUGMENT_PARAM_SCHEMA,
      ...UNFREEZE_PARAM_SCHEMA,
    },
  },
  inputs: { dataset: { kind: 'dataset', description: 'a split dataset (split.json + class folders)' } },
  output: 'model',
  keyExclude: ['backend', 'engine'],
  tools: { 'lr-find': lrFindTool((ctx) => finetuneStage.run(ctx)) },
  async checkPaths(params, pipelineDir) {
    const { fileProblem } = await import('../runner/stage-api.js');
    const problem = await fileProblem(pipelineDir, params.backbone);
    return problem ? [{ param: 'backbone', message: problem }] : [];
  },
  async keyExtra(params, pipelineDir) {
    return { backbone: await modelFilesHash(path.resolve(pipelineDir, params.backbone)).catch(() => 'unreadable') };
  },
  async run(ctx) {
    const p = ctx.params;
    const backbonePath = path.resolve(ctx.pipelineDir, p.backbone);
    return runFinetune(ctx, async ({ tf, classes }) => {
      const { loadModel } = await import('./vision/model-io.js');
      let backbone: TF.LayersModel;
      try {
        backbone = await loadModel(tf, backbonePath);
      } catch (e) {
        throw new StageError(`cannot load backbone ${p.backbone}: ${(e as Error).message}`);
      }
      let cutLayer: TF.layers.Layer;
      try {
        cutLayer = backbone.getLayer(p.cut);
      } catch {
        throw new StageError(`backbone ${p.backbone} has no layer '${p.cut}' (layers: ${backbone.layers.map((l) => l.name).join(', ')})`);
      }
      const inShape = backbone.inputs[0]!.shape;
      const [h, w] = [inShape[1], inShape[2]];
      if (inShape.length !== 4 || !h || !w || inShape[3] !== 3) throw new StageError(`backbone input must be [null, h, w, 3], got [${inShape.join(', ')}]`);
      let x = cutLayer.output as TF.SymbolicTensor;
      const rank = x.shape.length;
      if (rank === 4) {
        x = (p.pooling === 'avg' ? tf.layers.globalAveragePooling2d({ name: 'finetune_pool' }) : tf.layers.flatten({ name: 'finetune_flatten' })).apply(
          x,
        ) as TF.SymbolicTensor;
      } else if (rank !== 2) {
        x = tf.layers.flatten({ name: 'finetune_flatten' }).apply(x) as TF.SymbolicTensor;
      }
      if (p.dropout > 0) x = tf.layers.dropout({ rate: p.dropout, seed: p.seed, name: 'finetune_dropout' }).apply(x) as TF.SymbolicTensor;
      // The new head starts at zero, as a logistic regression does. It is the only layer after
      // the pooled features, so there is no symmetry to break, and a random (Glorot) start on a
      // backbone's unnormalised features gives large random logits that the run then spends its
      // epochs undoing: on pets the default seed ended at 0.85 validation accuracy and other
      // seeds at 0.94-0.98, against 0.99-1.00 for every seed from zero.
      const y = tf.layers
        .dense({
          units: classes.length,
          activation: 'softmax',
          name: 'finetune_predictions',
          kernelInitializer: 'zeros',
        })
        .apply(x) as TF.SymbolicTensor;
      const model = tf.model({ inputs: backbone.inputs, outputs: y, name: `${backbone.name}_finetuned` });
      for (const layer of backbone.layers) if (!model.layers.includes(layer)) layer.dispose(); // the old top
      return {
        model,
        cut: p.cut,
        architecture: `tfjs:${path.basename(path.dirname(backbonePath))}`,
        trainable: `after ${p.cut}`,
        weights: `backbone ${p.backbone}`,
        preprocess: { mode: p.preprocess, size: [h, w], fit: p.fit },
        extra: { head: { pooling: rank === 4 ? p.pooling : 'none', dropout: p.dropout } },
      };
    });
  },
};
