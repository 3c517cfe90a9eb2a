// `uses: finetune-vgg16`: the lesson. VGG16 under Keras' layer names, ImageNet weights from
// Keras' HDF5 file (downloaded once into the cache, md5-checked), its 1000-way top replaced by an
// n-way softmax, and only what `trainable` names trained, on cached frozen outputs.
// Heavy modules are imported inside run only.
import path from 'node:path';
import type { Stage, StageContext } from '../runner/types.js';
import { StageError } from '../runner/types.js';
import { lrFindTool } from './lr-find-tool.js';
import { modelFilesHash, runFinetune } from './finetune-flow.js';
import { TRAIN_PARAM_SCHEMA, type TrainParams } from './finetune-params.js';
import { AUGMENT_PARAM_SCHEMA } from './vision/augment.js';
import { UNFREEZE_PARAM_SCHEMA } from './vision/unfreeze.js';
import type { VggArchitecture, VggTrainable } from './vision/vgg16.js';
import { VGG16_WEIGHTS_MD5, VGG16_WEIGHTS_URL, cachedWeightsFile } from './vision/fetch-weights.js';

export interface FinetuneVgg16Params extends TrainParams {
  weights: string;
  weights_url?: string;
  weights_md5?: string;
  architecture: VggArchitecture;
  input_size: number;
  trainable: VggTrainable;
  fit: 'fill' | 'cover';
}

function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

/**
 * Where `weights: imagenet` comes from: param, then PIPE_VGG16_WEIGHTS_URL, then Keras' URL; its
 * md5: param, then PIPE_VGG16_WEIGHTS_MD5, then the official file's (for Keras' URL only: an
 * overridden URL without an md5 is downloaded unchecked, with a warning).
 */
export function imagenetSource(p: Pick<FinetuneVgg16Params, 'weights_url' | 'weights_md5'>): { url: string; md5: string | undefined } {
  const url = p.weights_url ?? process.env['PIPE_VGG16_WEIGHTS_URL'] ?? VGG16_WEIGHTS_URL;
  return { url, md5: p.weights_md5 ?? process.env['PIPE_VGG16_WEIGHTS_MD5'] ?? (url === VGG16_WEIGHTS_URL ? VGG16_WEIGHTS_MD5 : undefined) };
}

/** The local or downloaded weights file to load for `weights` (null: random init). */
async function resolveWeightsFile(ctx: StageContext<FinetuneVgg16Params>): Promise<{ file: string; source: string } | null> {
  const p = ctx.params;
  if (p.weights === 'none') return null;
  const fetchOnce = (url: string, md5: string | undefined): Promise<string> => cachedWeightsFile(ctx, url, md5);
  if (p.weights === 'imagenet') {
    const { url, md5 } = imagenetSource(p);
    return { file: await fetchOnce(url, md5), source: `imagenet (${url}${md5 ? `, md5 ${md5}` : ''})` };
  }
  if (isUrl(p.weights)) return { file: await fetchOnce(p.weights, p.weights_md5), source: p.weights };
  const file = path.resolve(ctx.pipelineDir, p.weights);
  return { file, source: p.weights };
}

