// AWS SDK failures -> one clear StageError each: what went wrong, in the user's terms, and what
// to do about it. SDK messages are passed through `redact` first: they can echo request
// material (access key ids, signatures, encoded authorization messages) that must not reach a
// terminal, a log file or meta.json.
import { StageError } from '../../types.js';

/** What the failing call was about, so the message can name it. */
export interface AwsErrorContext {
  /** The operation, e.g. "RunInstances", "GetParameter", "credentials". */
  readonly action: string;
  readonly region?: string;
  readonly instanceType?: string;
  readonly instanceId?: string;
  readonly spot?: boolean;
  readonly ami?: string;
  readonly amiParameter?: string;
  readonly endpoint?: string;
}

const CAPACITY = new Set([
  'InsufficientInstanceCapacity',
  'InsufficientCapacity',
  'InsufficientHostCapacity',
  'InsufficientReservedInstanceCapacity',
  'InsufficientCapacityOnHost',
  'SpotMaxPriceTooLow',
  'InsufficientFreeAddressesInSubnet',
  'Unsupported', // "Your requested instance type is not supported in your requested Availability Zone"
]);

const QUOTA = new Set([
  'VcpuLimitExceeded',
  'InstanceLimitExceeded',
  'MaxSpotInstanceCountExceeded',
  'PendingVerification',
  'ResourceLimitExceeded',
  'SecurityGroupLimitExceeded',
  'RulesPerSecurityGroupLimitExceeded',
]);

const AUTH = new Set([
  'AuthFailure',
  'UnauthorizedOperation',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'ExpiredTokenException',
  'RequestExpired',
  'AccessDenied',
  'AccessDeniedException',
  'UnrecognizedClientException',
  'OptInRequired',
  'Blocked',
]);

const SECRET_ENV = ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_SECURITY_TOKEN', 'AWS_ACCESS_KEY_ID'];

/**
 * Remove anything secret-looking: access key ids, values of the secret env variables, signatures,
 * credentials scopes, session tokens and the long base64 blobs EC2 puts in "Encoded
 * authorization failure message" (not a secret, but it describes the caller's policies).
 */
