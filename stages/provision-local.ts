// `provision` with `provider: local`: this machine, as probed (CPU, memory, GPUs, tfjs backend).
import type { StageContext, StageResult } from '../runner/types.js';
import type { HostInfo, ProvisionParams } from './provision-types.js';

export async function provisionLocal(ctx: StageContext<ProvisionParams>): Promise<{ host: HostInfo; result: StageResult }> {
  const { probeLocalHost } = await import('./local-host.js');
  const f = await probeLocalHost();
  const gpus = f.gpus.length ? `${f.gpus.length} GPU${f.gpus.length > 1 ? 's' : ''} (${[...new Set(f.gpus)].join(', ')})` : 'no GPU';
  ctx.log.info(`local host: ${f.cpu}, ${f.cores} cores, ${f.memoryGb} GiB, ${gpus}; tfjs backend: ${f.backend}`);
  for (const note of f.backendNotes) ctx.log.debug(`backend: ${note}`);
  const host: HostInfo = { provider: 'local', address: 'localhost', cpu: f.cpu, cores: f.cores, memoryGb: f.memoryGb, gpus: f.gpus, backend: f.backend };
  return {
    host,
    result: {
      summary: `local: ${f.cores} cores, ${f.memoryGb} GiB, ${gpus}, ${f.backend}`,
      meta: { provider: 'local', backend: f.backend, gpus: f.gpus.length },
    },
  };
}
