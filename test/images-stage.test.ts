import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { StageError } from '../runner/types.js';
import { cachedFileHash, saveStatCache, useStatCache } from '../runner/hash-files.js';
import { imagesStage, unsafeTarMember, type ImagesParams } from '../stages/images.js';
import { makeTestContext } from './helpers/stage-context.js';
import { writeKaggleSet, kaggleFiles } from './helpers/jpegs.js';
import { zipOf } from './servers/kaggle-server.js';
import { listAll } from './helpers/files.js';

let root: string; // the "pipeline folder"

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'pipe-images-'));
  await writeKaggleSet(path.join(root, 'photos'), { cats: 3, dogs: 3, test: 2 });
  await writeFile(path.join(root, 'photos', '.hidden'), 'left out');
});

after(async () => {
  useStatCache(undefined);
  await rm(root, { recursive: true, force: true });
});

async function run(p: ImagesParams): Promise<{ outDir: string; cleanup: () => Promise<void>; summary?: string }> {
  const ctx = await makeTestContext<ImagesParams>(p, { pipelineDir: root });
  try {
    const res = await imagesStage.run(ctx);
    return { outDir: ctx.outDir, cleanup: () => ctx.cleanup(), ...(res?.summary ? { summary: res.summary } : {}) };
  } catch (e) {
    await ctx.cleanup();
    throw e;
  }
}

const EXPECTED = ['test/1.jpg', 'test/2.jpg', 'train/cat.0.jpg', 'train/cat.1.jpg', 'train/cat.2.jpg', 'train/dog.0.jpg', 'train/dog.1.jpg', 'train/dog.2.jpg'];

test('a folder, relative to the pipeline file: copies (never hard links) with the layout kept, hidden files left out', async () => {
  const r = await run({ follow_symlinks: false, path: 'photos' });
  try {
    assert.deepEqual(await listAll(r.outDir), EXPECTED);
    const a = await stat(path.join(r.outDir, 'train/cat.0.jpg'));
    const b = await stat(path.join(root, 'photos/train/cat.0.jpg'));
    assert.notEqual(a.ino, b.ino, "the artifact's file is not the user's file");
    assert.deepEqual(await readFile(path.join(r.outDir, 'train/cat.0.jpg')), await readFile(path.join(root, 'photos/train/cat.0.jpg')));
    assert.match(r.summary ?? '', /^8 files from photos/);
  } finally {
    await r.cleanup();
  }
});

test('the key covers content, and re-uses hashes while size and mtime are unchanged', async () => {
  useStatCache(path.join(root, 'stat-cache.json'));
  const dir = path.join(root, 'keyed');
  await writeKaggleSet(dir, { cats: 2, dogs: 2 });
  const key = async () => JSON.stringify(await imagesStage.keyExtra!({ follow_symlinks: false, path: 'keyed' }, root));
  const file = path.join(dir, 'train/cat.0.jpg');
  const when = new Date('2024-01-01T00:00:00Z');
  await utimes(file, when, when);
  const k1 = await key();
  assert.ok(!k1.includes(root), 'no absolute paths in the key');
  assert.equal(await key(), k1);
  // Same size and mtime, other bytes: the stat cache answers (no re-read), as designed.
  const bytes = await readFile(file);
  const at = bytes.length - 3;
  bytes.writeUInt8(bytes.readUInt8(at) ^ 0xff, at);
  await writeFile(file, bytes);
  await utimes(file, when, when);
  assert.equal(await key(), k1);
  // A real edit (new mtime) changes the key; so does a new file.
  await utimes(file, when, new Date(when.getTime() + 5000));
  const k2 = await key();
  assert.notEqual(k2, k1);
  await writeFile(path.join(dir, 'train/cat.9.jpg'), bytes);
  assert.notEqual(await key(), k2);
  useStatCache(undefined);
});

