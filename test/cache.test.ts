import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, readdir, rm, mkdir, appendFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Cache, type MetaDraft } from '../runner/cache.js';
import { contentHashOf } from '../runner/manifest.js';
import { keyOf, keyMaterial } from '../runner/fingerprint.js';
import { canonicalJson } from '../runner/canonical.js';
import { commandStage } from '../stages/command.js';
import type { StageSpec } from '../runner/pipeline.js';
import { referencedKeys, removeIdleWork, removeUnreferenced, sweepTemp } from '../runner/cache-gc.js';

async function tempCache(): Promise<Cache> {
  const c = new Cache(await mkdtemp(path.join(os.tmpdir(), 'pipe-cache-')));
  await c.init();
  return c;
}

function draft(key: string): MetaDraft {
  return { kind: 'files', key, stage: 's', uses: 'command', version: 1, params: {}, inputs: {}, createdAt: 't', durationMs: 1, runId: 'r', host: 'h' };
}

const KEY_A = 'a'.repeat(64);

test('commit: manifest, content hash, lookup; equal bytes give equal content hashes', async () => {
  const cache = await tempCache();
  try {
    const t1 = await cache.makeTemp('s');
    await mkdir(path.join(t1, 'data', 'sub'));
    await writeFile(path.join(t1, 'data', 'sub', 'x.txt'), 'hello');
    await writeFile(path.join(t1, 'data', 'y.bin'), Buffer.alloc(10));
    const a = await cache.commit(t1, draft(KEY_A));
    assert.equal(a.key, KEY_A);
    assert.deepEqual(
      (await cache.readManifest(KEY_A)).map((m) => [m.path, m.size]),
      [
        ['sub/x.txt', 5],
        ['y.bin', 10],
      ],
    );
    assert.equal(a.contentHash, contentHashOf(await cache.readManifest(KEY_A)));
    assert.deepEqual(await readdir(cache.tmpRoot), []);
    const b = await cache.lookup(KEY_A);
    assert.equal(b?.contentHash, a.contentHash);
    assert.equal(await cache.lookup('b'.repeat(64)), undefined);

    // A second commit of the same key (a concurrent run) keeps the first, drops the second.
    const t2 = await cache.makeTemp('s');
    await writeFile(path.join(t2, 'data', 'other.txt'), 'x');
    const again = await cache.commit(t2, draft(KEY_A));
    assert.equal(again.contentHash, a.contentHash);
    assert.deepEqual(await readdir(cache.tmpRoot), []);
  } finally {
    await rm(cache.root, { recursive: true, force: true });
  }
});

test('verify finds modified, missing and extra files', async () => {
  const cache = await tempCache();
  try {
    const t = await cache.makeTemp('s');
    await writeFile(path.join(t, 'data', 'a.txt'), 'aaaa');
    await writeFile(path.join(t, 'data', 'b.txt'), 'bbbb');
    const art = await cache.commit(t, draft(KEY_A));
    assert.deepEqual(await cache.verify(KEY_A), []);
    await writeFile(path.join(art.dir, 'a.txt'), 'aaab'); // same size, other bytes
    await rm(path.join(art.dir, 'b.txt'));
    await writeFile(path.join(art.dir, 'c.txt'), 'new');
    const problems = await cache.verify(KEY_A);
    assert.deepEqual(
      problems.map((p) => p.path),
      ['a.txt', 'b.txt', 'c.txt'],
    );
    assert.match(problems[0]!.problem, /sha256/);
  } finally {
    await rm(cache.root, { recursive: true, force: true });
  }
});

test('derived: built once per key even when asked concurrently; a failed build leaves nothing', async () => {
  const cache = await tempCache();
  try {
    let builds = 0;
    const build = async (dir: string): Promise<void> => {
      builds++;
      await new Promise((r) => setTimeout(r, 50));
      await writeFile(path.join(dir, 'f.bin'), 'features');
    };
    const [d1, d2] = await Promise.all([cache.derived('features', { w: 1 }, build), cache.derived('features', { w: 1 }, build)]);
    assert.equal(d1, d2);
    assert.equal(builds, 1);
    const d3 = await cache.derived('features', { w: 2 }, build);
    assert.notEqual(d3, d1);
    assert.equal(builds, 2);
    await assert.rejects(
      cache.derived('broken', 1, async () => Promise.reject(new Error('boom'))),
      /boom/,
    );
    assert.equal((await readdir(cache.derivedRoot)).filter((n) => n.startsWith('broken')).length, 0);
  } finally {
    await rm(cache.root, { recursive: true, force: true });
  }
});

