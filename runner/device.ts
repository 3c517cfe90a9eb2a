// Which device computed a stage, as the engines report it ('onnx cuda:0 (Tesla T4)', 'onnx cpu
// (4 threads)', 'tfjs wasm (2 threads)'). Local stages run concurrently in one process, so each
// runs in its own scope (AsyncLocalStorage follows its awaits); `pipe exec` runs one stage per
// process and reads the process-wide list. The runner puts it into meta.json and the ✓ line.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { StageResult } from './types.js';

const scope = new AsyncLocalStorage<string[]>();
const processWide: string[] = [];

export function noteDevice(device: string): void {
  const used = scope.getStore() ?? processWide;
  if (!used.includes(device)) used.push(device);
}

export function devicesUsed(): readonly string[] {
  return processWide;
}

/** Run `fn` (a stage) collecting the devices its engines report. */
export async function withDeviceScope<T>(fn: () => Promise<T>): Promise<{ value: T; devices: readonly string[] }> {
  const used: string[] = [];
  const value = await scope.run(used, fn);
  return { value, devices: used };
}

/** A local stage's run, with the devices its engines computed on in its meta. */
export async function locally(run: () => Promise<StageResult | void>): Promise<StageResult | void> {
  const { value, devices } = await withDeviceScope(run);
  return devices.length ? { ...value, meta: { ...value?.meta, device: devices.join(', ') } } : value;
}

/**
 * The device a stage computed on and its warnings (a GPU host's CPU), from its meta (remote
 * stages: runner/hosts/remote.ts); for a Slurm job, its id, so the run record names it.
 */
export function deviceFacts(meta: Record<string, unknown> | undefined): { device?: string; warnings?: string[]; slurmJob?: string } {
  const device = meta?.['device'];
  const warnings = meta?.['warnings'];
  const slurm = meta?.['slurm'] as { jobId?: unknown; cluster?: unknown } | undefined;
  return {
    ...(typeof device === 'string' ? { device } : {}),
    ...(typeof slurm?.jobId === 'string' ? { slurmJob: `${String(slurm.cluster ?? '')}:${slurm.jobId}` } : {}),
    ...(Array.isArray(warnings) && warnings.length ? { warnings: warnings.map(String) } : {}),
  };
}
