// The PyTorch peer of the benchmarks: its script ships with the repository, and a machine without
// python3-torch gets a `skipped` column saying why and how to install it, never a failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runTorchReference, torchReferenceScript } from '../bench/torch.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

async function withPython<T>(python: string, fn: () => Promise<T>): Promise<T> {
  const before = process.env['PIPE_TORCH_PYTHON'];
  process.env['PIPE_TORCH_PYTHON'] = python;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env['PIPE_TORCH_PYTHON'];
    else process.env['PIPE_TORCH_PYTHON'] = before;
  }
}

test('the PyTorch reference script is part of the repository', () => {
  const script = torchReferenceScript();
  const rel = path.relative(REPO, script);
  assert.ok(!rel.startsWith('..') && !path.isAbsolute(rel), `${script} lies outside ${REPO}`);
  assert.ok(existsSync(script), `${script} is missing`);
});

test('no python at the configured path: the PyTorch column is skipped and says so', async () => {
  const missing = path.join(os.tmpdir(), 'no-such-dir-pipe', 'python3');
  const r = await withPython(missing, () => runTorchReference('block5', { batch: 8 }));
  assert.equal(r.ok, false);
  assert.match(!r.ok ? r.reason : '', /no-such-dir-pipe\/python3 not found/);
});

test('a python without torch: skipped, naming the import error and the Debian packages', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-torch-'));
  try {
    const fake = path.join(dir, 'python3');
    await writeFile(fake, `#!/bin/sh\necho "ModuleNotFoundError: No module named 'torch'" >&2\nexit 1\n`);
    await chmod(fake, 0o755);
    const r = await withPython(fake, () => runTorchReference('head', { features: 64 }));
    assert.equal(r.ok, false);
    const reason = !r.ok ? r.reason : '';
    assert.match(reason, /No module named 'torch'/);
    assert.match(reason, /apt-get install python3-torch python3-torchvision/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a PyTorch run that outlasts its limit is skipped as too slow, not as an empty failure', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-torch-'));
  try {
    const fake = path.join(dir, 'python3');
    // Imports fine (`-c ...`), then the reference run itself hangs.
    await writeFile(fake, `#!/bin/sh\nif [ "$1" = "-c" ]; then echo 1.13; exit 0; fi\nexec sleep 30\n`);
    await chmod(fake, 0o755);
    const r = await withPython(fake, () => runTorchReference('block5', { batch: 8 }, 400));
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.reason : '', /block5 did not finish in 0.4 s/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
