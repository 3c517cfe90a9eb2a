// Secrets never leak: the real binary runs the Kaggle and EC2 paths with recognisable fake
// secrets (successful runs and failing ones), then every file under .pipe/ (artifacts, meta,
// run records, logs, the report), what was pushed to a remote, and everything printed is
// searched for them; the Kaggle storage server (reached by a redirect) never sees them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, readdir, readFile, mkdtemp, writeFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Rig } from './rig.js';
import { startKaggleServer, zipOf, TEST_USER, TEST_KEY, TEST_TOKEN, type KaggleServer } from '../servers/kaggle-server.js';
import { startS3Server } from '../servers/s3.js';
import { s3ChildEnv } from '../helpers/remote-fixtures.js';
import { kaggleFiles } from '../helpers/jpegs.js';
import { Ec2Server, FAKE_ACCESS_KEY, FAKE_SECRET, startSshStub } from '../servers/ec2-server.js';

async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await allFiles(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

async function assertNowhere(secrets: readonly string[], dir: string, printed: string): Promise<number> {
  for (const s of secrets) assert.ok(!printed.includes(s), `a secret was printed:\n${printed}`);
  const files = await allFiles(dir);
  for (const f of files) {
    const bytes = await readFile(f);
    for (const s of secrets) assert.ok(!bytes.includes(s), `${path.relative(dir, f)} contains a secret`);
  }
  return files.length;
}

test('Kaggle and EC2 credentials appear in no file under .pipe/ and in no output, on success and on failure', { timeout: 120_000 }, async () => {
  const rig = await Rig.create();
  const files = await kaggleFiles({ cats: 6, dogs: 6, test: 3 });
  const train = new Map([...files].filter(([k]) => k.startsWith('train/')));
  const testSet = new Map([...files].filter(([k]) => k.startsWith('test/')));
  const kaggle = await startKaggleServer({ competitions: { comp: { files: { 'train.zip': await zipOf(train), 'test.zip': await zipOf(testSet) } } } });
  const ec2 = await Ec2Server.start({ publicIp: '127.0.0.1', publicDns: '' });
  const ssh = await startSshStub();
  const awsDir = await mkdtemp(path.join(os.tmpdir(), 'pipe-aws-'));
  try {
    await writeFile(path.join(awsDir, 'config'), '');
    await writeFile(path.join(awsDir, 'credentials'), '');
    const env = {
      // No token from this machine: this run uses the legacy key on purpose.
      KAGGLE_API_TOKEN: '',
      KAGGLE_CONFIG_DIR: awsDir,
      KAGGLE_USERNAME: TEST_USER,
      KAGGLE_KEY: TEST_KEY,
      KAGGLE_API_ENDPOINT: kaggle.url,
      AWS_ACCESS_KEY_ID: FAKE_ACCESS_KEY,
      AWS_SECRET_ACCESS_KEY: FAKE_SECRET,
      AWS_REGION: 'us-east-1',
      AWS_CONFIG_FILE: path.join(awsDir, 'config'),
      AWS_SHARED_CREDENTIALS_FILE: path.join(awsDir, 'credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
      PIPE_EC2_WAIT_MIN_DELAY: '0.01',
      PIPE_EC2_WAIT_MAX_DELAY: '0.02',
      PIPE_EC2_WAIT_MAX_SECONDS: '5',
    };
    await rig.write(
      'p.yaml',
      `stages:
  host:
    uses: provision
    with: { provider: ec2, endpoint: "${ec2.url}", ssh_port: ${ssh.port}, ssh_wait_seconds: 3, key_name: k, ssh_key: /keys/id_test }
  data:
    uses: fetch-kaggle
    with: { competition: comp, files: [train.zip, test.zip] }
  split:
    uses: split
    inputs: { images: data }
    with: { from: train, valid: 4, sample: { train: 2, valid: 2 }, test: test }
`,
    );
    const ok = await rig.run(['run', 'p.yaml'], env);
    assert.equal(ok.code, 0, ok.stderr);
    const again = await rig.run(['run', 'p.yaml'], env);
    assert.equal(again.code, 0, again.stderr);
    assertStorageClean(kaggle, [TEST_KEY, Buffer.from(`${TEST_USER}:${TEST_KEY}`).toString('base64')]);
    // Failures carry the servers' answers into messages: still no secret.
    const badKey = await rig.run(['run', 'p.yaml', '--only', 'data', '--force'], { ...env, KAGGLE_KEY: `${TEST_KEY}-wrong` });
    assert.equal(badKey.code, 1);
    assert.match(badKey.stderr, /invalid Kaggle credentials/);
    ec2.fail('DescribeInstances', { status: 401, code: 'AuthFailure', message: `AWS was not able to validate the provided access credentials (${FAKE_SECRET})` });
    const badAws = await rig.run(['run', 'p.yaml', '--only', 'host'], env);
    assert.equal(badAws.code, 1, badAws.stderr);
    assert.match(badAws.stderr, /✗ host .*(credential|AuthFailure|validate)/i);
    const printed = [ok, again, badKey, badAws].map((r) => r.stdout + r.stderr).join('\n');
    const n = await assertNowhere([TEST_KEY, FAKE_SECRET], rig.path('.pipe'), printed);
    assert.ok(n > 20, `only ${n} files searched`);
    // The access key id is not secret, but it is not written anywhere either.
    await assertNowhere([FAKE_ACCESS_KEY], rig.path('.pipe'), '');
  } finally {
    await ssh.close();
    await ec2.close();
    await kaggle.close();
    await rm(awsDir, { recursive: true, force: true });
    await rig.cleanup();
  }
});

/** The storage hop (a redirect to another origin) carries no Authorization and no secret. */
function assertStorageClean(kaggle: KaggleServer, secrets: readonly string[]): void {
  const storage = kaggle.requests.filter((r) => r.server === 'storage');
  assert.ok(storage.length > 0, 'nothing was downloaded from storage');
  for (const r of storage) {
    assert.equal(r.headers.authorization, undefined, `the Authorization header reached the storage server (${r.path})`);
    for (const s of secrets) assert.ok(!JSON.stringify(r).includes(s), `a secret reached the storage server (${r.path})`);
  }
}

const TOKEN_PIPELINE = `stages:
  data:
    uses: fetch-kaggle
    with: { competition: comp, files: [train.zip, test.zip] }
  split:
    uses: split
    inputs: { images: data }
    with: { from: train, valid: 4, sample: { train: 2, valid: 2 }, test: test }
`;

test('a Kaggle API token appears in no file under .pipe/, no output, no remote, no storage request', { timeout: 120_000 }, async () => {
  const rig = await Rig.create();
  const files = await kaggleFiles({ cats: 6, dogs: 6, test: 3 });
  const train = new Map([...files].filter(([k]) => k.startsWith('train/')));
  const testSet = new Map([...files].filter(([k]) => k.startsWith('test/')));
  const kaggle = await startKaggleServer({ competitions: { comp: { files: { 'train.zip': await zipOf(train), 'test.zip': await zipOf(testSet) } } } });
  const s3 = await startS3Server();
  const confDir = await mkdtemp(path.join(os.tmpdir(), 'pipe-kaggle-conf-'));
  const stale = 'KGAT_revoked_0f1e2d3c4b5a69788796a5b4';
  try {
    const tokenFile = path.join(confDir, 'access_token');
    await writeFile(tokenFile, `${TEST_TOKEN}\n`);
    await chmod(tokenFile, 0o600);
    const env = {
      ...s3ChildEnv(s3, 'S3-SECRET-unused-here-4d2a', 'tok'),
      KAGGLE_API_TOKEN: '',
      KAGGLE_USERNAME: '',
      KAGGLE_KEY: '',
      KAGGLE_CONFIG_DIR: confDir,
      KAGGLE_API_ENDPOINT: kaggle.url,
    };
    await rig.write('p.yaml', TOKEN_PIPELINE);
    const ok = await rig.run(['run', 'p.yaml'], env);
    assert.equal(ok.code, 0, ok.stderr);
    const api = kaggle.requests.filter((r) => r.server === 'api');
    assert.ok(api.length > 0 && api.every((r) => r.headers.authorization === `Bearer ${TEST_TOKEN}`), 'the token was not sent as Bearer');
    assertStorageClean(kaggle, [TEST_TOKEN]);
    const push = await rig.run(['push', 'p.yaml'], env);
    assert.equal(push.code, 0, push.stderr);
    // A refused token: the message says so and where it came from, and still shows no token.
    const bad = await rig.run(['run', 'p.yaml', '--only', 'data', '--force'], { ...env, KAGGLE_API_TOKEN: stale });
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(bad.stderr, /API token from the environment variable KAGGLE_API_TOKEN was refused \(HTTP 401\): it has expired or was revoked/);
    const printed = [ok, push, bad].map((r) => r.stdout + r.stderr).join('\n');
    const n = await assertNowhere([TEST_TOKEN, stale], rig.path('.pipe'), printed);
    assert.ok(n > 20, `only ${n} files searched`);
    const pushed = await assertNowhere([TEST_TOKEN, stale], s3.directory, '');
    assert.ok(pushed > 5, `only ${pushed} files on the remote`);
  } finally {
    await s3.close();
    await kaggle.close();
    await rm(confDir, { recursive: true, force: true });
    await rig.cleanup();
  }
});