test('sweepTemp removes temp dirs of dead processes only', async () => {
  const cache = await tempCache();
  try {
    await mkdir(path.join(cache.tmpRoot, '999999999-1-x'), { recursive: true });
    const mine = await cache.makeTemp('mine');
    assert.equal(await sweepTemp(cache), 1);
    assert.deepEqual(await readdir(cache.tmpRoot), [path.basename(mine)]);
  } finally {
    await rm(cache.root, { recursive: true, force: true });
  }
});

test('latest links and referenced keys', async () => {
  const cache = await tempCache();
  try {
    const t = await cache.makeTemp('s');
    await writeFile(path.join(t, 'data', 'a.txt'), 'a');
    await cache.commit(t, draft(KEY_A));
    await cache.setLatest('p', 's', KEY_A);
    assert.equal(await cache.latestKey('p', 's'), KEY_A);
    assert.deepEqual([...(await referencedKeys(cache))], [KEY_A]);
    await appendFile(path.join(cache.latestRoot, 'p', 's', 'a.txt'), '');
  } finally {
    await rm(cache.root, { recursive: true, force: true });
  }
});

test('gc never removes an entry a run committed meanwhile: it waits for the key lock and looks at latest/ again', async () => {
  const cache = await tempCache();
  try {
    const KEY_B = 'b'.repeat(64);
    for (const key of [KEY_A, KEY_B]) {
      const t = await cache.makeTemp('s');
      await writeFile(path.join(t, 'data', 'a.txt'), key);
      await cache.commit(t, draft(key));
    }
    // A run holds A's lock from before its commit until latest/ points at it.
    const release = await cache.lockKey(KEY_A);
    let settled = false;
    const removing = removeUnreferenced(cache, KEY_A).finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(settled, false, 'gc waits for the lock');
    await cache.setLatest('p', 's', KEY_A);
    await release();
    assert.equal(await removing, false);
    assert.ok(await cache.lookup(KEY_A), 'the entry the run linked is still there');
    // Nothing points at B: it goes.
    assert.equal(await removeUnreferenced(cache, KEY_B), true);
    assert.equal(await cache.lookup(KEY_B), undefined);
  } finally {
    await rm(cache.root, { recursive: true, force: true });
  }
});

test('gc removes the work dirs (checkpoints, pull staging) of keys no run holds, and keeps those in use', async () => {
  const cache = await tempCache();
  try {
    const KEY_C = 'c'.repeat(64);
    for (const name of [KEY_A, `pull-${KEY_C}`]) {
      await mkdir(path.join(cache.workRoot, name, 'sub'), { recursive: true });
      await writeFile(path.join(cache.workRoot, name, 'sub', 'state.json'), '{}');
    }
    const release = await cache.lockKey(KEY_C); // a pull of C is running
    assert.deepEqual(await removeIdleWork(cache, true), [KEY_A], 'dry run');
    assert.deepEqual((await readdir(cache.workRoot)).sort(), [KEY_A, `pull-${KEY_C}`]);
    assert.deepEqual(await removeIdleWork(cache), [KEY_A]);
    assert.deepEqual(await readdir(cache.workRoot), [`pull-${KEY_C}`]);
    await release();
    assert.deepEqual(await removeIdleWork(cache), [`pull-${KEY_C}`]);
    assert.deepEqual(await readdir(cache.workRoot), []);
    assert.deepEqual(await readdir(cache.locksRoot), [], 'gc released the locks it took');
  } finally {
    await rm(cache.root, { recursive: true, force: true });
  }
});

test('keys: canonical, independent of key order and of excluded params and host inputs', async () => {
  assert.equal(canonicalJson({ b: 1, a: { d: 2, c: [3, { f: 1, e: 0 }] } }), '{"a":{"c":[3,{"e":0,"f":1}],"d":2},"b":1}');
  const spec = (w: Record<string, unknown>): StageSpec => ({ id: 'x', uses: 'command', with: w, inputs: {}, needs: [] });
  const k1 = keyOf(await keyMaterial(commandStage, spec({ run: 'a', deps: [], env: {}, kind: 'files' }), {}, '/tmp'));
  const k2 = keyOf(await keyMaterial(commandStage, spec({ kind: 'files', env: {}, deps: [], run: 'a' }), {}, '/elsewhere'));
  const k3 = keyOf(await keyMaterial(commandStage, spec({ run: 'b', deps: [], env: {}, kind: 'files' }), {}, '/tmp'));
  assert.equal(k1, k2);
  assert.notEqual(k1, k3);
  assert.match(k1, /^[0-9a-f]{64}$/);
});
