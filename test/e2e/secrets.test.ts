// Secrets never leak: the real binary runs the Kaggle and EC2 paths with recognisable fake
// secrets (successful runs and failing ones), then every file under .pipe/ (artifacts, meta,
// run records, logs, the report) and everything printed is searched for them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, mkdtemp, writeFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Rig } from './rig.js';
import { startKaggleServer, zipOf, TEST_USER, TEST_KEY } from '../servers/kaggle-server.js';
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
