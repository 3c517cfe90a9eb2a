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