export const finetuneVgg16Stage: Stage<FinetuneVgg16Params> = {
  name: 'finetune-vgg16',
  version: 1,
  description:
    "Fine-tunes VGG16 as in the fast.ai lesson: Keras' ImageNet weights, the 1000-way top replaced by a softmax over the dataset's classes, " +
    'only the `trainable` layers trained, on frozen outputs computed once per image and cached. Writes the model in tfjs layers format, ' +
    'classes.json, history.json, preprocess.json and finetune.json.',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      weights: {
        type: 'string',
        minLength: 1,
        default: 'imagenet',
        description:
          "`imagenet` (Keras' VGG16 file, downloaded once, md5-checked), `none` (random, seeded), or a path/URL to a Keras `.h5` or a tfjs `model.json`.",
      },
      weights_url: {
        type: 'string',
        minLength: 1,
        description: "Where `weights: imagenet` is downloaded from (a mirror); default Keras' URL or env PIPE_VGG16_WEIGHTS_URL.",
      },
      weights_md5: {
        type: 'string',
        pattern: '^[0-9a-fA-F]{32}$',
        description: "md5 of the weights file (default: env PIPE_VGG16_WEIGHTS_MD5, or the official file's for Keras' URL).",
      },
      architecture: {
        enum: ['vgg16', 'tiny-vgg'],
        default: 'vgg16',
        description: '`vgg16`, or `tiny-vgg` (the same layers with 1/16 of the channels: for demos and tests).',
      },
      input_size: { type: 'integer', minimum: 32, default: 224, description: 'Images are resized to input_size x input_size (ImageNet weights need 224).' },
      trainable: {
        enum: ['predictions', 'dense', 'block5', 'all'],
        default: 'predictions',
        description: 'What trains: the new top only (the lesson), all dense layers, block5 and the dense layers, or everything.',
      },
      fit: { enum: ['fill', 'cover'], default: 'fill', description: 'Resize by stretching (`fill`, as Keras) or centre-cropping (`cover`).' },
      ...TRAIN_PARAM_SCHEMA,
      ...AUGMENT_PARAM_SCHEMA,
      ...UNFREEZE_PARAM_SCHEMA,
    },
  },
  inputs: { dataset: { kind: 'dataset', description: 'a split dataset (split.json + class folders)' } },
  output: 'model',
  keyExclude: ['backend', 'engine'],
  tools: { 'lr-find': lrFindTool((ctx) => finetuneVgg16Stage.run(ctx)) },
  async checkPaths(params, pipelineDir) {
    if (params.weights === 'imagenet' || params.weights === 'none' || isUrl(params.weights)) return [];
    const { fileProblem } = await import('../runner/stage-api.js');
    const problem = await fileProblem(pipelineDir, params.weights);
    return problem ? [{ param: 'weights', message: problem }] : [];
  },
  async keyExtra(params, pipelineDir) {
    // A local weights file is keyed by content, not by path.
    if (params.weights === 'imagenet' || params.weights === 'none' || isUrl(params.weights)) return undefined;
    const { cachedFileHash } = await import('../runner/stage-api.js');
    const file = path.resolve(pipelineDir, params.weights);
    try {
      if (file.endsWith('.json')) return await modelFilesHash(file);
      return (await cachedFileHash(file)).sha256;
    } catch {
      return 'unreadable';
    }
  },
  async run(ctx) {
    const p = ctx.params;
    return runFinetune(ctx, async ({ tf, classes }) => {
      const { buildVgg, vggCutLayer } = await import('./vision/vgg16.js');
      const { loadKerasWeights, copyWeights } = await import('./vision/weights.js');
      const { loadModel } = await import('./vision/model-io.js');
      const size: [number, number] = [p.input_size, p.input_size];
      const weights = await resolveWeightsFile(ctx);
      const model = buildVgg(tf, { architecture: p.architecture, inputSize: size, classes: classes.length, seed: p.seed });
      let source = `random (seed ${p.seed})`;
      try {
        if (weights) {
          // The new top has another shape than ImageNet's: never loaded.
          if (weights.file.endsWith('.json')) {
            const src = await loadModel(tf, weights.file);
            const report = copyWeights(tf, src, model, path.basename(weights.file), ['predictions']);
            src.dispose();
            ctx.log.info(`weights: ${report.loaded.length} layers from ${weights.source}`);
          } else {
            const report = await loadKerasWeights(tf, model, weights.file, ['predictions']);
            ctx.log.info(
              `weights: ${report.loaded.length} layers from ${weights.source} (${report.style} layout${report.ignored.length ? `; not used: ${report.ignored.join(', ')}` : ''})`,
            );
          }
          source = weights.source;
        }
      } catch (e) {
        model.dispose();
        if ((e as Error).name === 'WeightsError') throw new StageError((e as Error).message);
        throw e;
      }
      return {
        model,
        cut: vggCutLayer(p.trainable),
        architecture: p.architecture,
        trainable: p.trainable,
        weights: source,
        preprocess: { mode: 'caffe', size, fit: p.fit },
      };
    });
  },
};
