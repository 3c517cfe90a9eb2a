import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { StageError } from '../runner/types.js';
import { fetchKaggleStage, type FetchKaggleParams } from '../stages/fetch-kaggle.js';
import { makeTestContext, type TestContext } from './helpers/stage-context.js';
import { kaggleFiles } from './helpers/jpegs.js';
import { startKaggleServer, zipOf, zipSlipOf, TEST_KEY, TEST_USER, type KaggleServer, type KaggleServerOptions } from './servers/kaggle-server.js';
import { listAll } from './helpers/files.js';

const COMP = 'dogs-vs-cats-redux-kernels-edition';
let trainZip: Buffer;
let testZip: Buffer;
let trainFlatZip: Buffer;
let test1Zip: Buffer;
let csv: Buffer;
const savedEnv = { ...process.env };
let home: string;

before(async () => {
  trainZip = await zipOf(await kaggleFiles({ cats: 4, dogs: 4, width: 64, height: 48 }));
  testZip = await zipOf(await kaggleFiles({ cats: 0, dogs: 0, test: 3 }));
  // dogs-vs-cats (2013) style: no top folder inside train.zip; test1.zip holds test1/.
  trainFlatZip = await zipOf(await kaggleFiles({ cats: 2, dogs: 2, trainDir: '' }));
  test1Zip = await zipOf(await kaggleFiles({ cats: 0, dogs: 0, test: 2, testDir: 'test1' }));
  csv = Buffer.from('id,label\n1,0.5\n');
  home = await mkdtemp(path.join(os.tmpdir(), 'pipe-kaggle-home-'));
  process.env.HOME = home;
  delete process.env.KAGGLE_CONFIG_DIR;
  delete process.env.XDG_CONFIG_HOME;
  delete process.env.KAGGLE_API_ENDPOINT;
  delete process.env.KAGGLE_API_TOKEN;
  process.env.KAGGLE_USERNAME = TEST_USER;
  process.env.KAGGLE_KEY = TEST_KEY;
});

after(async () => {
  process.env = savedEnv;
  await rm(home, { recursive: true, force: true });
});

function params(server: KaggleServer, p: Partial<FetchKaggleParams>): FetchKaggleParams {
  return { unzip: true, sha256: {}, retries: 3, stall_timeout: 10, endpoint: server.url, ...p };
}

