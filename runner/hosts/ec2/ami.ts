// Which AMI to launch: an explicit `ami`, or the latest AWS Deep Learning AMI of `ami_type`,
// read from its public SSM parameter. The parameter is per region and always points at the
// newest build, so pipelines never carry stale AMI ids.
//
// Default type: `base-oss-nvidia-driver-gpu-ubuntu-22.04` ("Deep Learning Base OSS Nvidia
// Driver GPU AMI (Ubuntu 22.04)": NVIDIA driver + CUDA, for G4dn/G5/G6/G6e/P4d/P5), the name
// under which that AMI's parameter is documented and used in practice. The `-gpu`-less
// `base-oss-nvidia-driver-ubuntu-22.04` is rarely seen; neither was checked against live AWS
// (no network here). A wrong `ami_type` fails with ParameterNotFound and a hint to list them.
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { StageError } from '../../types.js';
import type { AwsConnection } from './connection.js';
import { describeAwsError } from './errors.js';

export const DEFAULT_AMI_TYPE = 'base-oss-nvidia-driver-gpu-ubuntu-22.04';

export function dlamiParameterName(amiType: string): string {
  return `/aws/service/deeplearning/ami/x86_64/${amiType}/latest/ami-id`;
}

/** The SSM endpoint override: a param, else AWS_ENDPOINT_URL_SSM, else AWS_ENDPOINT_URL. */
export function ssmEndpoint(param?: string): string | undefined {
  return param || process.env.AWS_ENDPOINT_URL_SSM || process.env.AWS_ENDPOINT_URL || undefined;
}

export const AMI_ID_RE = /^ami-[0-9a-f]{8,17}$/;

export interface ResolvedAmi {
  readonly imageId: string;
  /** The SSM parameter it came from, when it did not come from `ami`. */
  readonly parameter?: string;
}

export async function resolveAmi(conn: AwsConnection, choice: { readonly ami?: string; readonly amiType: string }, signal?: AbortSignal): Promise<ResolvedAmi> {
  if (choice.ami) {
    if (!AMI_ID_RE.test(choice.ami)) throw new StageError(`"${choice.ami}" is not an AMI id`, 'AMI ids look like ami-0123456789abcdef0');
    return { imageId: choice.ami };
  }
  const parameter = dlamiParameterName(choice.amiType);
  const endpoint = ssmEndpoint(conn.endpoint);
  const client = new SSMClient({
    region: conn.region,
    ...(endpoint ? { endpoint } : {}),
    ...(conn.credentials ? { credentials: conn.credentials } : {}),
    ...(conn.maxAttempts ? { maxAttempts: conn.maxAttempts } : {}),
  });
  try {
    const res = await client.send(new GetParameterCommand({ Name: parameter }), signal ? { abortSignal: signal } : {});
    const value = res.Parameter?.Value?.trim();
    if (!value || !AMI_ID_RE.test(value))
      throw new StageError(`SSM parameter ${parameter} holds no AMI id (${JSON.stringify(value ?? '')})`, 'set `ami` explicitly');
    return { imageId: value, parameter };
  } catch (e) {
    throw describeAwsError(e, { action: 'GetParameter', region: conn.region, amiParameter: parameter, ...(endpoint ? { endpoint } : {}) });
  } finally {
    client.destroy();
  }
}
