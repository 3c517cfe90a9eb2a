// What pipe reads from a host before placing a stage there (runner/hosts/host-probe.ts), run
// through a real shell with stand-in tools on PATH.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { nodeSuitable, parseProbe, probeScript } from '../runner/hosts/host-probe.js';

test('the probe names the GPUs nvidia-smi -L lists and the Node on PATH', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-probe-'));
  try {
    await writeFile(path.join(dir, 'nvidia-smi'), '#!/bin/sh\necho "GPU 0: Tesla T4 (UUID: GPU-0a1b)"\necho "GPU 1: NVIDIA A10G (UUID: GPU-2c3d)"\n');
    await chmod(path.join(dir, 'nvidia-smi'), 0o755);
    const out = execFileSync('sh', ['-c', probeScript(path.join(dir, 'root'), '24.11.0')], {
      env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
    }).toString();
    const probe = parseProbe(out.split('\n'));
    assert.deepEqual(probe.gpus, ['Tesla T4', 'NVIDIA A10G']);
    assert.equal(probe.node, process.version);
    assert.equal(probe.os, 'Linux');
    assert.equal(probe.arch, process.arch);
    assert.equal(probe.bootstrapped, undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a host without nvidia-smi has no GPU; Node older than 20 is not suitable', () => {
  const probe = parseProbe(['os=Linux', 'arch=aarch64', 'node=v18.19.1']);
  assert.deepEqual(probe.gpus, []);
  assert.equal(probe.arch, 'arm64');
  assert.equal(probe.npm, false);
  assert.equal(nodeSuitable(probe.node), false);
  assert.equal(nodeSuitable('v20.0.0'), true);
  assert.equal(nodeSuitable(undefined), false);
});
