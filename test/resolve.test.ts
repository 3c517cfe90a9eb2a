// resolve.ts, the one resolution plan, pull and execute share: each state a stage's key can be
// in (cached, partial, stub, missing) with its reason, on a real cache and stages defined here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadPipeline } from '../runner/load.js';
import { Cache } from '../runner/cache.js';
import { commitSparse } from '../runner/sparse.js';
import { buildManifest, contentHashOf } from '../runner/manifest.js';
import { resolveStage, type StubSource } from '../runner/resolve.js';
import { isStub, makeStub } from '../runner/remote/stub.js';
import type { Pipeline } from '../runner/pipeline.js';
import type { Artifact, Stage } from '../runner/types.js';

const files = (name: string, inputs: Stage<any>['inputs'], cache?: 'never'): Stage<any> => ({
  name,
  version: 1,
  description: `${name}, for the test.`,
  params: { type: 'object', additionalProperties: false, properties: { n: { type: 'integer', description: 'a number' } } },
  inputs,
  output: 'files',
  ...(cache ? { cache } : {}),
  async run() {},
});
const REGISTRY = new Map<string, Stage<any>>(
  [files('emit', {}), files('twice', { number: { kind: 'files' } }), files('probe', {}, 'never')].map((s) => [s.name, s]),
);

async function load(dir: string, n: number): Promise<Pipeline> {
  await writeFile(
    path.join(dir, 'p.yaml'),
    `name: res\nstages:\n  a: { uses: emit, with: { n: ${n} } }\n  b: { uses: twice, inputs: { number: a } }\n  p: { uses: probe }\n`,
  );
  const r = await loadPipeline('p.yaml', { cwd: dir, registry: REGISTRY });
  assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
  return r.value;
}

/** Commits `files` under `key` as stage `stage` made them in run `runId`. */
async function commit(cache: Cache, key: string, stage: string, files: Record<string, string>): Promise<Artifact> {
  const t = await cache.makeTemp(stage);
  await mkdir(path.join(t, 'data'), { recursive: true });
  for (const [rel, text] of Object.entries(files)) await writeFile(path.join(t, 'data', rel), text);
  const a = await cache.commit(t, {
    kind: 'files',
    key,
    stage,
    uses: 'emit',
    version: 1,
    params: { n: 1 },
    inputs: {},
    createdAt: 'then',
    durationMs: 1,
    runId: 'r1',
    host: 'h',
  });
  await cache.setLatest('res', stage, key);
  return a;
}

/** A remote that holds `keys` (as stubs), counting its look-ups. */
function remoteWith(keys: Set<string>): StubSource & { peeks: string[] } {
  const peeks: string[] = [];
  return {
    peeks,
    async peek(key) {
      peeks.push(key);
      if (!keys.has(key)) return undefined;
      return makeStub(
        {
          kind: 'files',
          key,
          stage: 'a',
          uses: 'emit',
          version: 1,
          params: {},
          inputs: {},
          createdAt: 't',
          durationMs: 1,
          runId: 'r0',
          host: 'h',
          contentHash: 'e'.repeat(64),
        },
        '/nowhere',
        'file:///shared/cache',
      );
    },
  };
}

