import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import yazl from 'yazl';
import { StageError } from '../runner/types.js';
import { extractZip, listZip, nestedPlacement, unsafeEntryName } from '../stages/kaggle/unzip.js';
import { zipOf } from './servers/kaggle-server.js';
import { listAll, withTempDir } from './helpers/files.js';

const withDir = (fn: (dir: string) => Promise<void>): Promise<void> => withTempDir('pipe-unzip-', fn);

/** yazl refuses unsafe names: build with a same-length placeholder and patch the bytes. */
function patchName(zip: Buffer, from: string, to: string): Buffer {
  assert.equal(from.length, to.length);
  return Buffer.from(zip.toString('latin1').split(from).join(to), 'latin1');
}

async function zipWith(add: (z: yazl.ZipFile) => void): Promise<Buffer> {
  const z = new yazl.ZipFile();
  add(z);
  z.end();
  const chunks: Buffer[] = [];
  for await (const c of z.outputStream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function rejectsWith(p: Promise<unknown>, text: string): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.ok(e instanceof StageError, `not a StageError: ${e.stack}`);
    assert.ok(e.message.includes(text), e.message);
    return true;
  });
}

test('extracts files and folders, streaming, and reports what it wrote', async () => {
  await withDir(async (dir) => {
    const zip = path.join(dir, 'a.zip');
    await writeFile(
      zip,
      await zipOf(
        new Map([
          ['train/cat.0.jpg', Buffer.from('c0')],
          ['train/dog.0.jpg', Buffer.from('d0')],
          ['README', Buffer.alloc(5000, 'x')],
        ]),
      ),
    );
    let bytes = 0;
    const res = await extractZip(zip, path.join(dir, 'out'), { onBytes: (n) => (bytes += n) });
    assert.deepEqual(res.files, ['train/cat.0.jpg', 'train/dog.0.jpg', 'README']);
    assert.equal(res.bytes, 5004);
    assert.equal(bytes, 5004);
    assert.equal(await readFile(path.join(dir, 'out', 'train', 'dog.0.jpg'), 'utf8'), 'd0');
    assert.deepEqual(
      (await listZip(zip)).map((e) => e.name),
      ['train/cat.0.jpg', 'train/dog.0.jpg', 'README'],
    );
  });
});

test('nested zips are extracted in place of the inner zip, with or without a top folder', async () => {
  await withDir(async (dir) => {
    const inner = await zipOf(new Map([['train/cat.0.jpg', Buffer.from('c')]]));
    const flat = await zipOf(
      new Map([
        ['1.jpg', Buffer.from('t1')],
        ['2.jpg', Buffer.from('t2')],
      ]),
    );
    const single = await zipOf(new Map([['sample.csv', Buffer.from('id,label\n')]]));
    const deeper = await zipOf(new Map([['inner.zip', inner]]));
    const outer = await zipOf(
      new Map([
        ['train.zip', inner],
        ['test1.zip', flat],
        ['sample.csv.zip', single],
        ['more/deeper.zip', deeper],
        ['__MACOSX/._train.zip', Buffer.from('junk')],
      ]),
    );
    const zip = path.join(dir, 'all.zip');
    await writeFile(zip, outer);
    const out = path.join(dir, 'out');
    const res = await extractZip(zip, out, { nested: true });
    assert.deepEqual(await listAll(out), ['more/train/cat.0.jpg', 'sample.csv', 'test1/1.jpg', 'test1/2.jpg', 'train/cat.0.jpg']);
    assert.deepEqual([...res.files].sort(), ['more/train/cat.0.jpg', 'sample.csv', 'test1/1.jpg', 'test1/2.jpg', 'train/cat.0.jpg']);
    assert.deepEqual(res.skipped, ['__MACOSX/._train.zip']);
    // Without `nested`, inner zips stay zips.
    const kept = path.join(dir, 'kept');
    await extractZip(zip, kept);
    assert.ok((await listAll(kept)).includes('train.zip'));
  });
});

test('nestedPlacement: the rules', () => {
  const e = (name: string, isDirectory = name.endsWith('/')) => ({ name, size: 1, isDirectory });
  assert.equal(nestedPlacement('train.zip', [e('train/'), e('train/cat.0.jpg')]), '');
  assert.equal(nestedPlacement('train.zip', [e('cat.0.jpg'), e('dog.0.jpg')]), 'train');
  assert.equal(nestedPlacement('sample_submission.csv.zip', [e('sample_submission.csv')]), '');
  assert.equal(nestedPlacement('data.zip', [e('images/a.jpg'), e('labels.csv')]), 'data');
});

