// Secrets never leak: the real binary runs the Kaggle and EC2 paths with recognisable fake
// secrets (successful runs and failing ones), then every file under .pipe/ (artifacts, meta,
// run records, logs, the report), what was pushed to a remote, and everything printed is
// searched for them; the Kaggle storage server (reached by a redirect) never sees them.
// Declared secrets (`secrets: [NAME]`) reach a `runs_on` host over the ssh session's stdin
// only: not its disk, not a command line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, readdir, readFile, mkdtemp, realpath, writeFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Rig, REPO } from './rig.js';
import { startSshd, sshdUnavailable } from '../servers/sshd.js';
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
    ec2.fail('DescribeInstances', {
      status: 401,
      code: 'AuthFailure',
      message: `AWS was not able to validate the provided access credentials (${FAKE_SECRET})`,
    });
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

const SECRET_VALUE = 'sk-live-9f8e7d6c5b4a39281706f5e4d3c2b1a0-DECLARED';
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

test(
  'declared secrets reach a runs_on host over ssh stdin only: no file there or under .pipe/, no output, no command line holds them',
  { skip: sshdUnavailable(), timeout: 180_000 },
  async () => {
    const sshd = await startSshd();
    const rig = await Rig.create();
    const files = await kaggleFiles({ cats: 3, dogs: 3, test: 0 });
    const kaggle = await startKaggleServer({
      competitions: { comp: { files: { 'train.zip': await zipOf(new Map([...files].filter(([k]) => k.startsWith('train/')))) } } },
    });
    try {
      // Every ssh the runner starts (its own, and rsync's) goes through this logger of argv.
      const argvLog = rig.path('ssh-argv.log');
      await rig.write('bin/ssh', `#!/bin/sh\nprintf '%s\\n' "$*" >> '${argvLog}'\nexec /usr/bin/ssh "$@"\n`);
      await chmod(rig.path('bin/ssh'), 0o755);
      const workspace = rig.path('host-workspace');
      await rig.write(
        'p.yaml',
        `name: sec
stages:
  gpu:
    uses: provision
    with: { provider: ssh, address: 127.0.0.1, ssh_user: root, ssh_port: ${sshd.port}, ssh_key: ${sshd.userKey}, remote_dir: ${workspace}, ssh_wait_seconds: 5, pipe_path: ${REPO} }
  data:
    uses: fetch-kaggle
    runs_on: gpu
    with: { competition: comp, files: [train.zip], endpoint: "${kaggle.url}" }
  call:
    uses: command
    runs_on: gpu
    secrets: [MY_API_TOKEN]
    with:
      workdir: out
      # what every process on the machine shows while the stage runs (the host is this machine)
      run: 'printf %s "$MY_API_TOKEN" | sha256sum | cut -c1-64 > token.sha256; ps -eo args > ps.txt'
`,
      );
      const env = {
        PATH: `${rig.path('bin')}:${process.env.PATH ?? ''}`,
        MY_API_TOKEN: SECRET_VALUE,
        KAGGLE_API_TOKEN: TEST_TOKEN,
        KAGGLE_USERNAME: '',
        KAGGLE_KEY: '',
        KAGGLE_CONFIG_DIR: rig.path('no-kaggle-config'),
      };
      const r = await rig.run(['run', 'p.yaml'], env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /call \| running on 127\.0\.0\.1/);
      // The host's stage saw the value (sshd gives a session none of the runner's environment).
      assert.equal((await rig.read('.pipe/latest/sec/call/token.sha256')).trim(), sha256(SECRET_VALUE));
      // fetch-kaggle declares its credentials: the token reached it on the host too.
      const api = kaggle.requests.filter((q) => q.server === 'api');
      assert.ok(api.length > 0 && api.every((q) => q.headers.authorization === `Bearer ${TEST_TOKEN}`), 'the Kaggle token did not reach the host');
      // ps while the stage ran saw the runner's ssh and pipe exec on the host, with no value.
      const ps = await rig.read('.pipe/latest/sec/call/ps.txt');
      assert.match(ps, / exec .*job\.json/);
      const argv = await readFile(argvLog, 'utf8');
      assert.match(argv, / exec .*job\.json/);
      // Names are recorded, values nowhere.
      const meta = JSON.parse(await readFile(path.join(path.dirname(await realpath(rig.path('.pipe/latest/sec/call'))), 'meta.json'), 'utf8')) as {
        secrets?: string[];
      };
      assert.deepEqual(meta.secrets, ['MY_API_TOKEN']);
      const start = (await rig.runRecords())[0]!.find((e) => e.type === 'run-start') as { stages: Record<string, { secrets?: string[] }> };
      assert.deepEqual(start.stages.call?.secrets, ['MY_API_TOKEN']);
      assert.deepEqual(start.stages.data?.secrets, ['KAGGLE_API_TOKEN', 'KAGGLE_KEY', 'KAGGLE_USERNAME']);
      const status = await rig.run(['status', 'p.yaml', '--json'], env);
      const printed = [r.stdout, r.stderr, status.stdout, status.stderr, argv].join('\n');
      const secrets = [SECRET_VALUE, TEST_TOKEN];
      const n = await assertNowhere(secrets, rig.path('.pipe'), printed);
      assert.ok(n > 10, `only ${n} files searched`);
      const onHost = await assertNowhere(secrets, workspace, '');
      assert.ok(onHost > 3, `only ${onHost} files on the host`);
    } finally {
      await kaggle.close();
      await sshd.close();
      await rig.cleanup();
    }
  },
);

