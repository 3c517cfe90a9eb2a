// Failure paths of provision on EC2: each AWS error becomes one clear line with a hint, and no
// secret from the credentials or the SDK's messages leaks into a message, a hint or a log.
import { test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Ajv } from 'ajv';
import { provisionStage, type ProvisionParams } from '../stages/provision.js';
import { describeAwsError, redact } from '../runner/hosts/ec2/errors.js';
import { StageError } from '../runner/types.js';
import { makeTestContext } from './helpers/stage-context.js';
import { Ec2Server, useFakeAwsEnv, startSshStub, FAKE_SECRET, FAKE_ACCESS_KEY, type Ec2ServerOptions } from './servers/ec2-server.js';

const validate = new Ajv({ strict: true, useDefaults: true }).compile(provisionStage.params);

let server: Ec2Server;
let ssh: Awaited<ReturnType<typeof startSshStub>>;
let restoreEnv: () => Promise<void>;
let root: string;

before(async () => {
  restoreEnv = await useFakeAwsEnv();
  ssh = await startSshStub();
  root = await mkdtemp(path.join(os.tmpdir(), 'pipe-ec2-err-'));
});
after(async () => {
  await ssh.close();
  await restoreEnv();
  await rm(root, { recursive: true, force: true });
});
beforeEach(async () => {
  server = await Ec2Server.start({ publicIp: '127.0.0.1', publicDns: '' });
});
afterEach(async () => {
  await server.close();
});

function params(over: Record<string, unknown> = {}): ProvisionParams {
  const p: Record<string, unknown> = { provider: 'ec2', endpoint: server.url, ssh_port: ssh.port, ssh_wait_seconds: 2, key_name: 'k', ssh_key: '/k', ...over };
  assert.ok(validate(p), JSON.stringify(validate.errors));
  return p as unknown as ProvisionParams;
}

/** Run the stage expecting a StageError; returns it, after checking nothing secret is in it or the logs. */
async function failing(p: ProvisionParams): Promise<StageError> {
  const base = await makeTestContext(p, { workDir: path.join(root, 'work', 'k'), stageId: 'gpu' });
  const ctx = { ...base, pipelineName: 'dogscats' };
  try {
    await provisionStage.run(ctx);
  } catch (e) {
    assert.ok(e instanceof StageError, `not a StageError: ${(e as Error)?.stack}`);
    const text = JSON.stringify({ message: e.message, hint: e.hint, logs: base.logs, requests: server.requests });
    assert.ok(!text.includes(FAKE_SECRET), `secret leaked: ${text}`);
    assert.ok(!text.includes(FAKE_ACCESS_KEY), `access key id leaked: ${text}`);
    return e;
  } finally {
    await base.cleanup();
  }
  assert.fail('provision did not fail');
}

test('insufficient capacity: names the type and zone, suggests other types and zones', async () => {
  server.fail('RunInstances', {
    code: 'InsufficientInstanceCapacity',
    message:
      'We currently do not have sufficient g4dn.xlarge capacity in the Availability Zone you requested (us-east-1a). Our system will be working on provisioning additional capacity.',
  });
  const e = await failing(params());
  assert.match(e.message, /no capacity for g4dn\.xlarge in us-east-1/);
  assert.match(e.message, /InsufficientInstanceCapacity/);
  assert.match(e.hint ?? '', /g5\.xlarge/);
  assert.match(e.hint ?? '', /availability zone/);
  assert.equal(server.count('DescribeInstances') >= 1, true);
});

test('spot unavailable: suggests on-demand too', async () => {
  server.fail('RunInstances', { code: 'InsufficientInstanceCapacity', message: 'There is no Spot capacity available that matches your request.' });
  const e = await failing(params({ spot: true, instance_type: 'g6.xlarge' }));
  assert.match(e.message, /no spot capacity for g6\.xlarge/);
  assert.match(e.hint ?? '', /spot: false/);
  assert.match(e.hint ?? '', /g5\.xlarge/);
});

test('quota: VcpuLimitExceeded and InstanceLimitExceeded point at Service Quotas', async () => {
  server.fail('RunInstances', {
    code: 'VcpuLimitExceeded',
    message:
      'You have requested more vCPU capacity than your current vCPU limit of 0 allows for the instance bucket that the specified instance type belongs to.',
  });
  let e = await failing(params());
  assert.match(e.message, /quota/);
  assert.match(e.message, /VcpuLimitExceeded/);
  assert.match(e.hint ?? '', /Running On-Demand G and VT instances/);
  assert.match(e.hint ?? '', /Service Quotas/);

  server.fail('RunInstances', { code: 'InstanceLimitExceeded', message: 'Your quota allows for 0 more running instance(s).' });
  e = await failing(params({ instance_type: 'p3.2xlarge' }));
  assert.match(e.message, /InstanceLimitExceeded/);
  assert.match(e.hint ?? '', /P instances/);
});

