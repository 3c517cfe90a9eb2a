// The remote cache against a real S3-compatible server (s3rver on loopback): round trips,
// deduplication, interrupted pushes and pulls, corruption, and the error messages.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Cache } from '../runner/cache.js';
import { contentHashOf } from '../runner/manifest.js';
import type { Artifact, ManifestEntry, Progress } from '../runner/types.js';
import { S3Store, parseS3Url, redact, RemoteError, MULTIPART_THRESHOLD } from '../runner/remote/s3-store.js';
import { RemoteCache, blobPath, entryPath, safeRelPath, forEachLimit } from '../runner/remote/remote-cache.js';
import { remoteFor, remoteUrlFor, RemoteResolver, isStub, pulledInfo } from '../runner/remote/index.js';
import { Output } from '../runner/output.js';
import { ExitError } from '../runner/errors.js';
import type { Pipeline } from '../runner/pipeline.js';
import { startS3Server, S3_ACCESS_KEY_ID, type S3Server } from './servers/s3.js';
import { commitFiles, sha256 } from './helpers/remote-fixtures.js';

const SECRET = 'unit-SECRET-never-printed-4f2a9c';
let server: S3Server;
let prefixN = 0;

before(async () => {
  server = await startS3Server();
});
after(async () => {
  await server.close();
});

/** A remote under a fresh prefix of the shared bucket, so tests do not see each other's objects. */
function remote(opts: { bucket?: string; accessKeyId?: string; prefix?: string } = {}): RemoteCache {
  const url = `s3://${opts.bucket ?? server.bucket}/${opts.prefix ?? `t${++prefixN}/pipe`}`;
  return new RemoteCache(
    S3Store.create(url, {
      endpoint: server.endpoint,
      region: 'us-east-1',
      maxAttempts: 1,
      credentials: { accessKeyId: opts.accessKeyId ?? S3_ACCESS_KEY_ID, secretAccessKey: SECRET },
    }),
  );
}

async function tempCache(): Promise<Cache> {
  const c = new Cache(await mkdtemp(path.join(os.tmpdir(), 'pipe-remote-cache-')));
  await c.init();
  return c;
}

const sha = sha256;
const artifact = (cache: Cache, stage: string, files: Record<string, Buffer | string>): Promise<Artifact> =>
  commitFiles(cache, stage, files, { params: { n: 1 } });

function counter(): Progress & { total: number; count: number } {
  const p = {
    total: 0,
    count: 0,
    tick(n = 1) {
      p.count += n;
    },
    update(d: number) {
      p.count = d;
    },
    setTotal(t: number) {
      p.total = t;
    },
    done() {},
  };
  return p;
}

async function listAll(r: RemoteCache, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for await (const o of r.store.list(rel)) out.push(o.key);
  return out.sort();
}

test('parseS3Url, remote selection and redaction', () => {
  assert.deepEqual(parseS3Url('s3://my-bucket/team/pipe/'), { bucket: 'my-bucket', prefix: 'team/pipe' });
  assert.deepEqual(parseS3Url('s3://my-bucket'), { bucket: 'my-bucket', prefix: '' });
  assert.throws(() => parseS3Url('https://my-bucket/x'), /not an s3:\/\/ URL/);
  assert.throws(() => parseS3Url('s3://My_Bucket/x'), /not a valid bucket name/);
  const pipeline = { cache: { remote: 's3://from-yaml/p' } } as unknown as Pipeline;
  assert.equal(remoteUrlFor(pipeline, {}), 's3://from-yaml/p');
  assert.equal(remoteUrlFor(pipeline, { PIPE_REMOTE: 's3://from-env/p' }), 's3://from-env/p');
  assert.equal(remoteUrlFor(pipeline, { PIPE_REMOTE: 's3://from-env/p' }, 's3://flag/p'), 's3://flag/p');
  assert.equal(remoteFor({ cache: {} } as unknown as Pipeline, {}), undefined);
  assert.throws(
    () => remoteFor({ cache: { remote: 'gs://x/y' } } as unknown as Pipeline, {}),
    (e) => e instanceof ExitError && e.code === 2,
  );
  assert.equal(
    redact(`key ${SECRET} and X-Amz-Signature=abcdef0123 aws_secret_access_key = zzz`, [SECRET]),
    'key *** and X-Amz-Signature=*** aws_secret_access_key = ***',
  );
  assert.ok(safeRelPath('a/b.txt'));
  for (const bad of ['../x', 'a/../../x', '/etc/passwd', 'a//b', './a', 'a\\b', '']) assert.ok(!safeRelPath(bad), bad);
});

