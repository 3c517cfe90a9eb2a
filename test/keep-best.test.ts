// keep: best | last, monitor, patience (early stopping) on both learners (tfjs and ONNX Runtime):
// a tiny VGG's new top trained at a learning rate so high that validation gets worse after an
// early best epoch. The kept model's weights are asserted byte for byte against a run that
// stopped at that epoch; a run killed after the best epoch and resumed keeps the same weights.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Artifact } from '../runner/types.js';
import { finetuneVgg16Stage, type FinetuneVgg16Params } from '../stages/finetune-vgg16.js';
import { EpochKeeper } from '../stages/vision/epoch-keeper.js';
import { curves } from '../stages/report/html.js';
import { available, parseHistory } from '../stages/report/model.js';
import type { History } from '../stages/vision/train.js';
import { artifactFromDir, makeTestContext, type TestContext, type TestContextOptions } from './helpers/stage-context.js';
import { tinyFinetuneParams } from './helpers/tiny-finetune.js';
import { writeSyntheticSplit } from './helpers/tiny-vgg.js';

let root: string;
let dataset: Artifact;
let noValid: Artifact;

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'pipe-keep-'));
  await writeSyntheticSplit(path.join(root, 'dataset'), { train: 24, valid: 12, test: 0, sample: { train: 4, valid: 2 } });
  dataset = artifactFromDir(path.join(root, 'dataset'), 'dataset', 'split');
  await writeSyntheticSplit(path.join(root, 'no-valid'), { train: 24, valid: 0, test: 0, sample: { train: 4, valid: 0 } });
  noValid = artifactFromDir(path.join(root, 'no-valid'), 'dataset', 'split');
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

// A learning rate far too high for Adam on this top: validation loss is best at epoch 3 (0.135),
// then worsens (0.445, 0.432, 0.681).
const params = (over: Partial<FinetuneVgg16Params> = {}): FinetuneVgg16Params =>
  tinyFinetuneParams({ epochs: 6, learning_rate: 3, validate_every_epoch: true, seed: 3, ...over });

async function run(p: FinetuneVgg16Params, options: TestContextOptions = {}) {
  const ctx = await makeTestContext(p, { inputs: { dataset }, derivedRoot: path.join(root, 'derived'), ...options });
  const result = (await finetuneVgg16Stage.run(ctx)) ?? {};
  return { ctx, result };
}
const readJson = async <T>(ctx: TestContext<unknown>, name: string) => JSON.parse(await readFile(path.join(ctx.outDir, name), 'utf8')) as T;
const weightFiles = async (ctx: TestContext<unknown>) => {
  const names = (await readdir(ctx.outDir)).filter((f) => f.endsWith('.bin')).sort();
  return Promise.all(names.map((f) => readFile(path.join(ctx.outDir, f))));
};