test('resolveStage: missing (new, params changed, damaged), stub (own key or fallback), cached, partial; a never-cached stage finds nothing', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-resolve-'));
  try {
    const cache = new Cache(path.join(dir, '.pipe'));
    await cache.init();
    const pipeline = await load(dir, 1);
    const none = (): Artifact | undefined => undefined;

    const fresh = await resolveStage(pipeline, cache, 'a', none);
    assert.equal(fresh.state, 'missing');
    assert.equal(fresh.reason, 'new');
    assert.equal(fresh.material.stage, 'emit');

    // stub: only asked for when nothing is local; the fallback keys after the stage's own.
    const remote = remoteWith(new Set([fresh.key]));
    const stub = await resolveStage(pipeline, cache, 'a', none, { stubFrom: remote });
    assert.equal(stub.state, 'stub');
    assert.ok(stub.state === 'stub' && isStub(stub.artifact));
    assert.match(stub.reason, /file:\/\/\/shared\/cache/);
    const other = remoteWith(new Set(['f'.repeat(64)]));
    const fallback = await resolveStage(pipeline, cache, 'a', none, { stubFrom: other, stubFallback: ['f'.repeat(64)] });
    assert.ok(fallback.state === 'stub' && fallback.artifact.key === 'f'.repeat(64));
    assert.deepEqual(other.peeks, [fresh.key, 'f'.repeat(64)]);
    const nowhere = await resolveStage(pipeline, cache, 'a', none, { stubFrom: remoteWith(new Set()) });
    assert.equal(nowhere.state, 'missing');

    // cached: a whole entry, and the remote is not asked.
    const a = await commit(cache, fresh.key, 'a', { 'n.txt': '1' });
    remote.peeks.length = 0;
    const hit = await resolveStage(pipeline, cache, 'a', none, { stubFrom: remote });
    assert.equal(hit.state, 'cached');
    assert.equal(hit.reason, 'made then in r1');
    assert.deepEqual(remote.peeks, []);

    // partial: a sparse entry (a partial pull) of b, whose key follows a's content hash.
    const bMissing = await resolveStage(pipeline, cache, 'b', (up) => (up === 'a' ? a : undefined));
    assert.equal(bMissing.state, 'missing');
    assert.deepEqual(Object.keys(bMissing.inputs), ['number']);
    const t = await cache.makeTemp('b');
    await mkdir(path.join(t, 'data'), { recursive: true });
    await writeFile(path.join(t, 'data', 'x.txt'), 'x');
    const manifest = [...(await buildManifest(path.join(t, 'data'))), { path: 'y.txt', size: 1, sha256: 'f'.repeat(64) }];
    const meta = {
      kind: 'files' as const,
      key: bMissing.key,
      stage: 'b',
      uses: 'twice',
      version: 1,
      params: {},
      inputs: {},
      createdAt: 't',
      durationMs: 1,
      runId: 'r2',
      host: 'h',
    };
    await commitSparse(cache, t, { ...meta, contentHash: contentHashOf(manifest) }, manifest, {
      reads: ['x.txt'],
      readers: ['c'],
      remote: 's3://bucket',
      present: ['x.txt'],
    });
    const partial = await resolveStage(pipeline, cache, 'b', (up) => (up === 'a' ? a : undefined), { stubFrom: remote });
    assert.equal(partial.state, 'partial');
    assert.match(partial.reason, /^1 of 2 files \(x\.txt\) pulled from s3:\/\/bucket for c;/);
    assert.deepEqual(remote.peeks, []);

    // missing, with why: the params changed since the entry `latest` points at.
    const changed = await resolveStage(await load(dir, 2), cache, 'a', none);
    assert.equal(changed.state, 'missing');
    assert.equal(changed.reason, 'params changed: n');
    assert.notEqual(changed.key, fresh.key);

    // missing, damaged: an entry that fails the structural check is not served, and says why.
    await rm(path.join(cache.entryDir(fresh.key), 'meta.json'));
    const damaged = await resolveStage(pipeline, cache, 'a', none);
    assert.equal(damaged.state, 'missing');
    assert.match(damaged.reason, /^cache entry damaged \(meta\.json is missing/);

    // never cached: the run id is in its key, and neither the cache nor the remote holds it.
    const probe = await resolveStage(pipeline, cache, 'p', none, { runId: 'run-1', stubFrom: remote });
    const probe2 = await resolveStage(pipeline, cache, 'p', none, { runId: 'run-2' });
    assert.equal(probe.state, 'missing');
    assert.notEqual(probe.key, probe2.key);
    assert.deepEqual(remote.peeks, []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