test('push then pull into an empty cache: same files, same content hash, verified and committed', async () => {
  const a = await tempCache();
  const b = await tempCache();
  const r = remote();
  try {
    const big = randomBytes(MULTIPART_THRESHOLD + 3 * 2 ** 20); // multipart
    const art = await artifact(a, 'train', {
      'model/weights.bin': big,
      'model/config.json': '{"layers":3}',
      'copy-of-config.json': '{"layers":3}', // same content: one blob
      'empty.txt': '',
      'deep/er/still.txt': 'x',
    });
    const progress = counter();
    const stats = await r.push(a, [art.key], { progress });
    assert.equal(stats.entries, 1);
    assert.equal(stats.uploadedFiles, 4); // 5 files, 4 distinct contents
    assert.equal(stats.uploadedBytes, big.length + 12 + 0 + 1);
    assert.equal(progress.total, stats.uploadedBytes);
    assert.equal(progress.count, stats.uploadedBytes);
    const objects = await listAll(r);
    assert.ok(objects.includes(entryPath(art.key, 'meta.json')));
    assert.ok(objects.includes(blobPath(sha(big))));
    assert.equal(objects.filter((k) => k.startsWith('blobs/')).length, 4);

    // Nothing to do the second time: one small GET per artifact.
    const t0 = Date.now();
    const again = await r.push(a, [art.key]);
    assert.deepEqual([again.entries, again.entriesPresent, again.uploadedFiles], [0, 1, 0]);
    assert.ok(Date.now() - t0 < 2000);

    const pullProgress = counter();
    const pulled = await r.pull(b, art.key, { progress: pullProgress });
    assert.ok(pulled);
    assert.equal(pulled.artifact.contentHash, art.contentHash);
    assert.equal(pulled.info.files, 5);
    assert.equal(pullProgress.count, big.length + 13);
    assert.deepEqual(await b.readManifest(art.key), await a.readManifest(art.key));
    assert.deepEqual(await readFile(path.join(pulled.artifact.dir, 'model/weights.bin')), big);
    assert.deepEqual(await b.verify(art.key), []);
    const meta = pulled.artifact.meta as typeof pulled.artifact.meta & { pulled?: { remote: string } };
    assert.equal(meta.host, 'gpu-host'); // the origin's meta
    assert.equal(meta.pulled?.remote, r.url);
    assert.equal(pulledInfo(pulled.artifact)?.files, 5);
    // Nothing left behind: no temp dirs, no staging.
    assert.deepEqual(await readdir(b.tmpRoot), []);
    assert.deepEqual(await readdir(b.workRoot), []);
    // Pushing a pulled artifact does not publish the local `pulled` note (and uploads nothing).
    assert.equal((await r.push(b, [art.key])).uploadedFiles, 0);
    assert.equal(((await r.meta(art.key)) as unknown as Record<string, unknown>)['pulled'], undefined);
    // A key the remote lacks.
    assert.equal(await r.pull(b, 'f'.repeat(64)), undefined);
  } finally {
    await rm(a.root, { recursive: true, force: true });
    await rm(b.root, { recursive: true, force: true });
  }
});

test('blobs are shared across artifacts: a second artifact uploads only what is new', async () => {
  const a = await tempCache();
  const r = remote();
  try {
    const images: Record<string, string> = {};
    for (let i = 0; i < 300; i++) images[`train/cat.${i}.jpg`] = `cat image ${i}`;
    const data = await artifact(a, 'data', images);
    const first = await r.push(a, [data.key]);
    assert.equal(first.uploadedFiles, 300);
    // A split that hard-links most of the same images (more than HEAD_LIMIT: found by listing shards).
    const split: Record<string, string> = {};
    for (let i = 0; i < 280; i++) split[`train/cats/${i}.jpg`] = `cat image ${i}`;
    split['split.json'] = '{"valid":20}';
    const s = await artifact(a, 'split', split);
    const second = await r.push(a, [s.key, data.key]);
    assert.equal(second.entries, 1);
    assert.equal(second.entriesPresent, 1);
    assert.equal(second.uploadedFiles, 1);
    assert.equal(second.presentFiles, 280);
    // A few shared blobs (HEAD path).
    const small = await artifact(a, 'small', { 'a.jpg': 'cat image 1', 'b.txt': 'new' });
    const third = await r.push(a, [small.key]);
    assert.deepEqual([third.uploadedFiles, third.presentFiles], [1, 1]);
  } finally {
    await rm(a.root, { recursive: true, force: true });
  }
});

