// Unfreezing with discriminative learning rates (fastai's `unfreeze()` + `lr=slice(...)`):
// `unfreeze: <layer>` trains that layer and everything after it (the layers below stay frozen,
// their outputs served by the frozen-output cache), `all` trains everything; `lr_mult` gives
// consecutive groups of the trained layers their own learning rate, smaller for earlier layers.
import type * as TF from '@tensorflow/tfjs';
import { StageError } from '../../runner/types.js';

export const UNFREEZE_PARAM_SCHEMA = {
  unfreeze: {
    type: 'string',
    minLength: 1,
    description:
      'Train from this layer on (it and every layer after it; `all`: every layer). The layers below stay frozen and their outputs cached. ' +
      'Replaces what `trainable` (finetune-vgg16) or `cut` (finetune) would freeze; the new head is the same.',
  },
  lr_mult: {
    type: 'array',
    items: { type: 'number', exclusiveMinimum: 0, maximum: 100 },
    minItems: 1,
    maxItems: 16,
    description:
      "Learning-rate multipliers for consecutive groups of the trained layers that have weights, earliest first (fastai's `lr=slice`): " +
      '[0.01, 0.1, 1] trains the first third at learning_rate/100, the second at learning_rate/10, the last (with the new head) at learning_rate.',
  },
} as const;

export interface UnfreezeParams {
  /** Train from this layer on, or `all`. */
  unfreeze?: string;
  lr_mult?: number[];
}

/**
 * The last frozen layer when training from layer `unfreeze` on: the layer feeding it (null when
 * that is the input, or for `all`). StageError naming the layers when there is no such layer.
 */
export function unfreezeCut(model: TF.LayersModel, unfreeze: string): string | null {
  if (unfreeze === 'all') return null;
  const layer = model.layers.find((l) => l.name === unfreeze);
  if (!layer) {
    const names = model.layers.filter((l) => l.getClassName() !== 'InputLayer').map((l) => l.name);
    throw new StageError(`unfreeze: the network has no layer '${unfreeze}'`, `layers: ${names.join(', ')}, or all`);
  }
  const inbound = layer.inboundNodes[0]?.inboundLayers ?? [];
  if (inbound.length !== 1)
    throw new StageError(`unfreeze: layer '${unfreeze}' has ${inbound.length} inputs; name a layer with one (the layers from it on must form a chain)`);
  const below = inbound[0]!;
  return below.getClassName() === 'InputLayer' ? null : below.name;
}

/**
 * The multiplier of each trained layer with weights (`layers` in order): `mults` over consecutive
 * groups, aligned at the end so the last layer (the new output) always gets the last multiplier.
 */
export function layerMultipliers(layers: readonly string[], mults: readonly number[]): Map<string, number> {
  const n = layers.length;
  const k = mults.length;
  return new Map(layers.map((name, j) => [name, mults[k - 1 - Math.floor(((n - 1 - j) * k) / n)]!]));
}

/** 'block5_conv1..block5_conv2 x0.01, block5_conv3..fc1 x0.1, fc2..predictions x1': for the log. */
export function describeMultipliers(m: ReadonlyMap<string, number>): string {
  const groups: { first: string; last: string; mult: number }[] = [];
  for (const [name, mult] of m) {
    const g = groups[groups.length - 1];
    if (g && g.mult === mult) g.last = name;
    else groups.push({ first: name, last: name, mult });
  }
  return groups.map((g) => `${g.first === g.last ? g.first : `${g.first}..${g.last}`} x${g.mult}`).join(', ');
}

/** The head's layers that have trainable weights, in order. */
export function trainedLayerNames(head: TF.LayersModel): string[] {
  return head.layers.filter((l) => l.trainable && l.trainableWeights.length > 0).map((l) => l.name);
}
