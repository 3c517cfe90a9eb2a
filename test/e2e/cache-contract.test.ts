// End to end: the cache contract a user relies on. --force replaces the entry; a damaged entry is
// never served (a warning and a re-run instead); the cache never shares a writable file with the
// user's folders; a symbolic link out of an `images` folder is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readlink, rm, stat, symlink, writeFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { Rig } from './rig.js';

const STAMP = `name: stamp
stages:
  stamp:
    uses: command
    with:
      run: 'echo run >> "$COUNTERS/stamp"; date +%s%N > "$PIPE_OUT/stamp.txt"'
  copy:
    uses: command
    inputs: { src: stamp }
    with:
      run: 'cat "$PIPE_IN_SRC/stamp.txt" > "$PIPE_OUT/copy.txt"'
`;

/** The key latest/<pipeline>/<stage> points at. */
async function latestKey(rig: Rig, pipeline: string, stage: string): Promise<string> {
  return path.basename(path.dirname(await readlink(rig.path('.pipe/latest', pipeline, stage))));
}

test('--force replaces the entry of its key: the new output is what latest/ and later runs serve', async () => {
  const rig = await Rig.create();
  try {
    await rig.write('p.yaml', STAMP);
    const first = await rig.run(['run', 'p.yaml']);
    assert.equal(first.code, 0, first.stderr);
    const key = await latestKey(rig, 'stamp', 'stamp');
    const old = await rig.read('.pipe/latest/stamp/stamp/stamp.txt');

    const forced = await rig.run(['run', 'p.yaml', '--only', 'stamp', '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(await rig.count('stamp'), 2);
    assert.equal(await latestKey(rig, 'stamp', 'stamp'), key, 'same inputs, same key');
    const fresh = await rig.read('.pipe/latest/stamp/stamp/stamp.txt');
    assert.notEqual(fresh, old, 'the forced run output replaced the old entry');
    assert.equal(await rig.read(`.pipe/cache/${key}/data/stamp.txt`), fresh);
    // The old entry went to tmp/ for removal: nothing left behind.
    assert.deepEqual(
      (await readdir(rig.path('.pipe/tmp'))).filter((n) => n.includes('replaced')),
      [],
    );

    // The next plain run serves the new entry, and copy (keyed on the new content) re-runs on it.
    const again = await rig.run(['run', 'p.yaml']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /✓ stamp cached/);
    assert.equal(await rig.count('stamp'), 2);
    assert.equal(await rig.read('.pipe/latest/stamp/copy/copy.txt'), fresh);
  } finally {
    await rig.cleanup();
  }
});

for (const [what, damage] of [
  ['meta.json overwritten with junk', (entry: string) => writeFile(path.join(entry, 'meta.json'), 'junk{')],
  ['data/ deleted', (entry: string) => rm(path.join(entry, 'data'), { recursive: true, force: true })],
  ['manifest.json deleted', (entry: string) => rm(path.join(entry, 'manifest.json'))],
  ['a top-level file of data/ deleted', (entry: string) => rm(path.join(entry, 'data', 'stamp.txt'))],
] as const) {
  test(`a damaged entry is never served (${what}): a warning, a re-run, a whole entry again`, async () => {
    const rig = await Rig.create();
    try {
      await rig.write('p.yaml', STAMP);
      const first = await rig.run(['run', 'p.yaml']);
      assert.equal(first.code, 0, first.stderr);
      const key = await latestKey(rig, 'stamp', 'stamp');
      await damage(rig.path('.pipe/cache', key));
      const status = await rig.run(['status', 'p.yaml']);
      assert.match(status.stdout + status.stderr, /cache entry damaged/);

      const second = await rig.run(['run', 'p.yaml']);
      assert.equal(second.code, 0, second.stderr);
      assert.equal(await rig.count('stamp'), 2, 'the damaged stage ran again');
      assert.match(second.stderr, /stamp \| .*cache entry .* is damaged/);
      const fresh = await rig.read(`.pipe/cache/${key}/data/stamp.txt`);
      assert.equal(await rig.read('.pipe/latest/stamp/copy/copy.txt'), fresh);
      const verify = await rig.run(['verify', 'p.yaml']);
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);

      const third = await rig.run(['run', 'p.yaml']);
      assert.equal(third.code, 0, third.stderr);
      assert.equal(await rig.count('stamp'), 2, 'the replaced entry is a hit');
    } finally {
      await rig.cleanup();
    }
  });
}

const IMAGES = (extra = '') => `name: photos
stages:
  photos:
    uses: images
    with:
      path: photos${extra}
`;

test('images copies the photos into a read-only cache: editing the cache never reaches them', async () => {
  const rig = await Rig.create();
  try {
    const photo = await rig.write('photos/cat/a.jpg', 'original-cat');
    await rig.write('photos/dog/b.jpg', 'original-dog');
    await rig.write('p.yaml', IMAGES());
    const r = await rig.run(['run', 'p.yaml']);
    assert.equal(r.code, 0, r.stderr);
    const key = await latestKey(rig, 'photos', 'photos');
    const entry = rig.path('.pipe/cache', key);
    const cached = path.join(entry, 'data/cat/a.jpg');
    assert.notEqual((await stat(cached)).ino, (await stat(photo)).ino, 'not a hard link to the user file');
    for (const f of [cached, path.join(entry, 'data/dog/b.jpg'), path.join(entry, 'meta.json'), path.join(entry, 'manifest.json')]) {
      assert.equal((await stat(f)).mode & 0o777, 0o444, `${f} is read-only`);
    }
    assert.equal((await stat(photo)).mode & 0o777, 0o644, "the user's file keeps its mode");
    // Through latest/ as a user would (root ignores 0444, so this write goes through).
    await writeFile(rig.path('.pipe/latest/photos/photos/cat/a.jpg'), 'damaged-cat').catch(() => undefined);
    assert.equal(await readFile(photo, 'utf8'), 'original-cat');

    // verify finds the edit (when the write went through) and --remove still deletes the read-only entry.
    const edited = (await readFile(cached, 'utf8')) !== 'original-cat';
    const verify = await rig.run(['verify', 'p.yaml', '--remove']);
    assert.equal(verify.code, edited ? 1 : 0, verify.stdout);
    assert.equal((await readdir(rig.path('.pipe/cache'))).includes(key), !edited);
  } finally {
    await rig.cleanup();
  }
});

test('a symbolic link out of an images folder fails the stage, naming it; follow_symlinks opts in; links inside are fine', async () => {
  const rig = await Rig.create();
  try {
    await rig.write('photos/cat/a.jpg', 'cat');
    await rig.write('elsewhere/secret.txt', 'secret');
    await symlink(rig.path('photos/cat/a.jpg'), rig.path('photos/cat/same.jpg'));
    await symlink(rig.path('elsewhere/secret.txt'), rig.path('photos/cat/passwd.jpg'));
    await rig.write('p.yaml', IMAGES());
    const refused = await rig.run(['run', 'p.yaml']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /cat\/passwd\.jpg/);
    assert.match(refused.stderr, /outside|follow_symlinks/);
    assert.equal(await readdir(rig.path('.pipe/cache')).then((n) => n.filter((x) => /^[0-9a-f]{64}$/.test(x)).length), 0);

    // A linked folder that leads out is refused too.
    await rm(rig.path('photos/cat/passwd.jpg'));
    await symlink(rig.path('elsewhere'), rig.path('photos/dog'));
    const folder = await rig.run(['run', 'p.yaml']);
    assert.notEqual(folder.code, 0);
    assert.match(folder.stderr, /photos\/dog|'dog'|dog\b/);

    await rig.write('p.yaml', `${IMAGES()}      follow_symlinks: true\n`);
    const followed = await rig.run(['run', 'p.yaml']);
    assert.equal(followed.code, 0, followed.stderr);
    assert.equal(await rig.read('.pipe/latest/photos/photos/dog/secret.txt'), 'secret');
    assert.equal(await rig.read('.pipe/latest/photos/photos/cat/same.jpg'), 'cat');
  } finally {
    await rig.cleanup();
  }
});