const MISSING_PIPELINE = `stages:
  prep:
    uses: command
    with: { run: 'echo prep > "$PIPE_OUT/prep.txt"' }
  call:
    uses: command
    inputs: { prep: prep }
    secrets: [MY_API_TOKEN]
    with: { run: 'printf %s "$MY_API_TOKEN" | wc -c > "$PIPE_OUT/length.txt"' }
`;

test('a declared secret that is not set stops the run before any stage starts, located, exit 2; a cached stage needs none', async () => {
  const rig = await Rig.create();
  try {
    await rig.write('p.yaml', MISSING_PIPELINE);
    for (const unset of [{}, { MY_API_TOKEN: '' }]) {
      const r = await rig.run(['run', 'p.yaml'], { MY_API_TOKEN: '', ...unset });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^p\.yaml:8:15: stages\.call\.secrets\[0\]: MY_API_TOKEN is not set in the environment pipe runs in \(stage call declares it\)$/m);
      assert.doesNotMatch(r.stderr, /running|internal error|at .*\.js:\d+/);
      assert.deepEqual(await readdir(rig.path('.pipe/cache')).catch(() => []), [], 'a stage ran');
    }
    const status = await rig.run(['status', 'p.yaml'], { MY_API_TOKEN: '' });
    assert.match(status.stdout, /call .*needs MY_API_TOKEN, not set/);
    const ok = await rig.run(['run', 'p.yaml'], { MY_API_TOKEN: 'abc' });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((await rig.read('.pipe/latest/p/call/length.txt')).trim(), '3');
    // From the cache, nothing needs the value.
    const again = await rig.run(['run', 'p.yaml'], { MY_API_TOKEN: '' });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /2 cached/);
    const forced = await rig.run(['run', 'p.yaml', '--only', 'call', '--force'], { MY_API_TOKEN: '' });
    assert.equal(forced.code, 2, forced.stderr);
    assert.match(forced.stderr, /MY_API_TOKEN is not set/);
  } finally {
    await rig.cleanup();
  }
});

test('with --pull the stage itself refuses to start without its secret, naming it and where it is declared', { timeout: 60_000 }, async () => {
  const rig = await Rig.create();
  const s3 = await startS3Server();
  try {
    await rig.write('p.yaml', MISSING_PIPELINE);
    const r = await rig.run(['run', 'p.yaml', '--pull'], { ...s3ChildEnv(s3, 'S3-SECRET-pull-7c1e', 'sec'), MY_API_TOKEN: '' });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /✓ prep/);
    assert.match(r.stderr, /✗ call p\.yaml:8:15: stages\.call\.secrets\[0\]: MY_API_TOKEN is not set/);
    assert.doesNotMatch(r.stderr, /▶ call/);
  } finally {
    await s3.close();
    await rig.cleanup();
  }
});

test('validate: a secret-looking literal under env: is a located warning pointing to secrets:, and secrets: takes names only', async () => {
  const rig = await Rig.create();
  try {
    await rig.write(
      'p.yaml',
      `secrets: [SHARED_TOKEN]
stages:
  call:
    uses: command
    with:
      run: 'true'
      env: { API_TOKEN: "tok-literal-1234", DB_PASSWORD: "hunter2", REGION: eu }
`,
    );
    const v = await rig.run(['validate', 'p.yaml']);
    assert.equal(v.code, 0, v.stderr);
    assert.match(
      v.stderr,
      /^p\.yaml:7:25: stages\.call\.with\.env\.API_TOKEN: warning: API_TOKEN looks like a secret written into the pipeline: its value is stored in meta\.json, the run record and what `pipe push` uploads\. Declare it instead \(`secrets: \[API_TOKEN\]` on the stage\)/m,
    );
    assert.match(v.stderr, /stages\.call\.with\.env\.DB_PASSWORD: warning/);
    assert.doesNotMatch(v.stderr, /REGION/);
    // The warning does not print the line it is about: that would show the value.
    assert.doesNotMatch(v.stderr, /tok-literal-1234|hunter2/);
    // The pipeline's own secrets apply to every stage, located at the top.
    const run = await rig.run(['run', 'p.yaml'], { SHARED_TOKEN: '' });
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /stages\.call\.with\.env\.API_TOKEN: warning/);
    assert.doesNotMatch(run.stderr, /tok-literal-1234|hunter2/);
    assert.match(run.stderr, /^p\.yaml:1:11: secrets\[0\]: SHARED_TOKEN is not set in the environment pipe runs in \(declared for every stage\)$/m);

    await rig.write('bad.yaml', `stages:\n  call:\n    uses: command\n    secrets: [API_TOKEN, "sk-123 value"]\n    with: { run: 'true' }\n`);
    const bad = await rig.run(['validate', 'bad.yaml']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(
      bad.stderr,
      /bad\.yaml:4:26: stages\.call\.secrets\[1\]: must be the name of an environment variable \(letters, digits and '_'\), not its value/,
    );
  } finally {
    await rig.cleanup();
  }
});
