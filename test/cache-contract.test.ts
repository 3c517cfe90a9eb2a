// The cache's contract, on the Cache class: committed files are read-only; a forced commit
// replaces the entry of its key; a damaged entry is never served and is replaced by the next
// commit; derived folders carry a manifest that verify checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile, mkdir, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Cache, type MetaDraft } from '../runner/cache.js';
import { commitSparse } from '../runner/sparse.js';
import { buildManifest, contentHashOf } from '../runner/manifest.js';
import { removeDerived, verifyDerived } from '../runner/derived-check.js';

async function tempCache(): Promise<Cache> {
  const c = new Cache(await mkdtemp(path.join(os.tmpdir(), 'pipe-contract-')));
  await c.init();
  return c;
}

const KEY = 'c'.repeat(64);
const draft = (key = KEY): MetaDraft => ({
  kind: 'files',
  key,
  stage: 's',
  uses: 'command',
  version: 1,
  params: {},
  inputs: {},
  createdAt: 't',
  durationMs: 1,
  runId: 'r',
  host: 'h',
});

async function temp(cache: Cache, files: Record<string, string>): Promise<string> {
  const t = await cache.makeTemp('s');
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(t, 'data', rel)), { recursive: true });
    await writeFile(path.join(t, 'data', rel), text);
  }
  return t;
}

const mode = async (p: string) => (await stat(p)).mode & 0o777;

test('every committed file is read-only (0444), folders stay writable; removing the entry still works', async () => {
  const cache = await tempCache();
  try {
    const a = await cache.commit(await temp(cache, { 'x.txt': 'x', 'sub/y.txt': 'y' }), draft());
    for (const f of ['data/x.txt', 'data/sub/y.txt', 'manifest.json', 'meta.json']) assert.equal(await mode(path.join(cache.entryDir(KEY), f)), 0o444, f);
    assert.equal((await mode(a.dir)) & 0o200, 0o200, 'data/ itself stays writable (rm, swaps)');
    await cache.removeEntry(KEY);
    assert.equal(await cache.lookup(KEY), undefined);

    // A sparse entry (a partial pull): the files it holds and sparse.json too.
    const t = await temp(cache, { 'a.txt': 'a' });
    const manifest = [...(await buildManifest(path.join(t, 'data'))), { path: 'b.txt', size: 1, sha256: 'f'.repeat(64) }];
    await commitSparse(cache, t, { ...draft(), contentHash: contentHashOf(manifest) }, manifest, {
      reads: ['a.txt'],
      readers: ['t'],
      remote: 'r',
      present: ['a.txt'],
    });
    for (const f of ['data/a.txt', 'sparse.json', 'meta.json', 'manifest.json']) assert.equal(await mode(path.join(cache.entryDir(KEY), f)), 0o444, f);
  } finally {
    await rm(cache.root, { recursive: true, force: true });
  }
});

test('commit: the first entry of a key wins, unless the commit replaces (--force); no temp dir is left', async () => {
  const cache = await tempCache();
  try {
    const first = await cache.commit(await temp(cache, { 'stamp.txt': '1' }), draft());
    const kept = await cache.commit(await temp(cache, { 'stamp.txt': '2' }), draft());
    assert.equal(kept.contentHash, first.contentHash);
    const forced = await cache.commit(await temp(cache, { 'stamp.txt': '3' }), draft(), { replace: true });
    assert.notEqual(forced.contentHash, first.contentHash);
    assert.equal(await readFile(path.join(cache.entryDir(KEY), 'data/stamp.txt'), 'utf8'), '3');
    assert.equal((await cache.lookup(KEY))?.contentHash, forced.contentHash);
    assert.deepEqual(await readdir(cache.tmpRoot), []);
  } finally {
    await rm(cache.root, { recursive: true, force: true });
  }
});

