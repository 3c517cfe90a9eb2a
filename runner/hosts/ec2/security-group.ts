// The security group a launched instance gets: the named group in the launch VPC, created if
// absent with ingress on the SSH port only. An existing group is the user's: it is left alone,
// except that a given `ssh_cidr` is added when missing (the caller's address changed).
import {
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  type EC2Client,
  type SecurityGroup,
} from '@aws-sdk/client-ec2';
import type { Logger } from '../../types.js';
import { StageError } from '../../types.js';
import { errorCode } from './errors.js';

export interface SecurityGroupSpec {
  readonly name: string;
  readonly port: number;
  /** Allowed source; when absent a group created here allows the port from anywhere. */
  readonly cidr?: string;
  readonly subnetId?: string;
}

function allows(group: SecurityGroup, port: number, cidr: string): boolean {
  return (group.IpPermissions ?? []).some(
    (p) =>
      (p.IpProtocol === '-1' || (p.IpProtocol === 'tcp' && (p.FromPort ?? 0) <= port && (p.ToPort ?? 65535) >= port)) &&
      (p.IpRanges ?? []).some((r) => r.CidrIp === cidr),
  );
}

/**
 * The group named `spec.name` in the launch VPC (the subnet's, else the default VPC), created
 * if absent with ingress on the SSH port only. An existing group is left alone, except that a
 * given `cidr` is added when missing (the caller's address changed since the last run).
 */
export async function ensureSecurityGroup(client: EC2Client, spec: SecurityGroupSpec, log: Logger, signal?: AbortSignal): Promise<string> {
  const opts = signal ? { abortSignal: signal } : {};
  let vpcId: string | undefined;
  if (spec.subnetId) {
    const sn = await client.send(new DescribeSubnetsCommand({ SubnetIds: [spec.subnetId] }), opts);
    vpcId = sn.Subnets?.[0]?.VpcId;
    if (!vpcId) throw new StageError(`subnet ${spec.subnetId} not found`, 'check `subnet` and `region`');
  }
  let group: SecurityGroup | undefined;
  try {
    const res = vpcId
      ? await client.send(
          new DescribeSecurityGroupsCommand({
            Filters: [
              { Name: 'group-name', Values: [spec.name] },
              { Name: 'vpc-id', Values: [vpcId] },
            ],
          }),
          opts,
        )
      : await client.send(new DescribeSecurityGroupsCommand({ GroupNames: [spec.name] }), opts); // GroupNames: the default VPC
    group = res.SecurityGroups?.[0];
  } catch (e) {
    if (errorCode(e) !== 'InvalidGroup.NotFound') throw e;
  }
  const cidr = spec.cidr ?? '0.0.0.0/0';
  let groupId = group?.GroupId;
  let authorize = false;
  if (!groupId) {
    try {
      const created = await client.send(
        new CreateSecurityGroupCommand({
          GroupName: spec.name,
          Description: `pipe: SSH (tcp/${spec.port}) to pipeline GPU hosts`,
          ...(vpcId ? { VpcId: vpcId } : {}),
        }),
        opts,
      );
      groupId = created.GroupId;
    } catch (e) {
      if (errorCode(e) === 'VPCIdNotSpecified')
        throw new StageError('this region has no default VPC', 'set `subnet` to a subnet (with public IPs) of the VPC to use');
      throw e;
    }
    if (!groupId) throw new StageError(`CreateSecurityGroup returned no id for ${spec.name}`);
    log.info(`created security group ${spec.name} (${groupId}): tcp/${spec.port} from ${cidr}`);
    if (!spec.cidr)
      log.warn(`security group ${spec.name} allows SSH from anywhere (key login only); set \`ssh_cidr\` (e.g. your.ip.address/32) to restrict it`);
    authorize = true;
  } else if (spec.cidr && group && !allows(group, spec.port, spec.cidr)) {
    log.info(`security group ${spec.name} (${groupId}): adding tcp/${spec.port} from ${spec.cidr}`);
    authorize = true;
  }
  if (authorize) {
    try {
      await client.send(
        new AuthorizeSecurityGroupIngressCommand({
          GroupId: groupId,
          IpPermissions: [{ IpProtocol: 'tcp', FromPort: spec.port, ToPort: spec.port, IpRanges: [{ CidrIp: cidr, Description: 'pipe ssh' }] }],
        }),
        opts,
      );
    } catch (e) {
      if (errorCode(e) !== 'InvalidPermission.Duplicate') throw e;
    }
  }
  return groupId;
}
