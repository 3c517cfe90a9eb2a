// The object-store contract (runner/remote/store.ts), run on every store pipe has: S3 (s3rver
// on loopback) and file:// (a folder, as an NFS or SMB share would be). A new store passes
// this suite: add it to STORES below.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { Cache } from '../runner/cache.js';
import { openStore, RemoteError, type ObjectStore } from '../runner/remote/store.js';
import { RemoteCache } from '../runner/remote/remote-cache.js';
import { startS3Server, S3_ACCESS_KEY_ID, type S3Server } from './servers/s3.js';
import { commitFiles } from './helpers/remote-fixtures.js';

const SECRET = 'conformance-SECRET-never-printed-77c1';
let server: S3Server;
let folder: string;
let n = 0;

before(async () => {
  server = await startS3Server();
  folder = await mkdtemp(path.join(os.tmpdir(), 'pipe-file-remote-'));
});
after(async () => {
  await server.close();
  await rm(folder, { recursive: true, force: true });
});

const s3Options = () => ({
  endpoint: server.endpoint,
  region: 'us-east-1',
  maxAttempts: 1,
  credentials: { accessKeyId: S3_ACCESS_KEY_ID, secretAccessKey: SECRET },
});

/** Each store: a fresh, empty remote per call, and one whose bucket or folder does not exist. */
const STORES: Record<string, { fresh(): ObjectStore; missing(): ObjectStore }> = {
  s3: {
    fresh: () => openStore(`s3://${server.bucket}/conf${++n}/pipe`, s3Options()),
    missing: () => openStore('s3://no-such-bucket/pipe', s3Options()),
  },
  file: {
    // The folder is the bucket: it must exist (made once, or the share's mount point).
    fresh: () => {
      const dir = path.join(folder, `conf${++n}`);
      mkdirSync(dir);
      return openStore(pathToFileURL(dir).href);
    },
    missing: () => openStore(pathToFileURL(path.join(folder, 'no', 'such', 'folder')).href),
  },
};

async function all(it: AsyncIterable<{ key: string; size: number }>): Promise<string[]> {
  const out: string[] = [];
  for await (const o of it) out.push(`${o.key}:${o.size}`);
  return out.sort();
}

async function text(s: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

for (const [name, make] of Object.entries(STORES)) {
  describe(`object store conformance: ${name}`, () => {
    test('a missing object is undefined; put, head, get and overwrite round-trip', async () => {
      const s = make.fresh();
      await s.ready();
      assert.equal(await s.head('entries/k/meta.json'), undefined);
      assert.equal(await s.getBuffer('entries/k/meta.json'), undefined);
      assert.equal(await s.getStream('entries/k/meta.json'), undefined);
      await s.putBuffer('entries/k/meta.json', '{"a":1}', 'application/json');
      assert.deepEqual(await s.head('entries/k/meta.json'), { key: 'entries/k/meta.json', size: 7 });
      assert.equal((await s.getBuffer('entries/k/meta.json'))?.toString(), '{"a":1}');
      const got = await s.getStream('entries/k/meta.json');
      assert.equal(got?.size, 7);
      assert.equal(await text(got!.body), '{"a":1}');
      await s.putBuffer('entries/k/meta.json', Buffer.from('{"a":22}'));
      assert.equal((await s.getBuffer('entries/k/meta.json'))?.toString(), '{"a":22}');
    });

    test('putLarge streams a body and reports the bytes sent', async () => {
      const s = make.fresh();
      const body = randomBytes(3 * 2 ** 20 + 17);
      let last = 0;
      await s.putLarge('blobs/ab/large', Readable.from([body.subarray(0, 2 ** 20), body.subarray(2 ** 20)]), (b) => (last = b));
      assert.equal(last, body.length);
      assert.deepEqual(await s.getBuffer('blobs/ab/large'), body);
      assert.equal((await s.head('blobs/ab/large'))?.size, body.length);
    });

    test('list takes a key prefix, as S3 does; delete removes, and an absent object is fine', async () => {
      const s = make.fresh();
      for (const k of ['blobs/ab/1', 'blobs/ab/2', 'blobs/abc/3', 'blobs/ac/4', 'entries/x/meta.json']) await s.putBuffer(k, k);
      assert.deepEqual(await all(s.list('blobs/ab')), ['blobs/ab/1:10', 'blobs/ab/2:10', 'blobs/abc/3:11']);
      assert.deepEqual(await all(s.list('blobs/ab/')), ['blobs/ab/1:10', 'blobs/ab/2:10']);
      assert.equal((await all(s.list(''))).length, 5);
      assert.deepEqual(await all(s.list('nothing/')), []);
      await s.delete('blobs/ab/1');
      await s.delete('blobs/ab/1');
      assert.equal(await s.head('blobs/ab/1'), undefined);
      assert.deepEqual(await all(s.list('blobs/ab/')), ['blobs/ab/2:10']);
    });

    test('a missing bucket or folder is one clear RemoteError', async () => {
      const err = await make
        .missing()
        .ready()
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      assert.ok(err instanceof RemoteError, String(err));
      assert.equal(err.kind, 'no-bucket');
      assert.match(err.message, /does not exist/);
      assert.ok(!err.message.includes(SECRET));
    });

    test('the remote cache pushes an artifact and pulls it into an empty cache, verified', async () => {
      const a = new Cache(await mkdtemp(path.join(os.tmpdir(), 'pipe-conf-a-')));
      const b = new Cache(await mkdtemp(path.join(os.tmpdir(), 'pipe-conf-b-')));
      await a.init();
      await b.init();
      try {
        const r = new RemoteCache(make.fresh());
        const art = await commitFiles(a, 'train', { 'model/w.bin': randomBytes(1000), 'copy.txt': 'x', 'again.txt': 'x' });
        const pushed = await r.push(a, [art.key]);
        assert.deepEqual([pushed.entries, pushed.uploadedFiles], [1, 2]);
        assert.equal((await r.push(a, [art.key])).uploadedFiles, 0, 'nothing twice');
        const pulled = await r.pull(b, art.key);
        assert.equal(pulled?.artifact.contentHash, art.contentHash);
        assert.deepEqual(await b.verify(art.key), []);
        assert.deepEqual(await readFile(path.join(pulled!.artifact.dir, 'model/w.bin')), await readFile(path.join(art.dir, 'model/w.bin')));
        assert.equal(await r.pull(b, 'f'.repeat(64)), undefined);
      } finally {
        await rm(a.root, { recursive: true, force: true });
        await rm(b.root, { recursive: true, force: true });
      }
    });
  });
}

test('file://: writes are a rename of a temp file (never listed); URLs that are not absolute are config errors', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-file-remote-'));
  try {
    const s = openStore(pathToFileURL(dir).href);
    await s.putBuffer('entries/k/meta.json', 'x');
    await writeFile(path.join(dir, 'entries/k/meta.json.pipe-tmp-1-dead'), 'half');
    assert.deepEqual(await all(s.list('entries/')), ['entries/k/meta.json:1']);
    assert.deepEqual((await readdir(path.join(dir, 'entries/k'))).sort(), ['meta.json', 'meta.json.pipe-tmp-1-dead']);
    assert.throws(
      () => openStore('file://relative/x'),
      (e) => e instanceof RemoteError && e.kind === 'config' && /must be absolute.*file:\/\/\/absolute\/folder/.test(e.message),
    );
    for (const bad of ['gs://b/p', 'file:relative']) {
      assert.throws(
        () => openStore(bad),
        (e) => e instanceof RemoteError && e.kind === 'config' && /is not an s3:\/\/ URL or a file:\/\/ URL/.test(e.message),
        bad,
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