test('auth: AuthFailure and UnauthorizedOperation, with secrets in the SDK message redacted', async () => {
  server.fail('DescribeInstances', {
    code: 'AuthFailure',
    message: `AWS was not able to validate the provided access credentials for ${FAKE_ACCESS_KEY} (secret ${FAKE_SECRET})`,
  });
  let e = await failing(params());
  assert.match(e.message, /AWS rejected the credentials \(AuthFailure/);
  assert.match(e.message, /\[redacted/);
  assert.match(e.hint ?? '', /aws sts get-caller-identity/);
  assert.equal(server.count('RunInstances'), 0);

  server.clearFaults();
  const blob = 'Zm9vYmFy'.repeat(40);
  server.fail('RunInstances', {
    code: 'UnauthorizedOperation',
    message: `You are not authorized to perform this operation. Encoded authorization failure message: ${blob}`,
  });
  e = await failing(params());
  assert.match(e.message, /AWS denied RunInstances/);
  assert.match(e.hint ?? '', /ec2:RunInstances/);
  assert.ok(!JSON.stringify(e).includes(blob));
});

test('no credentials: a clear message before any request', async () => {
  const restore = await useFakeAwsEnv({ credentials: false });
  try {
    const e = await failing(params());
    assert.equal(e.message, 'no AWS credentials found');
    assert.match(e.hint ?? '', /AWS_ACCESS_KEY_ID/);
    assert.match(e.hint ?? '', /AWS_PROFILE/);
    assert.equal(server.requests.length, 0, `requests were sent: ${server.actions().join(',')}`);
  } finally {
    await restore();
  }
});

test('no region, unknown region, unknown AMI type, unknown AMI id', async () => {
  const restore = await useFakeAwsEnv({ region: false });
  try {
    const e = await failing(params());
    assert.equal(e.message, 'no AWS region configured');
    assert.match(e.hint ?? '', /with\.region/);
  } finally {
    await restore();
  }
  const bad = params();
  (bad as unknown as Record<string, unknown>).region = 'mars-north'; // bypass the schema: resolveRegion checks too
  assert.match((await failing(bad)).message, /unknown AWS region "mars-north"/);

  let e = await failing(params({ ami_type: 'no-such-ami' }));
  assert.match(e.message, /no Deep Learning AMI parameter \/aws\/service\/deeplearning\/ami\/x86_64\/no-such-ami\/latest\/ami-id in us-east-1/);
  assert.match(e.hint ?? '', /get-parameters-by-path/);
  assert.equal(server.count('RunInstances'), 0);

  e = await failing(params({ ami: 'ami-0bbbbbbbbbbbbbbbb' }));
  assert.match(e.message, /AMI ami-0bbbbbbbbbbbbbbbb not found in us-east-1/);
  assert.match(e.hint ?? '', /per region/);
});

test('an instance that dies while starting is reported with its state reason', async () => {
  await server.close();
  const options: Ec2ServerOptions = {
    publicIp: '127.0.0.1',
    publicDns: '',
    onLaunch: (inst) => {
      inst.state = 'shutting-down';
      inst.stateReason = { code: 'Server.InsufficientInstanceCapacity', message: 'Server.InsufficientInstanceCapacity: Insufficient capacity.' };
    },
  };
  server = await Ec2Server.start(options);
  const e = await failing(params());
  assert.match(e.message, /went to "terminated" instead of "running": Server\.InsufficientInstanceCapacity/);
});

test('redact and describeAwsError units', () => {
  const saved = process.env.AWS_SECRET_ACCESS_KEY;
  process.env.AWS_SECRET_ACCESS_KEY = 'some-odd-secret-value';
  try {
    const text = redact(
      'key AKIAIOSFODNN7EXAMPLE secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY and some-odd-secret-value; Signature=abcdef0123 Credential=AKIA/2026 aws_secret_access_key = xyz',
    );
    assert.ok(!text.includes('AKIAIOSFODNN7EXAMPLE'));
    assert.ok(!text.includes('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'));
    assert.ok(!text.includes('some-odd-secret-value'));
    assert.ok(!text.includes('abcdef0123'));
    assert.ok(!text.includes('xyz'));
    // Ordinary text survives.
    assert.equal(redact('The instance ID i-0123456789abcdef0 does not exist in us-east-1'), 'The instance ID i-0123456789abcdef0 does not exist in us-east-1');
    assert.equal(
      redact('/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id'),
      '/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id',
    );
  } finally {
    if (saved === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
    else process.env.AWS_SECRET_ACCESS_KEY = saved;
  }
  const err = (name: string, message: string): Error => Object.assign(new Error(message), { name });
  assert.match(
    describeAwsError(err('Unsupported', 'Your requested instance type (g6e.xlarge) is not supported in your requested Availability Zone (us-east-1e).'), {
      action: 'RunInstances',
      instanceType: 'g6e.xlarge',
    }).hint ?? '',
    /availability zone/,
  );
  assert.match(
    describeAwsError(err('CredentialsProviderError', 'Token for profile dev is expired. To refresh this SSO session run aws sso login'), {
      action: 'credentials',
    }).message,
    /credentials could not be loaded: Token for profile dev is expired/,
  );
  assert.equal(
    describeAwsError(err('CredentialsProviderError', 'Could not load credentials from any providers'), { action: 'credentials' }).message,
    'no AWS credentials found',
  );
  assert.match(describeAwsError(err('InvalidKeyPair.NotFound', "The key pair 'x' does not exist"), { action: 'RunInstances' }).hint ?? '', /import-key-pair/);
  assert.match(
    describeAwsError(Object.assign(new Error('getaddrinfo ENOTFOUND ec2.xx-east-9.amazonaws.com'), { code: 'ENOTFOUND' }), {
      action: 'DescribeInstances',
      region: 'xx-east-9',
    }).message,
    /unknown region, or no network/,
  );
  assert.match(
    describeAwsError(err('SomethingNew', `boom ${FAKE_ACCESS_KEY}`), { action: 'RunInstances' }).message,
    /^AWS RunInstances failed: SomethingNew: boom \[redacted[^\]]*\]$/,
  );
});
