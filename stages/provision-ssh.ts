// `provision` with `provider: ssh`: a machine the user already has, at `address`. pipe checks
// only that SSH answers there and records how to log in (the key's path, never its content).
import type { StageContext, StageResult } from '../runner/types.js';
import { StageError } from '../runner/types.js';
import { hostClients, sshKeyPath } from '../runner/stage-api.js';
import type { HostInfo, ProvisionParams } from './provision-types.js';

/** How long to wait for SSH (`ssh_wait_seconds`) and how often to knock: a tenth of that, 0.1 to 3 s. */
export function sshWaitTiming(waitSeconds: number): { timeoutMs: number; intervalMs: number } {
  const timeoutMs = waitSeconds * 1000;
  return { timeoutMs, intervalMs: Math.min(3000, Math.max(100, Math.floor(timeoutMs / 10))) };
}

/** `provider: ssh`: a machine the user already has; pipe only checks that SSH answers. */
export async function provisionSsh(ctx: StageContext<ProvisionParams>): Promise<{ host: HostInfo; result: StageResult }> {
  const p = ctx.params;
  if (!p.address) throw new StageError('provider ssh needs `address`: the host name or IP of the machine');
  const { waitForSsh } = await hostClients.ssh();
  const ssh = await waitForSsh({ host: p.address, port: p.ssh_port, ...sshWaitTiming(p.ssh_wait_seconds), signal: ctx.signal });
  ctx.log.info(`SSH answers on ${p.address}:${p.ssh_port} (${ssh.banner})`);
  const sshKey = sshKeyPath(p.ssh_key, ctx.pipelineDir);
  const host: HostInfo = {
    provider: 'ssh',
    address: p.address,
    sshUser: p.ssh_user,
    sshPort: p.ssh_port,
    ...(sshKey ? { sshKey } : {}),
    cpu: 'unknown',
    cores: 0,
    memoryGb: 0,
    gpus: [],
    backend: 'auto',
  };
  return { host, result: { summary: `ssh ${p.ssh_user}@${p.address}:${p.ssh_port}`, meta: { provider: 'ssh' } } };
}
