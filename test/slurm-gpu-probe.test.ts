// The Slurm GPU probe's pure parts, without a cluster: which requests ask for a GPU, the probe
// job's srun options (the request's placement only), the cache file's key, and what a probe that
// could not start says (srun run by a stand-in on PATH).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { asksGpu, probeFile, probeOptions, runProbeJob } from '../runner/hosts/slurm/gpu-probe.js';
import { withDevice } from '../runner/hosts/remote.js';

test('a GPU request: gres naming gpu, or --gpus / --gres=gpu in sbatch_args; other gres are not', () => {
  assert.equal(asksGpu({ gres: 'gpu:1' }), 'gres gpu:1');
  assert.equal(asksGpu({ gres: 'gpu:a100:2' }), 'gres gpu:a100:2');
  assert.equal(asksGpu({ gres: 'shard:1,gpu' }), 'gres shard:1,gpu');
  assert.equal(asksGpu({ sbatchArgs: ['--gpus=2'] }), '--gpus=2');
  assert.equal(asksGpu({ sbatchArgs: ['--gres=gpu:1'] }), '--gres=gpu:1');
  assert.equal(asksGpu({ gres: 'license:1' }), undefined);
  assert.equal(asksGpu({ gres: 'gpumem:4G' }), undefined);
  assert.equal(asksGpu({ partition: 'gpu', sbatchArgs: ['--requeue'] }), undefined);
});

test("the probe job asks for the jobs' placement, not their size or time", () => {
  const opts = probeOptions({
    partition: 'gpu',
    gres: 'gpu:1',
    account: 'lab',
    qos: 'short',
    cpus: 16,
    mem: '64G',
    time: '04:00:00',
    sbatchArgs: ['--constraint=a100', '--requeue', '--exclude=node3'],
  });
  assert.deepEqual(opts, [
    '--job-name=pipe-gpu-probe',
    '--immediate=120',
    '--time=2',
    '--ntasks=1',
    '--partition=gpu',
    '--gres=gpu:1',
    '--account=lab',
    '--qos=short',
    '--constraint=a100',
    '--exclude=node3',
  ]);
});

test('the cached answer is kept per submit host, cluster, partition and GPU request', () => {
  const t = { address: 'login', user: 'me', port: 22, knownHosts: '/k' };
  const f = (r: object, cluster = 'c1', target = t): string => probeFile({ target, cluster, request: r, cacheDir: '/c' });
  assert.equal(f({ partition: 'gpu', gres: 'gpu:1', time: 10 }), f({ partition: 'gpu', gres: 'gpu:1', time: 60, cpus: 4 }));
  assert.notEqual(f({ partition: 'gpu', gres: 'gpu:1' }), f({ partition: 'a100', gres: 'gpu:1' }));
  assert.notEqual(f({ partition: 'gpu', gres: 'gpu:1' }), f({ partition: 'gpu', gres: 'gpu:2' }));
  assert.notEqual(f({ gres: 'gpu:1' }), f({ gres: 'gpu:1' }, 'c2'));
  assert.notEqual(f({ gres: 'gpu:1' }), f({ gres: 'gpu:1' }, 'c1', { ...t, address: 'login2' }));
});

test('a probe job that waited past --immediate says so with the pending reason; a refused one is an error', async () => {
  const bin = await mkdtemp(path.join(os.tmpdir(), 'pipe-srun-'));
  const PATH = process.env['PATH'];
  try {
    const srun = path.join(bin, 'srun');
    const write = (body: string): Promise<void> => writeFile(srun, `#!/bin/sh\n${body}\n`).then(() => chmod(srun, 0o755));
    process.env['PATH'] = `${bin}:${PATH}`;
    const local = { address: 'localhost', user: 'me', port: 22, knownHosts: '/k', local: true };
    await write(
      "echo 'srun: Required node not available (down, drained or reserved)' >&2; echo 'srun: job 7 queued and waiting for resources' >&2; echo 'srun: error: Unable to allocate resources: Requested nodes are busy' >&2; exit 1",
    );
    const r = await runProbeJob(local, 'c1', { gres: 'gpu:1' });
    assert.deepEqual(r.gpus, []);
    assert.equal(r.failed, 'job 7 did not start within 120 s: Required node not available (down, drained or reserved)');
    await write("echo 'srun: error: Unable to allocate resources: Invalid account or account/partition combination specified' >&2; exit 1");
    await assert.rejects(runProbeJob(local, 'c1', { gres: 'gpu:1', account: 'nope' }), /refused the GPU probe job \(.*--account=nope\): Invalid account/);
  } finally {
    process.env['PATH'] = PATH;
    await rm(bin, { recursive: true, force: true });
  }
});

test('a Slurm job that asked for a GPU and whose engines report the CPU is a warning, even with no reason known beforehand', () => {
  const quiet = { debug() {}, info() {}, warn() {}, error() {} } as unknown as Parameters<typeof withDevice>[3];
  const host = { bin: 'b', env: '', gpus: ['Tesla T4'], gpuWhere: 'partition gpu of Slurm cluster c1', gpuAsked: 'gres gpu:1' };
  const cpu = withDevice({ meta: { device: 'onnx cpu (2 threads)' } }, 'login', host, quiet);
  assert.deepEqual(cpu.meta?.['warnings'], [
    'computed on onnx cpu (2 threads) on partition gpu of Slurm cluster c1 although its Slurm job asked for gres gpu:1',
  ]);
  const gpu = withDevice({ meta: { device: 'onnx cuda:0 (Tesla T4)' } }, 'login', host, quiet);
  assert.equal(gpu.meta?.['warnings'], undefined);
  // No GPU asked (no gres gpu): the CPU is what the job asked for.
  const { gpuAsked: _asked, ...plain } = host;
  assert.equal(withDevice({ meta: { device: 'onnx cpu (2 threads)' } }, 'login', { ...plain, gpus: [] }, quiet).meta?.['warnings'], undefined);
});