export function redact(text: string): string {
  let out = text;
  for (const name of SECRET_ENV) {
    const value = process.env[name];
    if (value && value.length >= 4) out = out.split(value).join('[redacted]');
  }
  return (
    out
      .replace(/\b(?:AKIA|ASIA|AIDA|AROA|ANPA|AGPA)[A-Z0-9]{12,}\b/g, '[redacted-key-id]')
      .replace(
        /((?:aws_)?secret_?access_?key|secretAccessKey|sessionToken|session_token|x-amz-security-token|X-Amz-Signature|Signature|Credential)(["']?\s*[:=]\s*["']?)[^\s"',&]+/gi,
        '$1$2[redacted]',
      )
      .replace(/(Encoded authorization failure message:\s*)\S+/gi, '$1[omitted: decode with `aws sts decode-authorization-message`]')
      // A bare 40-character mixed-case base64 run: the shape of a secret access key.
      .replace(
        /(?<![A-Za-z0-9+/])(?=[A-Za-z0-9+/]{0,39}[A-Z])(?=[A-Za-z0-9+/]{0,39}[a-z])(?=[A-Za-z0-9+/]{0,39}[0-9])[A-Za-z0-9+/]{40}(?![A-Za-z0-9+/=])/g,
        '[redacted]',
      )
      .replace(/\b[A-Za-z0-9+/_-]{120,}={0,2}/g, '[redacted]')
  );
}

/** The SDK's error code ("InsufficientInstanceCapacity"), or the Node error code ("ENOTFOUND"). */
export function errorCode(e: unknown): string | undefined {
  if (!e || typeof e !== 'object') return undefined;
  const err = e as { name?: unknown; Code?: unknown; code?: unknown; __type?: unknown };
  if (typeof err.Code === 'string') return err.Code;
  if (typeof err.name === 'string' && err.name !== 'Error' && err.name !== 'TypeError') return err.name;
  if (typeof err.code === 'string') return err.code;
  return undefined;
}

function messageOf(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return redact(m.split('\n')[0] ?? '').slice(0, 400);
}

function networkCode(e: unknown): string | undefined {
  let cur: unknown = e;
  for (let i = 0; i < 4 && cur && typeof cur === 'object'; i++) {
    const c = (cur as { code?: unknown }).code;
    if (typeof c === 'string' && /^E[A-Z]+$/.test(c)) return c;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

const ALTERNATIVES: Readonly<Record<string, readonly string[]>> = {
  'g4dn.xlarge': ['g5.xlarge', 'g6.xlarge', 'g4dn.2xlarge'],
  'g5.xlarge': ['g6.xlarge', 'g4dn.xlarge', 'g5.2xlarge'],
  'g6.xlarge': ['g5.xlarge', 'g4dn.xlarge', 'g6.2xlarge'],
  'g6e.xlarge': ['g6.xlarge', 'g5.xlarge'],
  'p3.2xlarge': ['g5.xlarge', 'g6.xlarge'],
};

function alternativesFor(type: string | undefined): string {
  const alts = type ? ALTERNATIVES[type] : undefined;
  return alts ? alts.join(', ') : 'another size or family (g4dn, g5, g6)';
}

function where(ctx: AwsErrorContext): string {
  return ctx.region ? ` in ${ctx.region}` : '';
}

/** Turn any failure of an AWS call into a StageError with a message and a hint. */
export function describeAwsError(e: unknown, ctx: AwsErrorContext): StageError {
  if (e instanceof StageError) return e;
  const code = errorCode(e) ?? 'Error';
  const msg = messageOf(e);
  const type = ctx.instanceType ?? 'the instance type';

  if ((code === 'CredentialsProviderError' || code === 'TokenProviderError') && !/Could not load credentials from any providers/i.test(msg)) {
    // A profile was found but its credentials could not be produced (expired SSO session, bad process).
    return new StageError(
      `AWS credentials could not be loaded: ${msg}`,
      'refresh them (`aws sso login`, `aws configure`) or check AWS_PROFILE; `aws sts get-caller-identity` tests them',
    );
  }
  if (code === 'CredentialsProviderError' || /Could not load credentials/i.test(msg)) {
    return new StageError(
      'no AWS credentials found',
      'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE for a profile made with `aws configure` (or `aws sso login`)',
    );
  }
  if (/Region is missing/i.test(msg)) {
    return new StageError('no AWS region configured', 'set `with.region` on the provision stage, or AWS_REGION, or `region` in ~/.aws/config');
  }
  if (CAPACITY.has(code)) {
    const spot = ctx.spot ? 'spot capacity' : 'capacity';
    const spotHint = ctx.spot ? '; or run on-demand (`spot: false`)' : '';
    return new StageError(
      `AWS has no ${spot} for ${type}${where(ctx)} right now (${code}: ${msg})`,
      `try another instance type (${alternativesFor(ctx.instanceType)}), another availability zone (\`subnet:\` in a different zone) or region, or retry later${spotHint}`,
    );
  }
  if (QUOTA.has(code)) {
    const family = ctx.instanceType?.[0]?.toUpperCase();
    const quota =
      family === 'P'
        ? '"Running On-Demand P instances"'
        : family === 'G'
          ? '"Running On-Demand G and VT instances"'
          : 'the vCPU quota for this instance family';
    const which = ctx.spot ? 'the matching Spot Instance Requests quota' : quota;
    return new StageError(
      `your AWS account's quota does not allow ${type}${where(ctx)} (${code}: ${msg})`,
      `request an increase of ${which} (vCPUs) in the Service Quotas console${ctx.region ? ` for ${ctx.region}` : ''}; new accounts often start at 0 vCPUs for GPU instances. Or stop other instances (\`pipe hosts\`, \`pipe down\`)`,
    );
  }
  if (AUTH.has(code)) {
    const denied = code === 'UnauthorizedOperation' || code === 'AccessDenied' || code === 'AccessDeniedException';
    const optIn = code === 'OptInRequired';
    return new StageError(
      denied
        ? `AWS denied ${ctx.action}: your credentials lack permission (${code})`
        : optIn
          ? `AWS says the account is not subscribed to this service or region (${code})`
          : `AWS rejected the credentials (${code}: ${msg})`,
      denied
        ? `grant ec2:${ctx.action} (and ec2:Describe*, ssm:GetParameter) to the IAM user or role; \`aws sts get-caller-identity\` shows which identity is used`
        : optIn
          ? 'enable the region in the account settings, or use another region'
          : 'check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE (`aws sts get-caller-identity`); expired session credentials need a refresh (`aws sso login`)',
    );
  }
  if (code === 'ParameterNotFound' || code === 'InvalidAMIID.NotFound' || code === 'InvalidAMIID.Malformed' || code === 'InvalidAMIID.Unavailable') {
    const what = ctx.amiParameter ? `no Deep Learning AMI parameter ${ctx.amiParameter}` : `AMI ${ctx.ami ?? ''} not found`;
    return new StageError(
      `${what}${where(ctx)} (${code})`,
      ctx.amiParameter
        ? 'check `ami_type` (e.g. base-oss-nvidia-driver-gpu-ubuntu-22.04); list them with `aws ssm get-parameters-by-path --path /aws/service/deeplearning/ami/x86_64`'
        : 'AMI ids are per region: check `ami` and `region`, or leave `ami` out to use the latest Deep Learning AMI',
    );
  }
  if (code === 'InvalidKeyPair.NotFound') {
    return new StageError(
      `key pair not found${where(ctx)} (${msg})`,
      'create or import it: `aws ec2 import-key-pair --key-name NAME --public-key-material fileb://~/.ssh/id_ed25519.pub`; key pairs are per region',
    );
  }
  if (code === 'InvalidSubnetID.NotFound' || code === 'InvalidGroup.NotFound' || code === 'InvalidVpcID.NotFound') {
    return new StageError(`${msg} (${code})`, '`subnet` and `security_group` must exist in the chosen region');
  }
  if (code === 'InvalidParameterValue' || code === 'InvalidParameterCombination') {
    if (/instance ?type/i.test(msg))
      return new StageError(
        `EC2 does not accept instance type ${type}${where(ctx)} (${msg})`,
        `check the name (e.g. g4dn.xlarge) and that it exists in this region; alternatives: ${alternativesFor(ctx.instanceType)}`,
      );
    return new StageError(`EC2 ${ctx.action} rejected a parameter: ${msg}`, 'check the provision stage parameters');
  }
  if (code === 'RequestLimitExceeded' || code === 'Throttling' || code === 'ThrottlingException') {
    return new StageError(`EC2 is throttling requests (${code})`, 'wait a minute and re-run');
  }
  if (code === 'TimeoutError' && /Waiter/i.test(msg)) {
    return new StageError(
      `instance ${ctx.instanceId ?? ''} did not reach "running" in time`,
      `look at it: \`aws ec2 describe-instances --instance-ids ${ctx.instanceId ?? 'ID'}${ctx.region ? ` --region ${ctx.region}` : ''}\``,
    );
  }
  const net = networkCode(e);
  if (net === 'ENOTFOUND' || net === 'EAI_AGAIN') {
    return ctx.endpoint
      ? new StageError(`cannot resolve the AWS endpoint ${ctx.endpoint} (${net})`, 'check `endpoint` / AWS_ENDPOINT_URL_EC2')
      : new StageError(`cannot reach AWS${where(ctx)} (${net}): unknown region, or no network`, 'check `region` (e.g. us-east-1) and the network connection');
  }
  if (net === 'ECONNREFUSED' || net === 'ECONNRESET' || net === 'ETIMEDOUT' || net === 'EHOSTUNREACH') {
    return new StageError(
      `cannot reach the AWS endpoint${ctx.endpoint ? ` ${ctx.endpoint}` : where(ctx)} (${net})`,
      'check the network, a proxy, or `endpoint` / AWS_ENDPOINT_URL_EC2',
    );
  }
  return new StageError(`AWS ${ctx.action} failed: ${code === 'Error' ? '' : `${code}: `}${msg}`);
}
