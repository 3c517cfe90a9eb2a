// Which device computed a stage, as the engines report it ('onnx cuda:0 (Tesla T4)', 'onnx cpu
// (4 threads)', 'tfjs wasm (2 threads)'). Local stages run concurrently in one process, so each
// runs in its own scope (AsyncLocalStorage follows its awaits); `pipe exec` runs one stage per
// process and reads the process-wide list. The runner puts it into meta.json and the ✓ line.
import { AsyncLocalStorage } from 'node:async_hooks';

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
