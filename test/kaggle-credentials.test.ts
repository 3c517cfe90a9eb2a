import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { StageError } from '../runner/types.js';
import { findCredentials, KaggleCredentials } from '../stages/kaggle/credentials.js';

const KEY = 'abcdef0123456789secretkey';

async function withHome(fn: (home: string) => Promise<void>): Promise<void> {
  const home = await mkdtemp(path.join(os.tmpdir(), 'pipe-kcred-'));
  try {
    await fn(home);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

async function writeJson(file: string, value: unknown, mode = 0o600): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, typeof value === 'string' ? value : JSON.stringify(value));
  await chmod(file, mode);
}

test('legacy: KAGGLE_USERNAME and KAGGLE_KEY come before kaggle.json', async () => {
  await withHome(async (home) => {
    await writeJson(path.join(home, '.kaggle', 'kaggle.json'), { username: 'file-user', key: 'file-key-123456' });
    const c = await findCredentials({ env: { KAGGLE_USERNAME: 'env-user', KAGGLE_KEY: KEY }, home });
    assert.equal(c.username, 'env-user');
    assert.equal(c.source, 'environment variables KAGGLE_USERNAME and KAGGLE_KEY');
    assert.equal(Buffer.from(c.authorization().slice(6), 'base64').toString(), `env-user:${KEY}`);
  });
});

test('then $KAGGLE_CONFIG_DIR/kaggle.json, exclusively', async () => {
  await withHome(async (home) => {
    const dir = path.join(home, 'conf');
    await writeJson(path.join(home, '.kaggle', 'kaggle.json'), { username: 'home-user', key: KEY });
    await assert.rejects(
      findCredentials({ env: { KAGGLE_CONFIG_DIR: dir }, home }),
      (e: Error) => e instanceof StageError && e.message.includes(path.join(dir, 'kaggle.json')) && !e.message.includes(path.join(home, '.kaggle')),
    );
    await writeJson(path.join(dir, 'kaggle.json'), { username: 'conf-user', key: KEY });
    const c = await findCredentials({ env: { KAGGLE_CONFIG_DIR: dir }, home });
    assert.equal(c.username, 'conf-user');
    assert.equal(c.source, path.join(dir, 'kaggle.json'));
  });
});

test('then ~/.kaggle/kaggle.json, then $XDG_CONFIG_HOME/kaggle or ~/.config/kaggle', async () => {
  await withHome(async (home) => {
    const xdg = path.join(home, 'xdg');
    await writeJson(path.join(home, '.config', 'kaggle', 'kaggle.json'), { username: 'dotconfig-user', key: KEY });
    assert.equal((await findCredentials({ env: {}, home })).username, 'dotconfig-user');
    await writeJson(path.join(xdg, 'kaggle', 'kaggle.json'), { username: 'xdg-user', key: KEY });
    assert.equal((await findCredentials({ env: { XDG_CONFIG_HOME: xdg }, home })).username, 'xdg-user');
    await writeJson(path.join(home, '.kaggle', 'kaggle.json'), { username: 'home-user', key: KEY });
    const c = await findCredentials({ env: { XDG_CONFIG_HOME: xdg }, home });
    assert.equal(c.username, 'home-user');
    assert.equal(c.source, path.join(home, '.kaggle', 'kaggle.json'));
    assert.deepEqual(c.warnings, []);
  });
});

test('missing credentials: a message that lists every place to put them', async () => {
  await withHome(async (home) => {
    await assert.rejects(findCredentials({ env: {}, home }), (e: Error) => {
      assert.ok(e instanceof StageError);
      // Today's API token first, the legacy key second.
      assert.match(
        e.message,
        /^no Kaggle credentials found: create an API token at https:\/\/www\.kaggle\.com\/settings .*set KAGGLE_API_TOKEN .*legacy API key works too: KAGGLE_USERNAME and KAGGLE_KEY/,
      );
      assert.ok(e.message.includes(path.join(home, '.kaggle', 'access_token')));
      assert.ok(e.message.includes(path.join(home, '.kaggle', 'kaggle.json')));
      assert.ok(e.message.includes(path.join(home, '.config', 'kaggle', 'kaggle.json')));
      return true;
    });
    await assert.rejects(findCredentials({ env: { KAGGLE_USERNAME: 'u' }, home }), /incomplete Kaggle credentials: KAGGLE_KEY is not set/);
  });
});