test('an interrupted push publishes nothing; the next push resumes and re-uploads a truncated blob', async () => {
  const a = await tempCache();
  const r = remote();
  try {
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 40; i++) files[`f${i}.bin`] = randomBytes(1000 + i);
    const art = await artifact(a, 'split', files);
    let puts = 0;
    server.setHook(({ method, url }) => (method === 'PUT' && url.includes('/blobs/') && ++puts > 10 ? 'fail' : 'pass'));
    await assert.rejects(r.push(a, [art.key]), (e) => e instanceof RemoteError);
    server.setHook(undefined);
    const objects = await listAll(r);
    assert.ok(!objects.some((k) => k.startsWith('entries/')), 'no manifest or meta after a failed push');
    assert.ok((await r.meta(art.key)) === undefined);
    const uploaded = objects.filter((k) => k.startsWith('blobs/')).length;
    assert.ok(uploaded >= 10 && uploaded < 40, `${uploaded} blobs before the failure`);

    // A blob cut short (as a store might keep after a dropped connection) is not "present".
    const victim = sha(files['f0.bin']!);
    await r.store.putBuffer(blobPath(victim), files['f0.bin']!.subarray(0, 100));
    const second = await r.push(a, [art.key]);
    assert.equal(second.entries, 1);
    assert.equal(second.uploadedFiles, 40 - uploaded + (objects.includes(blobPath(victim)) ? 1 : 0));
    const b = await tempCache();
    try {
      assert.equal((await r.pull(b, art.key))?.artifact.contentHash, art.contentHash);
    } finally {
      await rm(b.root, { recursive: true, force: true });
    }
  } finally {
    server.setHook(undefined);
    await rm(a.root, { recursive: true, force: true });
  }
});

test('a corrupt remote object is refused by hash, naming the file; nothing is committed', async () => {
  const a = await tempCache();
  const b = await tempCache();
  const r = remote();
  try {
    const art = await artifact(a, 'finetune', { 'model.json': '{"w":[1,2,3]}', 'classes.json': '["cat","dog"]' });
    await r.push(a, [art.key]);
    await r.store.putBuffer(blobPath(sha('{"w":[1,2,3]}')), '{"w":[1,2,4]}'); // same size, other bytes
    await assert.rejects(r.pull(b, art.key), (e: unknown) => {
      assert.ok(e instanceof RemoteError);
      assert.equal(e.kind, 'corrupt');
      assert.match(e.message, /finetune\/model\.json/);
      assert.match(e.message, /sha256/);
      return true;
    });
    assert.equal(await b.lookup(art.key), undefined);
    assert.deepEqual(await readdir(b.tmpRoot), []);
    assert.deepEqual(await readdir(b.cacheDir), []);
  } finally {
    await rm(a.root, { recursive: true, force: true });
    await rm(b.root, { recursive: true, force: true });
  }
});

test('a manifest with a path that escapes the artifact is refused', async () => {
  const b = await tempCache();
  const r = remote();
  try {
    const key = sha('evil');
    const manifest: ManifestEntry[] = [{ path: '../../escape.txt', size: 1, sha256: sha('x') }];
    await r.store.putBuffer(blobPath(sha('x')), 'x');
    await r.store.putBuffer(entryPath(key, 'manifest.json'), JSON.stringify(manifest));
    const meta = {
      kind: 'files',
      key,
      contentHash: contentHashOf(manifest),
      stage: 'evil',
      uses: 'command',
      version: 1,
      params: {},
      inputs: {},
      createdAt: '',
      durationMs: 0,
      runId: '',
      host: '',
    };
    await r.store.putBuffer(entryPath(key, 'meta.json'), JSON.stringify(meta));
    await assert.rejects(r.pull(b, key), /invalid entry/);
    // A manifest that does not hash to the meta's content hash.
    await r.store.putBuffer(entryPath(key, 'manifest.json'), JSON.stringify([{ path: 'ok.txt', size: 1, sha256: sha('x') }]));
    await assert.rejects(r.pull(b, key), /does not match the content hash/);
  } finally {
    await rm(b.root, { recursive: true, force: true });
  }
});

