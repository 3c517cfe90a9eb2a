// Issue 15 item 12: no noise on every call. npm must not warn about the project's .npmrc on every
// `npx pipe` (which must still keep `npm ci` offline: onnxruntime-node's installer would fetch
// CUDA files), and an AWS command must not print the AWS SDK's 8-line Node-version notice,
// while other warnings still show.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { Ec2Server, useFakeAwsEnv } from './servers/ec2-server.js';
import { REPO, PIPE_BIN, collect } from './e2e/rig.js';

const npm = ((): string | undefined => {
  try {
    return execFileSync('npm', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 30_000 }).trim();
  } catch {
    return undefined;
  }
})();
const noNpm = npm ? false : 'npm is not on PATH';

test('npx pipe --version prints the version and no npm warning', { skip: noNpm, timeout: 60_000 }, async () => {
  const child = spawn('npx', ['--no-install', 'pipe', '--version'], { cwd: REPO, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const r = await collect(child);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout.trim(), /^\d+\.\d+\.\d+$/);
  assert.doesNotMatch(r.stderr, /npm warn|Unknown (project|user|env|cli) config/i, `npm ${npm}: ${r.stderr}`);
});

test('the .npmrc keeps npm ci offline with a setting npm knows: no install scripts run', { skip: noNpm, timeout: 60_000 }, async () => {
  const text = await readFile(`${REPO}/.npmrc`, 'utf8');
  const keys = text
    .split('\n')
    .filter((l) => l.trim() && !l.trim().startsWith('#'))
    .map((l) => l.split('=')[0]!.trim());
  assert.deepEqual(keys, ['ignore-scripts'], 'only keys npm itself reads (an unknown key warns on every npm call)');
  const got = execFileSync('npm', ['config', 'get', 'ignore-scripts'], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, npm_config_ignore_scripts: '' },
    timeout: 30_000,
  }).trim();
  assert.equal(got, 'true', 'npm reads ignore-scripts from the project .npmrc');
});

test('an AWS command prints no AWS SDK Node-version notice; the SDK can still be asked to', { timeout: 60_000 }, async () => {
  const restore = await useFakeAwsEnv();
  const server = await Ec2Server.start();
  try {
    const hosts = (env: Record<string, string> = {}) =>
      collect(
        spawn(process.execPath, [PIPE_BIN, 'hosts', '--endpoint', server.url], {
          env: { ...process.env, NO_COLOR: '1', ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      );
    const quiet = await hosts();
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.match(quiet.stdout, /no pipe instances/);
    assert.equal(quiet.stderr, '', 'nothing on stderr');
    // Only that notice is off: a user who turns the SDK's switch back gets it (on Node < 22, where it applies).
    if (Number(process.versions.node.split('.')[0]) < 22) {
      const loud = await hosts({ AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'false' });
      assert.equal(loud.code, 0, loud.stderr);
      assert.match(loud.stderr, /NodeVersionSupportWarning/);
    }
  } finally {
    await server.close();
    await restore();
  }
});
