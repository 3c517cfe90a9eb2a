// A dataset made with valid: 0: finetune trains on every image and says there are no
// validation metrics; evaluate on it needs `on: test`, and says so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { StageError } from '../runner/types.js';
import { evaluateStage, type EvaluateParams } from '../stages/evaluate.js';
import { finetuneVgg16Stage } from '../stages/finetune-vgg16.js';
import { tinyFinetuneParams } from './helpers/tiny-finetune.js';
import { artifactFromDir, makeTestContext } from './helpers/stage-context.js';
import { writeSyntheticSplit } from './helpers/tiny-vgg.js';

test('valid: 0: finetune trains on everything and says so; evaluate needs on: test', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'pipe-valid0-'));
  try {
    await writeSyntheticSplit(path.join(root, 'dataset'), { train: 8, valid: 0, test: 4, seed: 3 });
    const dataset = artifactFromDir(path.join(root, 'dataset'), 'dataset', 'split');
    const params = tinyFinetuneParams({ epochs: 1, validate_every_epoch: true });
    const ft = await makeTestContext(params, { inputs: { dataset } });
    try {
      const r = await finetuneVgg16Stage.run(ft);
      assert.ok(
        ft.logs.includes("warn: the dataset has no 'valid' images (valid: 0): training on all 16 images, with no validation metrics"),
        ft.logs.join('\n'),
      );
      assert.match(r?.summary ?? '', /^trained 1 epochs \(.*; no 'valid' images, so no validation metrics\)$/);
      assert.equal(r?.metrics?.['val_accuracy'], undefined);
      const model = artifactFromDir(ft.outDir, 'model', 'finetune');
      const evalParams: EvaluateParams = { on: 'both', gate: {}, clip: [0.05, 0.95], top_n: 2, batch_size: 8, backend: 'wasm', engine: 'tfjs' };
      const ev = await makeTestContext(evalParams, { inputs: { model, dataset } });
      try {
        await assert.rejects(evaluateStage.run(ev), (e: Error) => {
          assert.ok(e instanceof StageError);
          assert.match(e.message, /the dataset has no 'valid' images \(made with valid: 0\?\): nothing labelled to evaluate on/);
          assert.equal(e.hint, 'use on: test to predict its test set');
          return true;
        });
        const onTest = await makeTestContext({ ...evalParams, on: 'test' as const }, { inputs: { model, dataset } });
        try {
          const t = await evaluateStage.run(onTest);
          assert.match(t?.summary ?? '', /submission\.csv with 4 rows/);
        } finally {
          await onTest.cleanup();
        }
      } finally {
        await ev.cleanup();
      }
    } finally {
      await ft.cleanup();
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
