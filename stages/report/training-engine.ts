// Which engine trained the model, as the report names it. The model's meta.json calls the engine
// of the frozen part `engine` ('none' when nothing is frozen) and the one that trained
// `train_engine`: after ONNX training of a whole net the card would read "engine: none". They are
// in meta.json, not in finetune.json: what computed a model is not part of its content.

/** The engine fields of a model artifact's meta.json info, as finetune.json once held them. */
export function engineFields(info: Readonly<Record<string, unknown>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof info?.['engine'] === 'string') out['engine'] = info['engine'];
  const trained = info?.['train_engine'];
  const name = trained && typeof trained === 'object' ? (trained as Record<string, unknown>)['engine'] : trained;
  if (typeof name === 'string') out['train_engine'] = name;
  return out;
}

/** finetune.json as the model card shows it: `engine` is what trained it, `frozen_engine` what computed the frozen part. */
export function trainingCard(finetune: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const trained = finetune['train_engine'];
  if (typeof trained !== 'string') return { ...finetune };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(finetune)) {
    if (k === 'train_engine') continue;
    if (k === 'engine') {
      out['engine'] = trained;
      out['frozen_engine'] = v;
    } else out[k] = v;
  }
  if (!('engine' in out)) out['engine'] = trained;
  return out;
}

/** A stage's engine for one line of text: the training engine (and the frozen part's) for a model, else its `engine`. */
export function engineText(info: Readonly<Record<string, unknown>>): unknown {
  const trained = info['train_engine'];
  const name = trained && typeof trained === 'object' ? (trained as Record<string, unknown>)['engine'] : undefined;
  if (typeof name !== 'string') return info['engine'];
  return info['engine'] === undefined ? name : `${name} (frozen part: ${String(info['engine'])})`;
}
