// The EC2 API client wiring: where requests go (region, endpoint), and credentials checked
// before the first request. The instance lifecycle built on it is ec2.ts.
import { EC2Client } from '@aws-sdk/client-ec2';
import { StageError } from '../../types.js';
import { describeAwsError } from './errors.js';

/** Where to send requests. Credentials come from the standard chain unless given (tests). */
export interface AwsConnection {
  readonly region: string;
  readonly endpoint?: string;
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string };
  readonly maxAttempts?: number;
}

/** The EC2 endpoint override: a param, else AWS_ENDPOINT_URL_EC2, else AWS_ENDPOINT_URL. */
export function ec2Endpoint(param?: string): string | undefined {
  return param || process.env.AWS_ENDPOINT_URL_EC2 || process.env.AWS_ENDPOINT_URL || undefined;
}

const REGION_RE = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$/;

/** The region from the param or the AWS chain (AWS_REGION, ~/.aws/config); a clear error if none. */
export async function resolveRegion(param?: string): Promise<string> {
  let region = param;
  if (!region) {
    const probe = new EC2Client({});
    try {
      region = await probe.config.region();
    } catch {
      region = undefined;
    } finally {
      probe.destroy();
    }
  }
  if (!region) throw describeAwsError(new Error('Region is missing'), { action: 'region' });
  if (!REGION_RE.test(region)) throw new StageError(`unknown AWS region "${region}"`, 'regions look like us-east-1, eu-west-1, ap-southeast-2');
  return region;
}

export function createEc2Client(conn: AwsConnection): EC2Client {
  const endpoint = ec2Endpoint(conn.endpoint);
  return new EC2Client({
    region: conn.region,
    ...(endpoint ? { endpoint } : {}),
    ...(conn.credentials ? { credentials: conn.credentials } : {}),
    ...(conn.maxAttempts ? { maxAttempts: conn.maxAttempts } : {}),
  });
}

/** Resolve credentials before the first request, so "no credentials" is said plainly and early. */
export async function assertCredentials(client: { config: { credentials: () => Promise<unknown> } }, region?: string): Promise<void> {
  try {
    await client.config.credentials();
  } catch (e) {
    throw describeAwsError(e, { action: 'credentials', ...(region ? { region } : {}) });
  }
}