test('EpochKeeper: lowest val_loss or highest val_accuracy, strict improvement, patience counts validated epochs only', () => {
  const epochs = [
    { epoch: 1, val_loss: 0.5, val_accuracy: 0.7 },
    { epoch: 2, val_loss: 0.3, val_accuracy: 0.8 },
    { epoch: 3, val_loss: 0.4, val_accuracy: 0.9 },
    { epoch: 4 }, // not validated
    { epoch: 5, val_loss: 0.3, val_accuracy: 0.9 },
  ];
  const byLoss = EpochKeeper.replay({ keep: 'best', monitor: 'val_loss', patience: 2 }, epochs);
  assert.equal(byLoss.best, 2); // epoch 5 only ties
  assert.equal(byLoss.shouldStop(), true);
  assert.deepEqual(byLoss.kept(5, { validated: true }), { epoch: 2, policy: 'best', monitor: 'val_loss', value: 0.3, reason: 'lowest val_loss (0.3000)' });
  assert.match(byLoss.earlyStop().reason, /val_loss did not improve on epoch 2's for 2 epochs \(patience 2\)/);
  const byAcc = EpochKeeper.replay({ keep: 'best', monitor: 'val_accuracy', patience: 0 }, epochs);
  assert.equal(byAcc.best, 3);
  assert.equal(byAcc.shouldStop(), false);
  assert.deepEqual(EpochKeeper.replay({ keep: 'last', monitor: 'val_loss', patience: 0 }, epochs).kept(5, { validated: true }), {
    epoch: 5,
    policy: 'last',
    reason: 'keep: last',
  });
  const none = EpochKeeper.replay({ keep: 'best', monitor: 'val_loss', patience: 0 }, [{ epoch: 1 }, { epoch: 2 }]);
  assert.match(none.kept(2, { validated: false }).reason, /no validation set \(valid: 0\): the last epoch/);
});

for (const engine of ['tfjs', 'onnx'] as const) {
  test(`keep: best holds the best epoch's weights, patience stops early, a resumed run keeps the same best (${engine})`, async () => {
    const best = await run(params({ engine }));
    const cleanups: TestContext<unknown>[] = [best.ctx];
    try {
      const h = await readJson<History>(best.ctx, 'history.json');
      const losses = h.epochs.map((e) => e.val_loss!);
      const bestEpoch = losses.indexOf(Math.min(...losses)) + 1;
      assert.equal(h.epochs.length, 6);
      assert.ok(bestEpoch < 6, `the fixture needs a last epoch worse than the best: val_loss ${losses.join(', ')}`);
      assert.equal(h.kept?.epoch, bestEpoch);
      assert.equal(h.kept?.policy, 'best');
      assert.equal(h.kept?.monitor, 'val_loss');
      assert.equal(h.early_stop, undefined);
      assert.equal(best.result.metrics!['val_loss'], losses[bestEpoch - 1]);
      const ft = await readJson<Record<string, { epoch: number; of_epochs: number }>>(best.ctx, 'finetune.json');
      assert.equal(ft['kept']!.epoch, bestEpoch);
      assert.equal(ft['kept']!.of_epochs, 6);
      assert.match(best.result.summary!, new RegExp(`at epoch ${bestEpoch} of 6; kept: lowest val_loss`));

      // The weights are the best epoch's: byte for byte those of a run that ended there.
      const upTo = await run(params({ engine, epochs: bestEpoch, keep: 'last' }));
      cleanups.push(upTo.ctx);
      assert.deepEqual(await weightFiles(best.ctx), await weightFiles(upTo.ctx));
      const last = await run(params({ engine, keep: 'last' }));
      cleanups.push(last.ctx);
      assert.notDeepEqual(await weightFiles(best.ctx), await weightFiles(last.ctx));
      assert.equal((await readJson<History>(last.ctx, 'history.json')).kept?.epoch, 6);
      assert.equal(last.result.metrics!['val_loss'], losses[5]);

      // patience: 1 stops after the first epoch that does not improve, and keeps the best.
      const stopped = await run(params({ engine, patience: 1 }));
      cleanups.push(stopped.ctx);
      const hs = await readJson<History>(stopped.ctx, 'history.json');
      const firstWorse = losses.findIndex((l, i) => i > 0 && l >= Math.min(...losses.slice(0, i))) + 1;
      assert.equal(hs.epochs.length, firstWorse, JSON.stringify(hs));
      assert.equal(hs.early_stop?.epoch, firstWorse);
      assert.match(hs.early_stop!.reason, /did not improve .* for 1 epochs \(patience 1\)/);
      assert.ok(stopped.ctx.logs.some((l) => l.startsWith(`stopping early after epoch ${firstWorse}`)));

      // Killed after an epoch past the best one, then resumed: same artifact as the straight run.
      const killAt = Math.min(6, bestEpoch + 1);
      const workDir = path.join(root, `work-${engine}`);
      await mkdir(workDir);
      const controller = new AbortController();
      const ctx1 = await makeTestContext(params({ engine }), {
        inputs: { dataset },
        derivedRoot: path.join(root, 'derived'),
        workDir,
        signal: controller.signal,
      });
      cleanups.push(ctx1);
      const killing = { ...ctx1, log: { ...ctx1.log, info: (m: string) => (ctx1.log.info(m), m.startsWith(`epoch ${killAt}/6:`) && controller.abort()) } };
      await assert.rejects(finetuneVgg16Stage.run(killing), (e: Error) => e.name === 'AbortError' || /interrupt|abort/i.test(e.message));
      // The best epoch's checkpoint outlives the later ones'.
      assert.deepEqual(
        (await readdir(path.join(workDir, 'checkpoint'))).filter((f) => f.startsWith('epoch-')).sort(),
        [...new Set([`epoch-${bestEpoch}`, `epoch-${killAt}`])].sort(),
      );
      const resumed = await run(params({ engine }), { workDir });
      cleanups.push(resumed.ctx);
      assert.ok(resumed.ctx.logs.some((l) => l.includes(`resuming from the checkpoint of epoch ${killAt}/6`)));
      const files = (await readdir(best.ctx.outDir)).sort();
      for (const f of files)
        assert.equal(
          await readFile(path.join(resumed.ctx.outDir, f), 'latin1'),
          await readFile(path.join(best.ctx.outDir, f), 'latin1'),
          `${f} differs after resume`,
        );
    } finally {
      for (const c of cleanups) await c.cleanup();
    }
  });
}

test('keep: best without a validation set warns and keeps the last epoch', async () => {
  const { ctx, result } = await run(params({ epochs: 2, patience: 2 }), { inputs: { dataset: noValid }, derivedRoot: path.join(root, 'derived-nv') });
  try {
    assert.ok(
      ctx.logs.some((l) => /no validation set \(valid: 0\): nothing to judge epochs by: keep: best keeps the last epoch, patience is off/.test(l)),
      ctx.logs.join('\n'),
    );
    const h = await readJson<History>(ctx, 'history.json');
    assert.equal(h.kept?.epoch, 2);
    assert.match(h.kept!.reason, /no validation set/);
    assert.equal(result.metrics!['val_loss'], undefined);
  } finally {
    await ctx.cleanup();
  }
});

test("the report's learning curves say which epoch the model holds and why, and an early stop", () => {
  const history = parseHistory({
    epochs: [1, 2, 3, 4].map((epoch) => ({ epoch, loss: 1 / epoch, accuracy: 0.5, val_loss: [0.5, 0.3, 0.4, 0.45][epoch - 1], val_accuracy: 0.8 })),
    kept: { epoch: 2, policy: 'best', monitor: 'val_loss', value: 0.3, reason: 'lowest val_loss (0.3000)' },
    early_stop: { epoch: 4, best_epoch: 2, patience: 2, reason: "val_loss did not improve on epoch 2's for 2 epochs (patience 2)" },
  });
  assert.deepEqual(history.kept, { epoch: 2, reason: 'lowest val_loss (0.3000)' });
  const page = String(curves(available(history)));
  assert.match(
    page,
    /The model holds the weights of epoch 2 of 4: lowest val_loss \(0\.3000\)\. Stopped early: val_loss did not improve on epoch 2&#39;s for 2 epochs \(patience 2\)\./,
  );
  assert.match(page, /<tr class="kept"><td>2 \(kept\)<\/td>/);
  // A model made before keep: no note, no marked row.
  const old = String(curves(available(parseHistory({ epochs: [{ epoch: 1, loss: 1, accuracy: 0.5 }] }))));
  assert.doesNotMatch(old, /holds the weights|class="kept"/);
});
