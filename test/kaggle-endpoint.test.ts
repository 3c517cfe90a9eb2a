// KAGGLE_API_ENDPOINT (and the stage's `endpoint`) read as Kaggle's own tools read it: a host
// to which the API path is added, or a base already ending in /api/v1. A wrong path is a 404
// about the URL, and the message says so instead of calling the competition unknown.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { StageError } from '../runner/types.js';
import { apiBase } from '../stages/kaggle/client.js';
import { fetchKaggleStage, type FetchKaggleParams } from '../stages/fetch-kaggle.js';
import { makeTestContext } from './helpers/stage-context.js';
import { startKaggleServer, TEST_KEY, TEST_USER, type KaggleServer } from './servers/kaggle-server.js';

const COMP = 'tiny';
const savedEnv = { ...process.env };
let home: string;
let server: KaggleServer;

before(async () => {
  home = await mkdtemp(path.join(os.tmpdir(), 'pipe-kaggle-endpoint-'));
  process.env.HOME = home;
  for (const k of ['KAGGLE_CONFIG_DIR', 'XDG_CONFIG_HOME', 'KAGGLE_API_ENDPOINT', 'KAGGLE_API_TOKEN']) delete process.env[k];
  process.env.KAGGLE_USERNAME = TEST_USER;
  process.env.KAGGLE_KEY = TEST_KEY;
  server = await startKaggleServer({ competitions: { [COMP]: { files: { 'a.csv': Buffer.from('id,label\n1,0\n') } } } });
});

after(async () => {
  process.env = savedEnv;
  await server.close();
  await rm(home, { recursive: true, force: true });
});

const base: FetchKaggleParams = { competition: COMP, unzip: true, sha256: {}, retries: 0, stall_timeout: 10 };

async function fetchWith(env: string | undefined, p: Partial<FetchKaggleParams> = {}): Promise<string[]> {
  if (env === undefined) delete process.env.KAGGLE_API_ENDPOINT;
  else process.env.KAGGLE_API_ENDPOINT = env;
  const before = server.requests.length;
  const ctx = await makeTestContext({ ...base, ...p });
  try {
    await fetchKaggleStage.run(ctx);
    return server.requests
      .slice(before)
      .filter((r) => r.server === 'api')
      .map((r) => r.path);
  } finally {
    await ctx.cleanup();
    delete process.env.KAGGLE_API_ENDPOINT;
  }
}

test('apiBase: a host gets /api/v1; a base ending in /api/v1 is kept; nothing set is the public API', () => {
  assert.equal(apiBase('http://localhost:8080'), 'http://localhost:8080/api/v1');
  assert.equal(apiBase('http://localhost:8080/'), 'http://localhost:8080/api/v1');
  assert.equal(apiBase('https://www.kaggle.com'), 'https://www.kaggle.com/api/v1');
  assert.equal(apiBase('http://localhost:8080/api/v1'), 'http://localhost:8080/api/v1');
  assert.equal(apiBase('http://localhost:8080/api/v1/'), 'http://localhost:8080/api/v1');
  assert.equal(apiBase(undefined), 'https://api.kaggle.com/v1');
});

test("KAGGLE_API_ENDPOINT as a host: pipe adds /api/v1, as Kaggle's own tools do", async () => {
  const paths = await fetchWith(server.url);
  assert.equal(paths[0], '/api/v1/competitions.CompetitionApiService/ListDataFiles');
  assert.ok(paths.length >= 2, paths.join('\n'));
});

test('KAGGLE_API_ENDPOINT already ending in /api/v1 (with or without /) still works', async () => {
  for (const value of [`${server.url}/api/v1`, `${server.url}/api/v1/`]) {
    const paths = await fetchWith(value);
    assert.equal(paths[0], '/api/v1/competitions.CompetitionApiService/ListDataFiles', value);
  }
});

test('the `endpoint` param follows the same rule and wins over the environment', async () => {
  const paths = await fetchWith('http://127.0.0.1:9/', { endpoint: server.url });
  assert.equal(paths[0], '/api/v1/competitions.CompetitionApiService/ListDataFiles');
});

test('a 404 for an unknown method blames the endpoint, not the competition slug', async () => {
  for (const [env, p] of [
    [`${server.url}/elsewhere`, {}],
    [undefined, { endpoint: `${server.url}/v2` }],
  ] as const) {
    await assert.rejects(fetchWith(env, p), (e: Error) => {
      assert.ok(e instanceof StageError, String(e));
      assert.match(e.message, /has no method ListDataFiles \(HTTP 404/);
      assert.doesNotMatch(e.message, /unknown competition/);
      assert.match(e.hint ?? '', /KAGGLE_API_ENDPOINT: a host such as http:\/\/localhost:8080 \(pipe adds \/api\/v1\)/);
      return true;
    });
  }
  // A slug the API does not know is still the slug's fault.
  await assert.rejects(fetchWith(server.url, { competition: 'nope' }), /unknown competition 'nope'/);
});