test('a damaged entry is not served (damageOf says why) and the next commit of its key replaces it', async () => {
  const damages: [string, (entry: string) => Promise<void>, RegExp][] = [
    ['junk meta', (e) => writeFile(path.join(e, 'meta.json'), '{"kind":'), /meta\.json/],
    ['no manifest', (e) => rm(path.join(e, 'manifest.json')), /manifest\.json is missing/],
    ['junk manifest', (e) => writeFile(path.join(e, 'manifest.json'), '[{"path":1}]'), /manifest\.json/],
    ['no data/', (e) => rm(path.join(e, 'data'), { recursive: true }), /data\/ is missing/],
    ['a file gone', (e) => rm(path.join(e, 'data', 'x.txt')), /top-level/],
    ['a file added', (e) => writeFile(path.join(e, 'data', 'extra.txt'), 'e'), /top-level/],
    // An entry sealed by an older pipe (no shape in meta.json): its manifest is parsed instead.
    [
      'junk manifest, older entry',
      async (e) => {
        const { shape: _, ...meta } = JSON.parse(await readFile(path.join(e, 'meta.json'), 'utf8')) as Record<string, unknown>;
        await writeFile(path.join(e, 'meta.json'), JSON.stringify(meta));
        await writeFile(path.join(e, 'manifest.json'), '[{"path":1}]');
      },
      /manifest\.json is not a list of files/,
    ],
    [
      'a file renamed, older entry',
      async (e) => {
        const { shape: _, ...meta } = JSON.parse(await readFile(path.join(e, 'meta.json'), 'utf8')) as Record<string, unknown>;
        await writeFile(path.join(e, 'meta.json'), JSON.stringify(meta));
        await rm(path.join(e, 'data', 'x.txt'));
        await writeFile(path.join(e, 'data', 'z.txt'), 'x');
      },
      /top-level/,
    ],
  ];
  for (const [what, damage, why] of damages) {
    const cache = await tempCache();
    try {
      await cache.commit(await temp(cache, { 'x.txt': 'x', 'sub/y.txt': 'y' }), draft());
      assert.ok(await cache.lookup(KEY), what);
      await damage(cache.entryDir(KEY));
      const fresh = new Cache(cache.root); // a later run: nothing checked yet
      assert.equal(await fresh.lookup(KEY), undefined, what);
      assert.match(fresh.damageOf(KEY) ?? '', why, what);
      const again = await fresh.commit(await temp(fresh, { 'x.txt': 'x', 'sub/y.txt': 'y' }), draft());
      assert.equal((await fresh.lookup(KEY))?.contentHash, again.contentHash, what);
      assert.deepEqual(await fresh.verify(KEY), [], what);
      assert.equal(fresh.damageOf(KEY), undefined, what);
    } finally {
      await rm(cache.root, { recursive: true, force: true });
    }
  }
});

test('derived folders: read-only files, a manifest in .complete; verify finds an edit, --remove removes the folder', async () => {
  const cache = await tempCache();
  try {
    const dir = await cache.derived('weights', { url: 'u' }, async (d) => {
      await mkdir(d, { recursive: true });
      await writeFile(path.join(d, 'w.h5'), 'weights');
    });
    assert.equal(await mode(path.join(dir, 'w.h5')), 0o444);
    assert.deepEqual(await verifyDerived(cache), [{ name: path.basename(dir), problems: [] }]);

    await writeFile(path.join(dir, 'w.h5'), 'WEIGHTS'); // root ignores 0444; the size is the same
    const [check] = await verifyDerived(cache);
    assert.deepEqual(check!.problems, [{ path: 'w.h5', problem: 'content differs from the manifest (sha256)' }]);
    await removeDerived(cache, check!.name);
    assert.deepEqual(await verifyDerived(cache), []);

    // A folder made by an older pipe (no manifest) is listed, not called corrupt.
    const old = path.join(cache.derivedRoot, 'features-old');
    await mkdir(old);
    await writeFile(path.join(old, '.complete'), JSON.stringify({ name: 'features', key: 1 }));
    assert.match((await verifyDerived(cache))[0]!.unchecked ?? '', /older pipe/);
  } finally {
    await rm(cache.root, { recursive: true, force: true });
  }
});
