// Bad images and archives: excluded with a reason or converted, never a crash; nothing written
// outside the output dir.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { checkImage } from '../stages/vision/decode-check.js';
import { decodeImage } from '../stages/vision/images.js';
import { extractZip } from '../stages/kaggle/unzip.js';
import { zipOf } from './servers/kaggle-server.js';
import { withTempDir } from './helpers/files.js';

const withDir = (fn: (dir: string) => Promise<void>): Promise<void> => withTempDir('pipe-bad-', fn);

const rgb = (w: number, h: number): ReturnType<typeof sharp> => sharp({ create: { width: w, height: h, channels: 3, background: { r: 200, g: 80, b: 40 } } });

/** A PNG whose header claims huge dimensions (a decompression bomb) with a tiny body. */
function hugePngHeader(): Buffer {
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(100_000, 0);
  ihdr.writeUInt32BE(100_000, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  const chunk = Buffer.concat([Buffer.from([0, 0, 0, 13]), Buffer.from('IHDR'), ihdr, Buffer.alloc(4)]);
  return Buffer.concat([sig, chunk]);
}

test('images: broken ones are excluded with a reason; grey, CMYK and alpha ones are converted to RGB', async () => {
  await withDir(async (dir) => {
    const good = await rgb(40, 30).jpeg().toBuffer();
    const files: Record<string, Buffer> = {
      'truncated.jpg': good.subarray(0, Math.floor(good.length / 2)),
      'empty.jpg': Buffer.alloc(0),
      'text.jpg': Buffer.from('this is not an image\n'),
      'bomb.png': hugePngHeader(),
      'grey.jpg': await rgb(40, 30).greyscale().jpeg().toBuffer(),
      'cmyk.jpg': await rgb(40, 30).toColourspace('cmyk').jpeg().toBuffer(),
      'alpha.png': await sharp({ create: { width: 40, height: 30, channels: 4, background: { r: 0, g: 90, b: 200, alpha: 0.5 } } })
        .png()
        .toBuffer(),
      'good.jpg': good,
    };
    for (const [name, bytes] of Object.entries(files)) await writeFile(path.join(dir, name), bytes);
    const reasons: Record<string, string | undefined> = {};
    for (const name of Object.keys(files)) reasons[name] = await checkImage(path.join(dir, name), 10_000_000);
    for (const bad of ['truncated.jpg', 'empty.jpg', 'text.jpg', 'bomb.png']) assert.ok(reasons[bad], `${bad} was accepted`);
    assert.equal(reasons['empty.jpg'], 'empty file');
    assert.match(reasons['bomb.png']!, /pixel limit|exceeds|dimensions|corrupt|unsupported/i);
    for (const ok of ['grey.jpg', 'cmyk.jpg', 'alpha.png', 'good.jpg']) {
      assert.equal(reasons[ok], undefined, `${ok}: ${reasons[ok]}`);
      const pixels = await decodeImage(path.join(dir, ok), { size: [16, 16], fit: 'fill' });
      assert.equal(pixels.length, 16 * 16 * 3, `${ok} did not decode to RGB`);
    }
    // The grey image stays grey after conversion: its three channels agree.
    const grey = await decodeImage(path.join(dir, 'grey.jpg'), { size: [4, 4], fit: 'fill' });
    assert.ok(Math.abs(grey[0]! - grey[1]!) <= 1 && Math.abs(grey[1]! - grey[2]!) <= 1);
  });
});

test('archives: a truncated zip is refused cleanly and writes nothing outside the output dir', async () => {
  await withDir(async (dir) => {
    const whole = await zipOf(
      new Map([
        ['a.txt', Buffer.alloc(5000, 97)],
        ['b.txt', Buffer.from('b')],
      ]),
    );
    const zip = path.join(dir, 'cut.zip');
    await writeFile(zip, whole.subarray(0, Math.floor(whole.length * 0.6)));
    const out = path.join(dir, 'out');
    await assert.rejects(
      extractZip(zip, out),
      (e: Error) => /cut\.zip|zip|end of central directory|truncated|corrupt/i.test(e.message) && !/\n\s+at /.test(e.message),
    );
    assert.deepEqual((await readdir(dir)).sort(), ['cut.zip', ...((await stat(out).catch(() => undefined)) ? ['out'] : [])].sort());
    assert.equal((await readFile(zip)).length, Math.floor(whole.length * 0.6));
  });
});
