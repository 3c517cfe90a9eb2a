// The device a stage computed on (runner/device.ts): stages running at the same time in one
// process each see only what their own engines reported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { noteDevice, withDeviceScope } from '../runner/device.js';

test('concurrent stages each collect their own devices, once each', async () => {
  const stage = (devices: string[]) => async () => {
    for (const d of devices) {
      await sleep(5);
      noteDevice(d);
      noteDevice(d);
    }
    return devices.length;
  };
  const [a, b, none] = await Promise.all([
    withDeviceScope(stage(['onnx cpu (2 threads)', 'tfjs wasm (2 threads)'])),
    withDeviceScope(stage(['onnx cuda:0 (Tesla T4)'])),
    withDeviceScope(stage([])),
  ]);
  assert.deepEqual(a, { value: 2, devices: ['onnx cpu (2 threads)', 'tfjs wasm (2 threads)'] });
  assert.deepEqual(b, { value: 1, devices: ['onnx cuda:0 (Tesla T4)'] });
  assert.deepEqual(none.devices, []);
});

test('on a GPU host whose tfjs-node-gpu install failed, the tfjs device says why it is not used', async () => {
  const { execFileSync } = await import('node:child_process');
  // In a child: the backend choice is process-wide, and it reads the host's environment.
  const script = `
    const { withDeviceScope } = await import(${JSON.stringify(new URL('../runner/device.js', import.meta.url).href)});
    const { selectBackend } = await import(${JSON.stringify(new URL('../stages/vision/backend.js', import.meta.url).href)});
    const r = await withDeviceScope(() => selectBackend('auto'));
    console.log(JSON.stringify(r.devices));`;
  const run = (env: Record<string, string>): string[] =>
    JSON.parse(
      execFileSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, ...env }, encoding: 'utf8' })
        .trim()
        .split('\n')
        .pop()!,
    ) as string[];
  const [device] = run({ PIPE_GPU_NAME: 'Tesla T4', PIPE_TFJS_GPU_FAILED: 'npm error code ENOTFOUND' });
  assert.match(device ?? '', /^tfjs (wasm|cpu) \((\d+ threads; )?tensorflow-gpu: its install on this host failed \(npm error code ENOTFOUND\)\)$/);
  // Without a GPU nothing is said about it.
  assert.match(run({ PIPE_GPU_NAME: '', PIPE_TFJS_GPU_FAILED: '' })[0] ?? '', /^tfjs (wasm|cpu)( \(\d+ threads\))?$/);
});