test('zip-slip: a ../ entry is refused, naming it, and nothing lands outside', async () => {
  await withDir(async (dir) => {
    const zip = path.join(dir, 'evil.zip');
    await writeFile(
      zip,
      patchName(
        await zipOf(
          new Map([
            ['ok.txt', Buffer.from('fine')],
            ['zz/zz/pwned.txt', Buffer.from('owned')],
          ]),
        ),
        'zz/zz/pwned.txt',
        '../../pwned.txt',
      ),
    );
    const out = path.join(dir, 'a', 'out');
    await rejectsWith(extractZip(zip, out), "refusing zip entry '../../pwned.txt' in evil.zip: its path climbs out of the output folder");
    await assert.rejects(stat(path.join(dir, 'pwned.txt')));
    await assert.rejects(stat(path.join(dir, 'a', 'pwned.txt')));
  });
});

test('absolute paths are refused', async () => {
  await withDir(async (dir) => {
    const zip = path.join(dir, 'abs.zip');
    await writeFile(zip, patchName(await zipOf(new Map([['xtmp/pwned.txt', Buffer.from('x')]])), 'xtmp/pwned.txt', '/tmp/pwned.txt'));
    await rejectsWith(extractZip(zip, path.join(dir, 'out')), "refusing zip entry '/tmp/pwned.txt' in abs.zip: it is an absolute path");
    const win = path.join(dir, 'win.zip');
    await writeFile(win, patchName(await zipOf(new Map([['xx/evil.txt', Buffer.from('x')]])), 'xx/evil.txt', 'C:\\evil.txt'));
    await rejectsWith(extractZip(win, path.join(dir, 'out2')), "refusing zip entry 'C:/evil.txt'");
  });
});

test('symbolic links in a zip are refused', async () => {
  await withDir(async (dir) => {
    const zip = path.join(dir, 'link.zip');
    await writeFile(zip, await zipWith((z) => z.addBuffer(Buffer.from('/etc/passwd'), 'train/cat.0.jpg', { mode: 0o120777 })));
    await rejectsWith(extractZip(zip, path.join(dir, 'out')), "refusing zip entry 'train/cat.0.jpg' in link.zip: it is a symbolic link");
  });
});

test('a zip bomb is refused by its compression ratio before it is inflated', async () => {
  await withDir(async (dir) => {
    const zip = path.join(dir, 'bomb.zip');
    await writeFile(zip, await zipOf(new Map([['zeros.bin', Buffer.alloc(8 * 1024 * 1024)]])));
    const out = path.join(dir, 'out');
    await rejectsWith(extractZip(zip, out), "refusing zip entry 'zeros.bin' in bomb.zip: it would inflate");
    await assert.rejects(stat(path.join(out, 'zeros.bin')));
    // A higher limit lets it through; so does the total-size limit's absence.
    const res = await extractZip(zip, path.join(dir, 'ok'), { maxRatio: 5000 });
    assert.equal(res.bytes, 8 * 1024 * 1024);
    await rejectsWith(extractZip(zip, path.join(dir, 'capped'), { maxRatio: 5000, maxTotalBytes: 1024 }), 'would write more than 1024 bytes');
  });
});

test('duplicate entries and non-zips are errors', async () => {
  await withDir(async (dir) => {
    const dup = path.join(dir, 'dup.zip');
    await writeFile(
      dup,
      await zipWith((z) => {
        z.addBuffer(Buffer.from('1'), 'a.txt');
        z.addBuffer(Buffer.from('2'), 'a.txt');
      }),
    );
    await rejectsWith(extractZip(dup, path.join(dir, 'out')), "refusing zip entry 'a.txt' in dup.zip: a.txt already exists");
    const notZip = path.join(dir, 'not.zip');
    await writeFile(notZip, 'hello');
    await rejectsWith(extractZip(notZip, path.join(dir, 'out2')), 'not.zip is not a readable zip archive');
  });
});

test('unsafeEntryName', () => {
  assert.equal(unsafeEntryName('train/cat.0.jpg'), undefined);
  assert.equal(unsafeEntryName('a/..b/c'), undefined);
  assert.match(unsafeEntryName('a/../../b') ?? '', /climbs out/);
  assert.match(unsafeEntryName('..') ?? '', /climbs out/);
  assert.match(unsafeEntryName('/etc/passwd') ?? '', /absolute/);
  assert.match(unsafeEntryName('c:/x') ?? '', /absolute/);
  assert.match(unsafeEntryName('a\0b') ?? '', /NUL/);
});
