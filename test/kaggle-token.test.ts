// fetch-kaggle with an API token (what kaggle.com/settings hands out today): sent as Bearer to
// the API, never to the storage server the download redirects to, never in a log line, a
// message or a file; a refused token says it expired or was revoked and where it came from.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { StageError } from '../runner/types.js';
import { fetchKaggleStage, type FetchKaggleParams } from '../stages/fetch-kaggle.js';
import { makeTestContext, type TestContext } from './helpers/stage-context.js';
import { listAll } from './helpers/files.js';
import { startKaggleServer, TEST_TOKEN, type KaggleServer } from './servers/kaggle-server.js';

const COMP = 'tiny';
const savedEnv = { ...process.env };
let home: string;
let server: KaggleServer;

before(async () => {
  home = await mkdtemp(path.join(os.tmpdir(), 'pipe-kaggle-token-'));
  process.env.HOME = home;
  for (const k of ['KAGGLE_CONFIG_DIR', 'XDG_CONFIG_HOME', 'KAGGLE_API_ENDPOINT', 'KAGGLE_API_TOKEN', 'KAGGLE_USERNAME', 'KAGGLE_KEY']) delete process.env[k];
  server = await startKaggleServer({
    competitions: { [COMP]: { files: { 'a.csv': Buffer.from('id,label\n1,0\n'), 'b.csv': Buffer.from('x'.repeat(5000)) } } },
  });
});

after(async () => {
  process.env = savedEnv;
  await server.close();
  await rm(home, { recursive: true, force: true });
});

const params = (): FetchKaggleParams => ({ competition: COMP, unzip: true, sha256: {}, retries: 0, stall_timeout: 10, endpoint: server.url });

async function assertNoToken(token: string, ctx: TestContext<unknown>, ...extra: unknown[]): Promise<void> {
  for (const line of ctx.logs) assert.ok(!line.includes(token), `token in log line: ${line}`);
  for (const x of extra) {
    const text = x instanceof Error ? `${x.message} ${(x as StageError).hint ?? ''} ${x.stack ?? ''}` : JSON.stringify(x);
    assert.ok(!text.includes(token), `token in ${text}`);
  }
  for (const dir of [ctx.outDir, ctx.workDir]) {
    for (const f of await listAll(dir)) assert.ok(!(await readFile(path.join(dir, f))).includes(token), `token in file ${f}`);
  }
}

test('a token in ~/.kaggle/access_token goes to the API as Bearer and never to storage; the log names the file', async () => {
  const file = path.join(home, '.kaggle', 'access_token');
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${TEST_TOKEN}\n`);
  await chmod(file, 0o600);
  const from = server.requests.length;
  const ctx = await makeTestContext(params());
  try {
    const result = await fetchKaggleStage.run(ctx);
    assert.deepEqual(await listAll(ctx.outDir), ['a.csv', 'b.csv']);
    const requests = server.requests.slice(from);
    const api = requests.filter((r) => r.server === 'api');
    const storage = requests.filter((r) => r.server === 'storage');
    assert.ok(api.length >= 3 && api.every((r) => r.headers.authorization === `Bearer ${TEST_TOKEN}`));
    assert.equal(storage.length, 2);
    for (const r of storage) {
      assert.equal(r.headers.authorization, undefined, 'the Authorization header reached the storage server');
      assert.ok(!JSON.stringify(r).includes(TEST_TOKEN), 'the token reached the storage server');
    }
    assert.ok(
      ctx.logs.some((l) => l.includes(`with a Kaggle API token from ${file}`)),
      ctx.logs.join('\n'),
    );
    assert.ok(!ctx.logs.some((l) => /readable by other users/.test(l)));
    await assertNoToken(TEST_TOKEN, ctx, result);
  } finally {
    await ctx.cleanup();
    await rm(path.join(home, '.kaggle'), { recursive: true, force: true });
  }
});

test('a token readable by others is used with the chmod warning kaggle.json gets', async () => {
  const dir = path.join(home, 'conf');
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'access_token'), TEST_TOKEN);
  await chmod(path.join(dir, 'access_token'), 0o644);
  process.env.KAGGLE_CONFIG_DIR = dir;
  const ctx = await makeTestContext(params());
  try {
    await fetchKaggleStage.run(ctx);
    assert.ok(
      ctx.logs.some((l) => l.includes(`${path.join(dir, 'access_token')} is readable by other users: run chmod 600`)),
      ctx.logs.join('\n'),
    );
  } finally {
    delete process.env.KAGGLE_CONFIG_DIR;
    await ctx.cleanup();
  }
});

test('a refused token (HTTP 401) says it expired or was revoked and where it came from, without showing it', async () => {
  const stale = 'KGAT_expired_00112233445566778899';
  process.env.KAGGLE_API_TOKEN = stale;
  const from = server.requests.length;
  const ctx = await makeTestContext(params());
  try {
    let error: unknown;
    await assert.rejects(fetchKaggleStage.run(ctx), (e: Error) => {
      error = e;
      assert.ok(e instanceof StageError, String(e));
      assert.equal(
        e.message,
        'invalid Kaggle credentials: the API token from the environment variable KAGGLE_API_TOKEN was refused (HTTP 401): it has expired or was revoked',
      );
      assert.match(e.hint ?? '', /Generate New Token/);
      return true;
    });
    await assertNoToken(stale, ctx, error);
    assert.ok(
      server.requests.slice(from).every((r) => r.server === 'api'),
      'nothing was downloaded',
    );
  } finally {
    delete process.env.KAGGLE_API_TOKEN;
    await ctx.cleanup();
  }
});