test('an interrupted pull keeps verified files and resumes', async () => {
  const a = await tempCache();
  const b = await tempCache();
  const r = remote();
  try {
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 30; i++) files[`valid/${i}.jpg`] = randomBytes(2000);
    const art = await artifact(a, 'split', files);
    await r.push(a, [art.key]);
    let gets = 0;
    server.setHook(({ method, url }) => (method === 'GET' && url.includes('/blobs/') && ++gets > 12 ? 'fail' : 'pass'));
    await assert.rejects(r.pull(b, art.key), (e) => e instanceof RemoteError);
    server.setHook(undefined);
    assert.equal(await b.lookup(art.key), undefined);
    const resumed = await r.pull(b, art.key);
    assert.ok(resumed);
    assert.equal(resumed.artifact.contentHash, art.contentHash);
    assert.ok(resumed.info.downloadedBytes < 30 * 2000, `re-downloaded ${resumed.info.downloadedBytes} bytes`);
    assert.ok(resumed.info.downloadedBytes >= (30 - 12) * 2000 - 8 * 2000);
    assert.deepEqual(await b.verify(art.key), []);
    assert.deepEqual(await readdir(b.workRoot), []);
  } finally {
    server.setHook(undefined);
    await rm(a.root, { recursive: true, force: true });
    await rm(b.root, { recursive: true, force: true });
  }
});

test('stubs: peek reads only meta.json; materialize pulls once', async () => {
  const a = await tempCache();
  const b = await tempCache();
  const r = remote();
  try {
    const art = await artifact(a, 'data', { 'x.txt': 'raw data' });
    await r.push(a, [art.key]);
    const resolver = new RemoteResolver(r, b, new Output({ live: false, color: false, stream: devNull() }));
    const stub = await resolver.peek(art.key);
    assert.ok(stub && isStub(stub));
    assert.equal(stub.contentHash, art.contentHash);
    assert.equal(await b.lookup(art.key), undefined);
    assert.equal(await resolver.peek('0'.repeat(64)), undefined);
    const [m1, m2] = await Promise.all([resolver.materialize(stub, 'data'), resolver.materialize(stub, 'data')]);
    assert.equal(m1, m2);
    assert.ok(!isStub(m1));
    assert.equal(await readFile(path.join(m1.dir, 'x.txt'), 'utf8'), 'raw data');
  } finally {
    await rm(a.root, { recursive: true, force: true });
    await rm(b.root, { recursive: true, force: true });
  }
});

test('the index merges stage -> key entries', async () => {
  const r = remote();
  const e = (key: string) => ({ key, contentHash: key, kind: 'files', createdAt: 't', host: 'h', pushedAt: 'p' });
  assert.equal(await r.readIndex('demo'), undefined);
  await r.updateIndex('demo', { data: e('1'.repeat(64)), split: e('2'.repeat(64)) });
  await r.updateIndex('demo', { split: e('3'.repeat(64)) });
  const index = await r.readIndex('demo');
  assert.deepEqual(Object.fromEntries(Object.entries(index?.stages ?? {}).map(([k, v]) => [k, v.key[0]])), { data: '1', split: '3' });
});

test('clear errors: missing bucket, unknown access key; the secret never appears', async () => {
  const c = await tempCache();
  try {
    const noBucket = remote({ bucket: 'no-such-bucket' });
    await assert.rejects(noBucket.pull(c, 'a'.repeat(64)), (e: unknown) => {
      assert.ok(e instanceof RemoteError);
      assert.equal(e.kind, 'no-bucket');
      assert.match(e.message, /bucket 'no-such-bucket' does not exist/);
      assert.ok(!e.message.includes(SECRET));
      return true;
    });
    const denied = remote({ accessKeyId: 'AKIANOTKNOWN' });
    const art = await artifact(c, 's', { 'a.txt': 'a' });
    await assert.rejects(denied.push(c, [art.key]), (e: unknown) => {
      assert.ok(e instanceof RemoteError);
      assert.equal(e.kind, 'access-denied');
      assert.match(e.message, /access denied/);
      assert.ok(!e.message.includes(SECRET));
      return true;
    });
    const unreachable = new RemoteCache(
      S3Store.create('s3://bkt/p', {
        endpoint: 'http://127.0.0.1:9',
        region: 'us-east-1',
        maxAttempts: 1,
        credentials: { accessKeyId: 'x', secretAccessKey: SECRET },
      }),
    );
    await assert.rejects(unreachable.meta('a'.repeat(64)), /cannot reach the S3 store at http:\/\/127\.0\.0\.1:9 \(ECONNREFUSED\)/);
  } finally {
    await rm(c.root, { recursive: true, force: true });
  }
});

test('forEachLimit stops starting work after a failure and waits for what is in flight', async () => {
  let started = 0;
  let settled = 0;
  await assert.rejects(
    forEachLimit([...Array(50).keys()], 4, async (i) => {
      started++;
      await new Promise((r) => setTimeout(r, 5));
      settled++;
      if (i === 2) throw new Error('boom');
    }),
    /boom/,
  );
  assert.ok(started < 50);
  assert.equal(started, settled);
});

function devNull(): NodeJS.WriteStream {
  return { write: () => true, isTTY: false, columns: 80 } as unknown as NodeJS.WriteStream;
}