test("saving the stat cache removes temp files that killed runs left (only dead processes')", async () => {
  const file = path.join(root, 'stats', 'stat-cache.json');
  await mkdir(path.dirname(file), { recursive: true });
  const child = execa('true');
  const dead = child.pid!; // exits at once: its pid is free after that
  await child;
  const leftover = `${file}.${dead}.tmp`;
  const alive = `${file}.1.tmp`; // pid 1 exists: never touched
  await writeFile(leftover, '{');
  await writeFile(alive, '{');
  useStatCache(file);
  try {
    await writeFile(path.join(root, 'stats', 'x.bin'), 'x');
    await cachedFileHash(path.join(root, 'stats', 'x.bin'));
    await saveStatCache();
    const names = await readdir(path.dirname(file));
    assert.ok(names.includes('stat-cache.json'));
    assert.ok(!names.includes(path.basename(leftover)), names.join(' '));
    assert.ok(names.includes(path.basename(alive)));
  } finally {
    useStatCache(undefined);
  }
});

test('a .zip archive is extracted (zip-slip checks apply)', async () => {
  await writeFile(path.join(root, 'photos.zip'), await zipOf(await kaggleFiles({ cats: 3, dogs: 3, test: 2 })));
  const r = await run({ follow_symlinks: false, path: 'photos.zip' });
  try {
    assert.deepEqual(await listAll(r.outDir), EXPECTED);
    const key = (await imagesStage.keyExtra!({ follow_symlinks: false, path: 'photos.zip' }, root)) as { kind: string; size: number };
    assert.equal(key.kind, 'zip');
  } finally {
    await r.cleanup();
  }
});

test('a .tar(.gz) archive is extracted; members that escape or link are refused', async () => {
  await execa('tar', ['-czf', path.join(root, 'photos.tar.gz'), '-C', path.join(root, 'photos'), 'train', 'test']);
  const r = await run({ follow_symlinks: false, path: 'photos.tar.gz' });
  try {
    assert.deepEqual(await listAll(r.outDir), EXPECTED);
  } finally {
    await r.cleanup();
  }
  // A member named ../escaped.txt (GNU tar stores it with -P).
  const evilDir = path.join(root, 'evil', 'inner');
  await mkdir(evilDir, { recursive: true });
  await writeFile(path.join(root, 'evil', 'escaped.txt'), 'x');
  await execa('tar', ['-cPf', path.join(root, 'evil.tar'), '../escaped.txt'], { cwd: evilDir });
  await assert.rejects(
    run({ follow_symlinks: false, path: 'evil.tar' }),
    (e: Error) => e instanceof StageError && e.message.includes("refusing tar member '../escaped.txt' in evil.tar: its path climbs out"),
  );
  // A symbolic link member.
  const linkDir = path.join(root, 'linky');
  await mkdir(linkDir, { recursive: true });
  await symlink('/etc/passwd', path.join(linkDir, 'cat.0.jpg'));
  await execa('tar', ['-cf', path.join(root, 'link.tar'), 'cat.0.jpg'], { cwd: linkDir });
  await assert.rejects(run({ follow_symlinks: false, path: 'link.tar' }), /refusing tar member 'cat\.0\.jpg' in link\.tar: it is a symbolic link/);
});

test('unsafeTarMember', () => {
  assert.equal(unsafeTarMember('train/cat.0.jpg', '-'), undefined);
  assert.equal(unsafeTarMember('train/', 'd'), undefined);
  assert.match(unsafeTarMember('/etc/passwd', '-') ?? '', /absolute/);
  assert.match(unsafeTarMember('a/../../b', '-') ?? '', /climbs out/);
  assert.match(unsafeTarMember('x', 'h') ?? '', /hard link/);
  assert.match(unsafeTarMember('x', 'c') ?? '', /not a regular file/);
});

test('a missing path or a plain file is a clear error', async () => {
  await assert.rejects(run({ follow_symlinks: false, path: 'nowhere' }), /images: nowhere does not exist/);
  await writeFile(path.join(root, 'notes.txt'), 'x');
  await assert.rejects(run({ follow_symlinks: false, path: 'notes.txt' }), /neither a folder nor a \.zip\/\.tar archive/);
  await assert.rejects(imagesStage.keyExtra!({ follow_symlinks: false, path: 'nowhere' }, root), StageError);
});
