import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { decodeImage, loadBatches, preprocessInto, ImageDecodeError } from '../stages/vision/images.js';

let dir: string;
const files: string[] = [];

function solid(w: number, h: number, rgb: [number, number, number]) {
  return sharp({ create: { width: w, height: h, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } });
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-images-'));
  for (let i = 0; i < 10; i++) {
    const f = path.join(dir, `img${i}.png`);
    await solid(40 + i, 30, [i * 20, 100, 255 - i * 20])
      .png()
      .toFile(f);
    files.push(f);
  }
  // Left half red, right half blue: fill keeps both, cover of a wide image crops the sides.
  const half = await solid(100, 50, [0, 0, 255])
    .composite([{ input: await solid(50, 50, [255, 0, 0]).png().toBuffer(), left: 0, top: 0 }])
    .png()
    .toBuffer();
  await writeFile(path.join(dir, 'halves.png'), half);
  await sharp({ create: { width: 20, height: 20, channels: 4, background: { r: 10, g: 20, b: 30, alpha: 0.5 } } })
    .png()
    .toFile(path.join(dir, 'alpha.png'));
  await solid(20, 20, [90, 90, 90]).toColourspace('b-w').jpeg().toFile(path.join(dir, 'grey.jpg'));
  const jpeg = await solid(64, 64, [1, 2, 3]).jpeg().toBuffer();
  await writeFile(path.join(dir, 'truncated.jpg'), jpeg.subarray(0, jpeg.length >> 1));
  await writeFile(path.join(dir, 'text.jpg'), 'not an image');
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('decodeImage: exact size, HWC RGB, fill vs cover', async () => {
  const fill = await decodeImage(path.join(dir, 'halves.png'), { size: [8, 16], fit: 'fill' });
  assert.equal(fill.length, 8 * 16 * 3);
  assert.deepEqual([...fill.subarray(0, 3)], [255, 0, 0]); // top-left: red
  const last = fill.length - 3;
  assert.deepEqual([...fill.subarray(last, last + 3)], [0, 0, 255]); // bottom-right: blue
  // cover to a square keeps the centre 50x50: its left half red, right half blue
  const cover = await decodeImage(path.join(dir, 'halves.png'), { size: [10, 10], fit: 'cover' });
  assert.deepEqual([...cover.subarray(0, 3)], [255, 0, 0]);
  assert.deepEqual([...cover.subarray(9 * 3, 9 * 3 + 3)], [0, 0, 255]);
});

test('decodeImage: alpha removed, grey expanded to three channels', async () => {
  const a = await decodeImage(path.join(dir, 'alpha.png'), { size: [4, 4], fit: 'fill' });
  assert.equal(a.length, 4 * 4 * 3);
  const g = await decodeImage(path.join(dir, 'grey.jpg'), { size: [4, 4], fit: 'fill' });
  assert.equal(g.length, 4 * 4 * 3);
  assert.equal(g[0], g[1]);
  assert.equal(g[1], g[2]);
});

test('decodeImage: corrupt files fail naming the file; huge ones are refused', async () => {
  for (const name of ['truncated.jpg', 'text.jpg']) {
    await assert.rejects(decodeImage(path.join(dir, name), { size: [8, 8], fit: 'fill' }), (e: Error) => {
      assert.ok(e instanceof ImageDecodeError);
      assert.ok(e.message.includes(name), e.message);
      return true;
    });
  }
  await assert.rejects(decodeImage(files[0]!, { size: [8, 8], fit: 'fill', limitInputPixels: 100 }), /pixel limit/i);
});

test('preprocessInto: caffe, tf, torch and unit modes', () => {
  const rgb = new Uint8Array([255, 128, 0]);
  const out = new Float32Array(5);
  preprocessInto(rgb, out, 1, 'caffe');
  assert.deepEqual(
    [...out].map((v) => Number(v.toFixed(3))),
    [0, 0 - 103.939, 128 - 116.779, 255 - 123.68, 0].map((v) => Number(v.toFixed(3))),
  );
  preprocessInto(rgb, out, 0, 'tf');
  assert.deepEqual(
    [...out.subarray(0, 3)].map((v) => Number(v.toFixed(4))),
    [1, Number((128 / 127.5 - 1).toFixed(4)), -1],
  );
  preprocessInto(rgb, out, 0, 'unit');
  assert.deepEqual(
    [...out.subarray(0, 3)].map((v) => Number(v.toFixed(4))),
    [1, Number((128 / 255).toFixed(4)), 0],
  );
  preprocessInto(rgb, out, 0, 'torch');
  assert.ok(Math.abs(out[0]! - (1 - 0.485) / 0.229) < 1e-5);
  assert.ok(Math.abs(out[2]! - (0 - 0.406) / 0.225) < 1e-5);
  assert.throws(() => preprocessInto(rgb, new Float32Array(2), 0, 'unit'), /overflows/);
});

test('loadBatches: order, counts and contents', async () => {
  const seen: { files: readonly string[]; count: number; start: number }[] = [];
  const size: [number, number] = [6, 5];
  for await (const b of loadBatches(files, { size, fit: 'fill', preprocess: 'unit', batchSize: 4 })) {
    seen.push({ files: b.files, count: b.count, start: b.start });
    assert.equal(b.data.length, b.count * 6 * 5 * 3);
    for (let i = 0; i < b.count; i++) {
      const one = new Float32Array(6 * 5 * 3);
      preprocessInto(await decodeImage(b.files[i]!, { size, fit: 'fill' }), one, 0, 'unit');
      assert.deepEqual(b.data.subarray(i * one.length, (i + 1) * one.length), one);
    }
  }
  assert.deepEqual(
    seen.map((s) => s.count),
    [4, 4, 2],
  );
  assert.deepEqual(
    seen.map((s) => s.start),
    [0, 4, 8],
  );
  assert.deepEqual(
    seen.flatMap((s) => s.files),
    files,
  );
});

test('loadBatches decodes ahead of a slow consumer, but at most `ahead` batches', async () => {
  let decoded = 0;
  const it = loadBatches(files, { size: [8, 8], fit: 'fill', preprocess: 'unit', batchSize: 2, ahead: 2, onDecoded: () => decoded++ });
  const first = await it.next();
  assert.equal(first.done, false);
  await new Promise((r) => setTimeout(r, 300)); // the consumer "trains" on batch 0
  // batch 0 held by the consumer + 2 batches ahead = 6 images, not all 10
  assert.equal(decoded, 6);
  let rest = 0;
  for await (const b of { [Symbol.asyncIterator]: () => it }) rest += b.count;
  assert.equal(rest, 8);
});

test('loadBatches stops on abort and on an early break; a bad file fails the batch', async () => {
  const controller = new AbortController();
  const run = async () => {
    for await (const b of loadBatches(files, { size: [8, 8], fit: 'fill', preprocess: 'unit', batchSize: 2, signal: controller.signal })) {
      if (b.start === 2) controller.abort();
    }
  };
  await assert.rejects(run(), (e: Error) => e.name === 'AbortError');
  for await (const b of loadBatches(files, { size: [8, 8], fit: 'fill', preprocess: 'unit', batchSize: 3 })) {
    assert.equal(b.start, 0);
    break;
  }
  const bad = [files[0]!, path.join(dir, 'text.jpg'), files[1]!];
  await assert.rejects(
    (async () => {
      for await (const _ of loadBatches(bad, { size: [8, 8], fit: 'fill', preprocess: 'unit', batchSize: 2 })) void _;
    })(),
    /text\.jpg: cannot decode image/,
  );
});

test('loadBatches with reuseBuffers: a batch stays intact until two more are taken', async () => {
  const opts = { size: [8, 8] as [number, number], fit: 'fill' as const, preprocess: 'unit' as const, batchSize: 2 };
  const fresh: Float32Array[] = [];
  for await (const b of loadBatches(files, opts)) fresh.push(b.data);
  const held: Float32Array[] = [];
  let k = 0;
  for await (const b of loadBatches(files, { ...opts, reuseBuffers: true })) {
    held.push(b.data);
    assert.deepEqual(b.data, fresh[k]);
    if (k >= 1) assert.deepEqual(held[k - 1], fresh[k - 1], `batch ${k - 1} still intact while ${k} is held`);
    k++;
  }
  assert.equal(k, 5);
  assert.equal(new Set(held.map((d) => d.buffer)).size, 4); // ahead (2) + 2 buffers recycled
});
