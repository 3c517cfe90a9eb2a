// The frozen pass as a decode check (FeatureRequest.skipUndecodable, what predict uses): files
// that do not decode are listed with a lone check's reason instead of failing the pass, their
// rows are never reused as a photo's, an interrupted pass still knows the ones it met, and a set
// that must not have undecodable files never reads such an entry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { cachedFeatures, FeatureReader, type FeatureRequest } from '../stages/vision/features.js';
import { checkImage } from '../stages/vision/decode-check.js';
import type { FrozenEngine } from '../stages/vision/frozen.js';
import { makeTestContext } from './helpers/stage-context.js';

test('frozen pass as the decode check: undecodable files listed with the lone reason, not reused, remembered across a resume', async () => {
  const ctx = await makeTestContext({});
  try {
    const dir = path.join(ctx.workDir, 'photos');
    await mkdir(dir, { recursive: true });
    const files: string[] = [];
    for (let i = 0; i < 16; i++) {
      const name = `${String(i).padStart(2, '0')}.jpg`;
      await sharp({ create: { width: 12, height: 10, channels: 3, background: { r: i * 15, g: 100, b: 200 - i * 10 } } })
        .jpeg()
        .toFile(path.join(dir, name));
      files.push(name);
    }
    // In the first batch, so the interrupted attempt meets them before it stops.
    files.splice(1, 0, 'bad-text.jpg', 'bad-empty.jpg');
    await writeFile(path.join(dir, 'bad-text.jpg'), 'not a jpeg');
    await writeFile(path.join(dir, 'bad-empty.jpg'), '');
    let images = 0;
    const engine = async (): Promise<FrozenEngine> => ({
      name: 'tfjs',
      detail: {},
      inputShape: [8, 8, 3],
      outputShape: [2],
      async run(batch, count) {
        images += count;
        const out = new Float32Array(count * 2);
        for (let i = 0; i < count; i++) out.set([batch[i * 192]!, batch[i * 192 + 2]!], i * 2);
        return out;
      },
      async dispose() {},
    });
    const controller = new AbortController();
    const request = (over: Partial<FeatureRequest> = {}): FeatureRequest => ({
      derived: ctx.derived.bind(ctx),
      frozen: 'f',
      cut: 'c',
      architecture: 'a',
      datasetHash: 'photos',
      datasetDir: dir,
      split: '.',
      files,
      preprocess: { mode: 'unit', size: [8, 8], fit: 'fill' },
      engine,
      batchSize: 4,
      progress: ctx.progress,
      log: (m) => ctx.logs.push(m),
      signal: controller.signal,
      resumeDir: path.join(ctx.workDir, 'features'),
      skipUndecodable: true,
      ...over,
    });
    const stopping = (label: string) => ({ ...ctx.progress(label), update: (done: number) => void (done >= 8 && controller.abort()) });
    await assert.rejects(cachedFeatures(request({ progress: stopping })));
    assert.ok(images >= 8 && images < 18, `${images} images before the abort`);
    const set = await cachedFeatures(request({ signal: new AbortController().signal }));
    assert.equal(images, 18, 'the rest only');
    const expected = { 'bad-empty.jpg': 'empty file', 'bad-text.jpg': (await checkImage(path.join(dir, 'bad-text.jpg')))! };
    assert.deepEqual(set.index.undecodable, expected);
    assert.deepEqual(
      set.index.sha256!.map((h, i) => (h === null ? files[i] : 'hash')),
      files.map((f) => (f.startsWith('bad-') ? f : 'hash')),
    );
    assert.deepEqual(await readdir(path.join(ctx.workDir, 'features')), [], 'the resumable rows and their list moved into the entry');

    // Another set with the same bytes under other names: the good rows are copied, the bad files decoded again.
    const other = path.join(ctx.workDir, 'other');
    await mkdir(other);
    await writeFile(path.join(other, 'a.jpg'), 'not a jpeg');
    await sharp(path.join(dir, '00.jpg')).toFile(path.join(other, 'b.png'));
    const before = images;
    const second = await cachedFeatures(request({ datasetDir: other, datasetHash: 'other', files: ['a.jpg', 'b.png'], signal: new AbortController().signal }));
    assert.equal(images - before, 2, 'b.png has other bytes; a.jpg is not taken from the undecodable row');
    assert.deepEqual(Object.keys(second.index.undecodable ?? {}), ['a.jpg']);
    const reader = await FeatureReader.open(set);
    const good = files.flatMap((f, i) => (f.startsWith('bad-') ? [] : [i]));
    assert.equal((await reader.rows(good)).length, 32);
    await reader.close();

    // A set that must not have undecodable files (finetune, evaluate) never takes that entry.
    await assert.rejects(cachedFeatures(request({ skipUndecodable: false, signal: new AbortController().signal })), /undecodable/);
  } finally {
    await ctx.cleanup();
  }
});
