// The dataset contract: a `command` stage with `kind: dataset` is checked against it, so a
// program of one's own can make what finetune, evaluate and predict read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commandStage, type CommandParams } from '../stages/command.js';
import { splitProblems } from '../stages/dataset-contract.js';
import { readSplit } from '../stages/vision/features.js';
import { StageError } from '../runner/types.js';
import { makeTestContext } from './helpers/stage-context.js';

/** A node program that writes a dataset: two classes, one image each in train and valid, and `split`. */
function writer(split: unknown, images = ['train/cat/a.jpg', 'train/dog/b.jpg', 'valid/cat/c.jpg', 'valid/dog/d.jpg']): string[] {
  const program = `
    const fs = require('node:fs'); const path = require('node:path');
    for (const f of ${JSON.stringify(images)}) { fs.mkdirSync(path.dirname(f), { recursive: true }); fs.writeFileSync(f, 'jpeg bytes'); }
    fs.writeFileSync('split.json', ${JSON.stringify(JSON.stringify(split))});`;
  return [process.execPath, '-e', program];
}

async function runCommand(run: string[]): Promise<{ outDir: string; cleanup: () => Promise<void> }> {
  const ctx = await makeTestContext<CommandParams>({ run, deps: [], env: {}, kind: 'dataset', workdir: 'out' });
  try {
    await commandStage.run(ctx);
  } catch (e) {
    await ctx.cleanup();
    throw e;
  }
  return { outDir: ctx.outDir, cleanup: () => ctx.cleanup() };
}

const GOOD = { version: 1, classes: ['cat', 'dog'], files: { train: ['train/cat/a.jpg', 'train/dog/b.jpg'], valid: ['valid/cat/c.jpg', 'valid/dog/d.jpg'] } };

test('a command stage that writes a dataset in the documented format passes, and finetune/evaluate read it', async () => {
  const r = await runCommand(writer(GOOD));
  try {
    const split = await readSplit(r.outDir);
    assert.deepEqual(split.classes, ['cat', 'dog']);
    assert.deepEqual(split.files.valid, ['valid/cat/c.jpg', 'valid/dog/d.jpg']);
  } finally {
    await r.cleanup();
  }
});

test('a command stage whose output breaks the contract fails, naming what is wrong', async () => {
  const cases: [unknown, RegExp, string[]?][] = [
    [{ ...GOOD, version: 2 }, /'version' must be 1, not 2/],
    [{ ...GOOD, classes: ['cat'] }, /'classes' must list at least two class names/],
    [{ ...GOOD, files: { train: ['cat/a.jpg'] } }, /files\.train: 'cat\/a\.jpg' must be under 'train\/'/],
    [{ ...GOOD, files: { train: ['train/bird/a.jpg'] } }, /'train\/bird\/a\.jpg' must be train\/<class>\/<name> with <class> one of 'classes'/],
    [{ ...GOOD, files: { training: [] } }, /unknown set 'training'/],
    [GOOD, /split\.json lists 1 file the dataset lacks: valid\/dog\/d\.jpg/, ['train/cat/a.jpg', 'train/dog/b.jpg', 'valid/cat/c.jpg']],
  ];
  for (const [split, message, images] of cases) {
    await assert.rejects(runCommand(writer(split, images)), (e: Error) => {
      assert.ok(e instanceof StageError, e.stack);
      assert.match(e.message, /^the command's output is not a dataset \(kind: dataset\): /);
      assert.match(e.message, message);
      assert.match(e.hint ?? '', /The dataset format/);
      return true;
    });
  }
});

test('the contract: paths stay inside the dataset; test images need no class', () => {
  assert.deepEqual(splitProblems({ ...GOOD, files: { ...GOOD.files, test: ['test/unknown/1.jpg'] } }), []);
  assert.match(splitProblems({ ...GOOD, files: { train: ['train/cat/../../etc/passwd'] } }).join(), /must be a relative path inside the dataset/);
  assert.match(splitProblems([]).join(), /must hold a JSON object/);
});