async function withServer(opts: KaggleServerOptions, fn: (server: KaggleServer) => Promise<void>): Promise<void> {
  const server = await startKaggleServer({
    competitions: { [COMP]: { files: { 'train.zip': trainZip, 'test.zip': testZip, 'sample_submission.csv': csv } } },
    ...opts,
  });
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

/** The key must not be anywhere a person or a cache could see it. */
async function assertNoSecret(ctx: TestContext<unknown>, ...extra: unknown[]): Promise<void> {
  const b64 = Buffer.from(`${TEST_USER}:${TEST_KEY}`).toString('base64');
  for (const line of ctx.logs) {
    assert.ok(!line.includes(TEST_KEY) && !line.includes(b64), `key in log line: ${line}`);
  }
  for (const x of extra) {
    const text = x instanceof Error ? `${x.message} ${(x as StageError).hint ?? ''} ${x.stack ?? ''}` : JSON.stringify(x);
    assert.ok(!text.includes(TEST_KEY) && !text.includes(b64), `key in ${text}`);
  }
  for (const dir of [ctx.outDir, ctx.workDir]) {
    for (const f of await listAll(dir)) {
      const bytes = await readFile(path.join(dir, f));
      assert.ok(!bytes.includes(TEST_KEY) && !bytes.includes(b64), `key in file ${f}`);
    }
  }
}

test('downloads competition files, follows the redirect without Authorization, unzips', async () => {
  await withServer({}, async (server) => {
    const ctx = await makeTestContext(params(server, { competition: COMP, files: ['train.zip', 'test.zip'] }));
    try {
      const result = await fetchKaggleStage.run(ctx);
      const files = await listAll(ctx.outDir);
      assert.deepEqual(
        files,
        [
          'test/1.jpg',
          'test/2.jpg',
          'test/3.jpg',
          ...[0, 1, 2, 3].map((i) => `train/cat.${i}.jpg`).sort(),
          ...[0, 1, 2, 3].map((i) => `train/dog.${i}.jpg`).sort(),
        ].sort(),
      );
      const api = server.requests.filter((r) => r.server === 'api');
      const storage = server.requests.filter((r) => r.server === 'storage');
      assert.ok(api.length >= 3 && api.every((r) => r.method === 'POST' && r.headers.authorization?.startsWith('Basic ')));
      assert.deepEqual(
        api.map((r) => r.path),
        [
          '/api/v1/competitions.CompetitionApiService/ListDataFiles',
          '/api/v1/competitions.CompetitionApiService/DownloadDataFile',
          '/api/v1/competitions.CompetitionApiService/DownloadDataFile',
        ],
      );
      assert.deepEqual(api[1]!.body, { competitionName: COMP, fileName: 'train.zip' });
      assert.equal(storage.length, 2);
      for (const r of storage) {
        assert.equal(r.method, 'GET');
        assert.equal(r.headers.authorization, undefined, 'the Authorization header reached the storage server');
        assert.ok(!JSON.stringify(r.headers).includes(TEST_KEY));
      }
      const meta = result ? (result.meta as { downloads: { name: string; sha256: string; size: number }[] }) : undefined;
      assert.equal(meta?.downloads[0]?.sha256, createHash('sha256').update(trainZip).digest('hex'));
      assert.equal(meta?.downloads[0]?.size, trainZip.length);
      await assertNoSecret(ctx, result);
    } finally {
      await ctx.cleanup();
    }
  });
});

test('all files: ListDataFiles then each file; zips extracted, other files kept', async () => {
  await withServer({}, async (server) => {
    const ctx = await makeTestContext(params(server, { competition: COMP }));
    try {
      await fetchKaggleStage.run(ctx);
      const files = await listAll(ctx.outDir);
      assert.ok(files.includes('sample_submission.csv'));
      assert.ok(files.includes('train/cat.0.jpg') && files.includes('test/3.jpg'));
      assert.equal(files.filter((f) => f.endsWith('.zip')).length, 0);
    } finally {
      await ctx.cleanup();
    }
  });
});

test('a dataset download holding nested zips, with and without a top folder', async () => {
  await withServer(
    { datasets: { 'someone/dogs-vs-cats': { files: { 'train.zip': trainFlatZip, 'test1.zip': test1Zip, 'sampleSubmission.csv': csv } } } },
    async (server) => {
      const ctx = await makeTestContext(params(server, { dataset: 'someone/dogs-vs-cats' }));
      try {
        const result = await fetchKaggleStage.run(ctx);
        assert.deepEqual(await listAll(ctx.outDir), [
          'sampleSubmission.csv',
          'test1/1.jpg',
          'test1/2.jpg',
          'train/cat.0.jpg',
          'train/cat.1.jpg',
          'train/dog.0.jpg',
          'train/dog.1.jpg',
        ]);
        const api = server.requests.filter((r) => r.server === 'api');
        assert.deepEqual(
          api.map((r) => [r.path, r.body]),
          [['/api/v1/datasets.DatasetApiService/DownloadDataset', { ownerSlug: 'someone', datasetSlug: 'dogs-vs-cats' }]],
        );
        assert.equal((result?.meta as { files: number }).files, 7);
      } finally {
        await ctx.cleanup();
      }
    },
  );
});

test('many files: one DownloadDataFiles zip', async () => {
  const many: Record<string, Buffer> = {};
  for (let i = 0; i < 60; i++) many[`f${i}.csv`] = Buffer.from(`row,${i}\n`);
  await withServer({ competitions: { big: { files: many } } }, async (server) => {
    const ctx = await makeTestContext(params(server, { competition: 'big' }));
    try {
      await fetchKaggleStage.run(ctx);
      assert.equal((await listAll(ctx.outDir)).length, 60);
      assert.ok(server.requests.some((r) => r.path.endsWith('/DownloadDataFiles')));
    } finally {
      await ctx.cleanup();
    }
  });
});

test('a connection dropped mid-body is resumed with Range', async () => {
  await withServer({ dropFirst: ['train.zip'] }, async (server) => {
    const ctx = await makeTestContext(params(server, { competition: COMP, files: ['train.zip'] }));
    try {
      const result = await fetchKaggleStage.run(ctx);
      const gets = server.requests.filter((r) => r.server === 'storage');
      assert.equal(gets.length, 2);
      assert.equal(gets[0]!.headers.range, undefined);
      assert.match(gets[1]!.headers.range ?? '', /^bytes=[1-9]\d*-$/);
      assert.equal(gets[1]!.status, 206);
      assert.equal(gets[1]!.headers.authorization, undefined);
      assert.ok(gets[1]!.headers['if-range'], 'the resume is guarded by If-Range');
      assert.equal((result?.meta as { resumes: number }).resumes, 1);
      assert.equal((await listAll(ctx.outDir)).length, 8);
      assert.ok(
        ctx.logs.some((l) => /retrying.*resuming at \d+ bytes/.test(l)),
        ctx.logs.join('\n'),
      );
    } finally {
      await ctx.cleanup();
    }
  });
});

test('an interrupted attempt leaves the partial file in the work dir and the next run resumes it', async () => {
  await withServer({ stallFirst: ['train.zip'] }, async (server) => {
    const abort = new AbortController();
    const first = await makeTestContext(params(server, { competition: COMP, files: ['train.zip'] }), { signal: abort.signal });
    const second = await makeTestContext(params(server, { competition: COMP, files: ['train.zip'] }), { workDir: first.workDir });
    try {
      const run = fetchKaggleStage.run(first);
      // Ctrl-C while the (stalled) body is arriving.
      setTimeout(() => abort.abort(), 300);
      await assert.rejects(run, (e: Error) => e instanceof StageError && /interrupted while downloading train\.zip \(the partial file is kept/.test(e.message));
      const part = await stat(path.join(first.workDir, 'downloads', 'train.zip.part'));
      assert.ok(part.size > 0 && part.size < trainZip.length);
      await fetchKaggleStage.run(second);
      const gets = server.requests.filter((r) => r.server === 'storage');
      assert.equal(gets.at(-1)!.headers.range, `bytes=${part.size}-`);
      assert.ok(second.logs.some((l) => l.includes(`resuming at ${part.size} bytes`)));
      assert.equal((await listAll(second.outDir)).length, 8);
    } finally {
      await second.cleanup();
      await first.cleanup();
    }
  });
});

test('a stalled response is abandoned after stall_timeout and resumed', async () => {
  await withServer({ stallFirst: ['test.zip'] }, async (server) => {
    const ctx = await makeTestContext(params(server, { competition: COMP, files: ['test.zip'], stall_timeout: 0.3 }));
    try {
      await fetchKaggleStage.run(ctx);
      assert.ok(
        ctx.logs.some((l) => l.includes('no data for 0.3 s')),
        ctx.logs.join('\n'),
      );
      assert.equal(server.requests.filter((r) => r.server === 'storage').length, 2);
      assert.deepEqual(await listAll(ctx.outDir), ['test/1.jpg', 'test/2.jpg', 'test/3.jpg']);
    } finally {
      await ctx.cleanup();
    }
  });
});

test('HTTP 503 is retried with backoff', async () => {
  await withServer({ failFirst: 1 }, async (server) => {
    const ctx = await makeTestContext(params(server, { competition: COMP, files: ['test.zip'] }));
    try {
      await fetchKaggleStage.run(ctx);
      assert.equal(server.requests.filter((r) => r.path.endsWith('/ListDataFiles')).length, 2);
      assert.ok(ctx.logs.some((l) => /503.*retrying/.test(l)));
    } finally {
      await ctx.cleanup();
    }
  });
});

test('401, 403 and 404 are clear errors that never show the key', async () => {
  await withServer(
    { competitions: { [COMP]: { files: { 'train.zip': trainZip } }, closed: { files: { 'a.zip': testZip }, rulesAccepted: false } } },
    async (server) => {
      const cases: [Partial<FetchKaggleParams>, RegExp, Record<string, string>?][] = [
        [
          { competition: COMP },
          /invalid Kaggle credentials \(user 'alice' from environment variables KAGGLE_USERNAME and KAGGLE_KEY\)/,
          { KAGGLE_KEY: 'wrong-key-0123456789' },
        ],
        [{ competition: 'closed' }, /accept the competition rules at https:\/\/www\.kaggle\.com\/c\/closed\/rules first/],
        [{ competition: 'nope' }, /unknown competition 'nope'/],
        [{ competition: COMP, files: ['missing.zip'] }, /no file 'missing\.zip' in competition/],
        [{ dataset: 'someone/nothing' }, /unknown dataset 'someone\/nothing'/],
      ];
      for (const [p, pattern, env] of cases) {
        const saved = process.env.KAGGLE_KEY;
        if (env) Object.assign(process.env, env);
        const ctx = await makeTestContext(params(server, p));
        try {
          let error: unknown;
          await assert.rejects(fetchKaggleStage.run(ctx), (e: Error) => {
            error = e;
            return e instanceof StageError && pattern.test(e.message);
          });
          await assertNoSecret(ctx, error);
          assert.ok(!String((error as Error).message).includes('wrong-key'), 'the rejected key is shown');
        } finally {
          process.env.KAGGLE_KEY = saved;
          await ctx.cleanup();
        }
      }
      assert.ok(
        server.requests.every((r) => r.server === 'api'),
        'nothing was downloaded',
      );
    },
  );
});

test('missing credentials: a StageError saying where to put them, before any request', async () => {
  await withServer({}, async (server) => {
    const saved = { u: process.env.KAGGLE_USERNAME, k: process.env.KAGGLE_KEY };
    delete process.env.KAGGLE_USERNAME;
    delete process.env.KAGGLE_KEY;
    const ctx = await makeTestContext(params(server, { competition: COMP }));
    try {
      await assert.rejects(fetchKaggleStage.run(ctx), (e: Error) => {
        assert.ok(e instanceof StageError);
        assert.match(e.message, /no Kaggle credentials found: create an API token .*set KAGGLE_API_TOKEN.*KAGGLE_USERNAME and KAGGLE_KEY/);
        assert.ok(e.message.includes(path.join(home, '.kaggle', 'kaggle.json')));
        assert.ok(e.message.includes(path.join(home, '.config', 'kaggle', 'kaggle.json')));
        return true;
      });
      assert.equal(server.requests.length, 0);
    } finally {
      process.env.KAGGLE_USERNAME = saved.u;
      process.env.KAGGLE_KEY = saved.k;
      await ctx.cleanup();
    }
  });
});

test('sha256: a match passes, a mismatch fails and deletes the file, an unknown name fails early', async () => {
  await withServer({}, async (server) => {
    const good = createHash('sha256').update(testZip).digest('hex');
    const ok = await makeTestContext(params(server, { competition: COMP, files: ['test.zip'], sha256: { 'test.zip': good } }));
    const bad = await makeTestContext(params(server, { competition: COMP, files: ['test.zip'], sha256: { 'test.zip': '0'.repeat(64) } }));
    const unknown = await makeTestContext(params(server, { competition: COMP, files: ['test.zip'], sha256: { 'train.zip': good } }));
    try {
      await fetchKaggleStage.run(ok);
      await assert.rejects(
        fetchKaggleStage.run(bad),
        (e: Error) => e instanceof StageError && e.message.includes(`sha256 mismatch: expected ${'0'.repeat(64)}, got ${good}`),
      );
      assert.deepEqual(await listAll(path.join(bad.workDir, 'downloads')), []);
      const before = server.requests.length;
      await assert.rejects(fetchKaggleStage.run(unknown), /sha256 is given for 'train\.zip', which is not downloaded/);
      assert.ok(!server.requests.slice(before).some((r) => r.server === 'storage'));
    } finally {
      await ok.cleanup();
      await bad.cleanup();
      await unknown.cleanup();
    }
  });
});

test('a zip-slip archive is refused, naming the entry; nothing is written outside', async () => {
  const patched = await zipSlipOf('../../escaped.txt', { 'train/cat.0.jpg': Buffer.from('x') });
  await withServer({ competitions: { evil: { files: { 'data.zip': patched } } } }, async (server) => {
    const ctx = await makeTestContext(params(server, { competition: 'evil' }));
    try {
      await assert.rejects(
        fetchKaggleStage.run(ctx),
        (e: Error) => e instanceof StageError && e.message.includes("refusing zip entry '../../escaped.txt' in data.zip"),
      );
      const root = path.dirname(ctx.outDir);
      assert.deepEqual(
        (await listAll(root)).filter((f) => f.includes('escaped')),
        [],
      );
      await assert.rejects(stat(path.join(root, '..', 'escaped.txt')));
    } finally {
      await ctx.cleanup();
    }
  });
});

test('unzip: false keeps the archives; endpoint, retries and stall_timeout are not in the key', async () => {
  assert.deepEqual([...(fetchKaggleStage.keyExclude ?? [])].sort(), ['endpoint', 'retries', 'stall_timeout']);
  await withServer({}, async (server) => {
    const ctx = await makeTestContext(params(server, { competition: COMP, files: ['test.zip', 'sample_submission.csv'], unzip: false }));
    try {
      await fetchKaggleStage.run(ctx);
      assert.deepEqual(await listAll(ctx.outDir), ['sample_submission.csv', 'test.zip']);
      assert.deepEqual(await readFile(path.join(ctx.outDir, 'test.zip')), testZip);
    } finally {
      await ctx.cleanup();
    }
  });
});

test('competition and dataset are exclusive', async () => {
  const ctx = await makeTestContext<FetchKaggleParams>({ competition: 'a', dataset: 'b/c', unzip: true, sha256: {}, retries: 0, stall_timeout: 1 });
  try {
    await assert.rejects(fetchKaggleStage.run(ctx), /exactly one of `competition` and `dataset`/);
  } finally {
    await ctx.cleanup();
  }
});