test('a broken kaggle.json is reported by name without quoting the key; loose permissions warn', async () => {
  await withHome(async (home) => {
    const file = path.join(home, '.kaggle', 'kaggle.json');
    await writeJson(file, `{"username": "u", "key": "${KEY}"`); // truncated JSON
    await assert.rejects(findCredentials({ env: {}, home }), (e: Error) => {
      assert.ok(e instanceof StageError);
      assert.equal(e.message, `invalid Kaggle credentials file ${file}: it is not valid JSON`);
      assert.ok(!`${e.message}${e.stack}`.includes(KEY));
      return true;
    });
    await writeJson(file, { username: 'u' });
    await assert.rejects(findCredentials({ env: {}, home }), /needs both "username" and "key"/);
    await writeJson(file, { username: 'u', key: KEY }, 0o644);
    const c = await findCredentials({ env: {}, home });
    assert.match(c.warnings[0] ?? '', /readable by other users: run chmod 600/);
    // A key in the environment completes a file that only names the user.
    await writeJson(file, { username: 'only-user' });
    assert.equal((await findCredentials({ env: { KAGGLE_KEY: KEY }, home })).username, 'only-user');
  });
});

test('the key never shows in JSON, inspect or strings; redact() hides it', () => {
  const c = KaggleCredentials.legacy('bob', KEY, '/x/kaggle.json');
  for (const text of [JSON.stringify(c), inspect(c), String(c), `${c}`, JSON.stringify({ c }), inspect({ nested: c }, { depth: 5, showHidden: true })]) {
    assert.ok(!text.includes(KEY), text);
    assert.ok(text.includes('bob'));
  }
  const b64 = c.authorization().slice('Basic '.length);
  assert.equal(c.redact(`key=${KEY} auth=${b64}`), 'key=*** auth=***');
});

// ---- API tokens (issue 20): what kaggle.com/settings hands out today ----

const TOKEN = 'KGAT_9f8e7d6c5b4a39281706f5e4d3c2b1a0';

test('KAGGLE_API_TOKEN comes first, before access_token files and every legacy form; it goes as Bearer', async () => {
  await withHome(async (home) => {
    await writeJson(path.join(home, '.kaggle', 'access_token'), 'KGAT_from_file_000000');
    await writeJson(path.join(home, '.kaggle', 'kaggle.json'), { username: 'file-user', key: 'file-key-123456' });
    const c = await findCredentials({ env: { KAGGLE_API_TOKEN: TOKEN, KAGGLE_USERNAME: 'env-user', KAGGLE_KEY: KEY }, home });
    assert.equal(c.kind, 'token');
    assert.equal(c.username, undefined);
    assert.equal(c.source, 'the environment variable KAGGLE_API_TOKEN');
    assert.equal(c.authorization(), `Bearer ${TOKEN}`);
    assert.equal(c.describe(), 'a Kaggle API token from the environment variable KAGGLE_API_TOKEN');
  });
});

test('KAGGLE_API_TOKEN may name a file holding the token (trimmed); a missing file is an error naming it', async () => {
  await withHome(async (home) => {
    const file = path.join(home, 'secrets', 'kaggle-token');
    await writeJson(file, `${TOKEN}\n`);
    const c = await findCredentials({ env: { KAGGLE_API_TOKEN: file }, home });
    assert.equal(c.authorization(), `Bearer ${TOKEN}`);
    assert.equal(c.source, `${file} (named by KAGGLE_API_TOKEN)`);
    const tilde = await findCredentials({ env: { KAGGLE_API_TOKEN: '~/secrets/kaggle-token' }, home });
    assert.equal(tilde.authorization(), `Bearer ${TOKEN}`);
    await assert.rejects(
      findCredentials({ env: { KAGGLE_API_TOKEN: path.join(home, 'nope') }, home }),
      /KAGGLE_API_TOKEN names the file .*nope, which does not exist/,
    );
  });
});

