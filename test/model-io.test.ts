// Checkpoint arrays (stages/vision/model-io.ts): written part by part, read back array by array.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, truncate } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadArrays, saveArrays } from '../stages/vision/model-io.js';

test('saveArrays / loadArrays: float32 and int32 arrays round-trip; a short .bin is refused; no temp file is left', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-model-io-'));
  try {
    const big = Float32Array.from({ length: 300_000 }, (_, i) => Math.sin(i) * 1e3);
    const arrays = [
      { name: 'steps', shape: [1], data: Int32Array.of(7) },
      { name: 'w', shape: [600, 500], data: big },
      { name: 'b', shape: [3], data: Float32Array.of(-1.5, 0, 2.25) },
    ];
    await saveArrays(dir, 'state', arrays);
    assert.deepEqual((await readdir(dir)).sort(), ['state.bin', 'state.json']);
    const back = await loadArrays(dir, 'state');
    assert.deepEqual(
      back.map((a) => [a.name, a.shape, a.data.constructor.name]),
      [
        ['steps', [1], 'Int32Array'],
        ['w', [600, 500], 'Float32Array'],
        ['b', [3], 'Float32Array'],
      ],
    );
    assert.deepEqual(back[0]!.data, arrays[0]!.data);
    assert.deepEqual(back[1]!.data, big);
    assert.deepEqual(back[2]!.data, arrays[2]!.data);
    await truncate(path.join(dir, 'state.bin'), 4 + 300_000 * 4);
    await assert.rejects(loadArrays(dir, 'state'), /state\.bin is shorter than state\.json says/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