test('then ~/.kaggle/access_token, then access_token.txt, before KAGGLE_USERNAME/KAGGLE_KEY and kaggle.json', async () => {
  await withHome(async (home) => {
    const legacyEnv = { KAGGLE_USERNAME: 'env-user', KAGGLE_KEY: KEY };
    await writeJson(path.join(home, '.kaggle', 'kaggle.json'), { username: 'file-user', key: 'file-key-123456' });
    await writeJson(path.join(home, '.kaggle', 'access_token.txt'), 'KGAT_txt_1111111111');
    let c = await findCredentials({ env: legacyEnv, home });
    assert.equal(c.authorization(), 'Bearer KGAT_txt_1111111111');
    assert.equal(c.source, path.join(home, '.kaggle', 'access_token.txt'));
    await writeJson(path.join(home, '.kaggle', 'access_token'), `  ${TOKEN}  \n`);
    c = await findCredentials({ env: legacyEnv, home });
    assert.equal(c.authorization(), `Bearer ${TOKEN}`);
    assert.equal(c.source, path.join(home, '.kaggle', 'access_token'));
    assert.deepEqual(c.warnings, []);
  });
});

test('under KAGGLE_CONFIG_DIR the same files are read there (and only there)', async () => {
  await withHome(async (home) => {
    const dir = path.join(home, 'conf');
    await writeJson(path.join(home, '.kaggle', 'access_token'), 'KGAT_home_2222222222');
    await writeJson(path.join(dir, 'kaggle.json'), { username: 'conf-user', key: KEY });
    assert.equal((await findCredentials({ env: { KAGGLE_CONFIG_DIR: dir }, home })).kind, 'legacy');
    await writeJson(path.join(dir, 'access_token'), TOKEN);
    const c = await findCredentials({ env: { KAGGLE_CONFIG_DIR: dir }, home });
    assert.equal(c.authorization(), `Bearer ${TOKEN}`);
    assert.equal(c.source, path.join(dir, 'access_token'));
  });
});

test('a token file readable by others gets the kaggle.json warning; an empty or JSON one is a clear error', async () => {
  await withHome(async (home) => {
    const file = path.join(home, '.kaggle', 'access_token');
    await writeJson(file, TOKEN, 0o644);
    const c = await findCredentials({ env: {}, home });
    assert.deepEqual(c.warnings, [`${file} is readable by other users: run chmod 600 ${file}`]);
    await writeJson(file, '  \n');
    await assert.rejects(findCredentials({ env: {}, home }), new RegExp(`the Kaggle API token file ${file} is empty`));
    await writeJson(file, { username: 'u', key: KEY });
    await assert.rejects(findCredentials({ env: {}, home }), (e: Error) => {
      assert.match(e.message, /holds JSON, not a token/);
      assert.ok(!`${e.message} ${(e as StageError).hint} ${e.stack}`.includes(KEY));
      return true;
    });
  });
});

test('a token never shows in JSON, inspect or strings; redact() hides it', () => {
  const c = KaggleCredentials.token(TOKEN, '/x/access_token');
  for (const text of [JSON.stringify(c), inspect(c), String(c), `${c}`, JSON.stringify({ c }), inspect({ nested: c }, { depth: 5, showHidden: true })]) {
    assert.ok(!text.includes(TOKEN), text);
    assert.ok(text.includes('/x/access_token'), text);
  }
  assert.equal(c.redact(`Authorization: Bearer ${TOKEN}`), 'Authorization: Bearer ***');
});
